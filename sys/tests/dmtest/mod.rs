//! Helpers for tests that drive targets through the control path the way `dmsetup` does, and
//! read back their TABLE and INFO lines as `dmsetup table` / `dmsetup status` print them.
//!
//! The RAM disks carry the numbers Linux gives virtio disks in the oracle VM (`/dev/vda` is
//! 254:0, `/dev/vdb` 254:16), so that lines compare byte for byte with Linux's.
#![allow(dead_code)]

pub mod cases;
#[path = "../common/mod.rs"]
mod common;

use std::sync::Arc;

use dmcore::platform::mem::MemPlatform;
use dmcore::plist::Dict;
use dmcore::{Core, DevT, Errno};

pub use common::{entries, Outcome, ROOT};

pub const VDA: DevT = DevT::new(254, 0);
pub const VDB: DevT = DevT::new(254, 16);

/// A core with /dev/vda and /dev/vdb of `sectors` sectors each.
pub fn setup(sectors: u64) -> (Arc<Core<MemPlatform>>, MemPlatform) {
    let (core, platform) = MemPlatform::new_core();
    platform.add_disk("/dev/vda", VDA, sectors);
    platform.add_disk("/dev/vdb", VDB, sectors);
    (core, platform)
}

/// The DM_NOFLUSH_FLAG of a suspend or resume request.
pub const NOFLUSH: u32 = 0x800;
const STATUS_TABLE: u32 = 0x10;

fn request(command: &str, name: &str, flags: u32) -> Dict {
    common::request(command, Some(name), flags)
}

pub fn send(core: &Core<MemPlatform>, d: &Dict) -> Outcome {
    common::call(core, d, ROOT)
}

pub fn command(core: &Core<MemPlatform>, command: &str, name: &str, flags: u32) -> Outcome {
    send(core, &request(command, name, flags))
}

/// `reload` of `name` with the given lines.
pub fn reload(core: &Core<MemPlatform>, name: &str, lines: &[&str]) -> Outcome {
    let mut d = request("reload", name, 0);
    d.insert("cmd_data", entries(lines));
    send(core, &d)
}

/// `dmsetup create NAME --table LINES`: create, reload, resume. On a refused table the device
/// is removed again (as dmsetup does) and the errno and detail come back.
pub fn create(core: &Core<MemPlatform>, name: &str, lines: &[&str]) -> Result<u32, (Errno, String)> {
    assert_eq!(command(core, "create", name, 0).result, Ok(()), "create {name}");
    let loaded = reload(core, name, lines);
    if let Err(errno) = loaded.result {
        assert_eq!(command(core, "remove", name, 0).result, Ok(()));
        return Err((errno, loaded.detail.unwrap_or_default()));
    }
    assert_eq!(command(core, "resume", name, 0).result, Ok(()), "resume {name}");
    Ok(core.minor_of(name).unwrap())
}

fn lines(core: &Core<MemPlatform>, name: &str, flags: u32) -> Vec<String> {
    let out = command(core, "table", name, flags);
    assert_eq!(out.result, Ok(()));
    common::table_lines(&out.reply)
}

/// `dmsetup table NAME`, one string per line.
pub fn table(core: &Core<MemPlatform>, name: &str) -> Vec<String> {
    lines(core, name, STATUS_TABLE)
}

/// `dmsetup status NAME`, one string per line.
pub fn status(core: &Core<MemPlatform>, name: &str) -> Vec<String> {
    lines(core, name, 0)
}

pub fn suspend(core: &Core<MemPlatform>, name: &str, flags: u32) -> Result<(), Errno> {
    command(core, "suspend", name, flags).result
}

pub fn resume(core: &Core<MemPlatform>, name: &str) -> Result<(), Errno> {
    command(core, "resume", name, 0).result
}

pub fn remove(core: &Core<MemPlatform>, name: &str) -> Result<(), Errno> {
    command(core, "remove", name, 0).result
}

/// `n` bytes of `byte`.
pub fn fill(n: usize, byte: u8) -> Vec<u8> {
    vec![byte; n]
}

pub const MS: u64 = 1_000_000;
pub const SEC: u64 = 1_000_000_000;

/// One `dmsetup create NAME --table "LINE"` of a golden transcript from Linux 6.1
/// (shared/linux-dm-oracle/golden), with what Linux printed for it.
#[derive(Debug, Clone)]
pub struct GoldenCase {
    pub name: String,
    pub line: String,
    /// `dmsetup table NAME`, when the transcript shows it.
    pub table: Option<String>,
    /// `dmsetup status NAME`, when the transcript shows it.
    pub status: Option<String>,
    /// For a refused table: the target's message as the kernel logged it (`flakey: ...`) and
    /// the errno's name (`EINVAL`).
    pub error: Option<(String, String)>,
}

pub fn golden_text(file: &str) -> String {
    let path = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/linux-dm-oracle/golden"))
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `dmsetup create` of a golden transcript.
pub fn golden_cases(file: &str) -> Vec<GoldenCase> {
    let text = golden_text(file);
    let lines: Vec<&str> = text.lines().collect();
    let mut cases: Vec<GoldenCase> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l.strip_prefix("$ dmsetup create ") {
            let (name, table) = rest.split_once(" --table ").expect("create with --table");
            let line = table.trim_matches('"').to_string();
            cases.push(GoldenCase { name: name.to_string(), line, table: None, status: None, error: None });
            continue;
        }
        let Some(case) = cases.last_mut() else { continue };
        let next = lines.get(i + 1).map(|s| s.to_string());
        if *l == format!("$ dmsetup table {}", case.name) && case.table.is_none() {
            case.table = next;
        } else if *l == format!("$ dmsetup status {}", case.name) && case.status.is_none() {
            case.status = next;
        } else if let Some(k) = l.strip_prefix("[kernel] device-mapper: table: ") {
            if case.error.is_none() {
                // "253:7: flakey: message (-EINVAL)"
                let (_, msg) = k.split_once(": ").unwrap();
                let (msg, errno) = msg.rsplit_once(" (-").unwrap();
                case.error = Some((msg.to_string(), errno.trim_end_matches(')').to_string()));
            }
        }
    }
    cases
}

/// Checks one case against our core: the same table line gives the same TABLE and INFO lines,
/// or is refused with the same message (as `line 0: <target>: <message>`) and errno.
pub fn check_golden_case(core: &Core<MemPlatform>, case: &GoldenCase) {
    let ours = create(core, &case.name, &[&case.line]);
    match (&case.error, ours) {
        (None, Ok(_)) => {
            if let Some(t) = &case.table {
                assert_eq!(&table(core, &case.name)[..], std::slice::from_ref(t), "{}: TABLE", case.line);
            }
            if let Some(s) = &case.status {
                assert_eq!(&status(core, &case.name)[..], std::slice::from_ref(s), "{}: INFO", case.line);
            }
            assert_eq!(remove(core, &case.name), Ok(()));
        }
        (Some((msg, errno)), Err((e, detail))) => {
            assert_eq!(detail, format!("line 0: {msg}"), "{}", case.line);
            assert_eq!(e.name(), errno, "{}", case.line);
        }
        (want, got) => panic!("{}: Linux {want:?}, ours {got:?}", case.line),
    }
}
