//! The requests NetBSD's dmctl (through lib/libdm) sends (netbsd-protocol.md §16.3): only
//! `command`, `version` and the name — no flags except for suspend and table, no event_nr, no
//! cmd_data except for reload and rename — answered byte for byte as NetBSD's driver answers
//! the same shapes in the recorded exchanges.

mod common;

use common::*;
use dmcore::Errno;

/// A dmctl request: the keys of §16.3, written as libdm writes them.
fn dmctl(command: &str, flags: Option<u32>, name: Option<&str>, cmd_data: &str) -> Vec<u8> {
    let mut body = String::from("<dict>\n");
    body += cmd_data;
    body += &format!("\t<key>command</key>\n\t<string>{command}</string>\n");
    if let Some(f) = flags {
        body += &format!("\t<key>flags</key>\n\t<integer>{f:#x}</integer>\n");
    }
    if let Some(n) = name {
        body += &format!("\t<key>name</key>\n\t<string>{n}</string>\n");
    }
    body += "\t<key>version</key>\n\t<array>\n\t\t<integer>0x4</integer>\n\t\t<integer>0x0</integer>\n\t\t<integer>0x0</integer>\n\t</array>\n</dict>\n";
    doc(&body)
}

/// The reply: the request with `added` keys inserted in order and the kernel's version.
fn answer(request: &[u8], added: &[(&str, &str)]) -> String {
    let text = String::from_utf8(request.to_vec()).unwrap().replace(
        "\t\t<integer>0x4</integer>\n\t\t<integer>0x0</integer>\n\t\t<integer>0x0</integer>",
        "\t\t<integer>0x4</integer>\n\t\t<integer>0x10</integer>\n\t\t<integer>0x0</integer>",
    );
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for (key, value) in added {
        let key_line = format!("\t<key>{key}</key>");
        let value_line = format!("\t{value}");
        if let Some(at) = lines.iter().position(|l| *l == key_line) {
            lines[at + 1] = value_line;
            continue;
        }
        let at = lines
            .iter()
            .position(|l| l.starts_with("\t<key>") && l.as_str() > key_line.as_str())
            .unwrap_or(lines.len() - 2);
        lines.insert(at, value_line);
        lines.insert(at, key_line);
    }
    lines.join("\n") + "\n"
}

fn exchange(
    core: &dmcore::Core<dmcore::platform::mem::MemPlatform>,
    request: Vec<u8>,
    added: &[(&str, &str)],
) -> Result<(), Errno> {
    let reply = send_ok(core, &request);
    assert_eq!(
        String::from_utf8(reply.bytes).unwrap(),
        answer(&request, added),
        "{}",
        String::from_utf8_lossy(&request)
    );
    reply.command_result
}

