//! The copy-on-write engine: a group's worker.
//!
//! One run takes a batch of queued requests and, in order, does the copies they need (origin
//! chunk → new COW chunk, or the origin's chunk overlaid with a snapshot write), then commits
//! every snapshot's new exceptions once, then completes the batch: snapshot writes finish,
//! origin writes go to the origin (or wait for snapshot reads still in flight to it). All I/O
//! here is synchronous and done without holding a lock.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::store::Record;
use super::{log, Group, Job, Snap, Waiting, MAX_BATCH};
use crate::errno::Errno;
use crate::io::{QueuedIo, SECTOR_SIZE};
use crate::platform::{DiskIo, LogLevel, LowerDisk, Op, Platform, Work};

/// What one batch did and still has to finish.
pub(crate) struct Batch<P: Platform> {
    /// New exceptions per snapshot, in allocation order.
    records: Vec<(Arc<Snap<P>>, Vec<Record>)>,
    /// Snapshot writes that complete when their snapshot's commit does.
    snap_ios: Vec<(Arc<Snap<P>>, QueuedIo<P>)>,
    /// Origin writes to release once everything is committed.
    pub(crate) origin: Vec<Waiting<P>>,
}

impl<P: Platform> Batch<P> {
    pub(crate) fn new() -> Self {
        Batch { records: Vec::new(), snap_ios: Vec::new(), origin: Vec::new() }
    }

    fn record(&mut self, snap: &Arc<Snap<P>>, old_chunk: u64, new_chunk: u64) {
        let r = Record { old_chunk, new_chunk };
        match self.records.iter_mut().find(|(s, _)| Arc::ptr_eq(s, snap)) {
            Some((_, list)) => list.push(r),
            None => self.records.push((snap.clone(), alloc::vec![r])),
        }
    }
}

/// The longest run of chunks copied with one read and one write (a chunk longer than this is
/// copied alone).
const MAX_RUN_SECTORS: u64 = 2048;

/// A chunk-sized buffer the worker reuses.
#[derive(Default)]
pub(crate) struct Buf(Vec<u8>);

impl Buf {
    /// `len` bytes (contents unspecified), or `ENOMEM`.
    pub(crate) fn take(&mut self, len: usize) -> Result<&mut [u8], Errno> {
        if self.0.len() < len {
            self.0.try_reserve_exact(len - self.0.len()).map_err(|_| Errno::ENOMEM)?;
            self.0.resize(len, 0);
        }
        self.0.get_mut(..len).ok_or(Errno::ENOMEM)
    }
}

fn bytes(sectors: u64) -> Result<usize, Errno> {
    sectors.checked_mul(SECTOR_SIZE).and_then(|b| usize::try_from(b).ok()).ok_or(Errno::EIO)
}

impl<P: Platform> Work for Group<P> {
    fn run(&self) {
        loop {
            let (jobs, kicked) = {
                let mut q = self.queue.lock();
                let n = q.jobs.len().min(MAX_BATCH);
                let jobs: Vec<Job<P>> = q.jobs.drain(..n).collect();
                let kicked = core::mem::take(&mut q.kick);
                if jobs.is_empty() && !kicked {
                    q.scheduled = false;
                    return;
                }
                (jobs, kicked)
            };
            if kicked {
                self.release_waiting();
                let parked = core::mem::take(&mut self.queue.lock().parked);
                for snap in parked {
                    self.push_merge(snap);
                }
            }
            if !jobs.is_empty() {
                self.process(jobs);
            }
        }
    }
}

impl<P: Platform> Group<P> {
    fn process(&self, jobs: Vec<Job<P>>) {
        let snaps = self.snapshots();
        let mut batch = Batch::new();
        let mut buf = Buf::default();
        for job in jobs {
            match job {
                Job::Origin { io, sector, sectors } => {
                    self.copy_out(&snaps, sector, sectors, &mut batch, &mut buf);
                    batch.origin.push(Waiting { io, sector, sectors });
                }
                Job::Snapshot { snap, id, io } => self.snapshot_write(&snap, id, io, &mut batch, &mut buf),
                Job::MergeWrite { snap, id, io } => self.merge_write(&snaps, &snap, id, io, &mut batch, &mut buf),
                Job::Merge { snap } => {
                    // What came before the step is finished first.
                    self.commit(&snaps, &mut batch);
                    if self.merge_step(&snaps, &snap, &mut buf) {
                        self.push_merge(snap);
                    }
                }
            }
        }
        self.commit(&snaps, &mut batch);
    }

