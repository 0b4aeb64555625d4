//! `snapshot <origin> <COW device> <P|PO|N> <chunk size> [<#features> <feature>...]`: the
//! origin as it was when the snapshot was first resumed, plus the snapshot's own writes.
//!
//! Arguments, as Linux 6.1 reads them: at least 4; the origin must cover the line; the COW
//! device must differ from it; the store is `P` (persistent), `PO` (persistent, a full COW
//! makes snapshot writes fail and the status say `Overflow` instead of invalidating the
//! snapshot) or `N` (transient), letters in either case; the chunk size is a power of two of at
//! most 2^21 sectors, or 0 for the one in the COW's header (persistent only). Features (at most
//! 2): `discard_zeroes_cow` (a discard of a whole copied chunk zeroes it in the COW, other
//! discards of copied chunks go to the COW, discards of chunks not copied do nothing), and
//! `discard_passdown_origin` (discards also go to the origin; needs the first). Any error in
//! the store arguments is Linux's "Couldn't create exception store".
//!
//! Status: INFO `<allocated>/<total> <metadata>` sectors, or `Invalid`, `Merge failed`,
//! `Overflow` (in that order of precedence); TABLE `<origin> <cow> P|PO|N <chunk>` with the
//! devices as `major:minor` and, with features, ` <n> <feature>...`; IMA Linux's record of
//! the names and the valid / merge-failed / overflowed flags.
//!
//! The same line type serves `snapshot-merge` (see [`super::merge`]): only its mapping and
//! its resume differ.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use super::{attach, bucket, detach, log, merge, Group, Job, Snap, StoreArgs, TRACKED};
use crate::errno::Errno;
use crate::io::{Mapper, Segment};
use crate::platform::{DevT, DiskSpec, LogLevel, LowerDisk, Op, Platform};
use crate::target::{args, ima_name_version, BuildContext, EventSink, StatusKind, Target, TargetError, TargetType};

pub struct SnapshotType;

/// Linux 6.1's snapshot version.
pub const VERSION: [u32; 3] = [1, 16, 0];

impl<P: Platform> TargetType<P> for SnapshotType {
    fn name(&self) -> &str {
        "snapshot"
    }

    fn version(&self) -> [u32; 3] {
        VERSION
    }

    fn construct(&self, ctx: &BuildContext<'_, P>, argv: &[String]) -> Result<Box<dyn Target<P>>, TargetError> {
        Ok(Box::new(Line::construct(ctx, argv, false)?))
    }
}

const STORE_ERROR: &str = "Couldn't create exception store";

/// Reads `<P|PO|N> <chunk>`.
fn store_args(kind: &str, chunk: &str) -> Result<StoreArgs, TargetError> {
    let mut letters = kind.chars().map(|c| c.to_ascii_uppercase());
    let (persistent, overflow) = match (letters.next(), letters.next()) {
        (Some('P'), None) => (true, false),
        (Some('P'), Some('O')) => (true, true),
        // Linux's transient store ignores what follows its letter.
        (Some('N'), _) => (false, false),
        _ => return Err(TargetError::invalid(STORE_ERROR)),
    };
    let chunk = u64::from(args::parse_u32(chunk).ok_or_else(|| TargetError::invalid(STORE_ERROR))?);
    if chunk != 0 && !super::store::persistent::chunk_ok(chunk) {
        return Err(TargetError::invalid(STORE_ERROR));
    }
    Ok(StoreArgs { persistent, overflow, chunk })
}

/// Reads `[<#features> <feature>...]`: `(discard_zeroes_cow, discard_passdown_origin)`.
fn features(rest: &[String]) -> Result<(bool, bool), TargetError> {
    let Some((count, words)) = rest.split_first() else {
        return Ok((false, false));
    };
    let count = args::parse_u32(count).ok_or_else(|| TargetError::invalid("Invalid number of feature arguments"))?;
    if count > 2 || words.len() != count as usize {
        return Err(TargetError::invalid("Invalid number of feature arguments"));
    }
    let (mut zeroes, mut passdown) = (false, false);
    for word in words {
        match word.as_str() {
            "discard_zeroes_cow" => zeroes = true,
            "discard_passdown_origin" => passdown = true,
            _ => return Err(TargetError::invalid("Unsupported feature")),
        }
    }
    if passdown && !zeroes {
        return Err(TargetError::invalid("discard_passdown_origin feature depends on discard_zeroes_cow"));
    }
    Ok((zeroes, passdown))
}

/// A `snapshot` or `snapshot-merge` line.
pub(crate) struct Line<P: Platform> {
    /// This line's number in its group: the snapshot serves the line whose number it holds.
    pub(crate) id: u64,
    pub(crate) merge: bool,
    pub(crate) snap: Arc<Snap<P>>,
    pub(crate) origin: P::Disk,
    pub(crate) cow: P::Disk,
    pub(crate) len: u64,
    store: StoreArgs,
    zeroes: bool,
    passdown: bool,
    /// Whether this line has had the snapshot (once handed over, it never gets it back).
    owned: AtomicBool,
    /// Its device's events.
    events: EventSink,
}

