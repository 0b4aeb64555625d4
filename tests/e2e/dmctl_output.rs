//! dmctl's output through the real binary and a real dmhost, for the same devices in both
//! front-ends: NetBSD dmctl's formats (`dmctl info`, `table`, `deps`, ...) and dmsetup's
//! (`dmsetup info`, `table`, `status`, `ls`, ...), as the device's state changes underneath
//! (suspended, inactive table loaded, cleared, opened over NBD, read-only, renamed, removed).
//! The formatting itself is unit-tested in userland/dmctl/tests; here the point is what comes
//! out when the numbers are the daemon's: image files as 254:N, minors, open counts, flags.

use std::time::Duration;

use dm_e2e::{eventually, Host, MIB};

const STRIPED: &str = "0 6144 striped 3 128 254:0 8192 254:16 12288 254:32 8192";
const LINEAR_LIVE: &str = "0 2048 linear 254:0 1024\n2048 4096 linear 254:16 6144\n6144 2048 linear 254:32 2049\n";

/// dmhost on three 8 MiB images with `lin` (three linear lines, loaded from a file with dmctl,
/// disks named by path and by number) and `str` (striped, with a UUID, created by dmsetup).
fn two_devices() -> Host {
    let host = Host::start(&[8 * MIB, 8 * MIB, 8 * MIB], &[]);
    let table = host.dir.path().join("lin.table");
    std::fs::write(
        &table,
        format!(
            "0 2048 linear {} 1024\n2048 4096 linear 254:16 6144\n6144 2048 linear {} 2049\n",
            host.image(0),
            host.image(2)
        ),
    )
    .unwrap();
    host.dmctl(&["create", "lin"]).ok();
    host.dmctl(&["load", "lin", table.to_str().unwrap()]).ok();
    host.dmctl(&["resume", "lin"]).ok();
    host.dmsetup(&["create", "str", "-u", "DMHOST-str-0001", "--table", STRIPED]).ok();
    host
}

/// What `dmsetup info NAME` prints for a device of this daemon.
struct Info<'a> {
    name: &'a str,
    state: &'a str,
    read_ahead: u32,
    tables: &'a str,
    open: u32,
    minor: u32,
    targets: u32,
    uuid: Option<&'a str>,
}

impl Info<'_> {
    fn text(&self) -> String {
        let Info { name, state, read_ahead, tables, open, minor, targets, uuid } = self;
        let mut s = format!(
            "Name:              {name}\nState:             {state}\nRead Ahead:        {read_ahead}\n\
             Tables present:    {tables}\nOpen count:        {open}\nEvent number:      0\n\
             Major, minor:      169, {minor}\nNumber of targets: {targets}\n"
        );
        if let Some(uuid) = uuid {
            s.push_str(&format!("UUID: {uuid}\n"));
        }
        s.push('\n');
        s
    }
}

/// `lin` as [`two_devices`] makes it, and `str`.
const LIN: Info =
    Info { name: "lin", state: "ACTIVE", read_ahead: 256, tables: "LIVE", open: 0, minor: 1, targets: 3, uuid: None };
const STR: Info = Info {
    name: "str",
    state: "ACTIVE",
    read_ahead: 768,
    tables: "LIVE",
    open: 0,
    minor: 2,
    targets: 1,
    uuid: Some("DMHOST-str-0001"),
};

fn netbsd_info(name: &str, uuid: &str, minor: u32, targets: u32, flags: u32) -> String {
    format!(
        "Printing Device info for:\nDevice name: \t\t{name}\nDevice uuid: \t\t{uuid}\nDevice minor: \t\t{minor}\n\
         Device target number: \t{targets}\nDevice flags: \t\t{flags}\n"
    )
}

