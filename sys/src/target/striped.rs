//! `striped <#stripes> <chunk sectors> (<dev> <offset>){#stripes}`: chunks of the line go round
//! the stripes in turn.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::num::NonZeroU64;
use core::sync::atomic::{AtomicU32, Ordering};

use super::{args, ima_name_version, BuildContext, EventSink, StatusKind, Target, TargetError, TargetType};
use crate::errno::Errno;
use crate::io::{Mapper, Segment};
use crate::platform::{DevT, LowerDisk, Op, Platform};

pub struct StripedType;

/// Linux 6.1's striped version.
const VERSION: [u32; 3] = [1, 6, 0];

impl<P: Platform> TargetType<P> for StripedType {
    fn name(&self) -> &str {
        "striped"
    }

    fn version(&self) -> [u32; 3] {
        VERSION
    }

    fn construct(&self, ctx: &BuildContext<'_, P>, argv: &[String]) -> Result<Box<dyn Target<P>>, TargetError> {
        let [count, chunk, pairs @ ..] = argv else {
            return Err(TargetError::invalid("Not enough arguments"));
        };
        // Non-zero by type: the mapping divides by both on every request.
        let count = args::parse_u32(count)
            .and_then(|n| NonZeroU64::new(n.into()))
            .ok_or_else(|| TargetError::invalid("Invalid stripe count"))?;
        let chunk = args::parse_u32(chunk)
            .and_then(|c| NonZeroU64::new(c.into()))
            .ok_or_else(|| TargetError::invalid("Invalid chunk_size"))?;
        if !ctx.len.is_multiple_of(count.get()) {
            return Err(TargetError::invalid("Target length not divisible by number of stripes"));
        }
        let width = ctx.len / count;
        if !width.is_multiple_of(chunk.get()) {
            return Err(TargetError::invalid("Target length not divisible by chunk size"));
        }
        if pairs.len() as u64 != 2 * count.get() {
            return Err(TargetError::invalid("Not enough destinations specified"));
        }
        let mut stripes = Vec::with_capacity(pairs.len() / 2);
        for pair in pairs.chunks_exact(2) {
            let [dev, offset] = pair else {
                return Err(TargetError::invalid("Not enough destinations specified"));
            };
            let stripe_error = |e: TargetError| TargetError::new(e.errno, "Couldn't parse stripe destination");
            let offset =
                args::parse_u64(offset).ok_or_else(|| TargetError::invalid("Couldn't parse stripe destination"))?;
            let disk = ctx.open_area(dev, offset, width).map_err(stripe_error)?;
            stripes.push(Stripe { disk, offset, errors: AtomicU32::new(0) });
        }
        Ok(Box::new(Striped { stripes, count, chunk, events: ctx.events.clone() }))
    }
}

struct Stripe<P: Platform> {
    disk: P::Disk,
    offset: u64,
    /// Failed child requests; INFO shows `D` for a stripe that has any.
    errors: AtomicU32,
}

impl<P: Platform> Stripe<P> {
    /// `A` (alive) or `D` (dead: an error was seen), as INFO and IMA show it.
    fn health(&self) -> char {
        if self.errors.load(Ordering::Relaxed) > 0 {
            'D'
        } else {
            'A'
        }
    }
}

struct Striped<P: Platform> {
    stripes: Vec<Stripe<P>>,
    count: NonZeroU64,
    chunk: NonZeroU64,
    /// The device's events: a failing stripe reports some (see [`Target::end_io`] below).
    events: EventSink,
}

/// Errors on a stripe after which it stops reporting events (Linux's `DM_IO_ERROR_THRESHOLD`).
const ERROR_EVENT_THRESHOLD: u32 = 15;

impl<P: Platform> Striped<P> {
    /// The stripe of line sector `offset`, and the sector on that stripe (before its offset).
    fn locate(&self, offset: u64) -> (usize, u64) {
        let chunk = offset / self.chunk;
        let within = offset % self.chunk;
        ((chunk % self.count) as usize, (chunk / self.count) * self.chunk.get() + within)
    }

