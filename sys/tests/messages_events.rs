//! The commands NetBSD's driver lacks (reference §11): `message` routed to the line that covers
//! its sector (proved with a target type of this test's own, registered at run time), refused
//! with Linux's text by the targets that take none; `remove_all`, which keeps open devices and
//! removes the others whole; events (a test target's and striped's, as Linux's
//! `stripe_end_io`), `event_nr` in replies, and `waitevent`, which waits with no lock held, is
//! interrupted with `EINTR` and ends with `ENXIO` when its device goes away. Also the autoload
//! hook of a table that names an unregistered type.

mod dmtest;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use dmcore::io::{Mapper, Segment};
use dmcore::platform::mem::{Fault, MemPlatform};
use dmcore::plist::{Dict, Number, Value};
use dmcore::target::{BuildContext, EventSink, StatusKind, Target, TargetError, TargetType};
use dmcore::{Caller, Core, Errno, Op};
use dmtest::*;

const DISK: u64 = 16384;
const EXISTS: u32 = 0x4;
const USER: Caller = Caller { privileged: false };

// ---------------------------------------------------------------------------------------------
// A target type of the test's own: it answers messages and reports events on request.
// ---------------------------------------------------------------------------------------------

/// `echo [<word>]`: reads return zeroes, writes vanish. Messages: `event [n]` reports n events
/// (1 by default) and answers nothing; `fail` is refused with ENOSPC; `quiet` answers nothing;
/// any other message is answered with `<word>@<line start>: <arg>|<arg>|...`.
struct EchoType {
    /// Every message any echo line received, as `<start>:<args joined with |>`.
    received: Arc<Mutex<Vec<String>>>,
}

struct Echo {
    word: String,
    start: u64,
    events: EventSink,
    received: Arc<Mutex<Vec<String>>>,
    count: AtomicU32,
}

impl TargetType<MemPlatform> for EchoType {
    fn name(&self) -> &str {
        "echo"
    }

    fn version(&self) -> [u32; 3] {
        [0, 1, 0]
    }

    fn construct(
        &self,
        ctx: &BuildContext<'_, MemPlatform>,
        args: &[String],
    ) -> Result<Box<dyn Target<MemPlatform>>, TargetError> {
        if args.len() > 1 {
            return Err(TargetError::invalid("echo takes at most one argument"));
        }
        Ok(Box::new(Echo {
            word: args.first().cloned().unwrap_or_else(|| "echo".into()),
            start: ctx.start,
            events: ctx.events.clone(),
            received: self.received.clone(),
            count: AtomicU32::new(0),
        }))
    }
}

impl Target<MemPlatform> for Echo {
    fn map(&self, seg: &Segment, mapper: &mut Mapper<'_, MemPlatform>) {
        if seg.op == Op::Read {
            mapper.zero_fill();
        }
    }

    fn status(&self, kind: StatusKind, out: &mut String) {
        match kind {
            StatusKind::Info => out.push_str(&format!("{} messages", self.count.load(Ordering::Relaxed))),
            StatusKind::Table => out.push_str(&self.word),
            StatusKind::Ima => {}
        }
    }

    fn message(&self, argv: &[String]) -> Result<Option<String>, TargetError> {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.received.lock().unwrap().push(format!("{}:{}", self.start, argv.join("|")));
        match argv.first().map(String::as_str) {
            Some("event") => {
                let n: u32 = argv.get(1).map_or(Ok(1), |n| n.parse()).map_err(|_| TargetError::invalid("bad count"))?;
                for _ in 0..n {
                    self.events.trigger();
                }
                Ok(None)
            }
            Some("fail") => Err(TargetError::new(Errno::ENOSPC, "echo: no room for that")),
            Some("quiet") => Ok(None),
            _ => Ok(Some(format!("{}@{}: {}", self.word, self.start, argv.join("|")))),
        }
    }
}

