//! `delay <dev> <offset> <ms> [<wdev> <woff> <wms> [<fdev> <foff> <fms>]]`: Linux's delay target
//! (version 1.3.0 as Linux 6.1 reports it).
//!
//! Requests are sorted into three classes, as Linux does: reads; writes, discards and
//! write-zeroes; and flushes (Linux's `REQ_PREFLUSH` writes: in this core's model, [`Op::Flush`].
//! A FUA write carries no preflush and stays a write, as in Linux). Each class has a device, an
//! offset and a delay in milliseconds: with 3 arguments all three classes share the one triple,
//! with 6 flushes use the write triple. A request is held for exactly its class's delay on the
//! platform's clock, then remapped like linear to its class's device; a class with delay 0 is
//! remapped at once.
//!
//! Holding: each class keeps its held requests in a FIFO ([`VecDeque`] of [`QueuedIo`], the one
//! allocation of this target's I/O path: capacity is reserved when the table is loaded and only
//! grows, fallibly, past that; a request that cannot be held fails with `ENOMEM`). Since a
//! class's delay is fixed, its FIFO is also in deadline order, so one platform timer per class,
//! armed at the deadline of the class's oldest request, releases every request at its own
//! deadline. Requests due at the same instant are released in arrival order across classes, as
//! Linux's single list does.
//!
//! Suspend: [`Target::presuspend`] stops holding new requests and releases every held one at
//! once (Linux's `delay_presuspend`, which does so whether or not the suspend is noflush), so a
//! suspend waits for none of them; [`Target::resume`] holds requests again.
//!
//! Status: INFO `<reads> <writes> <flushes>`, the requests held now in each class; TABLE the
//! triples as given (3, 6 or 9 arguments); IMA empty, as Linux 6.1's `delay_status` writes it.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use core::fmt::Write;

use super::{args, BuildContext, StatusKind, Target, TargetError, TargetType};
use crate::errno::Errno;
use crate::io::{Mapper, QueuedIo, Segment};
use crate::platform::{DevT, LowerDisk, Op, Platform, Work};

pub struct DelayType;

/// Linux 6.1's delay version.
const VERSION: [u32; 3] = [1, 3, 0];

/// Requests each class can hold without allocating, reserved when the table is loaded.
const RESERVED_PER_CLASS: usize = 64;

const NS_PER_MS: u64 = 1_000_000;

/// The class indexes: reads, writes, flushes.
const READ: usize = 0;
const WRITE: usize = 1;
const FLUSH: usize = 2;

impl<P: Platform> TargetType<P> for DelayType {
    fn name(&self) -> &str {
        "delay"
    }

    fn version(&self) -> [u32; 3] {
        VERSION
    }

    fn construct(&self, ctx: &BuildContext<'_, P>, argv: &[String]) -> Result<Box<dyn Target<P>>, TargetError> {
        if !matches!(argv.len(), 3 | 6 | 9) {
            return Err(TargetError::invalid("Requires exactly 3, 6 or 9 arguments"));
        }
        // Linux reads the classes in order, each from its own triple or the one before it.
        let read = class(ctx, argv.get(0..3))?;
        let write = class(ctx, argv.get(3..6).or(argv.get(0..3)))?;
        let flush = class(ctx, argv.get(6..9).or(argv.get(3..6)).or(argv.get(0..3)))?;
        let shared = Arc::new_cyclic(|me: &Weak<Shared<P>>| Shared {
            platform: ctx.platform.clone(),
            classes: [read, write, flush],
            argc: argv.len(),
            state: spin::Mutex::new(State::new()),
            tick: Arc::new(Tick(me.clone())),
        });
        Ok(Box::new(Delay { shared }))
    }
}

/// Parses and opens one `<dev> <offset> <delay>` triple.
fn class<P: Platform>(ctx: &BuildContext<'_, P>, triple: Option<&[String]>) -> Result<Class<P>, TargetError> {
    let Some([dev, offset, delay]) = triple else {
        return Err(TargetError::invalid("Requires exactly 3, 6 or 9 arguments"));
    };
    let offset = args::parse_u64(offset).ok_or_else(|| TargetError::invalid("Invalid device sector"))?;
    let delay_ms = args::parse_u32(delay).ok_or_else(|| TargetError::invalid("Invalid delay"))?;
    let disk = ctx.open_area(dev, offset, ctx.len)?;
    Ok(Class { disk, offset, delay_ms })
}

