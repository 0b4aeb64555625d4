//! dmsetup's `message`, `wait` and `remove_all`, and the Event number of `info`, through dmctl's
//! dmsetup front-end on the in-memory core; the refusal of a message compared with what Linux's
//! dmsetup printed (07-mirror.txt).

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use common::{golden, Harness};
use dmcore::io::{Mapper, Segment};
use dmcore::platform::mem::MemPlatform;
use dmcore::target::{BuildContext, EventSink, StatusKind, Target, TargetError, TargetType};

/// `bell`: `ring [n]` reports n events; `ask <words>` is answered with the words reversed;
/// `nl` is answered with a text that ends in a newline.
struct BellType;

struct Bell(EventSink);

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
        Ok(Box::new(Bell(ctx.events.clone())))
    }
}

impl Target<MemPlatform> for Bell {
    fn map(&self, _: &Segment, mapper: &mut Mapper<'_, MemPlatform>) {
        mapper.zero_fill();
    }

    fn status(&self, _: StatusKind, _: &mut String) {}

    fn message(&self, argv: &[String]) -> Result<Option<String>, TargetError> {
        match argv.split_first() {
            Some((w, rest)) if w == "ring" => {
                let n: u32 = rest.first().map_or(Ok(1), |n| n.parse()).map_err(|_| TargetError::invalid("count?"))?;
                (0..n).for_each(|_| self.0.trigger());
                Ok(None)
            }
            Some((w, rest)) if w == "ask" => Ok(Some(rest.iter().rev().cloned().collect::<Vec<_>>().join(" "))),
            Some((w, _)) if w == "nl" => Ok(Some("two\nlines\n".into())),
            _ => Err(TargetError::invalid("bell: unknown message")),
        }
    }
}

fn harness() -> Harness {
    let h = Harness::new();
    h.core.targets().register(Arc::new(BellType)).unwrap();
    h
}

fn info_block(name: &str, minor: u32, event_nr: u32, targets: u32) -> String {
    format!(
        "Name:              {name}\nState:             ACTIVE\nRead Ahead:        256\nTables present:    LIVE\n\
         Open count:        0\nEvent number:      {event_nr}\nMajor, minor:      253, {minor}\n\
         Number of targets: {targets}\n\n"
    )
}

#[test]
fn a_target_without_messages_refuses_as_linux_dmsetup_shows() {
    let h = harness();
    h.ok(&["dmsetup", "create", "md", "--table", "0 16384 linear /dev/vda 0"], "");
    let run = h.run(&["dmsetup", "message", "md", "0", "foo"], "");
    assert_eq!(run.status, 1);
    assert_eq!(run.out, "");
    // Linux 6.1 (07-mirror.txt): the same first line and "Command failed."; the kernel's log
    // line ("Target type does not support messages") is the driver's detail here.
    let linux = golden("07-mirror.txt");
    let linux_lines: Vec<&str> =
        linux.lines().skip_while(|l| *l != "$ dmsetup message md 0 foo").skip(1).take(2).collect();
    assert_eq!(linux_lines, ["device-mapper: message ioctl on md  failed: Invalid argument", "Command failed."]);
    assert_eq!(
        run.err,
        format!(
            "{}\ndevice-mapper: message: Target type does not support messages\n{}\n",
            linux_lines[0], linux_lines[1]
        )
    );
}