fn with_echo(core: &Core<MemPlatform>) -> Arc<Mutex<Vec<String>>> {
    let received = Arc::new(Mutex::new(Vec::new()));
    core.targets().register(Arc::new(EchoType { received: received.clone() })).unwrap();
    received
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// A request as lvm2 sends it: version, `flags` EXISTS, `event_nr`, empty `cmd_data`, `name`.
fn lvm2(command: &str, name: &str, version_minor: u64) -> Dict {
    let mut d = Dict::new();
    d.set_string("command", command.as_bytes());
    d.insert(
        "version",
        Value::Array(vec![
            Value::Number(Number::Unsigned(4)),
            Value::Number(Number::Unsigned(version_minor)),
            Value::Number(Number::Unsigned(0)),
        ]),
    );
    d.set_u32("flags", EXISTS);
    d.set_u32("event_nr", 0);
    d.insert("cmd_data", Value::Array(Vec::new()));
    d.set_string("name", name.as_bytes());
    d
}

/// `dmsetup message NAME SECTOR MSG` with DragonFly's keys.
fn message_request(name: &str, sector: u64, text: &str) -> Dict {
    let mut d = lvm2("message", name, 2);
    d.set_u64("sector", sector);
    d.set_string("message", text.as_bytes());
    d
}

fn message(core: &Core<MemPlatform>, name: &str, sector: u64, text: &str) -> Outcome {
    send(core, &message_request(name, sector, text))
}

/// The answer of a successful message: `cmd_data[0]`, if any.
fn answer(out: &Outcome) -> Option<String> {
    assert_eq!(out.result, Ok(()), "{:?}", out.detail);
    out.reply.get_array("cmd_data").unwrap().first().map(|v| v.as_str().unwrap().to_string())
}

fn refused(out: &Outcome) -> (Errno, String) {
    (out.result.expect_err("accepted"), out.detail.clone().unwrap_or_default())
}

fn waitevent(core: &Core<MemPlatform>, name: &str, event_nr: u32) -> Outcome {
    let mut d = lvm2("waitevent", name, 0);
    d.set_u32("event_nr", event_nr);
    send(core, &d)
}

/// The `event_nr` of an lvm2-style `info` reply.
fn event_nr(core: &Core<MemPlatform>, name: &str) -> u32 {
    let out = send(core, &lvm2("info", name, 0));
    assert_eq!(out.result, Ok(()));
    out.reply.get_u32("event_nr").unwrap()
}

fn read(core: &Core<MemPlatform>, platform: &MemPlatform, name: &str, sector: u64) -> Result<(), Errno> {
    let minor = core.minor_of(name).unwrap();
    platform.run_io(core, minor, Op::Read, sector, 512, None).result().unwrap()
}

// ---------------------------------------------------------------------------------------------
// message
// ---------------------------------------------------------------------------------------------

#[test]
fn a_message_goes_to_the_line_that_covers_its_sector() {
    let (core, _) = setup(DISK);
    let received = with_echo(&core);
    create(&core, "m", &["0 100 linear /dev/vda 0", "100 100 echo", "200 100 echo second"]).unwrap();

    assert_eq!(answer(&message(&core, "m", 150, "hello  world")).as_deref(), Some("echo@100: hello|world"));
    assert_eq!(answer(&message(&core, "m", 100, "x")).as_deref(), Some("echo@100: x"));
    assert_eq!(answer(&message(&core, "m", 299, "x")).as_deref(), Some("second@200: x"));
    // Arguments split as table params are: runs of blanks separate, a backslash escapes.
    assert_eq!(answer(&message(&core, "m", 200, r"a\ b  c\\d")).as_deref(), Some(r"second@200: a b|c\d"));
    // A target that answers nothing leaves cmd_data as sent (empty).
    let quiet = message(&core, "m", 100, "quiet");
    assert_eq!(answer(&quiet), None);
    assert_eq!(quiet.reply.get_array("cmd_data"), Some(&[][..]));
    // The line's own refusal keeps its errno and text.
    assert_eq!(refused(&message(&core, "m", 250, "fail")), (Errno::ENOSPC, "echo: no room for that".into()));
    // Sector 0 is the linear line, which takes no messages; past the end there is no line.
    assert_eq!(
        refused(&message(&core, "m", 0, "hello")),
        (Errno::EINVAL, "Target type does not support messages".into())
    );
    assert_eq!(
        refused(&message(&core, "m", 300, "hello")),
        (Errno::EINVAL, "Target message sector outside device.".into())
    );
    // No `sector` at all: sector 0, as DragonFly's driver reads it.
    let mut d = message_request("m", 0, "hello");
    d.remove("sector");
    assert_eq!(refused(&send(&core, &d)).1, "Target type does not support messages");
    assert_eq!(
        *received.lock().unwrap(),
        vec!["100:hello|world", "100:x", "200:x", r"200:a b|c\d", "100:quiet", "200:fail"]
    );
    assert_eq!(status(&core, "m"), vec!["0 100 linear ", "100 100 echo 3 messages", "200 100 echo 3 messages"]);
}

#[test]
fn the_targets_linux_gives_no_messages_refuse_them_with_linux_text() {
    let (core, platform) = setup(DISK);
    platform.add_disk("/dev/vdc", dmcore::DevT::new(254, 32), DISK);
    let tables = [
        ("lin", "0 1024 linear /dev/vda 0"),
        ("str", "0 1024 striped 2 8 /dev/vda 0 /dev/vdb 0"),
        ("flk", "0 1024 flakey /dev/vda 0 1 1"),
        ("fdw", "0 1024 flakey /dev/vda 0 0 10 1 drop_writes"),
        ("dly", "0 1024 delay /dev/vda 0 50"),
        ("zer", "0 1024 zero"),
        ("err", "0 1024 error"),
    ];
    for (name, line) in tables {
        create(&core, name, &[line]).unwrap();
        for text in ["foo", "fail_path 254:0", "drop_writes", "0"] {
            let out = message(&core, name, 0, text);
            assert_eq!(refused(&out), (Errno::EINVAL, "Target type does not support messages".into()), "{line}");
            // The reply is the request, version rewritten: no answer.
            assert_eq!(out.reply.get_array("cmd_data"), Some(&[][..]));
        }
    }
    // Linux logs the refusal; so does the core.
    assert!(platform
        .log_lines()
        .iter()
        .any(|l| l.contains("message to flakey: Target type does not support messages")));
}

#[test]
fn core_messages_and_malformed_requests_are_refused() {
    let (core, _) = setup(DISK);
    with_echo(&core);
    create(&core, "m", &["0 100 echo"]).unwrap();
    let ok = answer(&message(&core, "m", 0, "ping"));
    assert_eq!(ok.as_deref(), Some("echo@0: ping"));

    // Linux's device-mapper core messages (statistics, deferred remove) are not provided.
    for text in ["@stats_list", "@cancel_deferred_remove", "@stats_create - /1"] {
        let (errno, detail) = refused(&message(&core, "m", 0, text));
        assert_eq!(errno, Errno::EINVAL);
        let word = text.split(' ').next().unwrap();
        assert!(detail.starts_with(&format!("Unsupported message sent to DM core: {word}")), "{detail}");
    }
    for blank in ["", "   ", "\t\n"] {
        assert_eq!(refused(&message(&core, "m", 0, blank)), (Errno::EINVAL, "Empty message received.".into()));
    }
    let mut no_text = message_request("m", 0, "x");
    no_text.remove("message");
    assert_eq!(refused(&send(&core, &no_text)).0, Errno::EINVAL);
    let mut number_text = message_request("m", 0, "x");
    number_text.set_u32("message", 7);
    assert_eq!(refused(&send(&core, &number_text)).0, Errno::EINVAL);
    let mut string_sector = message_request("m", 0, "x");
    string_sector.set_string("sector", b"0");
    assert_eq!(refused(&send(&core, &string_sector)), (Errno::EINVAL, "Invalid target message sector.".into()));
    // A device without a live table (only a loaded one) has no line to take it.
    assert_eq!(command(&core, "create", "bare", 0).result, Ok(()));
    assert_eq!(reload(&core, "bare", &["0 100 echo"]).result, Ok(()));
    assert_eq!(refused(&message(&core, "bare", 0, "x")), (Errno::EINVAL, "The device has no live table.".into()));
    // No such device: EXISTS cleared, as every device command.
    let out = message(&core, "nosuch", 0, "x");
    assert_eq!(out.result, Err(Errno::ENOENT));
    assert_eq!(out.reply.get_u32("flags"), Some(0));
    // Privileged.
    let mut bytes = dmcore::plist::write_dict(&message_request("m", 0, "x"));
    bytes.push(0);
    assert_eq!(core.control(&bytes, USER).unwrap().command_result, Err(Errno::EPERM));
    // A suspended device takes messages (Linux's thin-pool create_snap needs it).
    assert_eq!(suspend(&core, "m", 0), Ok(()));
    assert_eq!(answer(&message(&core, "m", 0, "ping")).as_deref(), Some("echo@0: ping"));
}

// ---------------------------------------------------------------------------------------------
// remove_all
// ---------------------------------------------------------------------------------------------

#[test]
fn remove_all_removes_every_device_that_is_not_open() {
    let (core, platform) = setup(DISK);
    create(&core, "a", &["0 100 linear /dev/vda 0"]).unwrap();
    let b = create(&core, "b", &["0 100 linear /dev/vdb 0"]).unwrap();
    create(&core, "c", &["0 100 zero"]).unwrap();
    assert_eq!(command(&core, "create", "d", 0).result, Ok(()));
    core.open(b).unwrap();

    let request = lvm2("remove_all", "", 0);
    let out = send(&core, &request);
    assert_eq!(out.result, Ok(()));
    // Nothing added to the reply: it is the request, version rewritten.
    let mut expected = request.clone();
    expected.insert(
        "version",
        Value::Array(vec![
            Value::Number(Number::Unsigned(4)),
            Value::Number(Number::Unsigned(16)),
            Value::Number(Number::Unsigned(0)),
        ]),
    );
    assert_eq!(out.reply, expected);
    assert_eq!(core.list(), vec![(b, b"b".to_vec())]);
    assert!(platform.log_lines().iter().any(|l| l == "dm: remove_all left 1 open device(s)"));
    assert_eq!(platform.attached(), vec![b]);
    assert_eq!(platform.opens(VDA), 0, "a's table was destroyed");
    // The open device is whole: its table still maps.
    assert_eq!(read(&core, &platform, "b", 0), Ok(()));
    assert_eq!(table(&core, "b"), vec!["0 100 linear 254:16 0"]);

    core.close(b);
    assert_eq!(send(&core, &request).result, Ok(()));
    assert!(core.list().is_empty());
    assert_eq!(platform.opens(VDB), 0);
    // With nothing left, remove_all still succeeds.
    assert_eq!(send(&core, &request).result, Ok(()));
}

#[test]
fn remove_all_waits_for_requests_in_flight_and_never_half_removes() {
    let (core, platform) = setup(DISK);
    create(&core, "a", &["0 100 linear /dev/vda 0"]).unwrap();
    let minor = core.minor_of("a").unwrap();
    platform.hold(true);
    let (io, req) = platform.request(minor, Op::Read, 0, 512, None);
    core.submit(minor, io.clone(), req);
    assert_eq!(platform.queued(), 1);
    // The drain cannot progress (children are held and nobody runs them): the removal fails
    // and the device stays as it was, usable.
    assert_eq!(send(&core, &lvm2("remove_all", "", 0)).result, Ok(()));
    assert_eq!(core.list().len(), 1);
    assert!(
        platform.log_lines().iter().any(|l| l.contains("remove_all: minor 1 not removed")),
        "{:?}",
        platform.log_lines()
    );
    platform.hold(false);
    platform.run();
    assert_eq!(io.result(), Some(Ok(())));
    assert_eq!(read(&core, &platform, "a", 8), Ok(()));
    // Now with the children running as the removal waits: the request completes first.
    platform.hold(true);
    let (io, req) = platform.request(minor, Op::Read, 0, 512, None);
    core.submit(minor, io.clone(), req);
    platform.set_wait_hook(Some(Box::new(|p: &MemPlatform| p.run_one())));
    assert_eq!(send(&core, &lvm2("remove_all", "", 0)).result, Ok(()));
    platform.set_wait_hook(None);
    assert_eq!(io.result(), Some(Ok(())));
    assert!(core.list().is_empty());
}

#[test]
fn remove_all_is_privileged() {
    let (core, _) = setup(DISK);
    create(&core, "a", &["0 100 zero"]).unwrap();
    let mut bytes = dmcore::plist::write_dict(&lvm2("remove_all", "", 0));
    bytes.push(0);
    assert_eq!(core.control(&bytes, USER).unwrap().command_result, Err(Errno::EPERM));
    assert_eq!(core.list().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Events and waitevent
// ---------------------------------------------------------------------------------------------

#[test]
fn table_swaps_and_suspends_are_not_events_as_in_linux() {
    // Linux: 01-linear.txt shows "Event number: 0" after `load` + `resume` of a new table.
    let (core, _) = setup(DISK);
    create(&core, "lin", &["0 8192 linear /dev/vda 0"]).unwrap();
    assert_eq!(event_nr(&core, "lin"), 0);
    assert_eq!(suspend(&core, "lin", 0), Ok(()));
    assert_eq!(resume(&core, "lin"), Ok(()));
    assert_eq!(reload(&core, "lin", &["0 4096 linear /dev/vda 0"]).result, Ok(()));
    assert_eq!(event_nr(&core, "lin"), 0);
    assert_eq!(resume(&core, "lin"), Ok(()));
    assert_eq!(event_nr(&core, "lin"), 0);
    assert_eq!(command(&core, "rename", "lin", 0).result, Err(Errno::EINVAL));
}

#[test]
fn event_nr_is_reported_only_to_requests_that_carry_it() {
    let (core, _) = setup(DISK);
    with_echo(&core);
    create(&core, "e", &["0 100 echo"]).unwrap();
    // Before any event, an lvm2 info reply is the NetBSD one: the request's event_nr echoed
    // (its text unchanged, so recorded exchanges stay byte for byte the same).
    let mut d = lvm2("info", "e", 0);
    d.insert("event_nr", Value::Number(Number::Signed(0)));
    let out = send(&core, &d);
    assert_eq!(out.reply.get("event_nr"), Some(&Value::Number(Number::Signed(0))));

    assert_eq!(message(&core, "e", 0, "event 3").result, Ok(()));
    assert_eq!(event_nr(&core, "e"), 3);
    let out = send(&core, &lvm2("status", "e", 0));
    assert_eq!(out.reply.get("event_nr"), Some(&Value::Number(Number::Unsigned(3))));
    // NetBSD's libdm and dmctl send no event_nr, and get none.
    assert_eq!(command(&core, "info", "e", 0).reply.get("event_nr"), None);
    assert_eq!(command(&core, "status", "e", 0).reply.get("event_nr"), None);
    // Another device has its own counter.
    create(&core, "f", &["0 100 echo"]).unwrap();
    assert_eq!(event_nr(&core, "f"), 0);
}

#[test]
fn waitevent_answers_at_once_when_the_counter_already_differs() {
    let (core, _) = setup(DISK);
    with_echo(&core);
    let minor = create(&core, "e", &["0 100 echo"]).unwrap();
    // Counter 0, caller saw 5: it differs, so the answer is immediate.
    let out = waitevent(&core, "e", 5);
    assert_eq!(out.result, Ok(()));
    let r = &out.reply;
    assert_eq!(r.get_u32("event_nr"), Some(0));
    assert_eq!(r.get_u32("minor"), Some(minor));
    assert_eq!(r.get_u32("open_count"), Some(0));
    assert_eq!(r.get_u32("target_count"), Some(1));
    assert_eq!(r.get_str("name"), Some("e"));
    assert_eq!(r.get_u32("flags"), Some(EXISTS | 0x20));
    assert_eq!(message(&core, "e", 0, "event").result, Ok(()));
    assert_eq!(waitevent(&core, "e", 0).reply.get_u32("event_nr"), Some(1));
    // Unprivileged callers may wait, as they may ask `info`.
    let mut bytes = dmcore::plist::write_dict(&{
        let mut d = lvm2("waitevent", "e", 0);
        d.set_u32("event_nr", 0);
        d
    });
    bytes.push(0);
    assert_eq!(core.control(&bytes, USER).unwrap().command_result, Ok(()));
    // No such device.
    let out = waitevent(&core, "nosuch", 0);
    assert_eq!((out.result, out.reply.get_u32("flags")), (Err(Errno::ENOENT), Some(0)));
}

#[test]
fn a_waiter_sleeps_until_an_event_with_no_lock_held() {
    let (core, platform) = setup(DISK);
    with_echo(&core);
    create(&core, "e", &["0 100 echo", "100 100 echo"]).unwrap();
    // While waitevent waits, the hook runs other commands on the same device (they would
    // deadlock if the wait held a lock of the core), then makes the event happen.
    let calls = Arc::new(AtomicU32::new(0));
    let hook_core = core.clone();
    let hook_calls = calls.clone();
    platform.set_wait_hook(Some(Box::new(move |_p: &MemPlatform| {
        let core = &hook_core;
        let n = hook_calls.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            assert_eq!(event_nr(core, "e"), 0);
            assert_eq!(suspend(core, "e", 0), Ok(()));
            assert_eq!(reload(core, "e", &["0 200 echo"]).result, Ok(()));
            assert_eq!(resume(core, "e"), Ok(()));
            assert_eq!(command(core, "rename", "e", 0).result, Err(Errno::EINVAL));
            assert_eq!(answer(&message(core, "e", 0, "quiet")), None);
        } else {
            assert_eq!(message(core, "e", 150, "event 2").result, Ok(()));
        }
        true
    })));
    let out = waitevent(&core, "e", 0);
    platform.set_wait_hook(None);
    assert_eq!(out.result, Ok(()), "{:?}", out.detail);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "woke after the second hook, not before");
    assert_eq!(out.reply.get_u32("event_nr"), Some(2));
    // The info keys are those of the device now: the reloaded table has one line.
    assert_eq!(out.reply.get_u32("target_count"), Some(1));
}

#[test]
fn an_interrupted_wait_fails_with_eintr_and_changes_nothing() {
    let (core, platform) = setup(DISK);
    with_echo(&core);
    create(&core, "e", &["0 100 echo"]).unwrap();
    platform.interrupt_waits(true);
    let mut d = lvm2("waitevent", "e", 0);
    d.set_u32("event_nr", 0);
    let out = send(&core, &d);
    platform.interrupt_waits(false);
    assert_eq!(out.result, Err(Errno::EINTR));
    assert_eq!(out.reply.get_u32("event_nr"), Some(0));
    assert_eq!(out.reply.get("minor"), None, "no info keys added");
    assert_eq!(out.reply.get_u32("flags"), Some(EXISTS));
    // Other waits of the core (suspend's drain) are not interruptible: they go on working.
    platform.interrupt_waits(true);
    assert_eq!(suspend(&core, "e", 0), Ok(()));
    assert_eq!(resume(&core, "e"), Ok(()));
    platform.interrupt_waits(false);
}

#[test]
fn removing_the_device_ends_the_wait_with_enxio() {
    let (core, platform) = setup(DISK);
    with_echo(&core);
    create(&core, "e", &["0 100 echo"]).unwrap();
    let hook_core = core.clone();
    platform.set_wait_hook(Some(Box::new(move |_p: &MemPlatform| {
        assert_eq!(remove(&hook_core, "e"), Ok(()));
        true
    })));
    let out = waitevent(&core, "e", 0);
    platform.set_wait_hook(None);
    assert_eq!(out.result, Err(Errno::ENXIO));
    assert_eq!(out.detail.as_deref(), Some("The device was removed while waiting for an event."));
    assert_eq!(out.reply.get_u32("flags"), Some(0), "EXISTS cleared");
    // A device created under the same name meanwhile is another device: the wait still ends.
    create(&core, "e", &["0 100 echo"]).unwrap();
    let hook_core = core.clone();
    platform.set_wait_hook(Some(Box::new(move |_p: &MemPlatform| {
        assert_eq!(remove(&hook_core, "e"), Ok(()));
        create(&hook_core, "e", &["0 100 echo"]).unwrap();
        assert_eq!(message(&hook_core, "e", 0, "event").result, Ok(()));
        true
    })));
    let out = waitevent(&core, "e", 0);
    platform.set_wait_hook(None);
    assert_eq!(out.result, Err(Errno::ENXIO));
}

#[test]
fn a_failing_stripe_reports_an_event_and_wakes_the_waiter() {
    let (core, platform) = setup(DISK);
    create(&core, "st", &["0 1024 striped 2 8 /dev/vda 0 /dev/vdb 0"]).unwrap();
    platform.add_fault(Fault::range(VDB, 0, DISK, Errno::EIO));
    let hook_core = core.clone();
    platform.set_wait_hook(Some(Box::new(move |p: &MemPlatform| {
        // Chunk 1 (sectors 8..16) is on the second stripe, /dev/vdb.
        assert_eq!(read(&hook_core, p, "st", 8), Err(Errno::EIO));
        true
    })));
    let out = waitevent(&core, "st", 0);
    platform.set_wait_hook(None);
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.reply.get_u32("event_nr"), Some(1));
    assert_eq!(status(&core, "st"), vec!["0 1024 striped 2 254:0 254:16 1 AD"]);
    // Reads on the healthy stripe are no events.
    assert_eq!(read(&core, &platform, "st", 0), Ok(()));
    assert_eq!(event_nr(&core, "st"), 1);
}

