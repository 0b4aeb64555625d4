//! Both front-ends on the same devices (linear over two disks, striped over two), their exact
//! output in NetBSD dmctl's formats (sbin/dmctl/dmctl.c) and dmsetup's, and their failures:
//! messages, exit codes, usage.

mod common;

use common::{Harness, IoctlLike};

const LIN2: &str = "0 4096 linear /dev/vda 0\n4096 4096 linear /dev/vdb 1024\n";
const ST2: &str = "0 16384 striped 2 128 /dev/vda 0 /dev/vdb 0\n";

/// lin2 (minor 1) and st2 (minor 2), made with NetBSD dmctl's commands.
fn two_devices() -> Harness {
    let h = Harness::new();
    for (name, table) in [("lin2", LIN2), ("st2", ST2)] {
        assert_eq!(h.ok(&["dmctl", "create", name], ""), "");
        assert_eq!(h.ok(&["dmctl", "reload", name], table), "");
        assert_eq!(h.ok(&["dmctl", "resume", name], ""), "");
    }
    h
}

#[test]
fn netbsd_dmctl_output() {
    let h = two_devices();
    assert_eq!(h.ok(&["dmctl", "version"], ""), "Library protocol version 4:0:0\nKernel protocol version 4:16:0\n");
    assert_eq!(
        h.ok(&["dmctl", "targets"], ""),
        "Target name: linear\nTarget version 1.4.0\n\n\
         Target name: striped\nTarget version 1.6.0\n\n\
         Target name: error\nTarget version 1.5.0\n\n\
         Target name: zero\nTarget version 1.1.0\n\n\
         Target name: delay\nTarget version 1.3.0\n\n\
         Target name: flakey\nTarget version 1.5.0\n\n\
         Target name: snapshot-origin\nTarget version 1.9.0\n\n\
         Target name: snapshot\nTarget version 1.16.0\n\n\
         Target name: snapshot-merge\nTarget version 1.5.0\n\n"
    );
    assert_eq!(h.ok(&["dmctl", "ls"], ""), "Device name: lin2, device minor: 1 \nDevice name: st2, device minor: 2 \n");
    assert_eq!(
        h.ok(&["dmctl", "info", "lin2"], ""),
        "Printing Device info for:\nDevice name: \t\tlin2\nDevice uuid: \t\t\nDevice minor: \t\t1\nDevice target number: \t2\nDevice flags: \t\t32\n"
    );
    assert_eq!(
        h.ok(&["dmctl", "deps", "lin2"], ""),
        "Device lin2 dependencies \nmajor: 254 minor: 0\nmajor: 254 minor: 16\n"
    );
    assert_eq!(
        h.ok(&["dmctl", "deps", "st2"], ""),
        "Device st2 dependencies \nmajor: 254 minor: 0\nmajor: 254 minor: 16\n"
    );
    let lin2_table =
        "Getting device table for device lin2\n         0       4096 linear\n      4096       4096 linear\n";
    assert_eq!(h.ok(&["dmctl", "table", "lin2"], ""), lin2_table);
    // dmctl's status is its table (it sends `table` with STATUS_TABLE).
    assert_eq!(h.ok(&["dmctl", "status", "lin2"], ""), lin2_table);
    assert_eq!(
        h.ok(&["dmctl", "table", "st2"], ""),
        "Getting device table for device st2\n         0      16384 striped\n"
    );

    // Suspended: SUSPEND | ACTIVE_PRESENT = 34; then a loaded table: + INACTIVE_PRESENT.
    assert_eq!(h.ok(&["dmctl", "suspend", "st2"], ""), "");
    assert!(h.ok(&["dmctl", "info", "st2"], "").ends_with("Device target number: \t1\nDevice flags: \t\t34\n"));
    assert_eq!(h.ok(&["dmctl", "resume", "st2"], ""), "");
    assert_eq!(h.ok(&["dmctl", "load", "st2"], "0 8 zero\n"), "");
    assert!(h.ok(&["dmctl", "info", "st2"], "").ends_with("Device flags: \t\t96\n"));
    assert_eq!(h.ok(&["dmctl", "resume", "st2"], ""), "");
    assert_eq!(
        h.ok(&["dmctl", "table", "st2"], ""),
        "Getting device table for device st2\n         0          8 zero\n"
    );

    // rename, then remove.
    assert_eq!(h.ok(&["dmctl", "rename", "st2", "st9"], ""), "");
    assert_eq!(h.ok(&["dmctl", "ls"], ""), "Device name: lin2, device minor: 1 \nDevice name: st9, device minor: 2 \n");
    assert_eq!(h.ok(&["dmctl", "remove", "st9"], ""), "");
    assert_eq!(h.ok(&["dmctl", "remove", "lin2"], ""), "");
    assert_eq!(h.ok(&["dmctl", "ls"], ""), "");
}

