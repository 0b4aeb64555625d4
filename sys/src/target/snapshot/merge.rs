//! `snapshot-merge <origin> <COW device> P|PO <chunk size>`: loaded on the origin's device in
//! place of `snapshot-origin`, it shows the snapshot's view and copies the snapshot's
//! exceptions back into the origin, chunk run by chunk run, until the COW holds none.
//!
//! Mapping: a chunk the snapshot still holds is read from, and written to, the COW (writes go
//! through the worker, so that they are ordered with the merge steps); any other chunk is the
//! origin's, and a write to it makes the other snapshots of the origin copy it first, as a
//! `snapshot-origin` write does. Flushes go to both devices.
//!
//! A merge step (in the group's worker) takes the run of exceptions at the end of the
//! persistent store's list that is consecutive on both devices, makes the other snapshots copy
//! those origin chunks, waits for snapshot reads of them in flight to the origin, copies the
//! COW chunks over the origin, flushes the origin, then clears the records (flush + FUA area
//! write) and forgets the exceptions. A crash at any point leaves either the records (the step
//! is done again) or the merged data, flushed. The merge starts at resume and stops at
//! presuspend (after the step under way) or at the first error (`Merge failed`). INFO follows
//! Linux: allocated falls as records are cleared, and when the merge is done allocated equals
//! metadata (`16/131072 16` for chunks of 8 sectors).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;

use super::engine::{Batch, Buf};
use super::snapshot::Line;
use super::{log, Group, Job, Snap, Waiting};
use crate::errno::Errno;
use crate::io::{Mapper, QueuedIo, Segment, SECTOR_SIZE};
use crate::platform::{DiskIo, LogLevel, LowerDisk, Op, Platform};
use crate::target::{BuildContext, Target, TargetError, TargetType};

pub struct SnapshotMergeType;

/// Linux 6.1's snapshot-merge version.
pub const VERSION: [u32; 3] = [1, 5, 0];

impl<P: Platform> TargetType<P> for SnapshotMergeType {
    fn name(&self) -> &str {
        "snapshot-merge"
    }

    fn version(&self) -> [u32; 3] {
        VERSION
    }

    fn construct(&self, ctx: &BuildContext<'_, P>, argv: &[String]) -> Result<Box<dyn Target<P>>, TargetError> {
        Ok(Box::new(Line::construct(ctx, argv, true)?))
    }
}

/// Maps a piece of a `snapshot-merge` line.
pub(crate) fn map<P: Platform>(line: &Line<P>, seg: &Segment, mapper: &mut Mapper<'_, P>) {
    let snap = &line.snap;
    if seg.op == Op::Flush {
        mapper.issue(&line.origin, 0, 0, 0, Op::Flush, 0);
        mapper.issue(&line.cow, 0, 0, 0, Op::Flush, 0);
        return;
    }
    let chunk = seg.offset >> snap.shift;
    let held = {
        let st = snap.st.lock();
        if st.owner != line.id {
            drop(st);
            return mapper.fail(Errno::EIO);
        }
        // An invalid merging snapshot sends everything to the origin, as Linux's does.
        if st.valid {
            st.complete.get(&chunk).copied()
        } else {
            None
        }
    };
    let group = &snap.group;
    match (seg.op, held) {
        (Op::Read, Some(n)) => mapper.remap(&line.cow, (n << snap.shift) + (seg.offset & snap.mask())),
        (Op::Read, None) => mapper.remap(&line.origin, seg.offset),
        (_, Some(_)) => {
            let io = mapper.queue();
            group.enqueue_or_fail(Job::MergeWrite { snap: snap.clone(), id: line.id, io });
        }
        (_, None) => {
            if group.write_is_free(seg.offset, seg.sectors) {
                mapper.remap(&line.origin, seg.offset);
            } else {
                let io = mapper.queue();
                group.enqueue_or_fail(Job::Origin { io, sector: seg.offset, sectors: seg.sectors });
            }
        }
    }
}

impl<P: Platform> Group<P> {
    /// A write through `snapshot-merge` to a chunk the merging snapshot held when it was mapped.
    pub(crate) fn merge_write(
        &self,
        snaps: &[Arc<Snap<P>>],
        snap: &Arc<Snap<P>>,
        id: u64,
        io: QueuedIo<P>,
        batch: &mut Batch<P>,
        buf: &mut Buf,
    ) {
        let seg = *io.segment();
        let chunk = seg.offset >> snap.shift;
        let (owned, held) = {
            let st = snap.st.lock();
            (st.owner == id, if st.valid { st.complete.get(&chunk).copied() } else { None })
        };
        if !owned {
            return io.finish(Err(Errno::EIO));
        }
        match held {
            Some(n) => {
                let r = self.write_piece(snap, &io, (n << snap.shift) + (seg.offset & snap.mask()), buf);
                io.finish(r);
            }
            // Merged meanwhile: the chunk is the origin's now.
            None => {
                self.copy_out(snaps, seg.offset, seg.sectors, batch, buf);
                batch.origin.push(Waiting { io, sector: seg.offset, sectors: seg.sectors });
            }
        }
    }

