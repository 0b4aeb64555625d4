//! The dmsetup front-end replays the Linux golden transcripts 01-linear, 02-striped and
//! 03-zero-error: the same commands, with the same lower devices (254:0, 254:16, 254:32), print
//! the same bytes.
//!
//! Each expected output below is copied from the transcript, and the test first checks that the
//! transcript really contains it after the command. The one difference is the minor numbers of
//! mapped devices: Linux counts from 0 and reuses freed minors, NetBSD (and this core) counts
//! from 1 and never reuses them (reference §2.2); each step says which of our minors stands for
//! Linux's.

mod common;

use common::{golden, Harness};

struct Step {
    /// The command line as the transcript shows it (after `$ `).
    shell: &'static str,
    args: &'static [&'static str],
    /// What it printed on Linux.
    out: &'static str,
    /// (Linux's text, ours) replacements for minor numbers.
    minors: &'static [(&'static str, &'static str)],
}

const fn step(shell: &'static str, args: &'static [&'static str], out: &'static str) -> Step {
    Step { shell, args, out, minors: &[] }
}

const fn step_m(
    shell: &'static str,
    args: &'static [&'static str],
    out: &'static str,
    minors: &'static [(&'static str, &'static str)],
) -> Step {
    Step { shell, args, out, minors }
}

fn replay(transcript: &str, steps: &[Step]) -> Harness {
    let text = golden(transcript);
    let h = Harness::new();
    for step in steps {
        // The expected text is the transcript's.
        let at = format!("$ {}\n", step.shell);
        let pos = text.find(&at).unwrap_or_else(|| panic!("{transcript} has no `{}`", step.shell));
        let after = &text[pos + at.len()..];
        if step.out.is_empty() {
            assert!(after.starts_with("$ ") || after.starts_with('\n'), "`{}` printed something", step.shell);
        } else {
            assert!(text.contains(&format!("{at}{}", step.out)), "{transcript}: `{}` printed otherwise", step.shell);
        }
        // Ours.
        let mut expected = step.out.to_string();
        for (linux, ours) in step.minors {
            expected = expected.replace(linux, ours);
        }
        let mut args = vec!["dmsetup"];
        args.extend_from_slice(step.args);
        assert_eq!(h.ok(&args, ""), expected, "`{}`", step.shell);
    }
    h
}

const INFO_LIN: &str = "Name:              lin
State:             ACTIVE
Read Ahead:        256
Tables present:    LIVE
Open count:        0
Event number:      0
Major, minor:      253, 0
Number of targets: 1

";

const INFO_LIN2: &str = "Name:              lin2
State:             ACTIVE
Read Ahead:        256
Tables present:    LIVE
Open count:        0
Event number:      0
Major, minor:      253, 1
Number of targets: 2

";

const LIN_0: &[(&str, &str)] = &[("253, 0\n", "253, 1\n")];
const LIN2_1: &[(&str, &str)] = &[("253, 1\n", "253, 2\n")];