#[test]
fn load_from_a_file() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("table");
    std::fs::write(&file, format!("# lin2\n{LIN2}\n")).unwrap();
    let file = file.to_str().unwrap();
    h.ok(&["dmctl", "create", "lin2"], "");
    assert_eq!(h.ok(&["dmctl", "load", "lin2", file], ""), "");
    h.ok(&["dmctl", "resume", "lin2"], "");
    assert_eq!(h.ok(&["dmsetup", "table", "lin2"], ""), "0 4096 linear 254:0 0\n4096 4096 linear 254:16 1024\n");
    h.ok(&["dmsetup", "create", "x", file], "");
    assert_eq!(h.ok(&["dmsetup", "table", "x"], ""), "0 4096 linear 254:0 0\n4096 4096 linear 254:16 1024\n");
    h.ok(&["dmsetup", "load", "x", file], "");
    h.ok(&["dmsetup", "create", "y"], LIN2);
    assert_eq!(h.ok(&["dmsetup", "status", "y"], ""), "0 4096 linear \n4096 4096 linear \n");
    let run = h.run(&["dmctl", "load", "lin2", "/nonexistent/table"], "");
    assert_eq!(run.status, 1);
    assert!(run.err.starts_with("dmctl: cannot read table from /nonexistent/table: "), "{}", run.err);
}