    /// Ends the merge of `snap` (done, stopped or failed) and wakes whoever waits for it.
    fn merge_over(&self, snap: &Snap<P>, failure: Option<&str>) {
        {
            let mut st = snap.st.lock();
            st.merge_running = false;
            if failure.is_some() {
                st.merge_failed = true;
            }
        }
        if let Some(msg) = failure {
            log(&self.platform, LogLevel::Error, msg);
        }
        self.platform.wake();
    }

    /// One merge step; true when another should follow.
    pub(crate) fn merge_step(&self, snaps: &[Arc<Snap<P>>], snap: &Arc<Snap<P>>, buf: &mut Buf) -> bool {
        {
            let st = snap.st.lock();
            let go_on = st.merge_running && !st.merge_stop && st.owner_merge;
            let valid = st.valid;
            drop(st);
            if !go_on {
                self.merge_over(snap, None);
                return false;
            }
            if !valid {
                log(&self.platform, LogLevel::Error, "Snapshot is invalid: can't merge");
                self.merge_over(snap, None);
                return false;
            }
        }
        let prepared = snap.store.lock().prepare_merge(&self.platform, &snap.cow);
        let (last_old, last_new, n) = match prepared {
            Ok(Some(run)) => run,
            Ok(None) => {
                self.merge_over(snap, None);
                return false;
            }
            Err(_) => {
                self.merge_over(snap, Some("Read error in exception store: shutting down merge"));
                return false;
            }
        };
        let first = |last: u64| last.checked_add(1).and_then(|v| v.checked_sub(n));
        let chunk = snap.chunk();
        let span = (first(last_old), first(last_new), first(last_old).and_then(|o| o.checked_mul(chunk)));
        let (Some(old), Some(new), Some(start), Some(sectors)) = (span.0, span.1, span.2, n.checked_mul(chunk)) else {
            self.merge_over(snap, Some("Corruption detected: exception out of range; shutting down merge"));
            return false;
        };

        // The other snapshots of the origin copy these chunks before the origin changes.
        let mut batch = Batch::new();
        self.copy_out(snaps, start, sectors, &mut batch, buf);
        self.commit(snaps, &mut batch);
        if snaps.iter().any(|s| !Arc::ptr_eq(s, snap) && s.reads_in(start, sectors)) {
            // Their reads of these chunks still go to the origin: come back when they are done.
            self.queue.lock().parked.push(snap.clone());
            return false;
        }

        if let Err(msg) = self.merge_copy(snap, old, new, n, buf) {
            self.merge_over(snap, Some(msg));
            return false;
        }
        if self.platform.disk_io(&self.origin, 0, DiskIo::Flush).is_err() {
            self.merge_over(snap, Some("Flush after merge failed: shutting down merge"));
            return false;
        }
        let committed = {
            let mut store = snap.store.lock();
            let r = store.commit_merge(&self.platform, &snap.cow, n);
            snap.publish(&store);
            r
        };
        if committed.is_err() {
            self.merge_over(snap, Some("Write error in exception store: shutting down merge"));
            return false;
        }
        let missing = {
            let mut st = snap.st.lock();
            (old..old + n).filter(|c| st.complete.remove(c).is_none()).count()
        };
        if missing > 0 {
            self.merge_over(snap, Some("Corruption detected: exception is on disk but not in memory"));
            return false;
        }
        true
    }

    /// Copies COW chunks `new..new + n` over origin chunks `old..old + n`.
    fn merge_copy(&self, snap: &Snap<P>, old: u64, new: u64, n: u64, buf: &mut Buf) -> Result<(), &'static str> {
        let chunk = snap.chunk();
        let origin_sectors = self.origin.sectors();
        for i in 0..n {
            let start = (old + i).checked_mul(chunk).ok_or("Write error: shutting down merge.")?;
            if start >= origin_sectors {
                continue;
            }
            let len = chunk.min(origin_sectors - start);
            let bytes = usize::try_from(len * SECTOR_SIZE).map_err(|_| "Read error: shutting down merge.")?;
            let data = buf.take(bytes).map_err(|_| "Read error: shutting down merge.")?;
            self.platform
                .disk_io(&snap.cow, (new + i) << snap.shift, DiskIo::Read(data))
                .map_err(|_| "Read error: shutting down merge.")?;
            self.platform
                .disk_io(&self.origin, start, DiskIo::Write { data, fua: false })
                .map_err(|_| "Write error: shutting down merge.")?;
        }
        Ok(())
    }
}
