//! `waitevent` through dmhost's control socket, with raw frames: a wait blocks only its own
//! connection, is answered with the new event number and the info keys when a stripe fails,
//! and ends (as a signal ends a kernel wait) when its client goes away.

mod common;

use std::time::Duration;

use common::*;

const EXISTS: u32 = 0x4;

fn waitevent(name: &str, event_nr: u32) -> dmcore::plist::Dict {
    let mut d = request("waitevent", name);
    d.set_u32("event_nr", event_nr);
    d.set_u32("flags", EXISTS);
    d
}

#[test]
fn a_wait_blocks_its_connection_only_and_ends_with_the_event() {
    let host = Host::start(&[4 * MIB], &[]);
    let mut ctl = host.control();
    ctl.make_device("err", &[(0, 2048, "error", "")]);
    ctl.make_device("st", &[(0, 4096, "striped", "2 8 254:0 0 169:1 0")]);

    let mut waiter = host.control();
    waiter.send_raw(&frame(&dmcore::plist::write_dict(&waitevent("st", 0))));
    // Other connections are served meanwhile, the waiting device's included.
    let info = ctl.cmd("info", "st").ok().dict();
    assert_eq!(info.get_u32("minor"), Some(2));
    waiter.stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    assert!(waiter.read_answer().is_err(), "the wait answered before any event");
    waiter.stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();

    let mut nbd = host.nbd("st");
    assert_eq!(nbd.read(8 * 512, 512), Err(5));
    let answer = waiter.read_answer().unwrap().ok();
    let reply = answer.dict();
    assert_eq!(reply.get_u32("event_nr"), Some(1));
    assert_eq!(reply.get_u32("minor"), Some(2));
    assert_eq!(reply.get_str("name"), Some("st"));
    assert_eq!(reply.get_u32("target_count"), Some(1));
    assert_eq!(reply.get_u32("open_count"), Some(1), "NBD holds it open");
    assert_eq!(reply.get_u32("flags"), Some(EXISTS | 0x20));
    // The connection goes on serving requests.
    let answer = waiter.run(&waitevent("st", 7)).ok();
    assert_eq!(answer.dict().get_u32("event_nr"), Some(1));
}

#[test]
fn a_client_that_goes_away_ends_its_wait() {
    let host = Host::start(&[MIB], &[]);
    let mut ctl = host.control();
    ctl.make_device("z", &[(0, 2048, "zero", "")]);
    {
        let mut waiter = host.control();
        waiter.send_raw(&frame(&dmcore::plist::write_dict(&waitevent("z", 0))));
        // Closed here: the request stays readable for dmhost, then the end of the stream.
    }
    // The client's end is closed: the wait ends with EINTR (the core logs the command's
    // failure at -vv), and the reply finds nobody to read it, which ends the connection and
    // frees its thread.
    assert!(
        eventually(Duration::from_secs(20), || {
            let log = host.log();
            log.contains("command waitevent failed: Interrupted system call")
                && log.contains("control: connection ended")
        }),
        "{}",
        host.log()
    );
    // The device is untouched.
    assert_eq!(ctl.cmd("info", "z").ok().dict().get_u32("minor"), Some(1));
}
