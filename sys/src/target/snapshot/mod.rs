//! The snapshot family, as Linux's dm-snapshot: `snapshot-origin` (1.9.0), `snapshot` (1.16.0)
//! and `snapshot-merge` (1.5.0), with Linux's persistent (`P`, `PO`) and transient (`N`)
//! exception stores.
//!
//! # Who knows whom
//!
//! Every origin device has a [`Group`], found through the core's [`SharedState`] under
//! [`ORIGIN_KIND`] and the origin's device number: the `snapshot-origin` lines over that
//! device, and the snapshots of it, all hold the same group, so a write to the origin reaches
//! every snapshot, whichever device or table they are in. Every COW device in use has a
//! [`Snap`] (its exceptions, its store), found under [`COW_KIND`]: when a table that names the
//! same origin and COW as a live one is loaded (lvm2 reloads snapshot tables whenever it
//! touches the origin, and `snapshot-merge` takes a snapshot's COW over), the new line shares
//! the existing `Snap` instead of reading the store a second time. The `Snap` follows the line
//! that resumed last (its *owner*): that is Linux's exception handover, and the old line's
//! I/O then fails as Linux's does (`Invalid`).
//!
//! # When a snapshot starts
//!
//! A snapshot line takes part in copy-on-write from its first `resume` on, as Linux's does
//! (`active`): lvm2 suspends the origin, loads the snapshot and resumes it, then resumes the
//! origin, so the snapshot holds the origin as it was when the origin was suspended.
//!
//! # The data path
//!
//! * Origin reads pass through. An origin write whose chunks every active snapshot has already
//!   copied (and that no snapshot read still reads from the origin) is remapped at once;
//!   otherwise it is queued to the group's worker, which copies the chunks into every
//!   snapshot, commits the exceptions (flush, then the metadata area with FUA), and only then
//!   lets the write go to the origin.
//! * Snapshot reads of a copied chunk go to the COW device, others to the origin; those are
//!   counted per chunk bucket until they complete, and an origin write to such a chunk waits
//!   for them. Snapshot writes to a copied chunk go to the COW; the others are queued: the
//!   worker allocates a chunk, writes the origin's chunk with the new data over it, commits, and
//!   completes the write.
//! * `snapshot-merge` (on the origin device, over the COW of a snapshot): see [`merge`].
//!
//! The worker is one [`Work`](crate::platform::Work) per group; it does all store I/O
//! synchronously through [`Platform::disk_io`](crate::platform::Platform::disk_io), one batch
//! of queued requests at a time (one commit per snapshot per batch). Queued requests are
//! bounded ([`MAX_QUEUED`]); past that a request fails with `ENOMEM`.

mod engine;
pub mod merge;
pub mod origin;
#[allow(clippy::module_inception)]
pub mod snapshot;
pub mod store;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{BuildContext, EventSink, SharedState, TargetError};
use crate::errno::Errno;
use crate::io::QueuedIo;
use crate::platform::{DevT, DiskSpec, LogLevel, LowerDisk, Platform};
use store::Store;

pub use merge::SnapshotMergeType;
pub use origin::SnapshotOriginType;
pub use snapshot::SnapshotType;

/// The [`SharedState`] kind of a [`Group`], keyed by the origin's device number.
pub const ORIGIN_KIND: &str = "snapshot-origin";
/// The [`SharedState`] kind of a [`Snap`], keyed by the COW's device number.
pub const COW_KIND: &str = "snapshot-cow";

/// Requests a group's worker may hold (queued or waiting) before new ones fail with `ENOMEM`.
pub const MAX_QUEUED: usize = 4096;
/// Requests the worker takes per batch (so at most this many exceptions per commit).
pub const MAX_BATCH: usize = 64;
/// Buckets of the per-chunk count of snapshot reads in flight to the origin.
pub const TRACK_BUCKETS: usize = 256;
/// The bit of a child's `aux` that marks a counted read; the bucket is in the low bits.
pub(crate) const TRACKED: u32 = 1 << 31;

