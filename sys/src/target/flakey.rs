//! `flakey <dev> <offset> <up interval> <down interval> [<#feature args> <feature args>...]`:
//! Linux's flakey target (version 1.5.0, as Linux 6.1 reports it).
//!
//! The line maps like linear while the device is up. Intervals are whole seconds on the
//! platform's clock, counted from when the table was loaded (the constructor ran): the device is
//! down while `elapsed % (up + down) >= up`. While down, what happens depends on the features:
//!
//! - `error_reads`: reads fail with `EIO`;
//! - `drop_writes`: writes (and flushes, discards, write-zeroes: Linux counts every request
//!   that is not a read as a write) complete without reaching the device;
//! - `error_writes`: they fail with `EIO`;
//! - `corrupt_bio_byte <Nth> <r|w> <value> <flags>`: byte `Nth` (1-based) of each matching read
//!   or write is set to `value`; a request matches when it has every bit of `flags` in Linux's
//!   `bi_opf` encoding (see [`linux_opf`]);
//! - `random_read_corrupt <p>` / `random_write_corrupt <p>`: with probability `p / 1e9`, one
//!   byte at a random position of the read or written data gets a random value (a small seeded
//!   generator, no floating point).
//!
//! With none of them (no feature, or only zero probabilities) every read and write fails while
//! down, which is Linux 6.1's default and what Linux 6.12 spells `error_reads error_writes`.
//! Reads and writes that no feature touches pass through while down.
//!
//! Versions: Linux 6.1 knows `drop_writes`, `error_writes` and `corrupt_bio_byte`, and so do
//! its messages and TABLE line, which this target reproduces byte for byte (the feature count is
//! always printed, and every word is followed by a space: `254:0 0 1 1 0 `). `error_reads` and
//! the random corruptions are Linux 6.12's (6.1 refuses them as "Unrecognised flakey feature
//! requested"); they are accepted here with 6.12's checks and messages, and printed in the same
//! 6.1 style (`... 2 random_read_corrupt 100 `).
//!
//! Corruption that shows: Linux 6.1 corrupts a read at completion through the bio's exhausted
//! iterator, so `corrupt_bio_byte ... r ...` has no visible effect there (recorded in
//! 05-flakey.txt); 6.12 fixed it. Here a read to corrupt is done by the target's worker, which
//! reads into the request's buffer and then changes the byte, so the caller does see it. A write
//! to corrupt is copied into the target's own buffer, corrupted there and written by the worker,
//! so that the caller's buffer stays as it was, as 6.12 does by cloning the bio (6.1 corrupted
//! the caller's pages in place). These corrupting paths, only taken while down, use a scratch
//! buffer that is reused (grown fallibly; a write that cannot get one is written uncorrupted, as
//! 6.12 does when its clone fails) and a queue with a reserve set up at load.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::fmt::Write;
use core::num::NonZeroU64;
use core::sync::atomic::{AtomicU64, Ordering};

use super::{args, BuildContext, StatusKind, Target, TargetError, TargetType};
use crate::errno::Errno;
use crate::io::{Mapper, QueuedIo, Segment, SECTOR_SIZE};
use crate::platform::{DevT, DiskIo, LowerDisk, Op, Platform, Work};

pub struct FlakeyType;

/// Linux 6.1's (and 6.12's) flakey version.
const VERSION: [u32; 3] = [1, 5, 0];

/// The denominator of the random corruption probabilities (Linux's `PROBABILITY_BASE`).
pub const PROBABILITY_BASE: u32 = 1_000_000_000;

/// Most feature arguments: Linux 6.1's bound (its features take at most 1 + 5), and 6.12's
/// when a 6.12-only feature is among them.
const MAX_FEATURE_ARGS_6_1: u32 = 6;
const MAX_FEATURE_ARGS: u32 = 11;

/// The feature words Linux 6.1 does not know.
const NEWER_FEATURES: [&str; 3] = ["error_reads", "random_read_corrupt", "random_write_corrupt"];