impl<P: Platform> Line<P> {
    pub(crate) fn construct(ctx: &BuildContext<'_, P>, argv: &[String], merge: bool) -> Result<Self, TargetError> {
        let [origin, cow, kind, chunk, rest @ ..] = argv else {
            return Err(TargetError::invalid("requires 4 or more arguments"));
        };
        let origin = ctx.open_area(origin, 0, ctx.len).map_err(|e| {
            if e.message == "Device lookup failed" {
                TargetError::new(e.errno, "Cannot get origin device")
            } else {
                e
            }
        })?;
        let cow =
            ctx.platform.open_disk(DiskSpec::parse(cow)).map_err(|e| TargetError::new(e, "Cannot get COW device"))?;
        if cow.dev() == origin.dev() {
            return Err(TargetError::invalid("COW device cannot be the same as origin device"));
        }
        let store = store_args(kind, chunk)?;
        let (zeroes, passdown) = features(rest)?;
        let group = Group::find_or_make(ctx.platform, ctx.shared, origin.dev())?;
        let snap = attach(ctx, &group, cow.dev(), store, merge)?;
        let id = group.new_id();
        let events = ctx.events.clone();
        Ok(Line {
            id,
            merge,
            snap,
            origin,
            cow,
            len: ctx.len,
            store,
            zeroes,
            passdown,
            owned: AtomicBool::new(false),
            events,
        })
    }

    fn group(&self) -> &Group<P> {
        &self.snap.group
    }

    /// Counts a read (or a passed-down discard) to the origin in the chunk's bucket and
    /// returns the child's `aux`. Call with the snapshot's state locked.
    fn track(&self, chunk: u64) -> u32 {
        let b = bucket(chunk);
        if let Some(t) = self.snap.tracked.get(b) {
            t.fetch_add(1, Ordering::AcqRel);
        }
        TRACKED | b as u32
    }

    fn map_snapshot(&self, seg: &Segment, mapper: &mut Mapper<'_, P>) {
        let snap = &self.snap;
        if seg.op == Op::Flush {
            return mapper.remap(&self.cow, 0);
        }
        if seg.op == Op::Discard && !self.zeroes {
            return mapper.fail(Errno::EOPNOTSUPP);
        }
        let chunk = seg.offset >> snap.shift;
        let within = seg.offset & snap.mask();
        let st = snap.st.lock();
        if !st.valid || st.owner != self.id || (st.overflowed && seg.op.writes()) {
            drop(st);
            return mapper.fail(Errno::EIO);
        }
        let copied = st.complete.get(&chunk).copied();
        match seg.op {
            Op::Read => match copied {
                Some(n) => {
                    drop(st);
                    mapper.remap(&self.cow, (n << snap.shift) + within);
                }
                None => {
                    let aux = self.track(chunk);
                    drop(st);
                    mapper.issue(&self.origin, seg.offset, seg.sectors, seg.buf_offset, Op::Read, aux);
                }
            },
            Op::Discard => {
                let aux = self.passdown.then(|| self.track(chunk));
                drop(st);
                if let Some(aux) = aux {
                    mapper.issue(&self.origin, seg.offset, seg.sectors, 0, Op::Discard, aux);
                }
                match copied {
                    Some(n) if seg.sectors == snap.chunk() => {
                        mapper.issue(&self.cow, n << snap.shift, seg.sectors, 0, Op::WriteZeroes, 0);
                    }
                    Some(n) => mapper.issue(&self.cow, (n << snap.shift) + within, seg.sectors, 0, Op::Discard, 0),
                    // Nothing copied: nothing to discard (a copy would be made otherwise).
                    None => {}
                }
            }
            _ => match copied {
                Some(n) => {
                    drop(st);
                    mapper.remap(&self.cow, (n << snap.shift) + within);
                }
                None => {
                    drop(st);
                    let io = mapper.queue();
                    self.group().enqueue_or_fail(Job::Snapshot { snap: snap.clone(), id: self.id, io });
                }
            },
        }
    }
}

impl<P: Platform> Target<P> for Line<P> {
    fn map(&self, seg: &Segment, mapper: &mut Mapper<'_, P>) {
        if self.merge {
            merge::map(self, seg, mapper);
        } else {
            self.map_snapshot(seg, mapper);
        }
    }

    /// Pieces never cross a chunk.
    fn piece_len(&self, offset: u64, _op: Op) -> u64 {
        self.snap.chunk() - (offset & self.snap.mask())
    }

