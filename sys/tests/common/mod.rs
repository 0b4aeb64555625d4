//! Shared set-up for the core's integration tests: a core on the in-memory platform with the
//! lower devices of the recorded NetBSD exchanges.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use dmcore::platform::mem::MemPlatform;
use dmcore::platform::Platform;
use dmcore::plist::{parse_dict, write_dict, Dict, Limits, Value};
use dmcore::{Caller, Core, DevT, Errno, Reply};

pub const ROOT: Caller = Caller { privileged: true };
pub const USER: Caller = Caller { privileged: false };

/// The recorded exchanges' lower devices: /dev/dmtl0..2, 8 MiB each, block major 197.
pub const LOWER_SECTORS: u64 = 16384;
pub fn lower(i: u32) -> DevT {
    DevT::new(197, i)
}

pub fn golden_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/netbsd-golden"))
}

pub fn golden(name: &str, part: &str) -> Vec<u8> {
    let path = golden_dir().join(format!("{name}.{part}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn setup() -> (Arc<Core<MemPlatform>>, MemPlatform) {
    let (core, platform) = MemPlatform::new_core();
    for i in 0..3 {
        platform.add_disk(&format!("/dev/dmtl{i}"), lower(i), LOWER_SECTORS);
    }
    (core, platform)
}

/// Sends request text the way libprop does: the text and its NUL.
pub fn send(core: &Core<MemPlatform>, text: &[u8], caller: Caller) -> Result<Reply, dmcore::Errno> {
    let mut bytes = text.to_vec();
    bytes.push(0);
    core.control(&bytes, caller)
}

pub fn send_ok(core: &Core<MemPlatform>, text: &[u8]) -> Reply {
    send(core, text, ROOT).expect("transport error")
}

/// A request document with the protocol's header, from the body of its dictionary.
pub fn doc(body: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple Computer//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n{body}</plist>\n"
    )
    .into_bytes()
}

/// A request as the simplest clients send it: `command`, `name` (when given), `version` [4]
/// and `flags` (when not 0).
pub fn request(command: &str, name: Option<&str>, flags: u32) -> Dict {
    let mut d = Dict::new();
    d.set_string("command", command.as_bytes());
    if let Some(name) = name {
        d.set_string("name", name.as_bytes());
    }
    d.insert("version", Value::Array(vec![Value::unsigned(4)]));
    if flags != 0 {
        d.set_u32("flags", flags);
    }
    d
}

/// One `cmd_data` entry of a `reload`.
pub fn entry(start: u64, len: u64, target_type: &str, params: &str) -> Value {
    let mut e = Dict::new();
    e.set_u64("start", start);
    e.set_u64("length", len);
    e.set_string("type", target_type.as_bytes());
    e.set_string("params", params.as_bytes());
    Value::Dict(e)
}

/// `<start> <length> <type> <params>`, as `dmsetup create --table` takes a line.
pub fn parse_line(line: &str) -> (u64, u64, String, String) {
    let mut it = line.trim().splitn(4, ' ');
    let start = it.next().unwrap().parse().unwrap();
    let len = it.next().unwrap().parse().unwrap();
    let target_type = it.next().unwrap().to_string();
    let params = it.next().unwrap_or("").to_string();
    (start, len, target_type, params)
}

/// The `cmd_data` of a `reload` from table lines in dmsetup's syntax.
pub fn entries(lines: &[&str]) -> Value {
    Value::Array(
        lines
            .iter()
            .map(|l| {
                let (start, len, target_type, params) = parse_line(l);
                entry(start, len, &target_type, &params)
            })
            .collect(),
    )
}

/// A command's outcome: the reply dictionary, the command's result, and its detail (Linux's
/// message for a refused table line).
pub struct Outcome {
    pub reply: Dict,
    pub result: Result<(), Errno>,
    pub detail: Option<String>,
}

/// Sends a request dictionary (with its NUL) and parses the reply.
pub fn call<P: Platform>(core: &Core<P>, d: &Dict, caller: Caller) -> Outcome {
    let mut bytes = write_dict(d);
    bytes.push(0);
    let r = core.control(&bytes, caller).expect("transport error");
    Outcome {
        reply: parse_dict(&r.bytes, &Limits::DM).expect("reply parses"),
        result: r.command_result,
        detail: r.detail,
    }
}

/// Runs `command` on `name` as root, with a table in `cmd_data` when `lines` is not empty.
pub fn command<P: Platform>(
    core: &Core<P>,
    command: &str,
    name: &str,
    lines: &[(u64, u64, &str, &str)],
) -> Result<(), Errno> {
    let mut d = request(command, Some(name), 0);
    if !lines.is_empty() {
        let table = lines.iter().map(|&(start, len, ty, params)| entry(start, len, ty, params)).collect();
        d.insert("cmd_data", Value::Array(table));
    }
    call(core, &d, ROOT).result
}

/// Creates `name` with `lines` as its live table; returns its minor.
pub fn make_device<P: Platform>(core: &Core<P>, name: &str, lines: &[(u64, u64, &str, &str)]) -> u32 {
    command(core, "create", name, &[]).expect("create");
    command(core, "reload", name, lines).expect("reload");
    command(core, "resume", name, &[]).expect("resume");
    core.minor_of(name).expect("created")
}

/// The `cmd_data` of a `table` or `status` reply as `dmsetup` prints it: one
/// `<start> <length> <type> <params>` per line.
pub fn table_lines(reply: &Dict) -> Vec<String> {
    reply
        .get_array("cmd_data")
        .expect("a table or status reply carries cmd_data")
        .iter()
        .map(|v| {
            let e = v.as_dict().unwrap();
            format!(
                "{} {} {} {}",
                e.get_u64("start").unwrap(),
                e.get_u64("length").unwrap(),
                e.get_str("type").unwrap(),
                e.get_str("params").unwrap_or("")
            )
        })
        .collect()
}