struct Class<P: Platform> {
    disk: P::Disk,
    offset: u64,
    delay_ms: u32,
}

impl<P: Platform> Class<P> {
    fn delay_ns(&self) -> u64 {
        u64::from(self.delay_ms) * NS_PER_MS
    }

    /// Where a piece of the line lands on this class's device (flushes carry no sector).
    fn sector(&self, seg: &Segment) -> u64 {
        if seg.op == Op::Flush {
            0
        } else {
            self.offset.saturating_add(seg.offset)
        }
    }
}

/// The class of a request, as Linux's `delay_map` chooses it from the bio's direction and
/// `REQ_PREFLUSH`.
fn class_of(op: Op) -> usize {
    match op {
        Op::Read => READ,
        Op::Flush => FLUSH,
        Op::Write | Op::Discard | Op::WriteZeroes => WRITE,
    }
}

/// A request being held.
struct Held<P: Platform> {
    /// When it is released, on the platform's clock.
    due_ns: u64,
    /// Arrival order, across classes.
    seq: u64,
    io: QueuedIo<P>,
}

struct State<P: Platform> {
    queues: [VecDeque<Held<P>>; 3],
    /// Per class: the deadline a timer was last armed for.
    armed_at: [Option<u64>; 3],
    /// False between presuspend and resume: requests pass without delay.
    may_delay: bool,
    /// One releaser at a time, so that released requests are issued in order.
    releasing: bool,
    /// Another release was asked for while one ran: it runs again before it stops.
    rerun: bool,
    next_seq: u64,
}

impl<P: Platform> State<P> {
    fn new() -> Self {
        let queue = || {
            let mut q = VecDeque::new();
            // Best effort: without the reserve, holding allocates (fallibly) as it goes.
            let _ = q.try_reserve(RESERVED_PER_CLASS);
            q
        };
        State {
            queues: [queue(), queue(), queue()],
            armed_at: [None; 3],
            may_delay: true,
            releasing: false,
            rerun: false,
            next_seq: 0,
        }
    }

    /// Takes the next request to release: among the classes whose oldest request is due (all
    /// are, while delaying is off), the one that arrived first.
    fn pop_due(&mut self, now: u64) -> Option<(usize, Held<P>)> {
        let may_delay = self.may_delay;
        let (class, _) = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().filter(|h| !may_delay || h.due_ns <= now).map(|h| (i, h.seq)))
            .min_by_key(|&(_, seq)| seq)?;
        let held = self.queues.get_mut(class)?.pop_front()?;
        Some((class, held))
    }

    /// Whether class `class` needs a timer for a request due at `due`: unless one is already
    /// armed for a later instant (which, deadlines being in FIFO order, is this same request's).
    fn arm(&mut self, class: usize, due: u64, now: u64) -> bool {
        let Some(armed) = self.armed_at.get_mut(class) else {
            return false;
        };
        if armed.is_some_and(|at| at > now) {
            return false;
        }
        *armed = Some(due);
        true
    }
}

/// The state of one delay line, shared with its timer.
struct Shared<P: Platform> {
    platform: P,
    classes: [Class<P>; 3],
    /// How many arguments the line had: TABLE reproduces the same form.
    argc: usize,
    state: spin::Mutex<State<P>>,
    tick: Arc<Tick<P>>,
}

/// The timer's work: holds the line weakly, so that a timer still pending when the table goes
/// away keeps neither the table nor its devices open.
struct Tick<P: Platform>(Weak<Shared<P>>);

impl<P: Platform> Work for Tick<P> {
    fn run(&self) {
        if let Some(shared) = self.0.upgrade() {
            shared.release();
        }
    }
}

impl<P: Platform> Shared<P> {
    fn arm_timer(&self, at_ns: u64) {
        let work: Arc<dyn Work> = self.tick.clone();
        self.platform.queue_work(work, Some(at_ns));
    }