#[test]
fn linear_transcript() {
    let h = replay(
        "01-linear.txt",
        &[
            step(
                "dmsetup create lin --table \"0 8192 linear /dev/vda 2048\"",
                &["create", "lin", "--table", "0 8192 linear /dev/vda 2048"],
                "",
            ),
            step("dmsetup table lin", &["table", "lin"], "0 8192 linear 254:0 2048\n"),
            step("dmsetup status lin", &["status", "lin"], "0 8192 linear \n"),
            step_m("dmsetup info lin", &["info", "lin"], INFO_LIN, LIN_0),
            step(
                "dmsetup create lin2 --table \"0 4096 linear /dev/vda 0\n4096 4096 linear /dev/vdb 1024\"",
                &["create", "lin2", "--table", "0 4096 linear /dev/vda 0\n4096 4096 linear /dev/vdb 1024"],
                "",
            ),
            step("dmsetup table lin2", &["table", "lin2"], "0 4096 linear 254:0 0\n4096 4096 linear 254:16 1024\n"),
            step("dmsetup status lin2", &["status", "lin2"], "0 4096 linear \n4096 4096 linear \n"),
            step_m("dmsetup info lin2", &["info", "lin2"], INFO_LIN2, LIN2_1),
            step_m(
                "dmsetup ls",
                &["ls"],
                "lin\t(253:0)\nlin2\t(253:1)\n",
                &[("(253:1)", "(253:2)"), ("(253:0)", "(253:1)")],
            ),
            step("dmsetup suspend lin", &["suspend", "lin"], ""),
            step_m(
                "dmsetup info lin",
                &["info", "lin"],
                "Name:              lin\nState:             SUSPENDED\nRead Ahead:        256\nTables present:    LIVE\nOpen count:        0\nEvent number:      0\nMajor, minor:      253, 0\nNumber of targets: 1\n\n",
                LIN_0,
            ),
            step("dmsetup resume lin", &["resume", "lin"], ""),
            step_m("dmsetup info lin", &["info", "lin"], INFO_LIN, LIN_0),
            step(
                "dmsetup load lin --table \"0 4096 linear /dev/vda 0\"",
                &["load", "lin", "--table", "0 4096 linear /dev/vda 0"],
                "",
            ),
            step_m(
                "dmsetup info lin",
                &["info", "lin"],
                "Name:              lin\nState:             ACTIVE\nRead Ahead:        256\nTables present:    LIVE & INACTIVE\nOpen count:        0\nEvent number:      0\nMajor, minor:      253, 0\nNumber of targets: 1\n\n",
                LIN_0,
            ),
            step("dmsetup table --inactive lin", &["table", "--inactive", "lin"], "0 4096 linear 254:0 0\n"),
            step("dmsetup resume lin", &["resume", "lin"], ""),
            step("dmsetup table lin", &["table", "lin"], "0 4096 linear 254:0 0\n"),
            step("dmsetup status lin", &["status", "lin"], "0 4096 linear \n"),
            step_m("dmsetup info lin", &["info", "lin"], INFO_LIN, LIN_0),
        ],
    );
    // Every device at once: Linux prefixes each line with the device's name.
    assert_eq!(
        h.ok(&["dmsetup", "table"], ""),
        "lin: 0 4096 linear 254:0 0\nlin2: 0 4096 linear 254:0 0\nlin2: 4096 4096 linear 254:16 1024\n"
    );
    assert_eq!(
        h.ok(&["dmsetup", "info"], ""),
        format!("{}{}", INFO_LIN.replace("253, 0", "253, 1"), INFO_LIN2.replace("253, 1", "253, 2"))
    );
    assert_eq!(h.ok(&["dmsetup", "deps", "lin2"], ""), "2 dependencies\t: (254, 0) (254, 16)\n");
    assert_eq!(
        h.ok(&["dmsetup", "deps"], ""),
        "lin: 1 dependencies\t: (254, 0)\nlin2: 2 dependencies\t: (254, 0) (254, 16)\n"
    );
    for (shell, args) in [("dmsetup remove lin", ["remove", "lin"]), ("dmsetup remove lin2", ["remove", "lin2"])] {
        assert!(golden("01-linear.txt").contains(&format!("$ {shell}\n$ ")));
        assert_eq!(h.ok(&["dmsetup", args[0], args[1]], ""), "");
    }
    assert!(golden("01-linear.txt").contains("$ dmsetup ls\nNo devices found\n"));
    assert_eq!(h.ok(&["dmsetup", "ls"], ""), "No devices found\n");
    assert_eq!(h.ok(&["dmsetup", "info"], ""), "No devices found\n");
    assert_eq!(h.ok(&["dmsetup", "table"], ""), "No devices found\n");
}

