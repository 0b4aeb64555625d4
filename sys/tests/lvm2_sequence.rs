//! The requests lvm2's NetBSD backend sends to activate, inspect, rename and remove a logical
//! volume (netbsd-protocol.md §15.7), with the replies of §17 compared byte for byte.
//!
//! Deliberate differences from §17, each a [decision] of the reference: `targets` lists the
//! port's four targets with Linux's versions; `info` adds the device's `name`; TABLE params
//! print lower devices as `major:minor`.

mod common;

use common::*;
use dmcore::platform::mem::MemPlatform;
use dmcore::{DevT, Errno};

const UUID: &str = "LVM-Wq3c0hZ1c2b3Yd4e5f6g7h8i9j0kLmNoAb1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv";

/// An lvm2 request: `cmd_data`, `command`, `event_nr`, `flags`, then the identity keys, then
/// `version` [4, minor, 0], all written as lvm2 writes them.
fn lvm2(command: &str, flags: u32, identity: &str, cmd_data: &str, version_minor: u32) -> Vec<u8> {
    doc(&format!(
        "<dict>\n\t<key>cmd_data</key>\n{cmd_data}\t<key>command</key>\n\t<string>{command}</string>\n\t<key>event_nr</key>\n\t<integer>0x0</integer>\n\t<key>flags</key>\n\t<integer>{flags:#x}</integer>\n{identity}\t<key>version</key>\n\t<array>\n\t\t<integer>0x4</integer>\n\t\t<integer>{version_minor:#x}</integer>\n\t\t<integer>0x0</integer>\n\t</array>\n</dict>\n"
    ))
}

const EMPTY: &str = "\t<array/>\n";

fn key(name: &str, value: &str) -> String {
    format!("\t<key>{name}</key>\n\t{value}\n")
}

fn uint(v: u64) -> String {
    format!("<integer>{v:#x}</integer>")
}

fn string(s: &str) -> String {
    if s.is_empty() {
        "<string/>".into()
    } else {
        format!("<string>{s}</string>")
    }
}

/// The reply lvm2 expects: its request with these keys (sorted by the writer's rule) and the
/// kernel's version.
fn reply(command: &str, flags: u32, keys: &[(&str, String)], cmd_data: &str) -> String {
    let mut sorted: Vec<&(&str, String)> = keys.iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    let (before, after): (Vec<_>, Vec<_>) = sorted.into_iter().partition(|(k, _)| *k < "flags");
    let render = |ks: Vec<&(&str, String)>| ks.into_iter().map(|(k, v)| key(k, v)).collect::<String>();
    let text = doc(&format!(
        "<dict>\n\t<key>cmd_data</key>\n{cmd_data}\t<key>command</key>\n\t<string>{command}</string>\n\t<key>event_nr</key>\n\t<integer>0x0</integer>\n{}\t<key>flags</key>\n\t<integer>{flags:#x}</integer>\n{}\t<key>version</key>\n\t<array>\n\t\t<integer>0x4</integer>\n\t\t<integer>0x10</integer>\n\t\t<integer>0x0</integer>\n\t</array>\n</dict>\n",
        render(before.into_iter().filter(|(k, _)| *k > "command").collect()),
        render(after),
    ));
    String::from_utf8(text).unwrap()
}

fn table_entries(entries: &[(u64, u64, &str, i32)]) -> String {
    let mut s = String::from("\t<array>\n");
    for (start, len, params, status) in entries {
        s += &format!("\t\t<dict>\n\t\t\t<key>length</key>\n\t\t\t<integer>{len:#x}</integer>\n\t\t\t<key>params</key>\n\t\t\t{}\n\t\t\t<key>start</key>\n\t\t\t<integer>{start:#x}</integer>\n", string(params));
        if *status >= 0 {
            s += &format!("\t\t\t<key>status</key>\n\t\t\t<integer>{status}</integer>\n");
        }
        s += "\t\t\t<key>type</key>\n\t\t\t<string>linear</string>\n\t\t</dict>\n";
    }
    s + "\t</array>\n"
}

fn check(core: &dmcore::Core<dmcore::platform::mem::MemPlatform>, request: Vec<u8>, want: String) -> dmcore::Reply {
    let r = send_ok(core, &request);
    assert_eq!(String::from_utf8(r.bytes.clone()).unwrap(), want, "request:\n{}", String::from_utf8_lossy(&request));
    r
}