#[test]
fn netbsd_dmctl_formats_for_linear_and_striped_devices() {
    let mut host = two_devices();
    assert_eq!(
        host.dmctl(&["version"]).ok().stdout,
        "Library protocol version 4:0:0\nKernel protocol version 4:16:0\n"
    );
    assert_eq!(
        host.dmctl(&["ls"]).ok().stdout,
        "Device name: lin, device minor: 1 \nDevice name: str, device minor: 2 \n"
    );
    assert_eq!(host.dmctl(&["info", "lin"]).ok().stdout, netbsd_info("lin", "", 1, 3, 32));
    assert_eq!(host.dmctl(&["info", "str"]).ok().stdout, netbsd_info("str", "DMHOST-str-0001", 2, 1, 32));
    let lin_lines = "Getting device table for device lin\n         0       2048 linear\n      2048       4096 linear\n      6144       2048 linear\n";
    assert_eq!(host.dmctl(&["table", "lin"]).ok().stdout, lin_lines);
    assert_eq!(host.dmctl(&["status", "lin"]).ok().stdout, lin_lines);
    assert_eq!(
        host.dmctl(&["table", "str"]).ok().stdout,
        "Getting device table for device str\n         0       6144 striped\n"
    );
    let deps = "major: 254 minor: 0\nmajor: 254 minor: 16\nmajor: 254 minor: 32\n";
    assert_eq!(host.dmctl(&["deps", "lin"]).ok().stdout, format!("Device lin dependencies \n{deps}"));
    assert_eq!(host.dmctl(&["deps", "str"]).ok().stdout, format!("Device str dependencies \n{deps}"));

    // Every target the daemon has, in dmctl's three-line form, linear and striped among them.
    let targets = host.dmctl(&["targets"]).ok().stdout;
    let blocks: Vec<&str> = targets.split_terminator("\n\n").collect();
    assert!(blocks.len() >= 4, "{targets}");
    for block in &blocks {
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines.len(), 2, "{block:?}");
        assert!(lines[0].starts_with("Target name: ") && lines[1].starts_with("Target version "), "{block:?}");
        let version: Vec<&str> = lines[1]["Target version ".len()..].split('.').collect();
        assert!(version.len() == 3 && version.iter().all(|v| v.parse::<u32>().is_ok()), "{block:?}");
    }
    for name in ["linear", "striped", "zero", "error"] {
        assert!(targets.contains(&format!("Target name: {name}\n")), "{targets}");
    }

    // Flags as NetBSD's kernel reports them: SUSPEND 2, ACTIVE_PRESENT 32, INACTIVE_PRESENT 64.
    host.dmctl(&["suspend", "lin"]).ok();
    assert_eq!(host.dmctl(&["info", "lin"]).ok().stdout, netbsd_info("lin", "", 1, 3, 2 | 32));
    host.dmctl_in(&["load", "lin"], "0 8192 zero\n").ok();
    assert_eq!(host.dmctl(&["info", "lin"]).ok().stdout, netbsd_info("lin", "", 1, 3, 2 | 32 | 64));
    host.dmctl(&["resume", "lin"]).ok();
    assert_eq!(host.dmctl(&["info", "lin"]).ok().stdout, netbsd_info("lin", "", 1, 1, 32));
    assert_eq!(
        host.dmctl(&["table", "lin"]).ok().stdout,
        "Getting device table for device lin\n         0       8192 zero\n"
    );
    assert_eq!(host.dmctl(&["deps", "lin"]).ok().stdout, "Device lin dependencies \n");

    // NetBSD's kernel lists devices in creation order and re-inserts a renamed one at the end.
    host.dmctl(&["rename", "lin", "zeroes"]).ok();
    assert_eq!(
        host.dmctl(&["ls"]).ok().stdout,
        "Device name: str, device minor: 2 \nDevice name: zeroes, device minor: 1 \n"
    );

    // Failures: what failed and why, exit 1; bad arguments exit 2.
    let r = host.dmctl(&["info", "lin"]).code(1);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", "dmctl: info of lin failed: No such device (ENOENT)\n"));
    let r = host.dmctl_in(&["load", "str"], "0 6144 striped 3 128 254:0 8192 254:16 12288\n").code(1);
    assert!(r.stderr.starts_with("dmctl: reload of str failed: Invalid argument (EINVAL): line 0: striped: "), "{r:?}");
    assert!(r.stderr.ends_with("dmctl: table line 0: 0 6144 striped 3 128 254:0 8192 254:16 12288\n"), "{r:?}");
    host.dmctl(&["info"]).code(2);
    // A refused load left nothing behind.
    assert_eq!(host.dmctl(&["info", "str"]).ok().stdout, netbsd_info("str", "DMHOST-str-0001", 2, 1, 32));

    host.dmctl(&["remove", "zeroes"]).ok();
    host.dmctl(&["remove", "str"]).ok();
    assert_eq!(host.dmctl(&["ls"]).ok().stdout, "");
    host.stop_cleanly();
}

