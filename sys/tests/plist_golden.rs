//! The plist writer against bytes recorded from NetBSD's own dm driver (reference
//! `netbsd-golden/`): every recorded request and reply must parse, and writing the parsed
//! dictionary back must give the recorded bytes exactly.

use std::fs;
use std::path::{Path, PathBuf};

use dmcore::plist::{parse, parse_dict, write_dict, Dict, Limits, Number, Value};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/netbsd-golden");

fn golden_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(GOLDEN)
        .unwrap_or_else(|e| panic!("golden folder {GOLDEN}: {e}"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    files
}

fn read(name: &str) -> Vec<u8> {
    let path = Path::new(GOLDEN).join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dict(name: &str) -> Dict {
    parse_dict(&read(name), &Limits::DM).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The `<key>=<value>` lines of a `.result` file.
fn result_field(name: &str, field: &str) -> Option<String> {
    let text = String::from_utf8(read(name)).expect("result files are text");
    text.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix('=')).map(str::to_owned)
}

#[test]
fn every_golden_document_round_trips_byte_for_byte() {
    let files = golden_files();
    assert!(files.len() >= 80, "only {} golden files", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let bytes = fs::read(path).expect("read golden file");
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        match parse_dict(&bytes, &Limits::DM) {
            Ok(d) => {
                let out = write_dict(&d);
                if out != bytes {
                    failures.push(format!(
                        "{name}: rewritten text differs\n--- recorded\n{}\n--- written\n{}",
                        String::from_utf8_lossy(&bytes),
                        String::from_utf8_lossy(&out)
                    ));
                }
                // The generic entry point and the NUL the transport appends agree.
                let mut with_nul = bytes.clone();
                with_nul.push(0);
                assert_eq!(parse(&with_nul, &Limits::DM), Ok(Value::Dict(d)), "{name}");
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn recorded_lengths_match_the_files() {
    // pref_len counts the NUL: request_len / reply_len = file length + 1.
    let mut checked = 0;
    for path in golden_files() {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let (stem, field) = if let Some(s) = name.strip_suffix(".request.xml") {
            (s, "request_len")
        } else if let Some(s) = name.strip_suffix(".reply.xml") {
            (s, "reply_len")
        } else {
            continue;
        };
        let recorded = result_field(&format!("{stem}.result"), field)
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or_else(|| panic!("{stem}.result has no {field}"));
        let len = fs::metadata(&path).expect("stat").len() as usize;
        assert_eq!(recorded, len + 1, "{name}");
        assert!(recorded < Limits::DM.max_len, "{name}");
        checked += 1;
    }
    assert!(checked >= 80);
}

#[test]
fn version_request_reads_decimal_elements_as_u32() {
    let d = dict("001-version.request.xml");
    assert_eq!(d.get_str("command"), Some("version"));
    assert_eq!(d.get_u32("flags"), Some(0));
    assert_eq!(d.get("flags"), Some(&Value::Number(Number::Unsigned(0))));
    let version = d.get_array("version").expect("version array");
    // Written signed decimal by the client, read through the unsigned getter.
    assert_eq!(version, &[Value::signed(4), Value::signed(16), Value::signed(0)][..]);
    let v: Vec<u32> = version.iter().filter_map(Value::as_u32).collect();
    assert_eq!(v, [4, 16, 0]);
    assert_eq!(d.len(), 3);
}

#[test]
fn version_reply_is_the_request_with_the_version_rewritten_unsigned() {
    let mut d = dict("001-version.request.xml");
    d.insert("version", Value::Array(vec![Value::unsigned(4), Value::unsigned(16), Value::unsigned(0)]));
    assert_eq!(write_dict(&d), read("001-version.reply.xml"));
}

#[test]
fn table_reply_entry_types() {
    let d = dict("013-table.reply.xml");
    assert_eq!(d.get_u32("flags"), Some(0x30));
    assert_eq!(d.get_u32("minor"), Some(1));
    assert_eq!(d.get_str("name"), Some("dmt0"));
    let entries = d.get_array("cmd_data").expect("cmd_data");
    assert_eq!(entries.len(), 1);
    let e = entries[0].as_dict().expect("entry dict");
    assert_eq!(e.get_u64("start"), Some(0));
    assert_eq!(e.get_u64("length"), Some(0x1000));
    assert_eq!(e.get_str("type"), Some("linear"));
    assert_eq!(e.get_str("params"), Some("/dev/dmtl0 2048"));
    // status is a signed int32 on the wire.
    assert_eq!(e.get("status"), Some(&Value::signed(1)));
    assert_eq!(e.get_i32("status"), Some(1));
}

#[test]
fn reload_request_builds_back_from_typed_setters() {
    let parsed = dict("007-reload-linear.request.xml");
    let mut entry = Dict::new();
    entry.set_u64("length", 0x1000);
    entry.set_string("params", b"/dev/dmtl0 2048");
    entry.set_u64("start", 0);
    entry.set_string("type", b"linear");
    let mut d = Dict::new();
    d.insert("cmd_data", Value::Array(vec![Value::Dict(entry)]));
    d.set_string("command", b"reload");
    d.set_u32("flags", 0);
    d.set_string("name", b"dmt0");
    d.insert("version", Value::Array(vec![Value::signed(4), Value::signed(16), Value::signed(0)]));
    assert_eq!(d, parsed);
    assert_eq!(write_dict(&d), read("007-reload-linear.request.xml"));
}

#[test]
fn targets_and_deps_elements_are_signed_decimal() {
    let d = dict("002-targets.reply.xml");
    let targets = d.get_array("cmd_data").expect("cmd_data");
    let names: Vec<&str> = targets.iter().filter_map(|t| t.as_dict()?.get_str("name")).collect();
    assert_eq!(names, ["linear", "striped"]);
    let ver = targets[1].as_dict().and_then(|t| t.get_array("ver")).expect("ver");
    assert_eq!(ver, &[Value::signed(1), Value::signed(0), Value::signed(3)][..]);
    assert_eq!(ver.iter().filter_map(Value::as_u32).collect::<Vec<_>>(), [1, 0, 3]);

    let d = dict("014-deps.reply.xml");
    let deps = d.get_array("cmd_data").expect("cmd_data");
    assert_eq!(deps, &[Value::signed(50432)][..]);
    assert_eq!(deps[0].as_u64(), Some(50432));
}

#[test]
fn empty_forms_in_recordings() {
    let d = dict("003-names-empty.reply.xml");
    assert_eq!(d.get_array("cmd_data"), Some(&[][..]));
    let d = dict("025-deps-striped.reply.xml");
    assert_eq!(d.get_bytes("uuid"), Some(&b""[..]));
    assert_eq!(d.get_u32("minor"), Some(2));
    let names = dict("015-names-one.reply.xml");
    let first = names.get_array("cmd_data").and_then(|a| a.first()).and_then(Value::as_dict);
    assert_eq!(first.and_then(|e| e.get_u32("dev")), Some(1));
    assert_eq!(first.and_then(|e| e.get_str("name")), Some("dmt0"));
}