    /// Copies the chunks of origin sectors `[sector, sector + sectors)` that an active snapshot
    /// has not copied yet into it (merging snapshots excepted).
    pub(crate) fn copy_out(
        &self,
        snaps: &[Arc<Snap<P>>],
        sector: u64,
        sectors: u64,
        batch: &mut Batch<P>,
        buf: &mut Buf,
    ) {
        if sectors == 0 {
            return;
        }
        for snap in snaps {
            let range = {
                let st = snap.st.lock();
                if !st.valid || !st.active || st.owner_merge || sector >= st.len {
                    continue;
                }
                let end = sector.saturating_add(sectors).min(st.len);
                (sector >> snap.shift)..=((end - 1) >> snap.shift)
            };
            // Chunks allocated one after another usually land one after another in the COW
            // too: such runs are copied with one read and one write.
            let mut run: Option<(u64, u64, u64)> = None;
            let mut failed = false;
            for chunk in range {
                let new = {
                    let mut st = snap.st.lock();
                    if !st.valid {
                        break;
                    }
                    if st.complete.contains_key(&chunk) || st.pending.contains_key(&chunk) {
                        continue;
                    }
                    let allocated = {
                        let mut store = snap.store.lock();
                        let n = store.prepare();
                        snap.publish(&store);
                        n
                    };
                    match allocated {
                        Some(n) => {
                            st.pending.insert(chunk, n);
                            n
                        }
                        None => {
                            drop(st);
                            self.invalidate(snap, Errno::ENOMEM);
                            break;
                        }
                    }
                };
                match run {
                    Some((old, first, n))
                        if old + n == chunk && first + n == new && (n + 1) * snap.chunk() <= MAX_RUN_SECTORS =>
                    {
                        run = Some((old, first, n + 1));
                    }
                    _ => {
                        if let Some(done) = run.take() {
                            if !self.copy_run(snap, done, batch, buf) {
                                snap.st.lock().pending.remove(&chunk);
                                failed = true;
                                break;
                            }
                        }
                        run = Some((chunk, new, 1));
                    }
                }
            }
            if let Some(last) = run {
                failed |= !self.copy_run(snap, last, batch, buf);
            }
            if failed {
                self.invalidate(snap, Errno::EIO);
            }
        }
    }

    /// Copies origin chunks `old..old + n` to COW chunks `new..new + n` and records them; on an
    /// error forgets them and returns false.
    fn copy_run(
        &self,
        snap: &Arc<Snap<P>>,
        (old, new, n): (u64, u64, u64),
        batch: &mut Batch<P>,
        buf: &mut Buf,
    ) -> bool {
        if self.copy_chunks(snap, old, new, n, buf).is_ok() {
            for i in 0..n {
                batch.record(snap, old + i, new + i);
            }
            return true;
        }
        let mut st = snap.st.lock();
        for i in 0..n {
            st.pending.remove(&(old + i));
        }
        false
    }

    /// Copies origin chunks `chunk..chunk + n` to COW chunks `new..new + n` (the part of them
    /// inside the origin).
    fn copy_chunks(&self, snap: &Snap<P>, chunk: u64, new: u64, n: u64, buf: &mut Buf) -> Result<(), Errno> {
        let start = chunk.checked_mul(snap.chunk()).ok_or(Errno::EIO)?;
        let origin_sectors = self.origin.sectors();
        if start >= origin_sectors {
            return Ok(());
        }
        let len = n.checked_mul(snap.chunk()).ok_or(Errno::EIO)?.min(origin_sectors - start);
        let data = buf.take(bytes(len)?)?;
        self.platform.disk_io(&self.origin, start, DiskIo::Read(data))?;
        self.platform.disk_io(&snap.cow, new << snap.shift, DiskIo::Write { data, fua: false })
    }