pub(crate) fn bucket(chunk: u64) -> usize {
    (chunk % TRACK_BUCKETS as u64) as usize
}

fn log<P: Platform>(p: &P, level: LogLevel, msg: &str) {
    p.log(level, format_args!("dm: snapshots: {msg}"));
}

/// The run-time state of one snapshot (one COW device), under [`Snap::st`].
pub(crate) struct SnapState {
    /// Copied chunks: origin chunk → COW chunk.
    pub complete: BTreeMap<u64, u64>,
    /// Chunks being copied in the worker's current batch (allocated, not yet committed).
    pub pending: BTreeMap<u64, u64>,
    /// Cleared for good when the snapshot is invalidated (COW full, I/O error).
    pub valid: bool,
    /// `PO`: a snapshot write found the COW full; snapshot writes fail from now on.
    pub overflowed: bool,
    pub merge_failed: bool,
    /// Origin writes copy into this snapshot (set by the owner's resume).
    pub active: bool,
    /// The line that resumed last (0: none); only its I/O is served.
    pub owner: u64,
    /// Whether the owner is a `snapshot-merge` line (then origin writes skip this snapshot).
    pub owner_merge: bool,
    /// Whether the owner's device is suspended (a handover needs it).
    pub owner_suspended: bool,
    /// The owner's `PO`.
    pub overflow_mode: bool,
    /// The owner's device's events: an invalidation is one (Linux's `dm_table_event`).
    pub owner_events: Option<EventSink>,
    /// The owner's length in sectors: origin writes past it copy nothing.
    pub len: u64,
    /// Lines holding this snapshot, and how many of them are `snapshot-merge`.
    pub targets: u32,
    pub merge_targets: u32,
    pub merge_running: bool,
    pub merge_stop: bool,
}

/// One snapshot: a COW device with its store and exceptions, shared by the lines that name it.
pub struct Snap<P: Platform> {
    pub(crate) group: Arc<Group<P>>,
    pub(crate) cow: P::Disk,
    pub(crate) cow_dev: DevT,
    /// log2 of the chunk size in sectors.
    pub(crate) shift: u32,
    /// Whether the store is persistent (`P`, `PO`).
    pub(crate) persistent: bool,
    pub(crate) st: spin::Mutex<SnapState>,
    /// Only the worker (and the constructor, before anyone else sees it) takes this lock.
    pub(crate) store: spin::Mutex<Store>,
    /// `(allocated, total, metadata)` as of the worker's last change.
    usage: [AtomicU64; 3],
    /// Snapshot reads in flight to the origin, per chunk bucket.
    pub(crate) tracked: [AtomicU32; TRACK_BUCKETS],
}

impl<P: Platform> Snap<P> {
    pub(crate) fn chunk(&self) -> u64 {
        1 << self.shift
    }

    pub(crate) fn mask(&self) -> u64 {
        self.chunk() - 1
    }

    /// Publishes the store's usage for status lines.
    pub(crate) fn publish(&self, store: &Store) {
        let (a, t, m) = store.usage();
        for (slot, v) in self.usage.iter().zip([a, t, m]) {
            slot.store(v, Ordering::Release);
        }
    }

    pub(crate) fn usage(&self) -> (u64, u64, u64) {
        let [a, t, m] = &self.usage;
        (a.load(Ordering::Acquire), t.load(Ordering::Acquire), m.load(Ordering::Acquire))
    }

    /// Whether an origin write to `[sector, sector + sectors)` needs nothing from this snapshot
    /// any more: every chunk is copied, and no snapshot read of it is in flight to the origin.
    fn origin_write_clear(&self, st: &SnapState, sector: u64, sectors: u64) -> bool {
        if !st.valid || !st.active || st.owner_merge || sector >= st.len || sectors == 0 {
            return true;
        }
        let end = sector.saturating_add(sectors).min(st.len);
        let (first, last) = (sector >> self.shift, (end - 1) >> self.shift);
        (first..=last).all(|c| st.complete.contains_key(&c) && self.tracked_at(c) == 0)
    }