/// The devices dmctl made, seen through dmsetup (and `dmctl setup`, which is the same).
#[test]
fn dmsetup_sees_the_same_devices() {
    let h = two_devices();
    let info_lin2 = "Name:              lin2\nState:             ACTIVE\nRead Ahead:        256\nTables present:    LIVE\nOpen count:        0\nEvent number:      0\nMajor, minor:      253, 1\nNumber of targets: 2\n\n";
    let info_st2 = "Name:              st2\nState:             ACTIVE\nRead Ahead:        512\nTables present:    LIVE\nOpen count:        0\nEvent number:      0\nMajor, minor:      253, 2\nNumber of targets: 1\n\n";
    let cases: &[(&[&str], String)] = &[
        (&["info", "lin2"], info_lin2.to_string()),
        (&["info", "st2"], info_st2.to_string()),
        (&["ls"], "lin2\t(253:1)\nst2\t(253:2)\n".to_string()),
        (&["table", "lin2"], "0 4096 linear 254:0 0\n4096 4096 linear 254:16 1024\n".to_string()),
        (&["table", "st2"], "0 16384 striped 2 128 254:0 0 254:16 0\n".to_string()),
        (&["status", "st2"], "0 16384 striped 2 254:0 254:16 1 AA\n".to_string()),
        (&["deps", "st2"], "2 dependencies\t: (254, 0) (254, 16)\n".to_string()),
        (
            &["status"],
            "lin2: 0 4096 linear \nlin2: 4096 4096 linear \nst2: 0 16384 striped 2 254:0 254:16 1 AA\n".to_string(),
        ),
    ];
    for (args, expected) in cases {
        let mut dmsetup = vec!["dmsetup"];
        dmsetup.extend_from_slice(args);
        assert_eq!(&h.ok(&dmsetup, ""), expected, "{args:?}");
        let mut setup = vec!["dmctl", "setup"];
        setup.extend_from_slice(args);
        assert_eq!(&h.ok(&setup, ""), expected, "{args:?}");
        // argv[0] is taken by its base name.
        let mut path = vec!["/usr/sbin/dmsetup"];
        path.extend_from_slice(args);
        assert_eq!(&h.ok(&path, ""), expected, "{args:?}");
    }
    // Options anywhere, and the read-only state and uuid in info.
    h.ok(&["dmsetup", "--readonly", "create", "ro", "-u", "UUID-ro", "--table", "0 8 zero"], "");
    let info = h.ok(&["dmsetup", "info", "ro"], "");
    assert!(info.contains("Number of targets: 1\nUUID: UUID-ro\n\n"), "{info}");
    // A device with no table, and one suspended with a loaded table.
    h.ok(&["dmsetup", "create", "empty", "--notable"], "");
    let info = h.ok(&["dmsetup", "info", "empty"], "");
    assert!(info.contains("State:             ACTIVE\nRead Ahead:        256\nTables present:    None\n"), "{info}");
    assert_eq!(h.ok(&["dmsetup", "table", "empty"], ""), "\n");
    assert_eq!(h.ok(&["dmsetup", "deps", "empty"], ""), "0 dependencies\t:\n");
    h.ok(&["dmsetup", "suspend", "--noflush", "--nolockfs", "lin2"], "");
    h.ok(&["dmsetup", "reload", "lin2", "--table", "0 8 zero"], "");
    let info = h.ok(&["dmsetup", "info", "lin2"], "");
    assert!(
        info.contains("State:             SUSPENDED\nRead Ahead:        256\nTables present:    LIVE & INACTIVE\n"),
        "{info}"
    );
    assert_eq!(h.ok(&["dmsetup", "status", "--inactive", "lin2"], ""), "0 8 zero \n");
    h.ok(&["dmsetup", "clear", "lin2"], "");
    assert!(h.ok(&["dmsetup", "info", "lin2"], "").contains("Tables present:    LIVE\n"));
    h.ok(&["dmsetup", "resume", "lin2"], "");
    h.ok(&["dmsetup", "rename", "lin2", "lin3"], "");
    assert_eq!(h.ok(&["dmsetup", "ls"], ""), "empty\t(253:4)\nlin3\t(253:1)\nro\t(253:3)\nst2\t(253:2)\n");
}

#[test]
fn netbsd_failures() {
    let h = two_devices();
    let run = h.run(&["dmctl", "info", "nosuch"], "");
    assert_eq!((run.status, run.out.as_str()), (1, ""));
    assert_eq!(run.err, "dmctl: info of nosuch failed: No such device (ENOENT)\n");

    let run = h.run(&["dmctl", "create", "lin2"], "");
    assert_eq!((run.status, run.err.as_str()), (1, "dmctl: create of lin2 failed: File exists (EEXIST)\n"));

    let run = h.run(&["dmctl", "load", "lin2"], "# bad\n0 4096 linear /dev/vda\n");
    assert_eq!(run.status, 1);
    assert_eq!(
        run.err,
        "dmctl: reload of lin2 failed: Invalid argument (EINVAL): line 0: linear: Invalid argument count\n\
         dmctl: table line 0: 0 4096 linear /dev/vda\n"
    );
    let run = h.run(&["dmctl", "reload", "lin2"], "0 8 zero\n8 8 nosuchtarget\n");
    assert_eq!(run.status, 1);
    assert!(
        run.err.starts_with("dmctl: reload of lin2 failed: No such file or directory (ENOENT): line 1: "),
        "{}",
        run.err
    );

    let run = h.run(&["dmctl", "load", "lin2"], "0 8 zero\n0 abc linear /dev/vda 0\n");
    assert_eq!(run.status, 1);
    assert_eq!(
        run.err,
        "dmctl: table from stdin: line 2, column 3: expected the length in sectors (a decimal number), found \"abc\": \"0 abc linear /dev/vda 0\"\n"
    );
    let run = h.run(&["dmctl", "remove", "nosuch"], "");
    assert_eq!((run.status, run.err.as_str()), (1, "dmctl: remove of nosuch failed: No such device (ENOENT)\n"));

    // Over NetBSD's ioctl, where the kernel says only what the reply shows.
    let ioctl = IoctlLike(&h.transport);
    let run = h.run_over(&ioctl, &["dmctl", "info", "nosuch"], "");
    assert_eq!((run.status, run.err.as_str()), (1, "dmctl: info of nosuch failed: No such device (ENOENT)\n"));
    let run = h.run_over(&ioctl, &["dmctl", "create", "lin2"], "");
    assert_eq!(
        (run.status, run.err.as_str()),
        (1, "dmctl: create of lin2 failed: File exists (EEXIST): a device with this name or uuid exists\n")
    );
    let run = h.run_over(&ioctl, &["dmctl", "load", "lin2"], "0 4096 linear /dev/vda\n");
    assert_eq!(
        (run.status, run.err.as_str()),
        (1, "dmctl: reload of lin2 failed: Invalid argument (EINVAL): table refused by the driver, which does not say why over this transport\n")
    );
    // Nothing was changed by the failures.
    assert_eq!(
        h.ok(&["dmctl", "table", "lin2"], ""),
        "Getting device table for device lin2\n         0       4096 linear\n      4096       4096 linear\n"
    );
}