    /// Sends the piece to its class's device.
    fn remap_held(&self, class: usize, io: QueuedIo<P>) {
        match self.classes.get(class) {
            Some(c) => {
                let sector = c.sector(io.segment());
                io.remap(&c.disk, sector);
            }
            None => io.finish(Err(Errno::EIO)),
        }
    }

    /// Releases every held request that is due (every one, while delaying is off), oldest
    /// first, then re-arms the timers of the classes that still hold requests.
    fn release(&self) {
        {
            let mut st = self.state.lock();
            if st.releasing {
                st.rerun = true;
                return;
            }
            st.releasing = true;
        }
        let mut rearm: [Option<u64>; 3] = [None; 3];
        loop {
            let now = self.platform.now_ns();
            let next = {
                let mut st = self.state.lock();
                match st.pop_due(now) {
                    Some(next) => Some(next),
                    None if st.rerun => {
                        st.rerun = false;
                        continue;
                    }
                    None => {
                        st.releasing = false;
                        for (class, slot) in rearm.iter_mut().enumerate() {
                            let head = st.queues.get(class).and_then(|q| q.front()).map(|h| h.due_ns);
                            if let Some(due) = head {
                                if st.arm(class, due, now) {
                                    *slot = Some(due);
                                }
                            }
                        }
                        None
                    }
                }
            };
            // Issued outside the lock: a child may complete (and call back) at once.
            match next {
                Some((class, held)) => self.remap_held(class, held.io),
                None => break,
            }
        }
        for at in rearm.into_iter().flatten() {
            self.arm_timer(at);
        }
    }
}

struct Delay<P: Platform> {
    shared: Arc<Shared<P>>,
}

impl<P: Platform> Target<P> for Delay<P> {
    fn map(&self, seg: &Segment, mapper: &mut Mapper<'_, P>) {
        let sh = &*self.shared;
        let class = class_of(seg.op);
        let Some(c) = sh.classes.get(class) else {
            return mapper.fail(Errno::EIO);
        };
        if c.delay_ms == 0 {
            return mapper.remap(&c.disk, c.sector(seg));
        }
        let now = sh.platform.now_ns();
        let due_ns = now.saturating_add(c.delay_ns());
        let arm = {
            let mut st = sh.state.lock();
            if !st.may_delay {
                None
            } else {
                let seq = st.next_seq;
                let reserved = st.queues.get_mut(class).map(|q| q.try_reserve(1).is_ok());
                match reserved {
                    Some(true) => {
                        st.next_seq = seq.wrapping_add(1);
                        let io = mapper.queue();
                        if let Some(q) = st.queues.get_mut(class) {
                            q.push_back(Held { due_ns, seq, io });
                        }
                        Some(st.arm(class, due_ns, now))
                    }
                    _ => {
                        drop(st);
                        return mapper.fail(Errno::ENOMEM);
                    }
                }
            }
        };
        match arm {
            // Delaying is off (between presuspend and resume): straight through.
            None => mapper.remap(&c.disk, c.sector(seg)),
            Some(true) => sh.arm_timer(due_ns),
            Some(false) => {}
        }
    }

    fn presuspend(&self, _noflush: bool) {
        self.shared.state.lock().may_delay = false;
        self.shared.release();
    }

    fn resume(&self) {
        self.shared.state.lock().may_delay = true;
    }

    fn status(&self, kind: StatusKind, out: &mut String) {
        let sh = &*self.shared;
        match kind {
            StatusKind::Info => {
                let held = {
                    let st = sh.state.lock();
                    [READ, WRITE, FLUSH].map(|c| st.queues.get(c).map_or(0, VecDeque::len))
                };
                let [r, w, f] = held;
                let _ = write!(out, "{r} {w} {f}");
            }
            StatusKind::Table => {
                let shown = match sh.argc {
                    9 => 3,
                    6 => 2,
                    _ => 1,
                };
                for (i, c) in sh.classes.iter().take(shown).enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "{} {} {}", c.disk.dev(), c.offset, c.delay_ms);
                }
            }
            StatusKind::Ima => {}
        }
    }

    fn devices(&self, f: &mut dyn FnMut(DevT)) {
        for c in &self.shared.classes {
            f(c.disk.dev());
        }
    }
}
