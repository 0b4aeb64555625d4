//! The client's `message`, `wait_event` and `remove_all` (reference §11) against the in-memory
//! core: their request bytes, their replies decoded, and their failures with and without the
//! command's errno (NetBSD's own driver answers them as unknown commands).

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use dmclient::{Client, Command, DeviceRef, Errno, ErrorKind, LocalTransport, RawReply, Request, Transport};
use dmcore::io::{Mapper, Segment};
use dmcore::platform::mem::MemPlatform;
use dmcore::target::{BuildContext, EventSink, StatusKind, Target, TargetError, TargetType};
use dmcore::{Core, DevT};

/// `bell`: a target whose messages are `ring [n]` (n events) and `ask <words>` (answered with
/// the words reversed).
struct BellType;

struct Bell {
    events: EventSink,
}

impl TargetType<MemPlatform> for BellType {
    fn name(&self) -> &str {
        "bell"
    }

    fn version(&self) -> [u32; 3] {
        [1, 0, 0]
    }

    fn construct(
        &self,
        ctx: &BuildContext<'_, MemPlatform>,
        _: &[String],
    ) -> Result<Box<dyn Target<MemPlatform>>, TargetError> {
        Ok(Box::new(Bell { events: ctx.events.clone() }))
    }
}

impl Target<MemPlatform> for Bell {
    fn map(&self, _: &Segment, mapper: &mut Mapper<'_, MemPlatform>) {
        mapper.zero_fill();
    }

    fn status(&self, _: StatusKind, _: &mut String) {}

    fn message(&self, argv: &[String]) -> Result<Option<String>, TargetError> {
        match argv.split_first() {
            Some((ring, rest)) if ring == "ring" => {
                let n: u32 = rest.first().map_or(Ok(1), |n| n.parse()).map_err(|_| TargetError::invalid("count?"))?;
                (0..n).for_each(|_| self.events.trigger());
                Ok(None)
            }
            Some((ask, rest)) if ask == "ask" => Ok(Some(rest.iter().rev().cloned().collect::<Vec<_>>().join(" "))),
            _ => Err(TargetError::invalid("bell: unknown message")),
        }
    }
}

fn core() -> (Arc<Core<MemPlatform>>, MemPlatform) {
    let (core, platform) = MemPlatform::new_core();
    platform.add_disk("/dev/vda", DevT::new(254, 0), 8192);
    core.targets().register(Arc::new(BellType)).unwrap();
    (core, platform)
}

fn name(n: &str) -> DeviceRef {
    DeviceRef::Name(n.to_string())
}

fn device(c: &Client<impl Transport>, n: &str, lines: &[&str]) {
    c.create(n, None, false).unwrap();
    let lines: Vec<_> = lines.iter().map(|l| l.parse().unwrap()).collect();
    c.reload(&name(n), &lines).unwrap();
    c.resume(&name(n)).unwrap();
}

/// What NetBSD's ioctl gives: the reply only.
struct IoctlLike<T>(T);

impl<T: Transport> Transport for IoctlLike<T> {
    fn call(&self, request: &[u8]) -> io::Result<RawReply> {
        let raw = self.0.call(request)?;
        Ok(RawReply { command_errno: None, detail: None, ..raw })
    }
}

struct Recorder(RefCell<Vec<String>>, LocalTransport<MemPlatform>);

impl Transport for Recorder {
    fn call(&self, request: &[u8]) -> io::Result<RawReply> {
        self.0.borrow_mut().push(String::from_utf8_lossy(request).into_owned());
        self.1.call(request)
    }
}

#[test]
fn message_answers_and_refusals() {
    let (core, _) = core();
    let c = Client::new(LocalTransport::new(core));
    device(&c, "b", &["0 100 linear /dev/vda 0", "100 100 bell"]);
    assert_eq!(c.message(&name("b"), 150, "ask one two  three").unwrap().as_deref(), Some("three two one"));
    assert_eq!(c.message(&name("b"), 100, "ring").unwrap(), None);
    let e = c.message(&name("b"), 0, "ask x").unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL));
    assert_eq!(e.detail(), Some("Target type does not support messages"));
    assert_eq!(e.to_string(), "message of b failed: Invalid argument (EINVAL): Target type does not support messages");
    let e = c.message(&name("b"), 150, "frob").unwrap_err();
    assert_eq!(e.detail(), Some("bell: unknown message"));
    let e = c.message(&name("nosuch"), 0, "ask").unwrap_err();
    assert!(e.is_not_found());
    assert!(matches!(e.kind, ErrorKind::Command { errno: Errno::ENOENT, .. }));
}