const USAGE: &str = "usage: dmctl command [dm device name]\nAvailable commands are:\n \tversion\tPrint driver and lib version.\n\ttargets\tList available kernel targets.\n";

#[test]
fn netbsd_usage() {
    let h = Harness::new();
    let run = h.run(&["dmctl"], "");
    assert_eq!((run.status, run.out.as_str()), (2, ""));
    assert!(run.err.starts_with(USAGE), "{}", run.err);
    assert!(run.err.contains("\tload\tLoad a table for device with [dm device name] from [file] or stdin.\n"));

    let run = h.run(&["dmctl", "info"], "");
    assert_eq!(run.status, 2);
    assert!(run.err.starts_with(&format!("Insufficient number of arguments for command: info specified\n{USAGE}")));
    let run = h.run(&["dmctl", "ls", "extra"], "");
    assert_eq!(run.status, 2);
    assert!(run.err.starts_with("Insufficient number of arguments for command: ls specified\n"));
    let run = h.run(&["dmctl", "rename", "a"], "");
    assert_eq!(run.status, 2);
    let run = h.run(&["dmctl", "frobnicate", "a"], "");
    assert_eq!(run.status, 2);
    assert!(run.err.starts_with(&format!("dmctl: unknown command: frobnicate\n{USAGE}")));
    // Usage errors never reach the driver.
    let down = dmclient::Unavailable::new(&std::io::Error::other("no driver"));
    assert_eq!(h.run_over(&down, &["dmctl", "info"], "").status, 2);
    let run = h.run_over(&down, &["dmctl", "ls"], "");
    assert_eq!((run.status, run.err.as_str()), (1, "dmctl: names failed: no driver\n"));
}