#[test]
fn striped_stops_reporting_after_linux_error_threshold() {
    let (core, platform) = setup(DISK);
    create(&core, "st", &["0 1024 striped 2 8 /dev/vda 0 /dev/vdb 0"]).unwrap();
    platform.add_fault(Fault::range(VDB, 0, DISK, Errno::EIO));
    for i in 1..=20u32 {
        assert_eq!(read(&core, &platform, "st", 8), Err(Errno::EIO));
        // DM_IO_ERROR_THRESHOLD is 15: events for errors 1..=14 only.
        assert_eq!(event_nr(&core, "st"), i.min(14), "after {i} errors");
    }
    // "Not supported" is no failure of the stripe.
    platform.clear_faults();
    create(&core, "st2", &["0 1024 striped 2 8 /dev/vda 0 /dev/vdb 0"]).unwrap();
    platform.add_fault(Fault::range(VDB, 0, DISK, Errno::EOPNOTSUPP));
    assert_eq!(read(&core, &platform, "st2", 8), Err(Errno::EOPNOTSUPP));
    assert_eq!(event_nr(&core, "st2"), 0);
    assert_eq!(status(&core, "st2"), vec!["0 1024 striped 2 254:0 254:16 1 AA"]);
}

#[test]
fn stripes_on_one_device_fail_together_with_one_event() {
    // Linux counts the error against every stripe whose device is the failed child's.
    let (core, platform) = setup(DISK);
    create(&core, "st", &["0 1536 striped 3 8 /dev/vda 0 /dev/vdb 0 /dev/vda 4096"]).unwrap();
    platform.add_fault(Fault::range(VDA, 4096, 512, Errno::EIO));
    assert_eq!(read(&core, &platform, "st", 16), Err(Errno::EIO));
    assert_eq!(event_nr(&core, "st"), 1);
    assert_eq!(status(&core, "st"), vec!["0 1536 striped 3 254:0 254:16 254:0 1 DAD"]);
}