    fn end_io(&self, aux: u32, _result: Result<(), Errno>) {
        if aux & TRACKED == 0 {
            return;
        }
        let Some(t) = self.snap.tracked.get((aux & !TRACKED) as usize) else { return };
        if t.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.group().kick();
        }
    }

    fn presuspend(&self, _noflush: bool) {
        let merging = {
            let mut st = self.snap.st.lock();
            if st.owner != self.id {
                return;
            }
            st.owner_suspended = true;
            if self.merge {
                st.merge_stop = true;
            }
            st.merge_running
        };
        if self.merge && merging {
            // Linux's stop_merge: the step under way finishes, no other starts.
            let snap = &self.snap;
            let _ = self.group().platform.wait(&mut || !snap.st.lock().merge_running, false);
        }
    }

    fn preresume(&self) -> Result<(), Errno> {
        let st = self.snap.st.lock();
        let takes_over = st.owner != self.id && !self.owned.load(Ordering::Acquire);
        if takes_over && st.owner != 0 && !st.owner_suspended {
            drop(st);
            log(
                &self.group().platform,
                LogLevel::Error,
                "Unable to perform snapshot handover until source is suspended.",
            );
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    fn resume(&self) {
        let start_merge = {
            let mut st = self.snap.st.lock();
            if st.owner != self.id {
                if self.owned.swap(true, Ordering::AcqRel) {
                    // Handed over to another line: this one stays without it (`Invalid`).
                    return;
                }
                // First resume, or a handover from the line that had the snapshot so far.
                st.owner = self.id;
                st.owner_merge = self.merge;
                st.len = self.len;
                st.overflow_mode = self.store.overflow;
                st.owner_events = Some(self.events.clone());
                st.active = true;
            }
            st.owner_suspended = false;
            if self.merge {
                st.merge_stop = false;
                !core::mem::replace(&mut st.merge_running, true)
            } else {
                false
            }
        };
        if start_merge {
            self.group().push_merge(self.snap.clone());
        }
    }

    fn status(&self, kind: StatusKind, out: &mut String) {
        let snap = &self.snap;
        let (valid, merge_failed, overflowed) = {
            let st = snap.st.lock();
            let handed_over = st.owner != 0 && st.owner != self.id;
            (st.valid && !handed_over, st.merge_failed, st.overflowed)
        };
        match kind {
            StatusKind::Info => {
                if !valid {
                    out.push_str("Invalid");
                } else if merge_failed {
                    out.push_str("Merge failed");
                } else if overflowed {
                    out.push_str("Overflow");
                } else {
                    let (allocated, total, metadata) = snap.usage();
                    let _ = write!(out, "{allocated}/{total} {metadata}");
                }
            }
            StatusKind::Table => {
                let letters = match (snap.persistent, self.store.overflow) {
                    (true, true) => "PO",
                    (true, false) => "P",
                    (false, _) => "N",
                };
                let _ = write!(out, "{} {} {letters} {}", self.origin.dev(), self.cow.dev(), snap.chunk());
                let n = u32::from(self.zeroes) + u32::from(self.passdown);
                if n > 0 {
                    let _ = write!(out, " {n}");
                    if self.zeroes {
                        out.push_str(" discard_zeroes_cow");
                    }
                    if self.passdown {
                        out.push_str(" discard_passdown_origin");
                    }
                }
            }
            StatusKind::Ima => {
                let (name, version) =
                    if self.merge { ("snapshot-merge", merge::VERSION) } else { ("snapshot", VERSION) };
                ima_name_version(out, name, version);
                let yn = |b: bool| if b { 'y' } else { 'n' };
                let _ = write!(
                    out,
                    ",snap_origin_name={},snap_cow_name={},snap_valid={},snap_merge_failed={},snapshot_overflowed={};",
                    self.origin.dev(),
                    self.cow.dev(),
                    yn(valid),
                    yn(merge_failed),
                    yn(overflowed)
                );
            }
        }
    }

    fn devices(&self, f: &mut dyn FnMut(DevT)) {
        f(self.origin.dev());
        f(self.cow.dev());
    }
}

impl<P: Platform> Drop for Line<P> {
    fn drop(&mut self) {
        detach(&self.snap, self.id, self.merge);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    #[test]
    fn store_letters_and_chunks() {
        assert_eq!(store_args("P", "8"), Ok(StoreArgs { persistent: true, overflow: false, chunk: 8 }));
        assert_eq!(store_args("po", "0"), Ok(StoreArgs { persistent: true, overflow: true, chunk: 0 }));
        assert_eq!(store_args("n", "16"), Ok(StoreArgs { persistent: false, overflow: false, chunk: 16 }));
        for (kind, chunk) in [("X", "8"), ("P", "7"), ("PX", "8"), ("", "8"), ("P", "-8"), ("P", "4194304")] {
            assert_eq!(store_args(kind, chunk).map_err(|e| e.message), Err(STORE_ERROR.into()), "{kind} {chunk}");
        }
    }

    #[test]
    fn feature_words() {
        let v = |s: &[&str]| s.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(features(&[]), Ok((false, false)));
        assert_eq!(features(&v(&["0"])), Ok((false, false)));
        assert_eq!(features(&v(&["1", "discard_zeroes_cow"])), Ok((true, false)));
        assert_eq!(features(&v(&["2", "discard_passdown_origin", "discard_zeroes_cow"])), Ok((true, true)));
        assert!(features(&v(&["1", "discard_passdown_origin"])).is_err());
        assert!(features(&v(&["3", "a", "b", "c"])).is_err());
        assert!(features(&v(&["1", "bogus"])).is_err());
        assert!(features(&v(&["2", "discard_zeroes_cow"])).is_err());
    }
}