    /// A snapshot write to a chunk without an exception when it was mapped.
    fn snapshot_write(&self, snap: &Arc<Snap<P>>, id: u64, io: QueuedIo<P>, batch: &mut Batch<P>, buf: &mut Buf) {
        enum Plan {
            Fail,
            Remap(u64),
            Pending(u64),
            New(u64),
        }
        let seg = *io.segment();
        let chunk = seg.offset >> snap.shift;
        let within = seg.offset & snap.mask();
        let plan = {
            let mut st = snap.st.lock();
            if !st.valid || st.owner != id || st.overflowed {
                Plan::Fail
            } else if let Some(&n) = st.complete.get(&chunk) {
                Plan::Remap(n)
            } else if let Some(&n) = st.pending.get(&chunk) {
                Plan::Pending(n)
            } else {
                let allocated = {
                    let mut store = snap.store.lock();
                    let n = store.prepare();
                    snap.publish(&store);
                    n
                };
                match allocated {
                    Some(n) => {
                        st.pending.insert(chunk, n);
                        Plan::New(n)
                    }
                    None if st.overflow_mode => {
                        st.overflowed = true;
                        drop(st);
                        log(&self.platform, LogLevel::Error, "Snapshot overflowed: Unable to allocate exception.");
                        Plan::Fail
                    }
                    None => {
                        drop(st);
                        self.invalidate(snap, Errno::ENOMEM);
                        Plan::Fail
                    }
                }
            }
        };
        match plan {
            Plan::Fail => io.finish(Err(Errno::EIO)),
            Plan::Remap(n) => io.remap(&snap.cow, (n << snap.shift) + within),
            Plan::Pending(n) => {
                // Copied earlier in this batch: write over the copy, complete with the commit.
                match self.write_piece(snap, &io, (n << snap.shift) + within, buf) {
                    Ok(()) => batch.snap_ios.push((snap.clone(), io)),
                    Err(_) => {
                        self.invalidate(snap, Errno::EIO);
                        io.finish(Err(Errno::EIO));
                    }
                }
            }
            Plan::New(n) => match self.write_new_chunk(snap, &io, chunk, n, buf) {
                Ok(()) => {
                    batch.record(snap, chunk, n);
                    batch.snap_ios.push((snap.clone(), io));
                }
                Err(_) => {
                    snap.st.lock().pending.remove(&chunk);
                    self.invalidate(snap, Errno::EIO);
                    io.finish(Err(Errno::EIO));
                }
            },
        }
    }

    /// Writes a queued piece's data (zeroes for write-zeroes) at `sector` of the COW device.
    pub(crate) fn write_piece(
        &self,
        snap: &Snap<P>,
        io: &QueuedIo<P>,
        sector: u64,
        buf: &mut Buf,
    ) -> Result<(), Errno> {
        let seg = *io.segment();
        match seg.op {
            Op::Discard => self.platform.disk_io(&snap.cow, sector, DiskIo::Discard { sectors: seg.sectors }),
            Op::WriteZeroes => self.platform.disk_io(&snap.cow, sector, DiskIo::WriteZeroes { sectors: seg.sectors }),
            _ => {
                let data = buf.take(bytes(seg.sectors)?)?;
                fill_from(io, data)?;
                self.platform.disk_io(&snap.cow, sector, DiskIo::Write { data, fua: false })
            }
        }
    }

    /// Writes COW chunk `new` as the origin's chunk `chunk` with the piece's data over it.
    fn write_new_chunk(
        &self,
        snap: &Snap<P>,
        io: &QueuedIo<P>,
        chunk: u64,
        new: u64,
        buf: &mut Buf,
    ) -> Result<(), Errno> {
        let seg = *io.segment();
        let chunk_sectors = snap.chunk();
        let data = buf.take(bytes(chunk_sectors)?)?;
        let within = usize::try_from(seg.offset & snap.mask()).map_err(|_| Errno::EIO)?;
        let whole = within == 0 && seg.sectors == chunk_sectors;
        if !whole {
            let start = chunk.checked_mul(chunk_sectors).ok_or(Errno::EIO)?;
            let in_origin = self.origin.sectors().saturating_sub(start).min(chunk_sectors);
            let (head, tail) = data.split_at_mut(bytes(in_origin)?);
            if !head.is_empty() {
                self.platform.disk_io(&self.origin, start, DiskIo::Read(head))?;
            }
            tail.fill(0);
        }
        let from = within.checked_mul(SECTOR_SIZE as usize).ok_or(Errno::EIO)?;
        let piece = data.get_mut(from..from + bytes(seg.sectors)?).ok_or(Errno::EIO)?;
        match seg.op {
            Op::Write => fill_from(io, piece)?,
            _ => piece.fill(0),
        }
        self.platform.disk_io(&snap.cow, new << snap.shift, DiskIo::Write { data, fua: false })
    }