    pub(crate) fn tracked_at(&self, chunk: u64) -> u32 {
        self.tracked.get(bucket(chunk)).map_or(0, |t| t.load(Ordering::Acquire))
    }

    /// Whether a snapshot read is in flight to the origin in a chunk of the range.
    fn reads_in(&self, sector: u64, sectors: u64) -> bool {
        if sectors == 0 {
            return false;
        }
        let first = sector >> self.shift;
        let last = (sector.saturating_add(sectors) - 1) >> self.shift;
        if last - first >= TRACK_BUCKETS as u64 {
            return self.tracked.iter().any(|t| t.load(Ordering::Acquire) != 0);
        }
        (first..=last).any(|c| self.tracked_at(c) != 0)
    }
}

/// Work for a group's worker.
pub(crate) enum Job<P: Platform> {
    /// A write to origin sectors `[sector, sector + sectors)`, from `snapshot-origin` or from
    /// `snapshot-merge` (chunks that the merging snapshot does not hold).
    Origin { io: QueuedIo<P>, sector: u64, sectors: u64 },
    /// A write to a snapshot's chunk that had no exception when it was mapped; `id` is the line.
    Snapshot { snap: Arc<Snap<P>>, id: u64, io: QueuedIo<P> },
    /// A write through `snapshot-merge` to a chunk the merging snapshot holds.
    MergeWrite { snap: Arc<Snap<P>>, id: u64, io: QueuedIo<P> },
    /// One merge step.
    Merge { snap: Arc<Snap<P>> },
}

/// An origin write whose chunks are copied, waiting for snapshot reads of them to finish.
pub(crate) struct Waiting<P: Platform> {
    pub io: QueuedIo<P>,
    pub sector: u64,
    pub sectors: u64,
}

pub(crate) struct Queue<P: Platform> {
    pub jobs: VecDeque<Job<P>>,
    pub waiting: Vec<Waiting<P>>,
    /// A run of the worker is queued or going on.
    pub scheduled: bool,
    /// A counted read finished while origin writes waited: look at them again.
    pub kick: bool,
    /// Merges whose next step waits for snapshot reads of its chunks to finish.
    pub parked: Vec<Arc<Snap<P>>>,
}

/// Everything attached to one origin device: its snapshots and the worker that copies.
pub struct Group<P: Platform> {
    pub(crate) platform: P,
    /// The group's own handle of the origin (the worker reads, merges and remaps through it).
    pub(crate) origin: P::Disk,
    pub(crate) origin_dev: DevT,
    me: Weak<Group<P>>,
    /// The snapshots with at least one line, in registration order.
    pub(crate) snaps: spin::Mutex<Vec<Arc<Snap<P>>>>,
    pub(crate) queue: spin::Mutex<Queue<P>>,
    next_id: AtomicU64,
}

impl<P: Platform> Group<P> {
    /// The group of `origin_dev` in `shared`, made (with its own handle of the origin) when
    /// there is none.
    pub(crate) fn find_or_make(
        platform: &P,
        shared: &SharedState,
        origin_dev: DevT,
    ) -> Result<Arc<Group<P>>, TargetError> {
        if let Some(group) = shared.get::<Group<P>>(ORIGIN_KIND, origin_dev) {
            return Ok(group);
        }
        let origin = platform
            .open_disk(DiskSpec::Number(origin_dev))
            .map_err(|e| TargetError::new(e, "Cannot get origin device"))?;
        let group = Arc::new_cyclic(|me| Group {
            platform: platform.clone(),
            origin,
            origin_dev,
            me: me.clone(),
            snaps: spin::Mutex::new(Vec::new()),
            queue: spin::Mutex::new(Queue {
                jobs: VecDeque::new(),
                waiting: Vec::new(),
                scheduled: false,
                kick: false,
                parked: Vec::new(),
            }),
            next_id: AtomicU64::new(1),
        });
        shared
            .get_or_insert(ORIGIN_KIND, origin_dev, || group)
            .map_err(|e| TargetError::new(e, "Cannot register snapshot origin"))
    }