#[test]
fn every_dmctl_command() {
    let (core, platform) = setup();
    let table = "\t<key>cmd_data</key>\n\t<array>\n\t\t<dict>\n\t\t\t<key>length</key>\n\t\t\t<integer>0x5000</integer>\n\t\t\t<key>params</key>\n\t\t\t<string>/dev/wd1a 384</string>\n\t\t\t<key>start</key>\n\t\t\t<integer>0x0</integer>\n\t\t\t<key>type</key>\n\t\t\t<string>linear</string>\n\t\t</dict>\n\t</array>\n";
    platform.add_disk("/dev/wd1a", dmcore::DevT::new(0, 16), 0x6000);

    assert_eq!(exchange(&core, dmctl("version", None, None, ""), &[]), Ok(()));
    let r = send_ok(&core, &dmctl("targets", None, None, ""));
    assert!(String::from_utf8(r.bytes).unwrap().contains("<string>striped</string>"));
    assert_eq!(
        exchange(
            &core,
            dmctl("create", None, Some("test0"), ""),
            &[("flags", "<integer>0x4</integer>"), ("minor", "<integer>0x1</integer>")]
        ),
        Ok(())
    );
    let listed = "\t<key>cmd_data</key>\n\t<array>\n\t\t<dict>\n\t\t\t<key>dev</key>\n\t\t\t<integer>0x1</integer>\n\t\t\t<key>name</key>\n\t\t\t<string>test0</string>\n\t\t</dict>\n\t</array>";
    let r = send_ok(&core, &dmctl("names", None, None, ""));
    assert!(String::from_utf8(r.bytes).unwrap().contains(listed));
    let info = |flags: &str, targets: &str| {
        exchange(
            &core,
            dmctl("info", None, Some("test0"), ""),
            &[
                ("flags", flags),
                ("minor", "<integer>0x1</integer>"),
                ("open_count", "<integer>0x0</integer>"),
                ("target_count", targets),
                ("uuid", "<string/>"),
            ],
        )
    };
    assert_eq!(info("<integer>0x0</integer>", "<integer>0x0</integer>"), Ok(()));
    assert_eq!(
        exchange(
            &core,
            dmctl("reload", None, Some("test0"), table),
            &[("flags", "<integer>0x40</integer>"), ("minor", "<integer>0x1</integer>")]
        ),
        Ok(())
    );
    assert_eq!(info("<integer>0x40</integer>", "<integer>0x0</integer>"), Ok(()));
    assert_eq!(
        exchange(
            &core,
            dmctl("resume", None, Some("test0"), ""),
            &[
                ("flags", "<integer>0x4</integer>"),
                ("minor", "<integer>0x1</integer>"),
                ("open_count", "<integer>0x0</integer>")
            ]
        ),
        Ok(())
    );
    assert_eq!(info("<integer>0x20</integer>", "<integer>0x1</integer>"), Ok(()));
    // `dmctl status` and `dmctl table` both send `table` with STATUS_TABLE.
    let entries = "<array>\n\t\t<dict>\n\t\t\t<key>length</key>\n\t\t\t<integer>0x5000</integer>\n\t\t\t<key>params</key>\n\t\t\t<string>0:16 384</string>\n\t\t\t<key>start</key>\n\t\t\t<integer>0x0</integer>\n\t\t\t<key>status</key>\n\t\t\t<integer>1</integer>\n\t\t\t<key>type</key>\n\t\t\t<string>linear</string>\n\t\t</dict>\n\t</array>";
    assert_eq!(
        exchange(
            &core,
            dmctl("table", Some(0x10), Some("test0"), ""),
            &[("cmd_data", entries), ("flags", "<integer>0x30</integer>"), ("minor", "<integer>0x1</integer>")]
        ),
        Ok(())
    );
    let deps = "<array>\n\t\t<integer>16</integer>\n\t</array>";
    assert_eq!(
        exchange(
            &core,
            dmctl("deps", None, Some("test0"), ""),
            &[("cmd_data", deps), ("minor", "<integer>0x1</integer>"), ("uuid", "<string/>")]
        ),
        Ok(())
    );
    assert_eq!(
        exchange(
            &core,
            dmctl("suspend", Some(0x2), Some("test0"), ""),
            &[
                ("flags", "<integer>0x26</integer>"),
                ("minor", "<integer>0x1</integer>"),
                ("open_count", "<integer>0x0</integer>")
            ]
        ),
        Ok(())
    );
    assert_eq!(
        exchange(
            &core,
            dmctl("resume", None, Some("test0"), ""),
            &[
                ("flags", "<integer>0x4</integer>"),
                ("minor", "<integer>0x1</integer>"),
                ("open_count", "<integer>0x0</integer>")
            ]
        ),
        Ok(())
    );
    let new_name = "\t<key>cmd_data</key>\n\t<array>\n\t\t<string>test1</string>\n\t</array>\n";
    assert_eq!(
        exchange(
            &core,
            dmctl("rename", None, Some("test0"), new_name),
            &[("minor", "<integer>0x1</integer>"), ("open_count", "<integer>0x0</integer>"), ("uuid", "<string/>")]
        ),
        Ok(())
    );
    assert_eq!(exchange(&core, dmctl("remove", None, Some("test1"), ""), &[]), Ok(()));
    // dmctl on a missing device: nothing added (no EXISTS was sent, flags appear cleared).
    assert_eq!(
        exchange(&core, dmctl("info", None, Some("test1"), ""), &[("flags", "<integer>0x0</integer>")]),
        Err(Errno::ENOENT)
    );
}