#[test]
fn dmsetup_formats_for_the_same_devices() {
    let mut host = two_devices();
    assert_eq!(host.dmsetup(&["ls"]).ok().stdout, "lin\t(169:1)\nstr\t(169:2)\n");
    assert_eq!(host.dmsetup(&["table", "lin"]).ok().stdout, LINEAR_LIVE);
    assert_eq!(host.dmsetup(&["table", "str"]).ok().stdout, format!("{STRIPED}\n"));
    assert_eq!(
        host.dmsetup(&["table"]).ok().stdout,
        format!("lin: 0 2048 linear 254:0 1024\nlin: 2048 4096 linear 254:16 6144\nlin: 6144 2048 linear 254:32 2049\nstr: {STRIPED}\n")
    );
    assert_eq!(
        host.dmsetup(&["status"]).ok().stdout,
        "lin: 0 2048 linear \nlin: 2048 4096 linear \nlin: 6144 2048 linear \nstr: 0 6144 striped 3 254:0 254:16 254:32 1 AAA\n"
    );
    assert_eq!(
        host.dmsetup(&["deps"]).ok().stdout,
        "lin: 3 dependencies\t: (254, 0) (254, 16) (254, 32)\nstr: 3 dependencies\t: (254, 0) (254, 16) (254, 32)\n"
    );
    // Read ahead: 256 for linear, twice the stripe width (3 x 64 KiB) for str.
    assert_eq!(host.dmsetup(&["info"]).ok().stdout, LIN.text() + &STR.text());
    let version = host.dmsetup(&["version"]).ok().stdout;
    assert!(
        version.starts_with("Library version:   ") && version.ends_with("\nDriver version:    4.16.0\n"),
        "{version}"
    );
    let targets = host.dmsetup(&["targets"]).ok().stdout;
    assert!(targets.contains("linear           v") && targets.contains("striped          v"), "{targets}");

    // Opened over NBD: the open count is the daemon's. Two clients, two opens.
    let a = host.nbd("str");
    let b = host.nbd("str");
    assert_eq!(host.dmsetup(&["info", "str"]).ok().stdout, Info { open: 2, ..STR }.text());
    assert_eq!(a.size, 3 * MIB);
    a.disconnect();
    b.disconnect();

    // Suspended, then a table loaded beside the live one, shown with --inactive, then cleared.
    host.dmsetup(&["suspend", "lin"]).ok();
    assert_eq!(host.dmsetup(&["info", "lin"]).ok().stdout, Info { state: "SUSPENDED", ..LIN }.text());
    host.dmsetup(&["resume", "lin"]).ok();
    host.dmsetup_in(&["load", "lin"], "0 4096 striped 2 16 254:0 0 254:16 0\n").ok();
    assert_eq!(host.dmsetup(&["info", "lin"]).ok().stdout, Info { tables: "LIVE & INACTIVE", ..LIN }.text());
    assert_eq!(host.dmsetup(&["table", "lin"]).ok().stdout, LINEAR_LIVE);
    assert_eq!(host.dmsetup(&["table", "--inactive", "lin"]).ok().stdout, "0 4096 striped 2 16 254:0 0 254:16 0\n");
    assert_eq!(host.dmsetup(&["status", "--inactive", "lin"]).ok().stdout, "0 4096 striped 2 254:0 254:16 1 AA\n");
    host.dmsetup(&["clear", "lin"]).ok();
    assert_eq!(host.dmsetup(&["info", "lin"]).ok().stdout, LIN.text());

    // Read-only: shown by info, and enforced on the NBD path.
    host.dmsetup(&["create", "ro", "-r", "--table", "0 2048 linear 254:0 0"]).ok();
    assert_eq!(
        host.dmsetup(&["info", "ro"]).ok().stdout,
        Info {
            name: "ro",
            state: "ACTIVE (READ-ONLY)",
            read_ahead: 256,
            tables: "LIVE",
            open: 0,
            minor: 3,
            targets: 1,
            uuid: None
        }
        .text()
    );
    let mut ro = host.nbd("ro");
    assert_eq!(ro.write(0, &[1; 4096]), 1, "a write to a read-only device must fail with EPERM");
    assert_eq!(ro.read(0, 4096), Ok(vec![0; 4096]));
    ro.disconnect();

    // Failures: libdevmapper's messages, the driver's detail, the offending line, exit 1; and
    // `create` removes the device it could not load.
    let r = host.dmsetup(&["create", "bad", "--table", "0 100000 linear 254:0 0"]).code(1);
    assert_eq!(
        r.stderr,
        "device-mapper: reload ioctl on bad (169:4) failed: Invalid argument\n\
         device-mapper: reload: line 0: linear: Device too small for target\n\
         device-mapper: reload: table line 0: 0 100000 linear 254:0 0\nCommand failed.\n"
    );
    let r = host
        .dmsetup(&["create", "bad", "--table", &format!("0 100 linear {}/none.img 0", host.dir.path().display())])
        .code(1);
    assert!(
        r.stderr.contains("failed: No such file or directory\n") && r.stderr.ends_with("Command failed.\n"),
        "{r:?}"
    );
    let r = host.dmsetup(&["info", "bad"]).code(1);
    assert_eq!(r.stderr, "Device does not exist.\nCommand failed.\n");
    assert_eq!(host.dmsetup(&["ls"]).ok().stdout, "lin\t(169:1)\nro\t(169:3)\nstr\t(169:2)\n");
    host.dmsetup(&["remove", "nosuch"]).code(1);
    host.dmsetup(&["bogus"]).code(2);

    for name in ["lin", "ro", "str"] {
        // The NBD clients above have disconnected; their opens end when the server is done.
        assert!(eventually(Duration::from_secs(30), || host.open_count(name) == 0), "{name} is still open");
        host.dmsetup(&["remove", name]).ok();
    }
    assert_eq!(host.dmsetup(&["ls"]).ok().stdout, "No devices found\n");
    assert_eq!(host.dmsetup(&["info"]).ok().stdout, "No devices found\n");
    host.stop_cleanly();
}

