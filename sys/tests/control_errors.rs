//! Error behaviour of the control path: transport errors fail the ioctl; command errors are
//! reported in the reply, and a failed command changes nothing.

mod common;

use common::*;
use dmcore::platform::mem::MemPlatform;
use dmcore::plist::{write_dict, Dict, Number, Value};
use dmcore::{Core, Errno, Op};

fn named(command: &str, name: &str) -> Dict {
    request(command, Some(name), 0)
}

fn with_flags(mut d: Dict, flags: u32) -> Dict {
    d.set_u32("flags", flags);
    d
}

use common::entry as line;

fn reload(name: &str, lines: Vec<Value>) -> Dict {
    let mut d = named("reload", name);
    d.insert("cmd_data", Value::Array(lines));
    d
}

fn run_as(core: &Core<MemPlatform>, d: &Dict, caller: dmcore::Caller) -> (Dict, Result<(), Errno>) {
    let out = call(core, d, caller);
    (out.reply, out.result)
}

fn run(core: &Core<MemPlatform>, d: &Dict) -> (Dict, Result<(), Errno>) {
    run_as(core, d, ROOT)
}

fn created(core: &Core<MemPlatform>, name: &str) {
    assert_eq!(run(core, &named("create", name)).1, Ok(()));
}

fn live(core: &Core<MemPlatform>, name: &str, lines: Vec<Value>) {
    assert_eq!(run(core, &reload(name, lines)).1, Ok(()));
    assert_eq!(run(core, &named("resume", name)).1, Ok(()));
}

fn table_of(core: &Core<MemPlatform>, name: &str, inactive: bool) -> Vec<(u64, u64, String, String)> {
    let flags = 0x10 | if inactive { 0x1000 } else { 0 };
    let (reply, result) = run(core, &with_flags(named("table", name), flags));
    assert_eq!(result, Ok(()));
    reply
        .get_array("cmd_data")
        .unwrap()
        .iter()
        .map(|v| {
            let e = v.as_dict().unwrap();
            (
                e.get_u64("start").unwrap(),
                e.get_u64("length").unwrap(),
                e.get_str("type").unwrap().into(),
                e.get_str("params").unwrap().into(),
            )
        })
        .collect()
}

/// Whether the reply is the request, byte for byte.
fn unchanged(core: &Core<MemPlatform>, d: &Dict) -> bool {
    let r = send(core, &write_dict(d), ROOT).unwrap();
    r.bytes == write_dict(d)
}