const NS_PER_SEC: u64 = 1_000_000_000;

/// Requests the worker can have waiting without allocating, reserved when the table is loaded.
const RESERVED_PENDING: usize = 16;

/// Linux's `REQ_OP_WRITE`, `REQ_FUA` (bit 17) and `REQ_PREFLUSH` (bit 18) in `bi_opf` (6.1).
const REQ_OP_WRITE: u32 = 1;
const REQ_OP_DISCARD: u32 = 3;
const REQ_OP_WRITE_ZEROES: u32 = 9;
const REQ_FUA: u32 = 1 << 17;
const REQ_PREFLUSH: u32 = 1 << 18;

/// The `bi_opf` Linux would give a request of this core: its operation code, and `REQ_FUA`
/// for FUA (a flush is an empty `REQ_OP_WRITE | REQ_PREFLUSH`). Flags this core's requests do not
/// carry (`REQ_SYNC`, `REQ_META`, ...) are never set, so a `corrupt_bio_byte` mask naming them
/// matches nothing here, where Linux would match, say, `REQ_SYNC` (2048) on every direct write
/// (seen in the oracle VM; `REQ_FUA`, 131072, matched `dd oflag=direct,sync` there and matches a
/// FUA write here).
pub fn linux_opf(op: Op, fua: bool) -> u32 {
    let code = match op {
        Op::Read => 0,
        Op::Write => REQ_OP_WRITE,
        Op::Flush => REQ_OP_WRITE | REQ_PREFLUSH,
        Op::Discard => REQ_OP_DISCARD,
        Op::WriteZeroes => REQ_OP_WRITE_ZEROES,
    };
    if fua {
        code | REQ_FUA
    } else {
        code
    }
}

/// `corrupt_bio_byte <Nth> <r|w> <value> <flags>`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct CorruptByte {
    /// 1-based position in the request's data.
    nth: u32,
    write: bool,
    value: u8,
    flags: u32,
}

/// The features of a line, as given.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct Features {
    error_reads: bool,
    drop_writes: bool,
    error_writes: bool,
    corrupt: Option<CorruptByte>,
    random_read: u32,
    random_write: u32,
}

impl Features {
    /// Linux's default when nothing is asked for: every read and write fails while down.
    fn none_given(&self) -> bool {
        !self.error_reads
            && !self.drop_writes
            && !self.error_writes
            && self.corrupt.is_none()
            && self.random_read == 0
            && self.random_write == 0
    }
}

fn invalid(message: &'static str) -> TargetError {
    TargetError::invalid(message)
}

/// A number in `min..=max`, as Linux's `dm_read_arg` reads it; `message` when it is missing,
/// not a number, or out of range.
fn read_arg<'a>(
    argv: &mut impl Iterator<Item = &'a String>,
    min: u32,
    max: u32,
    message: &'static str,
) -> Result<u32, TargetError> {
    argv.next().and_then(|a| args::parse_u32(a)).filter(|v| (min..=max).contains(v)).ok_or_else(|| invalid(message))
}