// ---------------------------------------------------------------------------------------------
// Loadable target types: registration and the autoload hook
// ---------------------------------------------------------------------------------------------

#[test]
fn an_unknown_type_is_autoloaded_once_before_enoent() {
    let (core, platform) = setup(DISK);
    let received = Arc::new(Mutex::new(Vec::new()));
    let hook_received = received.clone();
    platform.set_autoload_hook(Some(Box::new(move |core: &Core<MemPlatform>, name: &str| {
        name == "echo" && core.targets().register(Arc::new(EchoType { received: hook_received.clone() })).is_ok()
    })));
    assert_eq!(command(&core, "create", "x", 0).result, Ok(()));
    let out = reload(&core, "x", &["0 100 nosuch"]);
    assert_eq!((out.result, out.detail.as_deref()), (Err(Errno::ENOENT), Some("line 0: unknown target type nosuch")));
    assert_eq!(platform.autoload_requests(), vec!["nosuch"]);
    create(&core, "e", &["0 100 echo", "100 100 echo"]).unwrap();
    // Loaded for the first line; the second finds it registered.
    assert_eq!(platform.autoload_requests(), vec!["nosuch", "echo"]);
    assert_eq!(answer(&message(&core, "e", 100, "hi")).as_deref(), Some("echo@100: hi"));
    assert_eq!(received.lock().unwrap().len(), 1);
    // Registered types are listed, and cannot go while a table uses them.
    assert!(core.targets().list().iter().any(|(n, v)| n == "echo" && *v == [0, 1, 0]));
    assert_eq!(core.targets().unregister("echo"), Err(Errno::EBUSY));
    assert_eq!(remove(&core, "e"), Ok(()));
    assert_eq!(core.targets().unregister("echo"), Ok(()));
    assert_eq!(core.targets().unregister("echo"), Err(Errno::ENOENT));
}