#[test]
fn requests_carry_dragonflys_keys_and_lvm2s_versions() {
    let (core, _) = core();
    let c = Client::new(Recorder(Default::default(), LocalTransport::new(core)));
    device(&c, "b", &["0 100 bell"]);
    c.message(&name("b"), 7, "ask a&b").unwrap();
    c.wait_event(&name("b"), 3).unwrap();
    c.remove_all().unwrap();
    let sent = c.transport().0.borrow();
    let n = sent.len();
    let expect = |command: &str, version: &str, flags: &str, extra: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple Computer//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n\t<key>cmd_data</key>\n\t<array/>\n\t<key>command</key>\n\t<string>{command}</string>\n{extra}\t<key>version</key>\n\t<array>\n\t\t<integer>0x4</integer>\n\t\t<integer>{version}</integer>\n\t\t<integer>0x0</integer>\n\t</array>\n</dict>\n</plist>\n"
        )
        .replace("{flags}", flags)
    };
    let ev = |v: &str| {
        format!("\t<key>event_nr</key>\n\t<integer>{v}</integer>\n\t<key>flags</key>\n\t<integer>{{flags}}</integer>\n")
    };
    let name_key = "\t<key>name</key>\n\t<string>b</string>\n";
    // message: lvm2's version 4.2.0, then DragonFly's top-level `message` and `sector`.
    assert_eq!(
        sent[n - 3],
        expect(
            "message",
            "0x2",
            "0x4",
            &format!("{}\t<key>message</key>\n\t<string>ask a&amp;b</string>\n{name_key}\t<key>sector</key>\n\t<integer>0x7</integer>\n", ev("0x0"))
        )
    );
    assert_eq!(sent[n - 2], expect("waitevent", "0x0", "0x4", &format!("{}{name_key}", ev("0x3"))));
    assert_eq!(sent[n - 1], expect("remove_all", "0x0", "0x4", &ev("0x0")));
    assert!(!Request::new(Command::RemoveAll).command().names_device());
}

#[test]
fn wait_event_returns_the_state_with_the_new_counter() {
    let (core, platform) = core();
    let c = Client::new(LocalTransport::new(core.clone()));
    device(&c, "b", &["0 100 bell"]);
    // Already different: at once.
    let info = c.wait_event(&name("b"), 9).unwrap();
    assert_eq!((info.name.as_str(), info.minor, info.event_nr, info.live_table), ("b", 1, 0, true));
    // Equal: the driver waits; the events come from a message meanwhile.
    let rung = Arc::new(AtomicU32::new(0));
    let hook_rung = rung.clone();
    let hook_core = core.clone();
    platform.set_wait_hook(Some(Box::new(move |_: &MemPlatform| {
        hook_rung.fetch_add(1, Ordering::SeqCst);
        let c = Client::new(LocalTransport::new(hook_core.clone()));
        c.message(&name("b"), 0, "ring 2").unwrap();
        true
    })));
    let info = c.wait_event(&name("b"), 0).unwrap();
    platform.set_wait_hook(None);
    assert_eq!(rung.load(Ordering::SeqCst), 1);
    assert_eq!(info.event_nr, 2);
    assert_eq!(c.info(&name("b")).unwrap().event_nr, 2);
    // Interrupted.
    platform.interrupt_waits(true);
    let e = c.wait_event(&name("b"), 2).unwrap_err();
    platform.interrupt_waits(false);
    assert_eq!(e.errno(), Some(Errno::EINTR));
    // Over NetBSD's ioctl the errno is swallowed; a reply without the info keys is a failure.
    platform.interrupt_waits(true);
    let ioctl = Client::new(IoctlLike(LocalTransport::new(core.clone())));
    let e = ioctl.wait_event(&name("b"), 2).unwrap_err();
    platform.interrupt_waits(false);
    assert_eq!(e.errno(), Some(Errno::EINVAL));
    assert_eq!(ioctl.wait_event(&name("b"), 0).unwrap().event_nr, 2);
}

#[test]
fn remove_all_keeps_open_devices() {
    let (core, _) = core();
    let c = Client::new(LocalTransport::new(core.clone()));
    device(&c, "a", &["0 100 bell"]);
    device(&c, "b", &["0 100 bell"]);
    core.open(2).unwrap();
    c.remove_all().unwrap();
    let names: Vec<String> = c.names().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, vec!["b"]);
    core.close(2);
    c.remove_all().unwrap();
    assert!(c.names().unwrap().is_empty());
    // Privileged.
    let user = Client::new(LocalTransport::with_caller(core, dmcore::Caller { privileged: false }));
    assert_eq!(user.remove_all().unwrap_err().errno(), Some(Errno::EPERM));
}