#[test]
fn message_prints_the_answer_on_a_line_of_its_own() {
    let h = harness();
    h.ok(&["dmsetup", "create", "b", "--table", "0 100 zero\n100 100 bell"], "");
    assert_eq!(h.ok(&["dmsetup", "message", "b", "150", "ask", "one", "two"], ""), "two one\n");
    // The words are joined by spaces and split again by the driver, as dmsetup does.
    assert_eq!(h.ok(&["dmsetup", "message", "b", "100", "ask a   b", "-c"], ""), "-c b a\n");
    assert_eq!(h.ok(&["dmsetup", "message", "b", "100", "nl"], ""), "two\nlines\n");
    assert_eq!(h.ok(&["dmsetup", "message", "b", "100", "ring"], ""), "");
    let run = h.run(&["dmsetup", "message", "b", "100", "frob"], "");
    assert_eq!(
        (run.status, run.err.as_str()),
        (1, "device-mapper: message ioctl on b  failed: Invalid argument\ndevice-mapper: message: bell: unknown message\nCommand failed.\n")
    );
    let run = h.run(&["dmsetup", "message", "b", "1x", "ring"], "");
    assert_eq!((run.status, run.err.as_str()), (1, "Invalid sector: 1x\nCommand failed.\n"));
    let run = h.run(&["dmsetup", "message", "nosuch", "0", "ring"], "");
    assert_eq!(run.status, 1);
    assert_eq!(run.err, "device-mapper: message ioctl on nosuch  failed: No such device\nCommand failed.\n");
    // Missing words: a usage error.
    assert_eq!(h.run(&["dmsetup", "message", "b", "0"], "").status, 2);
}

#[test]
fn info_shows_the_event_number_and_wait_waits_for_it() {
    let h = harness();
    h.ok(&["dmsetup", "create", "b", "--table", "0 100 bell"], "");
    assert_eq!(h.ok(&["dmsetup", "info", "b"], ""), info_block("b", 1, 0, 1));
    h.ok(&["dmsetup", "message", "b", "0", "ring", "3"], "");
    assert_eq!(h.ok(&["dmsetup", "info", "b"], ""), info_block("b", 1, 3, 1));
    // The counter differs from the one given (or from 0): at once.
    assert_eq!(h.ok(&["dmsetup", "wait", "b"], ""), info_block("b", 1, 3, 1));
    assert_eq!(h.ok(&["dmsetup", "wait", "b", "1"], ""), info_block("b", 1, 3, 1));
    // Equal: the driver waits until an event (made here by the platform's wait hook).
    let waits = Arc::new(AtomicU32::new(0));
    let hook_waits = waits.clone();
    let core = h.core.clone();
    h.platform.set_wait_hook(Some(Box::new(move |_: &MemPlatform| {
        hook_waits.fetch_add(1, Ordering::SeqCst);
        let c = dmclient::Client::new(dmclient::LocalTransport::new(core.clone()));
        c.message(&dmclient::DeviceRef::Name("b".into()), 0, "ring").unwrap();
        true
    })));
    let out = h.ok(&["dmsetup", "wait", "b", "3"], "");
    h.platform.set_wait_hook(None);
    assert_eq!(waits.load(Ordering::SeqCst), 1);
    assert_eq!(out, info_block("b", 1, 4, 1));
    // Interrupted: the errno of the wait.
    h.platform.interrupt_waits(true);
    let run = h.run(&["dmsetup", "wait", "b", "4"], "");
    h.platform.interrupt_waits(false);
    assert_eq!(
        (run.status, run.err.as_str()),
        (1, "device-mapper: waitevent ioctl on b  failed: Interrupted system call\nCommand failed.\n")
    );
    let run = h.run(&["dmsetup", "wait", "nosuch"], "");
    assert_eq!((run.status, run.err.as_str()), (1, "Device does not exist.\nCommand failed.\n"));
    let run = h.run(&["dmsetup", "wait", "b", "x1"], "");
    assert_eq!((run.status, run.err.as_str()), (1, "Invalid event number: x1\nCommand failed.\n"));
}

#[test]
fn remove_all_leaves_the_open_devices() {
    let h = harness();
    h.ok(&["dmsetup", "create", "a", "--table", "0 100 zero"], "");
    h.ok(&["dmsetup", "create", "b", "--table", "0 100 zero"], "");
    h.ok(&["dmsetup", "create", "c", "--notable"], "");
    h.core.open(2).unwrap();
    assert_eq!(h.ok(&["dmsetup", "remove_all"], ""), "");
    assert_eq!(h.ok(&["dmsetup", "ls"], ""), "b\t(253:2)\n");
    h.core.close(2);
    assert_eq!(h.ok(&["dmsetup", "remove_all"], ""), "");
    assert_eq!(h.ok(&["dmsetup", "ls"], ""), "No devices found\n");
}