/// Parses the optional feature arguments with Linux 6.1's checks and messages, and 6.12's for
/// the features 6.1 does not have.
fn parse_features(rest: &[String]) -> Result<Features, TargetError> {
    let mut f = Features::default();
    let Some((count, words)) = rest.split_first() else {
        return Ok(f);
    };
    // dm_read_arg_group: a number in range, and no more than the arguments that follow. The
    // range is 6.1's unless the counted words use a 6.12 feature, so that a 6.1 line is refused
    // exactly when 6.1 refuses it.
    let count = args::parse_u32(count)
        .filter(|&n| n as usize <= words.len())
        .filter(|&n| {
            let counted = words.get(..n as usize).unwrap_or_default();
            let newer = counted.iter().any(|w| NEWER_FEATURES.iter().any(|f| w.eq_ignore_ascii_case(f)));
            n <= if newer { MAX_FEATURE_ARGS } else { MAX_FEATURE_ARGS_6_1 }
        })
        .ok_or_else(|| invalid("Invalid number of feature args"))?;
    let mut argv = words.iter();
    // Linux counts down an unsigned argc that corrupt_bio_byte's parameters may take below
    // zero (it wraps): the loop then goes on until the words run out.
    let mut argc = i64::from(count);
    while argc != 0 {
        let Some(name) = argv.next() else {
            return Err(invalid("Insufficient feature arguments"));
        };
        argc -= 1;
        if name.eq_ignore_ascii_case("error_reads") {
            if f.error_reads {
                return Err(invalid("Feature error_reads duplicated"));
            }
            f.error_reads = true;
        } else if name.eq_ignore_ascii_case("drop_writes") {
            if f.drop_writes {
                return Err(invalid("Feature drop_writes duplicated"));
            } else if f.error_writes {
                return Err(invalid("Feature drop_writes conflicts with feature error_writes"));
            }
            f.drop_writes = true;
        } else if name.eq_ignore_ascii_case("error_writes") {
            if f.error_writes {
                return Err(invalid("Feature error_writes duplicated"));
            } else if f.drop_writes {
                return Err(invalid("Feature error_writes conflicts with feature drop_writes"));
            }
            f.error_writes = true;
        } else if name.eq_ignore_ascii_case("corrupt_bio_byte") {
            // 6.1 lets a second corrupt_bio_byte replace the first.
            if argc == 0 {
                return Err(invalid("Feature corrupt_bio_byte requires parameters"));
            }
            let nth = read_arg(&mut argv, 1, u32::MAX, "Invalid corrupt bio byte")?;
            argc -= 1;
            let write = match argv.next() {
                Some(d) if d.eq_ignore_ascii_case("w") => true,
                Some(d) if d.eq_ignore_ascii_case("r") => false,
                _ => return Err(invalid("Invalid corrupt bio direction (r or w)")),
            };
            argc -= 1;
            let value = read_arg(&mut argv, 0, 255, "Invalid corrupt value to write into bio byte (0-255)")?;
            argc -= 1;
            let flags = read_arg(&mut argv, 0, u32::MAX, "Invalid corrupt bio flags mask")?;
            argc -= 1;
            let value =
                u8::try_from(value).map_err(|_| invalid("Invalid corrupt value to write into bio byte (0-255)"))?;
            f.corrupt = Some(CorruptByte { nth, write, value, flags });
        } else if name.eq_ignore_ascii_case("random_read_corrupt") {
            if f.random_read != 0 {
                return Err(invalid("Feature random_read_corrupt duplicated"));
            } else if argc == 0 {
                return Err(invalid("Feature random_read_corrupt requires a parameter"));
            }
            f.random_read = read_arg(&mut argv, 0, PROBABILITY_BASE, "Invalid random corrupt argument")?;
            argc -= 1;
        } else if name.eq_ignore_ascii_case("random_write_corrupt") {
            if f.random_write != 0 {
                return Err(invalid("Feature random_write_corrupt duplicated"));
            } else if argc == 0 {
                return Err(invalid("Feature random_write_corrupt requires a parameter"));
            }
            f.random_write = read_arg(&mut argv, 0, PROBABILITY_BASE, "Invalid random corrupt argument")?;
            argc -= 1;
        } else {
            return Err(invalid("Unrecognised flakey feature requested"));
        }
    }
    // Words after the counted ones are ignored, as Linux ignores them.
    let corrupt_w = f.corrupt.is_some_and(|c| c.write);
    let corrupt_r = f.corrupt.is_some_and(|c| !c.write);
    if f.drop_writes && corrupt_w {
        return Err(invalid("drop_writes is incompatible with corrupt_bio_byte with the WRITE flag set"));
    } else if f.error_writes && corrupt_w {
        return Err(invalid("error_writes is incompatible with corrupt_bio_byte with the WRITE flag set"));
    } else if f.drop_writes && f.random_write != 0 {
        return Err(invalid(
            "drop_writes is incompatible with random_write_corrupt or corrupt_bio_byte with the WRITE flag set",
        ));
    } else if f.error_writes && f.random_write != 0 {
        return Err(invalid(
            "error_writes is incompatible with random_write_corrupt or corrupt_bio_byte with the WRITE flag set",
        ));
    } else if f.error_reads && (corrupt_r || f.random_read != 0) {
        return Err(invalid(
            "error_reads is incompatible with random_read_corrupt or corrupt_bio_byte with the READ flag set",
        ));
    }
    Ok(f)
}

