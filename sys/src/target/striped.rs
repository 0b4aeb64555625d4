//! `striped <#stripes> <chunk sectors> (<dev> <offset>){#stripes}`: chunks of the line go round
//! the stripes in turn.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use super::{args, BuildContext, StatusKind, Target, TargetError, TargetType};
use crate::errno::Errno;
use crate::io::{Mapper, Segment};
use crate::platform::{DevT, LowerDisk, Op, Platform};

pub struct StripedType;

impl<P: Platform> TargetType<P> for StripedType {
    fn name(&self) -> &str {
        "striped"
    }

    fn version(&self) -> [u32; 3] {
        [1, 6, 0]
    }

    fn construct(&self, ctx: &BuildContext<'_, P>, argv: &[String]) -> Result<Box<dyn Target<P>>, TargetError> {
        let [count, chunk, pairs @ ..] = argv else {
            return Err(TargetError::invalid("Not enough arguments"));
        };
        let count =
            args::parse_u32(count).filter(|&n| n > 0).ok_or_else(|| TargetError::invalid("Invalid stripe count"))?;
        let chunk =
            args::parse_u32(chunk).filter(|&c| c > 0).ok_or_else(|| TargetError::invalid("Invalid chunk_size"))?;
        let (count, chunk) = (u64::from(count), u64::from(chunk));
        if !ctx.len.is_multiple_of(count) {
            return Err(TargetError::invalid("Target length not divisible by number of stripes"));
        }
        let width = ctx.len / count;
        if !width.is_multiple_of(chunk) {
            return Err(TargetError::invalid("Target length not divisible by chunk size"));
        }
        if pairs.len() as u64 != 2 * count {
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
        Ok(Box::new(Striped { stripes, count, chunk }))
    }
}

struct Stripe<P: Platform> {
    disk: P::Disk,
    offset: u64,
    /// Failed child requests; INFO shows `D` for a stripe that has any.
    errors: AtomicU32,
}

struct Striped<P: Platform> {
    stripes: Vec<Stripe<P>>,
    count: u64,
    chunk: u64,
}

impl<P: Platform> Striped<P> {
    /// The stripe of line sector `offset`, and the sector on that stripe (before its offset).
    fn locate(&self, offset: u64) -> (usize, u64) {
        let chunk = offset / self.chunk;
        let within = offset % self.chunk;
        ((chunk % self.count) as usize, (chunk / self.count) * self.chunk + within)
    }

    /// The first sector on stripe `stripe` (before its offset) whose line sector is at or after
    /// `offset`: the stripe's share of the line below `offset` is exactly that many sectors.
    fn stripe_bound(&self, offset: u64, stripe: usize) -> u64 {
        let (at, sector) = self.locate(offset);
        let row_start = sector - sector % self.chunk;
        match at.cmp(&stripe) {
            core::cmp::Ordering::Equal => sector,
            core::cmp::Ordering::Less => row_start,
            core::cmp::Ordering::Greater => row_start + self.chunk,
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
            Op::Read | Op::Write => self.chunk - offset % self.chunk,
            Op::Flush | Op::Discard | Op::WriteZeroes => u64::MAX,
        }
    }

    fn end_io(&self, aux: u32, result: Result<(), Errno>) {
        if matches!(result, Err(e) if e != Errno::EOPNOTSUPP) {
            if let Some(s) = self.stripes.get(aux as usize) {
                s.errors.fetch_add(1, Ordering::Relaxed);
            }
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
                    out.push(if s.errors.load(Ordering::Relaxed) > 0 { 'D' } else { 'A' });
                }
            }
            StatusKind::Table => {
                let _ = write!(out, "{} {}", self.count, self.chunk);
                for s in &self.stripes {
                    let _ = write!(out, " {} {}", s.disk.dev(), s.offset);
                }
            }
        }
    }

    fn devices(&self, f: &mut dyn FnMut(DevT)) {
        for s in &self.stripes {
            f(s.disk.dev());
        }
    }
}