#[test]
fn oversize_and_unparsable_requests_fail_the_ioctl() {
    let (core, _) = setup();
    let body = write_dict(&request("version", None, 0));
    // Pad with whitespace inside the document up to the limit: text + NUL == 131072 fails,
    // one byte less passes.
    let pad = |total_with_nul: usize| {
        let mut t = body.clone();
        let insert_at = t.len() - "</plist>\n".len();
        let fill = total_with_nul - 1 - t.len();
        t.splice(insert_at..insert_at, std::iter::repeat_n(b' ', fill));
        t
    };
    assert_eq!(send(&core, &pad(131072), ROOT).unwrap_err(), Errno::E2BIG);
    assert_eq!(send(&core, &pad(131071), ROOT).unwrap().command_result, Ok(()));
    assert_eq!(send(&core, &pad(131071 + 200_000), ROOT).unwrap_err(), Errno::E2BIG);
    for bad in [
        &b"not xml"[..],
        b"",
        b"<plist><dict><key>a</key></dict></plist>",
        b"<plist><array/></plist>",
        b"<plist><dict><foo/></dict></plist>",
    ] {
        assert_eq!(send(&core, bad, ROOT).unwrap_err(), Errno::EIO, "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn version_handshake() {
    let (core, _) = setup();
    for (minor, ok) in [(0, true), (1, true), (16, true), (17, false)] {
        let mut d = request("version", None, 0);
        d.insert(
            "version",
            Value::Array(vec![
                Value::Number(Number::Unsigned(4)),
                Value::Number(Number::Unsigned(minor)),
                Value::Number(Number::Unsigned(0)),
            ]),
        );
        let (reply, result) = run(&core, &d);
        assert_eq!(result.is_ok(), ok, "4.{minor}");
        let v: Vec<u32> = reply.get_array("version").unwrap().iter().map(|e| e.as_u32().unwrap()).collect();
        assert_eq!(v, if ok { vec![4, 16, 0] } else { vec![4, minor as u32, 0] });
        if !ok {
            assert!(unchanged(&core, &d), "4.{minor}: a failed check leaves the request untouched");
        }
    }
    // Wrong major and no version at all: nothing runs, the request comes back untouched.
    let mut d = named("create", "x");
    d.insert("version", Value::Array(vec![Value::Number(Number::Unsigned(3))]));
    assert!(unchanged(&core, &d));
    d.remove("version");
    assert!(unchanged(&core, &d));
    assert_eq!(core.minor_of("x"), None);
    // A short version array passes (missing elements read as 0) and is completed.
    let mut d = request("version", None, 0);
    d.insert("version", Value::Array(vec![Value::Number(Number::Unsigned(4))]));
    let (reply, _) = run(&core, &d);
    assert_eq!(reply.get_array("version").unwrap().len(), 3);
}

#[test]
fn missing_mistyped_and_unknown_commands() {
    let (core, _) = setup();
    let mut d = request("version", None, 0);
    d.remove("command");
    let (reply, result) = run(&core, &d);
    assert_eq!(result, Err(Errno::EINVAL));
    assert_eq!(reply.get_u32("flags"), None, "nothing added");
    d.insert("command", Value::Number(Number::Unsigned(1)));
    assert_eq!(run(&core, &d).1, Err(Errno::EINVAL));
    // remove_all, message and waitevent are extensions this core implements (§11).
    for cmd in ["frobnicate", "setgeometry", "list_versions", "VERSION", "remove-all", "wait"] {
        assert_eq!(run(&core, &request(cmd, None, 0)).1, Err(Errno::EINVAL), "{cmd}");
    }
}

#[test]
fn unprivileged_callers_run_only_the_query_commands() {
    let (core, _) = setup();
    created(&core, "d");
    for cmd in ["version", "targets", "info", "mknodes", "names", "deps", "status", "table"] {
        assert_eq!(run_as(&core, &named(cmd, "d"), USER).1, Ok(()), "{cmd}");
    }
    for cmd in
        ["create", "suspend", "remove", "rename", "resume", "clear", "reload", "message", "remove_all", "frobnicate"]
    {
        let d = named(cmd, "e");
        let (reply, result) = run_as(&core, &d, USER);
        assert_eq!(result, Err(Errno::EPERM), "{cmd}");
        assert_eq!(reply.get_u32("flags"), None, "{cmd}: reply edited");
    }
    assert_eq!(core.minor_of("e"), None);
}

#[test]
fn device_commands_on_a_missing_device_clear_exists() {
    let (core, _) = setup();
    for cmd in ["info", "mknodes", "suspend", "resume", "remove", "clear", "deps", "status", "table", "reload"] {
        let mut d = with_flags(named(cmd, "ghost"), 0x4);
        d.insert("cmd_data", Value::Array(vec![line(0, 8, "zero", "")]));
        let (reply, result) = run(&core, &d);
        assert_eq!(result, Err(Errno::ENOENT), "{cmd}");
        assert_eq!(reply.get_u32("flags"), Some(0), "{cmd}");
        assert_eq!(reply.get_u32("minor"), None, "{cmd}");
    }
    let mut d = named("rename", "ghost");
    d.insert("cmd_data", Value::Array(vec![Value::String(b"new".to_vec())]));
    assert_eq!(run(&core, &d).1, Err(Errno::ENOENT));
}

#[test]
fn lookup_order_is_minor_then_name_then_uuid() {
    let (core, _) = setup();
    let mut a = named("create", "a");
    a.set_string("uuid", b"UUID-A");
    assert_eq!(run(&core, &a).1, Ok(()));
    let mut b = named("create", "b");
    b.set_string("uuid", b"UUID-B");
    assert_eq!(run(&core, &b).1, Ok(()));
    let minor_of = |d: &Dict| run(&core, d).0.get_u32("minor");
    let mut q = request("info", None, 0);
    q.set_u32("minor", 2);
    q.set_string("name", b"a");
    assert_eq!(minor_of(&q), Some(2), "minor wins");
    q.set_u32("minor", 99);
    assert_eq!(minor_of(&q), Some(1), "missing minor falls back to the name");
    q.remove("name");
    q.set_string("uuid", b"UUID-B");
    assert_eq!(minor_of(&q), Some(2), "then the uuid");
    let mut by_uuid = request("info", None, 0);
    by_uuid.set_string("uuid", b"UUID-A");
    let (reply, _) = run(&core, &by_uuid);
    assert_eq!(reply.get_str("name"), Some("a"));
}

#[test]
fn create_rules() {
    let (core, platform) = setup();
    for bad in ["", "a/b", ".", ".."] {
        assert_eq!(run(&core, &named("create", bad)).1, Err(Errno::EINVAL), "{bad:?}");
    }
    assert_eq!(run(&core, &request("create", None, 0)).1, Err(Errno::EINVAL), "no name");
    let long = "n".repeat(128);
    assert_eq!(run(&core, &named("create", &long)).1, Err(Errno::EINVAL));
    created(&core, &"n".repeat(127));
    let mut d = named("create", "u");
    d.set_string("uuid", "u".repeat(129).as_bytes());
    assert_eq!(run(&core, &d).1, Err(Errno::EINVAL));
    d.set_string("uuid", "u".repeat(128).as_bytes());
    assert_eq!(run(&core, &d).1, Ok(()));
    // A duplicate uuid under another name is a clash too.
    d.set_string("name", b"u2");
    let (reply, result) = run(&core, &d);
    assert_eq!(result, Err(Errno::EEXIST));
    assert_eq!(reply.get_u32("flags"), Some(0x4));
    assert_eq!(reply.get_u32("minor"), None);
    // Minors count up and are never reused; a requested minor is ignored.
    assert_eq!(run(&core, &named("remove", "u")).1, Ok(()));
    let mut d = named("create", "v");
    d.set_u32("minor", 2);
    d.set_u32("flags", 0x8);
    assert_eq!(run(&core, &d).0.get_u32("minor"), Some(3));
    // The host refusing to attach the device undoes the create.
    platform.fail_next_attach(Errno::ENOMEM);
    assert_eq!(run(&core, &named("create", "w")).1, Err(Errno::ENOMEM));
    assert_eq!(core.minor_of("w"), None);
    assert_eq!(platform.attached(), vec![1, 3]);
}

#[test]
fn bad_tables_are_refused_and_change_nothing() {
    let (core, platform) = setup();
    created(&core, "d");
    let good = vec![line(0, 2048, "linear", "/dev/dmtl0 0")];
    assert_eq!(run(&core, &reload("d", good.clone())).1, Ok(()));
    let before = table_of(&core, "d", true);
    let cases: Vec<(Vec<Value>, Errno)> = vec![
        (vec![], Errno::EINVAL),
        (vec![line(8, 8, "zero", "")], Errno::EINVAL),
        (vec![line(0, 0, "zero", "")], Errno::EINVAL),
        (vec![line(0, 8, "zero", ""), line(16, 8, "zero", "")], Errno::EINVAL),
        (vec![line(0, 8, "zero", ""), line(4, 8, "zero", "")], Errno::EINVAL),
        (vec![line(0, u64::MAX, "zero", ""), line(u64::MAX, 1, "zero", "")], Errno::EINVAL),
        (vec![line(0, 8, "nosuchtarget", "")], Errno::ENOENT),
        (vec![line(0, 8, "zero", "x")], Errno::EINVAL),
        (vec![line(0, 8, "linear", "/dev/dmtl0")], Errno::EINVAL),
        (vec![line(0, 8, "linear", "/dev/dmtl0 0 0")], Errno::EINVAL),
        (vec![line(0, 8, "linear", "/dev/dmtl0 -1")], Errno::EINVAL),
        (vec![line(0, 8, "linear", "/dev/nosuch 0")], Errno::ENOENT),
        (vec![line(0, 8, "linear", "9:9 0")], Errno::ENXIO),
        (vec![line(0, 16384, "linear", "/dev/dmtl0 1")], Errno::EINVAL),
        (vec![line(0, 8, "linear", "/dev/dmtl0 0"), line(8, 8, "linear", "/dev/nosuch 0")], Errno::ENOENT),
        (vec![line(0, 128, "striped", "2")], Errno::EINVAL),
        (vec![line(0, 128, "striped", "0 8 /dev/dmtl0 0")], Errno::EINVAL),
        (vec![line(0, 128, "striped", "2 0 /dev/dmtl0 0 /dev/dmtl1 0")], Errno::EINVAL),
        (vec![line(0, 129, "striped", "2 8 /dev/dmtl0 0 /dev/dmtl1 0")], Errno::EINVAL),
        (vec![line(0, 100, "striped", "2 128 /dev/dmtl0 0 /dev/dmtl1 0")], Errno::EINVAL),
        (vec![line(0, 128, "striped", "2 8 /dev/dmtl0 0")], Errno::EINVAL),
        (vec![line(0, 128, "striped", "2 8 /dev/dmtl0 0 /dev/dmtl1 x")], Errno::EINVAL),
    ];
    for (lines, errno) in cases {
        let desc = format!("{lines:?}");
        let (reply, result) = run(&core, &reload("d", lines));
        assert_eq!(result, Err(errno), "{desc}");
        assert_eq!(reply.get_u32("minor"), Some(1), "{desc}");
        assert_eq!(reply.get_u32("flags"), None, "{desc}: no INACTIVE_PRESENT");
        assert_eq!(table_of(&core, "d", true), before, "{desc}: inactive table changed");
    }
    // Only the good table's one open remains.
    assert_eq!(platform.opens(lower(0)), 1);
    assert_eq!(platform.opens(lower(1)), 0);
    // Mistyped and missing keys.
    let mut bad_type = reload("d", vec![]);
    let mut e = Dict::new();
    e.set_string("start", b"0");
    e.set_u64("length", 8);
    e.set_string("type", b"zero");
    e.set_string("params", b"");
    bad_type.insert("cmd_data", Value::Array(vec![Value::Dict(e.clone())]));
    assert_eq!(run(&core, &bad_type).1, Err(Errno::EINVAL));
    for missing in ["start", "length", "type", "params"] {
        let mut e2 = e.clone();
        e2.set_u64("start", 0);
        e2.remove(missing);
        let mut d = reload("d", vec![]);
        d.insert("cmd_data", Value::Array(vec![Value::Dict(e2)]));
        assert_eq!(run(&core, &d).1, Err(Errno::EINVAL), "{missing}");
    }
    let mut d = reload("d", vec![]);
    d.insert("cmd_data", Value::Array(vec![Value::String(b"0 8 zero".to_vec())]));
    assert_eq!(run(&core, &d).1, Err(Errno::EINVAL));
    d.remove("cmd_data");
    assert_eq!(run(&core, &d).1, Err(Errno::EINVAL));
    assert_eq!(table_of(&core, "d", true), before);
    // The refusal is explained.
    let r = send(&core, &write_dict(&reload("d", vec![line(0, 8, "linear", "/dev/dmtl0")])), ROOT).unwrap();
    assert_eq!(r.detail.as_deref(), Some("line 0: linear: Invalid argument count"));
}

#[test]
fn rename_rules() {
    let (core, _) = setup();
    created(&core, "a");
    created(&core, "b");
    let rename = |from: &str, to: Option<Value>| {
        let mut d = named("rename", from);
        if let Some(to) = to {
            d.insert("cmd_data", Value::Array(vec![to]));
        }
        run(&core, &d).1
    };
    assert_eq!(rename("a", Some(Value::String(b"b".to_vec()))), Err(Errno::EEXIST));
    assert_eq!(rename("a", Some(Value::String(b"a".to_vec()))), Err(Errno::EEXIST));
    assert_eq!(rename("a", Some(Value::String("x".repeat(128).into_bytes()))), Err(Errno::EINVAL));
    assert_eq!(rename("a", Some(Value::Number(Number::Unsigned(1)))), Err(Errno::EINVAL));
    assert_eq!(rename("a", None), Err(Errno::EINVAL));
    assert_eq!(core.minor_of("a"), Some(1));
    assert_eq!(rename("a", Some(Value::String(b"c".to_vec()))), Ok(()));
    let (reply, _) = run(&core, &request("names", None, 0));
    let names: Vec<(u32, String)> = reply
        .get_array("cmd_data")
        .unwrap()
        .iter()
        .map(|v| {
            (v.as_dict().unwrap().get_u32("dev").unwrap(), v.as_dict().unwrap().get_str("name").unwrap().to_string())
        })
        .collect();
    assert_eq!(names, vec![(2, "b".to_string()), (1, "c".to_string())], "a renamed device moves to the end");
}

#[test]
fn remove_of_an_open_device_is_refused() {
    let (core, _) = setup();
    created(&core, "d");
    core.open(1).unwrap();
    let (reply, result) = run(&core, &with_flags(named("remove", "d"), 0x4));
    assert_eq!(result, Err(Errno::EBUSY));
    assert_eq!(reply.get_u32("flags"), Some(0x4), "EXISTS stays set");
    assert_eq!(core.minor_of("d"), Some(1));
    let (reply, _) = run(&core, &named("info", "d"));
    assert_eq!(reply.get_u32("open_count"), Some(1));
    core.close(1);
    assert_eq!(run(&core, &named("remove", "d")).1, Ok(()));
    assert_eq!(core.minor_of("d"), None);
    assert_eq!(core.open(1), Err(Errno::ENXIO));
}

#[test]
fn clear_suspend_resume_and_table_selection() {
    let (core, platform) = setup();
    created(&core, "d");
    live(&core, "d", vec![line(0, 2048, "linear", "/dev/dmtl0 0")]);
    assert_eq!(run(&core, &reload("d", vec![line(0, 4096, "zero", "")])).1, Ok(()));
    assert_eq!(table_of(&core, "d", false), vec![(0, 2048, "linear".into(), "197:0 0".into())]);
    assert_eq!(table_of(&core, "d", true), vec![(0, 4096, "zero".into(), String::new())]);
    let (reply, _) = run(&core, &named("info", "d"));
    assert_eq!(reply.get_u32("flags"), Some(0x60));
    // clear drops the inactive table, and does not edit the reply.
    let d = with_flags(named("clear", "d"), 0x4);
    let (reply, result) = run(&core, &d);
    assert_eq!(result, Ok(()));
    assert_eq!(reply.get_u32("flags"), Some(0x4));
    assert_eq!(reply.get_u32("minor"), None);
    assert_eq!(table_of(&core, "d", true), vec![]);
    // resume without a loaded table keeps the live one.
    assert_eq!(run(&core, &named("suspend", "d")).1, Ok(()));
    let (reply, _) = run(&core, &named("info", "d"));
    assert_eq!(reply.get_u32("flags"), Some(0x22));
    assert_eq!(run(&core, &named("resume", "d")).1, Ok(()));
    assert_eq!(table_of(&core, "d", false).len(), 1);
    // resume with one swaps, and the device takes the new size.
    assert_eq!(run(&core, &reload("d", vec![line(0, 4096, "zero", "")])).1, Ok(()));
    assert_eq!(run(&core, &named("resume", "d")).1, Ok(()));
    assert_eq!(core.size(1), Some(4096));
    assert_eq!(platform.reported_size(1), Some(4096));
    assert_eq!(platform.opens(lower(0)), 0, "the old table closed its device");
}

#[test]
fn read_only_devices_refuse_writes() {
    let (core, platform) = setup();
    let d = with_flags(named("create", "ro"), 0x1);
    assert_eq!(run(&core, &d).1, Ok(()));
    live(&core, "ro", vec![line(0, 2048, "linear", "/dev/dmtl0 0")]);
    let (reply, _) = run(&core, &named("info", "ro"));
    assert_eq!(reply.get_u32("flags"), Some(0x21), "info reports READONLY, as Linux's does");
    let (reply, _) = run(&core, &named("suspend", "ro"));
    assert_eq!(reply.get_u32("flags"), Some(0x27));
    assert_eq!(run(&core, &named("resume", "ro")).1, Ok(()));
    assert_eq!(platform.run_io(&core, 1, Op::Write, 0, 512, Some(&[1; 512])).result(), Some(Err(Errno::EROFS)));
    assert_eq!(platform.run_io(&core, 1, Op::Read, 0, 512, None).result(), Some(Ok(())));
}

#[test]
fn deps_lists_each_device_once() {
    let (core, _) = setup();
    created(&core, "d");
    let lines = vec![
        line(0, 8, "linear", "/dev/dmtl1 0"),
        line(8, 16, "striped", "2 8 /dev/dmtl0 0 197:1 100"),
        line(24, 8, "zero", ""),
    ];
    assert_eq!(run(&core, &reload("d", lines)).1, Ok(()));
    let (reply, _) = run(&core, &named("deps", "d"));
    assert_eq!(reply.get_array("cmd_data").unwrap().len(), 0, "no active table yet");
    let (reply, _) = run(&core, &with_flags(named("deps", "d"), 0x1000));
    let deps: Vec<u64> = reply.get_array("cmd_data").unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(deps, vec![50433, 50432]);
}

#[test]
fn a_table_may_not_stack_a_device_on_itself() {
    let (core, platform) = setup();
    for name in ["a", "b", "c"] {
        created(&core, name);
    }
    for m in 1..=3 {
        platform.add_disk(&format!("/dev/mapper/m{m}"), dmcore::DevT::new(169, m), 64);
    }
    // a -> b (live), b -> c (loaded), then c -> a closes the loop.
    live(&core, "a", vec![line(0, 8, "linear", "169:2 0")]);
    assert_eq!(run(&core, &reload("b", vec![line(0, 8, "linear", "169:3 0")])).1, Ok(()));
    let r = send(
        &core,
        &write_dict(&reload("c", vec![line(0, 8, "linear", "/dev/dmtl0 0"), line(8, 8, "linear", "169:1 0")])),
        ROOT,
    )
    .unwrap();
    assert_eq!(r.command_result, Err(Errno::EINVAL));
    assert_eq!(r.detail.as_deref(), Some("table would make the device depend on itself"));
    assert_eq!(
        run(&core, &reload("a", vec![line(0, 8, "linear", "169:1 0")])).1,
        Err(Errno::EINVAL),
        "directly on itself"
    );
    assert_eq!(run(&core, &reload("c", vec![line(0, 8, "linear", "/dev/dmtl0 0")])).1, Ok(()));
    assert_eq!(platform.opens(dmcore::DevT::new(169, 1)), 0, "the refused table closed what it opened");
}