    /// The first sector on stripe `stripe` (before its offset) whose line sector is at or after
    /// `offset`: the stripe's share of the line below `offset` is exactly that many sectors.
    fn stripe_bound(&self, offset: u64, stripe: usize) -> u64 {
        let (at, sector) = self.locate(offset);
        let row_start = sector - sector % self.chunk;
        match at.cmp(&stripe) {
            core::cmp::Ordering::Equal => sector,
            core::cmp::Ordering::Less => row_start,
            core::cmp::Ordering::Greater => row_start + self.chunk.get(),
        }
    }
}

impl<P: Platform> Target<P> for Striped<P> {
    fn map(&self, seg: &Segment, mapper: &mut Mapper<'_, P>) {
        match seg.op {
            Op::Read | Op::Write => {
                let (stripe, sector) = self.locate(seg.offset);
                match self.stripes.get(stripe) {
                    Some(s) => {
                        mapper.issue(&s.disk, s.offset + sector, seg.sectors, seg.buf_offset, seg.op, stripe as u32)
                    }
                    None => mapper.fail(Errno::EIO),
                }
            }
            Op::Flush => {
                for (i, s) in self.stripes.iter().enumerate() {
                    mapper.issue(&s.disk, 0, 0, 0, Op::Flush, i as u32);
                }
            }
            // Data-less requests cover a contiguous range of every stripe they touch.
            Op::Discard | Op::WriteZeroes => {
                let end = seg.offset + seg.sectors;
                for (i, s) in self.stripes.iter().enumerate() {
                    let begin = self.stripe_bound(seg.offset, i);
                    let stop = self.stripe_bound(end, i);
                    if stop > begin {
                        mapper.issue(&s.disk, s.offset + begin, stop - begin, 0, seg.op, i as u32);
                    }
                }
            }
        }
    }

    fn piece_len(&self, offset: u64, op: Op) -> u64 {
        match op {
            Op::Read | Op::Write => self.chunk.get() - offset % self.chunk,
            Op::Flush | Op::Discard | Op::WriteZeroes => u64::MAX,
        }
    }

    /// Linux's `stripe_end_io`: an error other than "not supported" counts against every
    /// stripe on the failed child's device (INFO then shows `D` for them), and while a stripe
    /// has seen fewer than 15 errors it reports an event. Linux reports it through a work item,
    /// so that errors arriving together may make one event; here one failed child makes at most
    /// one event, however many stripes share its device.
    fn end_io(&self, aux: u32, result: Result<(), Errno>) {
        if !matches!(result, Err(e) if e != Errno::EOPNOTSUPP) {
            return;
        }
        let Some(failed) = self.stripes.get(aux as usize).map(|s| s.disk.dev()) else {
            return;
        };
        let mut event = false;
        for s in self.stripes.iter().filter(|s| s.disk.dev() == failed) {
            let errors = s.errors.fetch_add(1, Ordering::Relaxed).saturating_add(1);
            event |= errors < ERROR_EVENT_THRESHOLD;
        }
        if event {
            self.events.trigger();
        }
    }

    fn status(&self, kind: StatusKind, out: &mut String) {
        match kind {
            StatusKind::Info => {
                let _ = write!(out, "{}", self.count);
                for s in &self.stripes {
                    let _ = write!(out, " {}", s.disk.dev());
                }
                out.push_str(" 1 ");
                for s in &self.stripes {
                    out.push(s.health());
                }
            }
            StatusKind::Table => {
                let _ = write!(out, "{} {}", self.count, self.chunk);
                for s in &self.stripes {
                    let _ = write!(out, " {} {}", s.disk.dev(), s.offset);
                }
            }
            StatusKind::Ima => {
                ima_name_version(out, "striped", VERSION);
                let _ = write!(out, ",stripes={},chunk_size={}", self.count, self.chunk);
                for (i, s) in self.stripes.iter().enumerate() {
                    let _ = write!(out, ",stripe_{i}_device_name={}", s.disk.dev());
                    let _ = write!(out, ",stripe_{i}_physical_start={}", s.offset);
                    let _ = write!(out, ",stripe_{i}_status={}", s.health());
                }
                out.push(';');
            }
        }
    }

    fn devices(&self, f: &mut dyn FnMut(DevT)) {
        for s in &self.stripes {
            f(s.disk.dev());
        }
    }
}