fn info_striped(name: &str, read_ahead: u32, minor: u32) -> String {
    format!("Name:              {name}\nState:             ACTIVE\nRead Ahead:        {read_ahead}\nTables present:    LIVE\nOpen count:        0\nEvent number:      0\nMajor, minor:      253, {minor}\nNumber of targets: 1\n\n")
}

#[test]
fn striped_transcript() {
    let text = golden("02-striped.txt");
    for (name, ra, linux_minor) in [("st2", 512, 0), ("st3", 384, 0), ("st3b", 256, 1)] {
        assert!(text.contains(&format!("$ dmsetup info {name}\n{}", info_striped(name, ra, linux_minor))));
    }
    let h = replay(
        "02-striped.txt",
        &[
            step(
                "dmsetup create st2 --table \"0 16384 striped 2 128 /dev/vda 0 /dev/vdb 0\"",
                &["create", "st2", "--table", "0 16384 striped 2 128 /dev/vda 0 /dev/vdb 0"],
                "",
            ),
            step("dmsetup table st2", &["table", "st2"], "0 16384 striped 2 128 254:0 0 254:16 0\n"),
            step("dmsetup status st2", &["status", "st2"], "0 16384 striped 2 254:0 254:16 1 AA\n"),
            step("dmsetup remove st2", &["remove", "st2"], ""),
            step(
                "dmsetup create st3 --table \"0 12288 striped 3 64 /dev/vda 0 /dev/vdb 2048 /dev/vdc 4096\"",
                &["create", "st3", "--table", "0 12288 striped 3 64 /dev/vda 0 /dev/vdb 2048 /dev/vdc 4096"],
                "",
            ),
            step("dmsetup table st3", &["table", "st3"], "0 12288 striped 3 64 254:0 0 254:16 2048 254:32 4096\n"),
            step("dmsetup status st3", &["status", "st3"], "0 12288 striped 3 254:0 254:16 254:32 1 AAA\n"),
            step(
                "dmsetup create st3b --table \"0 24 striped 3 8 /dev/vda 8192 /dev/vdb 8192 /dev/vdc 8192\"",
                &["create", "st3b", "--table", "0 24 striped 3 8 /dev/vda 8192 /dev/vdb 8192 /dev/vdc 8192"],
                "",
            ),
            step("dmsetup table st3b", &["table", "st3b"], "0 24 striped 3 8 254:0 8192 254:16 8192 254:32 8192\n"),
            step("dmsetup status st3b", &["status", "st3b"], "0 24 striped 3 254:0 254:16 254:32 1 AAA\n"),
        ],
    );
    // The read-ahead follows the stripe width as on Linux; minors are ours (st2 was 1).
    assert_eq!(h.ok(&["dmsetup", "info", "st3"], ""), info_striped("st3", 384, 2));
    assert_eq!(h.ok(&["dmsetup", "info", "st3b"], ""), info_striped("st3b", 256, 3));
    h.ok(&["dmsetup", "create", "st2", "--table", "0 16384 striped 2 128 /dev/vda 0 /dev/vdb 0"], "");
    assert_eq!(h.ok(&["dmsetup", "info", "st2"], ""), info_striped("st2", 512, 4));

    // The bad tables: refused, reported as libdevmapper does, and the device is removed again.
    for (name, table, minor) in [
        ("bad1", "0 100 striped 2 128 /dev/vda 0 /dev/vdb 0", 5),
        ("bad2", "0 16384 striped 2 3 /dev/vda 0 /dev/vdb 0", 6),
    ] {
        let linux = format!(
            "$ dmsetup create {name} --table \"{table}\"\ndevice-mapper: reload ioctl on {name} (253:2) failed: Invalid argument\nCommand failed.\n[exit 1]\n[kernel] device-mapper: table: 253:2: striped: Target length not divisible by chunk size (-EINVAL)\n"
        );
        assert!(text.contains(&linux), "{linux}");
        let run = h.run(&["dmsetup", "create", name, "--table", table], "");
        assert_eq!(run.status, 1);
        assert_eq!(run.out, "");
        assert_eq!(
            run.err,
            format!(
                "device-mapper: reload ioctl on {name} (253:{minor}) failed: Invalid argument\n\
                 device-mapper: reload: line 0: striped: Target length not divisible by chunk size\n\
                 device-mapper: reload: table line 0: {table}\n\
                 Command failed.\n"
            )
        );
    }
    assert_eq!(h.ok(&["dmsetup", "ls"], ""), "st2\t(253:4)\nst3\t(253:2)\nst3b\t(253:3)\n");
}

