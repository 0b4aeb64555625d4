//! Events, `waitevent`, `message` and `remove_all` end to end: the real dmhost and the real
//! dmctl as `dmsetup`, a striped device over an image file and a mapped device of the `error`
//! target, read through NBD.
//!
//! * `dmsetup wait` blocks in its own process while other commands run, and returns with the
//!   "Event number" of the event a failing stripe reports (Linux's `stripe_end_io`); the
//!   stripe's status turns `D`;
//! * `dmsetup message` to targets without messages fails as Linux's dmsetup does
//!   (07-mirror.txt: "device-mapper: message ioctl on md  failed: Invalid argument");
//! * `dmsetup remove_all` keeps what is open, removes the rest, stacked devices included;
//! * a wait in progress when dmhost is told to stop ends, and dmhost exits cleanly.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dm_e2e::{eventually, Host, MIB};

/// `dmsetup ARGS` started in the background, against `host`.
fn spawn_dmsetup(host: &Host, args: &[&str]) -> Child {
    Command::new(host.dir.path().join("dmsetup"))
        .args(args)
        .env("DM_CONTROL", format!("unix:{}", host.control.display()))
        .env_remove("DM_MAJOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dmsetup starts")
}

/// Waits (with a deadline) for a background dmsetup; its status, stdout and stderr.
fn finish(child: Child, timeout: Duration) -> (Option<i32>, String, String) {
    let deadline = Instant::now() + timeout;
    let mut child = child;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            let out = child.wait_with_output().expect("output");
            return (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dmsetup did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn still_running(child: &mut Child) -> bool {
    child.try_wait().expect("try_wait").is_none()
}

fn event_number(host: &Host, name: &str) -> String {
    host.info(name).get("Event number").cloned().unwrap_or_default()
}

/// `err` (error target) and `st`: striped, chunks of 8 sectors alternating between the first
/// image (254:0) and `err` (169:1).
fn striped_over_error() -> Host {
    let host = Host::start(&[4 * MIB], &[]);
    host.dmsetup(&["create", "err", "--table", "0 2048 error"]).ok();
    host.dmsetup(&["create", "st", "--table", "0 4096 striped 2 8 254:0 0 /dev/mapper/err 0"]).ok();
    host
}

fn info_block(name: &str, open: u32, event_nr: u32, minor: u32) -> String {
    format!(
        "Name:              {name}\nState:             ACTIVE\nRead Ahead:        256\nTables present:    LIVE\n\
         Open count:        {open}\nEvent number:      {event_nr}\nMajor, minor:      169, {minor}\n\
         Number of targets: 1\n\n"
    )
}

#[test]
fn dmsetup_wait_returns_when_a_stripe_fails() {
    let host = striped_over_error();
    assert_eq!(event_number(&host, "st"), "0");
    let mut waiter = spawn_dmsetup(&host, &["wait", "st"]);

    // While it waits, other commands run (dmhost serves each connection on its own thread and
    // the wait holds no lock): the device has had no event, so the waiter cannot be done.
    assert_eq!(host.dmsetup(&["status", "st"]).ok().stdout, "0 4096 striped 2 254:0 169:1 1 AA\n");
    assert_eq!(event_number(&host, "st"), "0");
    assert!(still_running(&mut waiter), "dmsetup wait returned before any event");

    // A read of the second chunk goes to `err`: it fails, and the stripe reports an event.
    let mut nbd = host.nbd("st");
    assert!(nbd.read(0, 4096).is_ok(), "the first stripe is healthy");
    assert_eq!(nbd.read(8 * 512, 4096), Err(5), "EIO from the error target");
    let (code, out, err) = finish(waiter, Duration::from_secs(30));
    assert_eq!((code, err.as_str()), (Some(0), ""), "{out}");
    // dmsetup wait prints the info block, with the new event number; NBD holds it open.
    assert_eq!(out, info_block("st", 1, 1, 2));
    assert_eq!(host.dmsetup(&["status", "st"]).ok().stdout, "0 4096 striped 2 254:0 169:1 1 AD\n");

    // Waiting from the number seen: blocks until the next event.
    let mut waiter = spawn_dmsetup(&host, &["wait", "st", "1"]);
    assert_eq!(event_number(&host, "st"), "1");
    assert!(still_running(&mut waiter));
    assert_eq!(nbd.read(24 * 512, 512), Err(5));
    let (code, out, _) = finish(waiter, Duration::from_secs(30));
    assert_eq!(code, Some(0));
    assert!(out.contains("Event number:      2\n"), "{out}");
    // A number that differs already: at once.
    let out = host.dmsetup(&["wait", "st", "0"]).ok().stdout;
    assert!(out.contains("Event number:      2\n"), "{out}");
    // The error target has no events of its own.
    assert_eq!(event_number(&host, "err"), "0");
}

#[test]
fn dmsetup_message_fails_as_linux_for_targets_without_messages() {
    let host = striped_over_error();
    host.dmsetup(&["create", "md", "--table", "0 2048 linear 254:0 4096"]).ok();
    // As Linux's dmsetup printed it for a mirror (07-mirror.txt), and the driver's reason.
    let r = host.dmsetup(&["message", "md", "0", "foo"]).code(1);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "device-mapper: message ioctl on md  failed: Invalid argument\n\
         device-mapper: message: Target type does not support messages\nCommand failed.\n"
    );
    for (name, sector, message, reason) in [
        ("st", "4000", "fail_path 254:0", "Target type does not support messages"),
        ("err", "0", "anything", "Target type does not support messages"),
        ("md", "4096", "foo", "Target message sector outside device."),
        (
            "md",
            "0",
            "@stats_list",
            "Unsupported message sent to DM core: @stats_list (device-mapper core messages are not provided)",
        ),
    ] {
        let r = host.dmsetup(&["message", name, sector, message]).code(1);
        assert!(r.stderr.contains(&format!("device-mapper: message: {reason}\n")), "{name} {message}: {}", r.stderr);
    }
    let r = host.dmsetup(&["message", "nosuch", "0", "foo"]).code(1);
    assert!(r.stderr.starts_with("device-mapper: message ioctl on nosuch  failed: No such device\n"), "{}", r.stderr);
    // Messages are no events.
    assert_eq!(event_number(&host, "md"), "0");
}

#[test]
fn dmsetup_remove_all_keeps_open_devices_and_removes_the_rest() {
    let host = striped_over_error();
    host.dmsetup(&["create", "lone", "--table", "0 2048 zero"]).ok();
    host.dmsetup(&["create", "notable", "--notable"]).ok();
    let nbd = host.nbd("st");
    // st is open (NBD), err is open (st's table stacks on it): both stay, the others go.
    host.dmsetup(&["remove_all"]).ok();
    assert_eq!(host.dmsetup(&["ls"]).ok().stdout, "err\t(169:1)\nst\t(169:2)\n");
    assert!(host.log().contains("remove_all left 2 open device(s)"), "{}", host.log());
    drop(nbd);
    assert!(eventually(Duration::from_secs(20), || host.open_count("st") == 0));
    // st goes, which closes err, which goes in the next pass.
    host.dmsetup(&["remove_all"]).ok();
    assert_eq!(host.dmsetup(&["ls"]).ok().stdout, "No devices found\n");
}

#[test]
fn a_wait_in_progress_ends_when_dmhost_stops() {
    let mut host = Host::start(&[MIB], &[]);
    host.dmsetup(&["create", "z", "--table", "0 2048 zero"]).ok();
    let mut waiter = spawn_dmsetup(&host, &["wait", "z"]);
    assert_eq!(event_number(&host, "z"), "0");
    assert!(still_running(&mut waiter));
    // SIGTERM: the interruptible wait ends (EINTR) and dmhost exits cleanly; the waiter fails
    // (interrupted, or the connection closed under it).
    host.stop_cleanly();
    let (code, _, err) = finish(waiter, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.ends_with("Command failed.\n"), "{err}");
}