impl<P: Platform> TargetType<P> for FlakeyType {
    fn name(&self) -> &str {
        "flakey"
    }

    fn version(&self) -> [u32; 3] {
        VERSION
    }

    fn construct(&self, ctx: &BuildContext<'_, P>, argv: &[String]) -> Result<Box<dyn Target<P>>, TargetError> {
        let [dev, offset, up, down, rest @ ..] = argv else {
            return Err(invalid("Invalid argument count"));
        };
        let start_ns = ctx.platform.now_ns();
        let offset = args::parse_u64(offset).ok_or_else(|| invalid("Invalid device sector"))?;
        let up = args::parse_u32(up).ok_or_else(|| invalid("Invalid up interval"))?;
        // Linux 6.1 checks the down interval against the up interval's bounds and message
        // (6.12 has "Invalid down interval").
        let down = args::parse_u32(down).ok_or_else(|| invalid("Invalid up interval"))?;
        // Unsigned 32-bit sums, as Linux computes them: 1 + 4294967295 is "zero".
        let period = up.wrapping_add(down);
        let Some(period) = NonZeroU64::new(period.into()) else {
            return Err(invalid("Total (up + down) interval is zero"));
        };
        if period.get() < u64::from(up) {
            return Err(invalid("Interval overflow"));
        }
        let features = parse_features(rest)?;
        let disk = ctx.open_area(dev, offset, ctx.len)?;
        let all_io = features.none_given();
        let shared = Arc::new_cyclic(|me: &Weak<Shared<P>>| Shared {
            platform: ctx.platform.clone(),
            disk,
            offset,
            pending: spin::Mutex::new({
                let mut q = VecDeque::new();
                let _ = q.try_reserve(RESERVED_PENDING);
                q
            }),
            scratch: spin::Mutex::new(Vec::new()),
            worker: Arc::new(Worker(me.clone())),
        });
        Ok(Box::new(Flakey {
            shared,
            start_ns,
            up: u64::from(up),
            period,
            features,
            error_reads: features.error_reads || all_io,
            error_writes: features.error_writes || all_io,
            rng: AtomicU64::new(seed(start_ns, ctx.start)),
        }))
    }
}

/// A seed for the line's generator: fixed for a given load time and position, so that runs on
/// the in-memory platform's virtual clock repeat exactly.
fn seed(start_ns: u64, line_start: u64) -> u64 {
    0x5eed_f1a4_e7d0_0001 ^ start_ns ^ line_start.rotate_left(32)
}

/// splitmix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the worker does with a piece.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Corruption {
    /// `corrupt_bio_byte`: byte `nth - 1` gets `value`.
    fixed: Option<(u32, u8)>,
    /// A random byte gets a random value: the two random numbers to use.
    random: Option<u64>,
}

struct Pending<P: Platform> {
    io: QueuedIo<P>,
    corruption: Corruption,
}

/// What the worker needs, shared with it.
struct Shared<P: Platform> {
    platform: P,
    disk: P::Disk,
    offset: u64,
    pending: spin::Mutex<VecDeque<Pending<P>>>,
    /// The buffer corrupted writes are built in, reused from one to the next.
    scratch: spin::Mutex<Vec<u8>>,
    worker: Arc<Worker<P>>,
}

/// The worker's work item: holds the line weakly (a late run finds nothing to do).
struct Worker<P: Platform>(Weak<Shared<P>>);