    /// A number for a new line, unique in the group (never 0).
    pub(crate) fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether an origin write to `[sector, sector + sectors)` may go to the origin now.
    pub(crate) fn write_is_free(&self, sector: u64, sectors: u64) -> bool {
        let snaps = self.snaps.lock();
        snaps.iter().all(|s| {
            let st = s.st.lock();
            s.origin_write_clear(&st, sector, sectors)
        })
    }

    /// Queues `job` for the worker; gives it back when the queue is full.
    pub(crate) fn enqueue(&self, job: Job<P>) -> Result<(), Job<P>> {
        let start = {
            let mut q = self.queue.lock();
            if q.jobs.len() + q.waiting.len() >= MAX_QUEUED {
                return Err(job);
            }
            q.jobs.push_back(job);
            !core::mem::replace(&mut q.scheduled, true)
        };
        if start {
            self.schedule();
        }
        Ok(())
    }

    /// Queues `job`, or fails its request with `ENOMEM` when the queue is full.
    pub(crate) fn enqueue_or_fail(&self, job: Job<P>) {
        if let Err(job) = self.enqueue(job) {
            log(&self.platform, LogLevel::Warning, "too many requests waiting for copy-on-write");
            match job {
                Job::Origin { io, .. } | Job::Snapshot { io, .. } | Job::MergeWrite { io, .. } => {
                    io.finish(Err(Errno::ENOMEM))
                }
                Job::Merge { .. } => {}
            }
        }
    }

    /// Queues a merge step whatever the queue's length (it carries no request).
    pub(crate) fn push_merge(&self, snap: Arc<Snap<P>>) {
        let start = {
            let mut q = self.queue.lock();
            q.jobs.push_back(Job::Merge { snap });
            !core::mem::replace(&mut q.scheduled, true)
        };
        if start {
            self.schedule();
        }
    }

    /// A counted read finished and its bucket is empty: let waiting origin writes look again.
    pub(crate) fn kick(&self) {
        let start = {
            let mut q = self.queue.lock();
            // Recorded even with nothing waiting: the worker may have taken the waiting
            // writes to look at them, and looks again when it sees this.
            q.kick = true;
            if q.waiting.is_empty() && q.parked.is_empty() {
                return;
            }
            !core::mem::replace(&mut q.scheduled, true)
        };
        if start {
            self.schedule();
        }
    }

    fn schedule(&self) {
        if let Some(me) = self.me.upgrade() {
            self.platform.queue_work(me, None);
        }
    }

    /// The snapshots of the group, for the worker.
    pub(crate) fn snapshots(&self) -> Vec<Arc<Snap<P>>> {
        self.snaps.lock().clone()
    }
}

/// How a line wants its snapshot's store: the table's letters and chunk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct StoreArgs {
    pub persistent: bool,
    /// `PO`.
    pub overflow: bool,
    /// Sectors; 0: the header's (persistent), or refused (transient).
    pub chunk: u64,
}