#[test]
fn zero_and_error_transcript() {
    let info = |name: &str, targets: u32| {
        format!("Name:              {name}\nState:             ACTIVE\nRead Ahead:        256\nTables present:    LIVE\nOpen count:        0\nEvent number:      0\nMajor, minor:      253, 0\nNumber of targets: {targets}\n\n")
    };
    let (iz, ie, imix) =
        (info("z", 1), info("e", 1).replace("253, 0", "253, 1"), info("mix", 3).replace("253, 0", "253, 2"));
    replay(
        "03-zero-error.txt",
        &[
            step("dmsetup create z --table \"0 8192 zero\"", &["create", "z", "--table", "0 8192 zero"], ""),
            step("dmsetup table z", &["table", "z"], "0 8192 zero \n"),
            step("dmsetup status z", &["status", "z"], "0 8192 zero \n"),
            step_m("dmsetup info z", &["info", "z"], Box::leak(iz.into_boxed_str()), &[("253, 0\n", "253, 1\n")]),
            step("dmsetup create e --table \"0 8192 error\"", &["create", "e", "--table", "0 8192 error"], ""),
            step("dmsetup table e", &["table", "e"], "0 8192 error \n"),
            step("dmsetup status e", &["status", "e"], "0 8192 error \n"),
            step_m("dmsetup info e", &["info", "e"], Box::leak(ie.into_boxed_str()), &[("253, 1\n", "253, 2\n")]),
            step(
                "dmsetup create mix --table \"0 2048 linear /dev/vda 0\n2048 2048 error\n4096 2048 zero\"",
                &["create", "mix", "--table", "0 2048 linear /dev/vda 0\n2048 2048 error\n4096 2048 zero"],
                "",
            ),
            step("dmsetup table mix", &["table", "mix"], "0 2048 linear 254:0 0\n2048 2048 error \n4096 2048 zero \n"),
            step("dmsetup status mix", &["status", "mix"], "0 2048 linear \n2048 2048 error \n4096 2048 zero \n"),
            step_m("dmsetup info mix", &["info", "mix"], Box::leak(imix.into_boxed_str()), &[("253, 2\n", "253, 3\n")]),
            step("dmsetup remove z", &["remove", "z"], ""),
            step("dmsetup remove e", &["remove", "e"], ""),
            step("dmsetup remove mix", &["remove", "mix"], ""),
        ],
    );
}

#[test]
fn targets_and_version() {
    let h = Harness::new();
    let out = h.ok(&["dmsetup", "targets"], "");
    assert_eq!(
        out,
        "linear           v1.4.0\nstriped          v1.6.0\nerror            v1.5.0\nzero             v1.1.0\n\
         delay            v1.3.0\nflakey           v1.5.0\nsnapshot-origin  v1.9.0\nsnapshot         v1.16.0\n\
         snapshot-merge   v1.5.0\n"
    );
    // Each line is Linux's, as `dmsetup targets` printed it.
    let text = golden("00-targets.txt");
    for line in out.lines() {
        assert!(text.contains(&format!("\n{line}\n")), "{line}");
    }
    assert_eq!(h.ok(&["dmsetup", "version"], ""), "Library version:   0.1.0 (dmctl)\nDriver version:    4.16.0\n");
}