#[test]
fn both_front_ends_agree_on_the_same_devices() {
    let mut host = two_devices();
    let open = host.nbd("lin");
    for args in [
        &["ls"][..],
        &["info"],
        &["info", "str"],
        &["table"],
        &["status", "lin"],
        &["deps", "str"],
        &["targets"],
        &["version"],
        &["info", "nosuch"],
    ] {
        let dmsetup = host.dmsetup(args);
        let mut setup = vec!["setup"];
        setup.extend_from_slice(args);
        let dmctl = host.dmctl(&setup);
        assert_eq!(
            (&dmsetup.code, &dmsetup.stdout, &dmsetup.stderr),
            (&dmctl.code, &dmctl.stdout, &dmctl.stderr),
            "dmsetup {args:?} and dmctl setup {args:?} differ"
        );
    }
    // The NetBSD front-end and dmsetup describe the same device with the same numbers.
    let netbsd = host.dmctl(&["info", "str"]).ok().stdout;
    let linux = host.info("str");
    assert!(netbsd.contains(&format!("Device minor: \t\t{}\n", linux["Major, minor"].split(", ").nth(1).unwrap())));
    assert!(netbsd.contains(&format!("Device uuid: \t\t{}\n", linux["UUID"])));
    assert_eq!(linux["Open count"], "0");
    assert_eq!(host.info("lin")["Open count"], "1");
    open.disconnect();
    host.stop_cleanly();
}