    /// Makes the batch's exceptions durable and completes what waited for them.
    pub(crate) fn commit(&self, snaps: &[Arc<Snap<P>>], batch: &mut Batch<P>) {
        for (snap, records) in batch.records.drain(..) {
            let valid = snap.st.lock().valid;
            let result = if valid {
                let mut store = snap.store.lock();
                let r = store.commit(&self.platform, &snap.cow, &records);
                snap.publish(&store);
                r
            } else {
                Err(Errno::EIO)
            };
            {
                let mut st = snap.st.lock();
                for r in &records {
                    st.pending.remove(&r.old_chunk);
                    if result.is_ok() && st.valid {
                        st.complete.insert(r.old_chunk, r.new_chunk);
                    }
                }
            }
            if valid && result.is_err() {
                self.invalidate(&snap, Errno::EIO);
            }
        }
        for (snap, io) in batch.snap_ios.drain(..) {
            let ok = snap.st.lock().valid;
            io.finish(if ok { Ok(()) } else { Err(Errno::EIO) });
        }
        let mut blocked = Vec::new();
        for w in batch.origin.drain(..) {
            if snaps.iter().any(|s| s.reads_in(w.sector, w.sectors)) {
                blocked.push(w);
            } else {
                w.io.remap(&self.origin, w.sector);
            }
        }
        if !blocked.is_empty() {
            // A read that finished since it was looked at has set `kick`: the worker looks
            // again before it stops.
            self.queue.lock().waiting.extend(blocked);
        }
    }

    /// Origin writes whose snapshot reads have finished go to the origin.
    fn release_waiting(&self) {
        let waiting = core::mem::take(&mut self.queue.lock().waiting);
        if waiting.is_empty() {
            return;
        }
        let snaps = self.snapshots();
        let mut still = Vec::new();
        for w in waiting {
            if snaps.iter().any(|s| s.reads_in(w.sector, w.sectors)) {
                still.push(w);
            } else {
                w.io.remap(&self.origin, w.sector);
            }
        }
        if !still.is_empty() {
            let mut q = self.queue.lock();
            // Keep arrival order: these came before anything queued since.
            still.append(&mut q.waiting);
            q.waiting = still;
        }
    }

    /// Invalidates a snapshot for good: origin writes skip it, its I/O fails, its status says
    /// `Invalid`, and a persistent store's header says so.
    pub(crate) fn invalidate(&self, snap: &Snap<P>, why: Errno) {
        let events = {
            let mut st = snap.st.lock();
            if !st.valid {
                return;
            }
            st.valid = false;
            st.owner_events.clone()
        };
        if let Some(events) = events {
            events.trigger();
        }
        let msg = if why == Errno::ENOMEM {
            "Invalidating snapshot: Unable to allocate exception."
        } else {
            "Invalidating snapshot: Error reading/writing."
        };
        log(&self.platform, LogLevel::Error, msg);
        let mut store = snap.store.lock();
        if store.drop_snapshot(&self.platform, &snap.cow).is_err() {
            log(&self.platform, LogLevel::Warning, "write header failed");
        }
    }
}

/// Copies a queued write's data into `dst` (which must be as long as the piece).
fn fill_from<P: Platform>(io: &QueuedIo<P>, dst: &mut [u8]) -> Result<(), Errno> {
    let mut result = Err(Errno::EIO);
    io.with_data(&mut |src| {
        if src.len() == dst.len() {
            dst.copy_from_slice(src);
            result = Ok(());
        }
    })?;
    result
}