impl<P: Platform> Work for Worker<P> {
    fn run(&self) {
        if let Some(shared) = self.0.upgrade() {
            shared.work();
        }
    }
}

impl Corruption {
    fn apply(&self, data: &mut [u8]) {
        if let Some((nth, value)) = self.fixed {
            let at = usize::try_from(nth).ok().and_then(|n| n.checked_sub(1));
            if let Some(byte) = at.and_then(|i| data.get_mut(i)) {
                *byte = value;
            }
        }
        if let Some(rnd) = self.random {
            // Linux: get_random_u32() % size, and a random byte value.
            let at = (rnd & 0xffff_ffff).checked_rem(data.len() as u64);
            let value = (rnd >> 32) as u8;
            if let Some(byte) = at.and_then(|at| usize::try_from(at).ok()).and_then(|i| data.get_mut(i)) {
                *byte = value;
            }
        }
    }
}

impl<P: Platform> Shared<P> {
    fn sector(&self, seg: &Segment) -> u64 {
        self.offset.saturating_add(seg.offset)
    }

    /// Runs every piece handed to the worker.
    fn work(&self) {
        loop {
            let next = self.pending.lock().pop_front();
            let Some(p) = next else { break };
            match p.io.segment().op {
                Op::Read => self.read_corrupted(p),
                _ => self.write_corrupted(p),
            }
        }
    }

    /// Reads into the request's buffer and corrupts what arrived.
    fn read_corrupted(&self, p: Pending<P>) {
        let sector = self.sector(p.io.segment());
        let mut result = Ok(());
        let buffer = p.io.with_data(&mut |data| {
            result = self.platform.disk_io(&self.disk, sector, DiskIo::Read(data));
            if result.is_ok() {
                p.corruption.apply(data);
            }
        });
        p.io.finish(buffer.and(result));
    }

    /// Writes a corrupted copy of the request's data, leaving the caller's buffer alone.
    fn write_corrupted(&self, p: Pending<P>) {
        let seg = *p.io.segment();
        let sector = self.sector(&seg);
        let len = usize::try_from(seg.sectors.saturating_mul(SECTOR_SIZE)).unwrap_or(usize::MAX);
        // Take the scratch buffer out, so that the lock is not held across I/O.
        let mut buf = core::mem::take(&mut *self.scratch.lock());
        buf.clear();
        if buf.try_reserve(len).is_err() {
            // No memory for a copy: written as it is (Linux 6.12 when its clone fails).
            return p.io.remap(&self.disk, sector);
        }
        buf.resize(len, 0);
        let copied = p.io.with_data(&mut |data| {
            if let Some(dst) = buf.get_mut(..data.len()) {
                dst.copy_from_slice(data);
            }
        });
        let result = copied.and_then(|()| {
            p.corruption.apply(&mut buf);
            self.platform.disk_io(&self.disk, sector, DiskIo::Write { data: &buf, fua: seg.fua })
        });
        p.io.finish(result);
        let mut scratch = self.scratch.lock();
        if scratch.capacity() < buf.capacity() {
            *scratch = buf;
        }
    }
}

struct Flakey<P: Platform> {
    shared: Arc<Shared<P>>,
    /// When the table was loaded, on the platform's clock.
    start_ns: u64,
    up: u64,
    /// up + down.
    period: NonZeroU64,
    features: Features,
    /// What is failed while down: the features, or Linux's default when none was given.
    error_reads: bool,
    error_writes: bool,
    /// splitmix64's counter.
    rng: AtomicU64,
}

impl<P: Platform> Flakey<P> {
    fn is_down(&self) -> bool {
        let elapsed = self.shared.platform.now_ns().saturating_sub(self.start_ns) / NS_PER_SEC;
        elapsed % self.period >= self.up
    }

    fn random(&self) -> u64 {
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        mix(self.rng.fetch_add(GAMMA, Ordering::Relaxed).wrapping_add(GAMMA))
    }