/// The snapshot of `cow` for a new line over `group`: the live one when there is one (a reload
/// or a merge taking it over), else read from (or made on) the COW device. Counts the line in.
pub(crate) fn attach<P: Platform>(
    ctx: &BuildContext<'_, P>,
    group: &Arc<Group<P>>,
    cow_dev: DevT,
    args: StoreArgs,
    merge: bool,
) -> Result<Arc<Snap<P>>, TargetError> {
    let p = ctx.platform;
    if merge {
        let others_merging = group.snaps.lock().iter().any(|s| s.cow_dev != cow_dev && s.st.lock().merge_targets > 0);
        if others_merging {
            return Err(TargetError::invalid("A snapshot is already merging."));
        }
    }
    if let Some(snap) = ctx.shared.get::<Snap<P>>(COW_KIND, cow_dev) {
        if snap.group.origin_dev != group.origin_dev {
            return Err(TargetError::invalid("Snapshot cow pairing for exception table handover failed"));
        }
        if merge && !snap.persistent {
            return Err(TargetError::invalid("Snapshot exception store does not support snapshot-merge."));
        }
        let revived = {
            let mut st = snap.st.lock();
            st.targets += 1;
            if merge {
                st.merge_targets += 1;
            }
            st.targets == 1
        };
        if revived {
            // Its last line went away, but the worker still held it: register it again.
            group.snaps.lock().push(snap.clone());
        }
        return Ok(snap);
    }
    if merge && !args.persistent {
        return Err(TargetError::invalid("Snapshot exception store does not support snapshot-merge."));
    }
    let cow = p.open_disk(DiskSpec::Number(cow_dev)).map_err(|e| TargetError::new(e, "Cannot get COW device"))?;
    let mut complete = BTreeMap::new();
    let mut valid = true;
    let store = if args.persistent {
        let mut add = |old: u64, new: u64| {
            complete.insert(old, new);
            Ok(())
        };
        let (store, found) = store::Persistent::load(p, &cow, args.chunk, &mut add).map_err(|e| {
            log(p, LogLevel::Error, e.log);
            TargetError::new(e.errno, "Failed to read snapshot metadata")
        })?;
        if found == store::persistent::Found::Invalid {
            log(p, LogLevel::Warning, "Snapshot is marked invalid.");
            valid = false;
        }
        Store::Persistent(store)
    } else {
        if args.chunk == 0 {
            return Err(TargetError::invalid("Chunk size not set"));
        }
        Store::Transient(store::Transient::new(args.chunk, cow.sectors()))
    };
    let shift = store.chunk().trailing_zeros();
    let snap = Arc::new(Snap {
        group: group.clone(),
        cow,
        cow_dev,
        shift,
        persistent: store.is_persistent(),
        st: spin::Mutex::new(SnapState {
            complete,
            pending: BTreeMap::new(),
            valid,
            overflowed: false,
            merge_failed: false,
            active: false,
            owner: 0,
            owner_merge: false,
            owner_suspended: false,
            overflow_mode: args.overflow,
            owner_events: None,
            len: 0,
            targets: 1,
            merge_targets: u32::from(merge),
            merge_running: false,
            merge_stop: false,
        }),
        store: spin::Mutex::new(store),
        usage: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        tracked: core::array::from_fn(|_| AtomicU32::new(0)),
    });
    snap.publish(&snap.store.lock());
    let registered = ctx
        .shared
        .get_or_insert(COW_KIND, cow_dev, || snap.clone())
        .map_err(|e| TargetError::new(e, "Cannot register snapshot"))?;
    if !Arc::ptr_eq(&registered, &snap) {
        return Err(TargetError::new(Errno::EBUSY, "COW device is being set up by another table"));
    }
    group.snaps.lock().push(snap.clone());
    Ok(snap)
}

/// A line lets go of its snapshot: the last one unregisters it from the group.
pub(crate) fn detach<P: Platform>(snap: &Arc<Snap<P>>, id: u64, merge: bool) {
    let (last, cancelled) = {
        let mut st = snap.st.lock();
        st.targets = st.targets.saturating_sub(1);
        if merge {
            st.merge_targets = st.merge_targets.saturating_sub(1);
        }
        let mut cancelled = false;
        if st.owner == id {
            st.owner = 0;
            st.owner_events = None;
            st.active = false;
            st.owner_merge = false;
            st.merge_stop = true;
            // Another line waits to take the exceptions over, but origin writes will not be
            // copied until it resumes: as Linux does, its snapshot is no longer usable.
            if st.targets > 0 && st.valid {
                st.valid = false;
                cancelled = true;
            }
        }
        (st.targets == 0, cancelled)
    };
    if cancelled {
        log(&snap.group.platform, LogLevel::Error, "Cancelling snapshot handover.");
    }
    if last {
        let removed = {
            let mut snaps = snap.group.snaps.lock();
            snaps.iter().position(|s| Arc::ptr_eq(s, snap)).map(|i| snaps.remove(i))
        };
        drop(removed);
    }
}