#[test]
fn activate_inspect_rename_remove() {
    let (core, platform) = setup_with_wd();
    let by_minor = key("minor", &uint(1));
    let by_uuid = key("uuid", &string(UUID));
    let name = key("name", &string("vg0-lv0"));

    // Kernel version check and target presence.
    check(&core, lvm2("version", 0x4, "", EMPTY, 0), reply("version", 0x4, &[], EMPTY));
    let r = send_ok(&core, &lvm2("targets", 0x4, "", EMPTY, 1));
    let text = String::from_utf8(r.bytes).unwrap();
    for t in ["linear", "striped", "error", "zero", "delay", "flakey", "snapshot-origin", "snapshot", "snapshot-merge"]
    {
        assert!(text.contains(&format!("<string>{t}</string>")), "{t}");
    }
    check(&core, lvm2("names", 0x4, "", EMPTY, 0), reply("names", 0x4, &[], EMPTY));

    // LV info by uuid before it exists: EXISTS cleared.
    let r =
        check(&core, lvm2("info", 0x204, &by_uuid, EMPTY, 0), reply("info", 0x200, &[("uuid", string(UUID))], EMPTY));
    assert_eq!(r.command_result, Err(Errno::ENOENT));

    // create, then the identical-reload probe on an empty device, then reload and resume.
    check(
        &core,
        lvm2("create", 0x204, &(name.clone() + &by_uuid), EMPTY, 0),
        reply("create", 0x204, &[("minor", uint(1)), ("name", string("vg0-lv0")), ("uuid", string(UUID))], EMPTY),
    );
    check(&core, lvm2("table", 0x1c, &by_minor, EMPTY, 0), reply("table", 0x1c, &[("minor", uint(1))], EMPTY));
    let lines = table_entries(&[(0, 0x5000, "/dev/wd1a 384", -1), (0x5000, 0x2000, "/dev/wd2a 384", -1)])
        .replace("\t\t\t<key>status</key>\n", "");
    let load = lvm2("reload", 0x20c, &by_minor, &lines, 0);
    check(&core, load, reply("reload", 0x24c, &[("minor", uint(1))], &lines));
    check(
        &core,
        lvm2("resume", 0x20c, &(by_minor.clone() + &name), EMPTY, 0),
        reply("resume", 0x20c, &[("minor", uint(1)), ("name", string("vg0-lv0")), ("open_count", uint(0))], EMPTY),
    );
    assert_eq!(platform.reported_size(1), Some(0x7000));

    // info by uuid: active, two targets (the port adds `name`).
    check(
        &core,
        lvm2("info", 0x204, &by_uuid, EMPTY, 0),
        reply(
            "info",
            0x224,
            &[
                ("minor", uint(1)),
                ("name", string("vg0-lv0")),
                ("open_count", uint(0)),
                ("target_count", uint(2)),
                ("uuid", string(UUID)),
            ],
            EMPTY,
        ),
    );

    // deps: the two lower block devices, NetBSD dev_t, signed decimal as the 2016 kernel writes.
    let deps = "\t<array>\n\t\t<integer>16</integer>\n\t\t<integer>32</integer>\n\t</array>\n";
    check(
        &core,
        lvm2("deps", 0xc, &by_minor, EMPTY, 0),
        reply("deps", 0xc, &[("minor", uint(1)), ("name", string("vg0-lv0")), ("uuid", string(UUID))], deps),
    );

    // The identical-reload probe now sees the live table, in Linux's TABLE form.
    let live = table_entries(&[(0, 0x5000, "0:16 384", 1), (0x5000, 0x2000, "0:32 384", 1)]);
    check(&core, lvm2("table", 0x1c, &by_minor, EMPTY, 0), reply("table", 0x3c, &[("minor", uint(1))], &live));
    // status (INFO): linear's INFO line is empty.
    let info_lines = table_entries(&[(0, 0x5000, "", 1), (0x5000, 0x2000, "", 1)]);
    check(
        &core,
        lvm2("status", 0x204, &by_uuid, EMPTY, 0),
        reply("status", 0x224, &[("minor", uint(1)), ("uuid", string(UUID))], &info_lines),
    );

    // suspend: the device's own flags plus EXISTS; the request's other bits are dropped.
    check(
        &core,
        lvm2("suspend", 0x20e, &by_minor, EMPTY, 0),
        reply("suspend", 0x26, &[("minor", uint(1)), ("open_count", uint(0))], EMPTY),
    );
    check(
        &core,
        lvm2("resume", 0x20c, &(by_minor.clone() + &name), EMPTY, 0),
        reply("resume", 0x20c, &[("minor", uint(1)), ("name", string("vg0-lv0")), ("open_count", uint(0))], EMPTY),
    );

    // rename: new name in cmd_data[0]; the reply keeps the old name.
    let new_name = "\t<array>\n\t\t<string>vg0-lv1</string>\n\t</array>\n";
    check(
        &core,
        lvm2("rename", 0x204, &name, new_name, 0),
        reply(
            "rename",
            0x204,
            &[("minor", uint(1)), ("name", string("vg0-lv0")), ("open_count", uint(0)), ("uuid", string(UUID))],
            new_name,
        ),
    );
    let listed = "\t<array>\n\t\t<dict>\n\t\t\t<key>dev</key>\n\t\t\t<integer>0x1</integer>\n\t\t\t<key>name</key>\n\t\t\t<string>vg0-lv1</string>\n\t\t</dict>\n\t</array>\n";
    check(&core, lvm2("names", 0x4, "", EMPTY, 0), reply("names", 0x4, &[], listed));

    // clear (nothing loaded: still fine) and remove after an open-count check.
    check(&core, lvm2("clear", 0xc, &by_minor, EMPTY, 0), reply("clear", 0xc, &[("minor", uint(1))], EMPTY));
    check(
        &core,
        lvm2("info", 0xc, &by_minor, EMPTY, 0),
        reply(
            "info",
            0x2c,
            &[
                ("minor", uint(1)),
                ("name", string("vg0-lv1")),
                ("open_count", uint(0)),
                ("target_count", uint(2)),
                ("uuid", string(UUID)),
            ],
            EMPTY,
        ),
    );
    check(&core, lvm2("remove", 0x20c, &by_minor, EMPTY, 0), reply("remove", 0x20c, &[("minor", uint(1))], EMPTY));
    check(&core, lvm2("names", 0x4, "", EMPTY, 0), reply("names", 0x4, &[], EMPTY));
    assert_eq!(platform.opens(DevT::new(0, 16)), 0);
    assert!(platform.attached().is_empty());
}

/// wd1a and wd2a on amd64: block major 0, minors 16 and 32.
fn setup_with_wd() -> (std::sync::Arc<dmcore::Core<MemPlatform>>, MemPlatform) {
    let (core, platform) = setup();
    platform.add_disk("/dev/wd1a", DevT::new(0, 16), 65536);
    platform.add_disk("/dev/wd2a", DevT::new(0, 32), 65536);
    (core, platform)
}