    /// Whether an event of probability `p / PROBABILITY_BASE` happens now.
    fn chance(&self, p: u32) -> bool {
        p > 0 && self.random() % u64::from(PROBABILITY_BASE) < u64::from(p)
    }

    /// What to do to a data request while down, if anything.
    fn corruption(&self, seg: &Segment, write: bool) -> Option<Corruption> {
        let opf = linux_opf(seg.op, seg.fua);
        let fixed =
            self.features.corrupt.filter(|c| c.write == write && opf & c.flags == c.flags).map(|c| (c.nth, c.value));
        let p = if write { self.features.random_write } else { self.features.random_read };
        let random = self.chance(p).then(|| self.random());
        (fixed.is_some() || random.is_some()).then_some(Corruption { fixed, random })
    }

    /// Hands a piece to the worker.
    fn defer(&self, mapper: &mut Mapper<'_, P>, corruption: Corruption) {
        let sh = &*self.shared;
        {
            let mut pending = sh.pending.lock();
            if pending.try_reserve(1).is_err() {
                drop(pending);
                return mapper.fail(Errno::ENOMEM);
            }
            pending.push_back(Pending { io: mapper.queue(), corruption });
        }
        let work: Arc<dyn Work> = sh.worker.clone();
        sh.platform.queue_work(work, None);
    }
}

impl<P: Platform> Target<P> for Flakey<P> {
    fn map(&self, seg: &Segment, mapper: &mut Mapper<'_, P>) {
        let sh = &*self.shared;
        let sector = if seg.op == Op::Flush { 0 } else { sh.sector(seg) };
        if !self.is_down() {
            return mapper.remap(&sh.disk, sector);
        }
        if seg.op == Op::Read {
            if self.error_reads {
                return mapper.fail(Errno::EIO);
            }
            return match self.corruption(seg, false) {
                Some(c) => self.defer(mapper, c),
                None => mapper.remap(&sh.disk, sector),
            };
        }
        // Everything else is a write to Linux (bio_data_dir): flushes, discards included.
        if self.features.drop_writes {
            return; // completes, successfully, with nothing issued
        }
        if self.error_writes {
            return mapper.fail(Errno::EIO);
        }
        match self.corruption(seg, true).filter(|_| seg.op.has_data()) {
            Some(c) => self.defer(mapper, c),
            None => mapper.remap(&sh.disk, sector),
        }
    }

    fn status(&self, kind: StatusKind, out: &mut String) {
        match kind {
            // Linux writes nothing for INFO, nor for IMA (6.1 and 6.12 alike).
            StatusKind::Info | StatusKind::Ima => {}
            StatusKind::Table => {
                let f = &self.features;
                let count = u32::from(f.error_reads)
                    + u32::from(f.drop_writes)
                    + u32::from(f.error_writes)
                    + if f.corrupt.is_some() { 5 } else { 0 }
                    + if f.random_read > 0 { 2 } else { 0 }
                    + if f.random_write > 0 { 2 } else { 0 };
                let _ = write!(
                    out,
                    "{} {} {} {} {count} ",
                    self.shared.disk.dev(),
                    self.shared.offset,
                    self.up,
                    self.period.get() - self.up
                );
                if f.error_reads {
                    out.push_str("error_reads ");
                }
                if f.drop_writes {
                    out.push_str("drop_writes ");
                } else if f.error_writes {
                    out.push_str("error_writes ");
                }
                if let Some(c) = f.corrupt {
                    let dir = if c.write { 'w' } else { 'r' };
                    let _ = write!(out, "corrupt_bio_byte {} {dir} {} {} ", c.nth, c.value, c.flags);
                }
                if f.random_read > 0 {
                    let _ = write!(out, "random_read_corrupt {} ", f.random_read);
                }
                if f.random_write > 0 {
                    let _ = write!(out, "random_write_corrupt {} ", f.random_write);
                }
            }
        }
    }

    fn devices(&self, f: &mut dyn FnMut(DevT)) {
        f(self.shared.disk.dev());
    }
}