#[test]
fn dmsetup_failures() {
    let h = two_devices();
    for args in [&["info", "nosuch"][..], &["table", "nosuch"], &["status", "--inactive", "nosuch"]] {
        let mut argv = vec!["dmsetup"];
        argv.extend_from_slice(args);
        let run = h.run(&argv, "");
        assert_eq!(
            (run.status, run.out.as_str(), run.err.as_str()),
            (1, "", "Device does not exist.\nCommand failed.\n")
        );
    }
    // dmsetup's deps says so on stdout, and succeeds.
    let run = h.run(&["dmsetup", "deps", "nosuch"], "");
    assert_eq!((run.status, run.out.as_str(), run.err.as_str()), (0, "Device does not exist.\n", ""));
    for (command, args) in [
        ("remove", &["remove", "nosuch"][..]),
        ("resume", &["resume", "nosuch"]),
        ("suspend", &["suspend", "nosuch"]),
        ("clear", &["clear", "nosuch"]),
        ("rename", &["rename", "nosuch", "x"]),
        ("reload", &["load", "nosuch", "--table", "0 8 zero"]),
    ] {
        let mut argv = vec!["dmsetup"];
        argv.extend_from_slice(args);
        let run = h.run(&argv, "");
        assert_eq!(run.status, 1, "{args:?}");
        assert_eq!(
            run.err,
            format!("device-mapper: {command} ioctl on nosuch  failed: No such device\nCommand failed.\n")
        );
    }
    let run = h.run(&["dmsetup", "create", "lin2", "--table", "0 8 zero"], "");
    assert_eq!(
        (run.status, run.err.as_str()),
        (1, "device-mapper: create ioctl on lin2  failed: File exists\nCommand failed.\n")
    );
    let run = h.run(&["dmsetup", "create", "u", "-u", "UU", "--table", "0 8 frob"], "");
    assert_eq!(run.status, 1);
    assert!(
        run.err.starts_with("device-mapper: reload ioctl on u UU(253:3) failed: No such file or directory\n"),
        "{}",
        run.err
    );
    assert!(!h.ok(&["dmsetup", "ls"], "").contains("u\t"), "the device that failed to load is removed");

    let run = h.run(&["dmsetup", "create", "x"], "0 8 zero\n8 x zero\n");
    assert_eq!(
        (run.status, run.err.as_str()),
        (
            1,
            "Invalid format on line 2 of table on stdin, column 3: expected the length in sectors (a decimal number), found \"x\": \"8 x zero\"\nCommand failed.\n"
        )
    );
    let run = h.run(&["dmsetup", "load", "lin2", "/nonexistent"], "");
    assert_eq!(run.status, 1);
    assert!(run.err.starts_with("Couldn't open '/nonexistent' for reading: "), "{}", run.err);
    assert!(run.err.ends_with("Command failed.\n"));

    // Argument errors: usage, exit 2.
    for args in [&[][..], &["create"], &["frobnicate"], &["rename", "a"], &["table", "--bogus"]] {
        let mut argv = vec!["dmsetup"];
        argv.extend_from_slice(args);
        let run = h.run(&argv, "");
        assert_eq!(run.status, 2, "{args:?}: {run:?}");
        assert!(run.err.contains("Usage: dmsetup"), "{args:?}: {}", run.err);
    }
    let run = h.run(&["dmctl", "setup", "create"], "");
    assert_eq!(run.status, 2);
    assert!(run.err.contains("Usage: dmctl setup create"), "{}", run.err);
    let run = h.run(&["dmsetup", "--help"], "");
    assert_eq!(run.status, 0);
    assert!(run.out.contains("Usage: dmsetup [OPTIONS] <COMMAND>"), "{}", run.out);

    // A driver that cannot be reached.
    let down = dmclient::Unavailable::new(&std::io::Error::other("/dev/mapper/control: gone"));
    let run = h.run_over(&down, &["dmsetup", "ls"], "");
    assert_eq!(
        (run.status, run.err.as_str()),
        (1, "/dev/mapper/control: gone\nFailure to communicate with kernel device-mapper driver.\nCommand failed.\n")
    );
}

#[test]
fn dmsetup_failures_over_the_ioctl() {
    let h = two_devices();
    let ioctl = IoctlLike(&h.transport);
    let run = h.run_over(&ioctl, &["dmsetup", "info", "nosuch"], "");
    assert_eq!((run.status, run.err.as_str()), (1, "Device does not exist.\nCommand failed.\n"));
    let run =
        h.run_over(&ioctl, &["dmsetup", "create", "bad", "--table", "0 100 striped 2 128 /dev/vda 0 /dev/vdb 0"], "");
    assert_eq!(
        (run.status, run.err.as_str()),
        (
            1,
            "device-mapper: reload ioctl on bad (253:3) failed: Invalid argument\n\
             device-mapper: reload: table refused by the driver, which does not say why over this transport\n\
             Command failed.\n"
        )
    );
    assert_eq!(h.ok(&["dmsetup", "ls"], ""), "lin2\t(253:1)\nst2\t(253:2)\n");
}
