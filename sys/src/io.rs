//! The I/O model: a request is mapped through the device's active table, split at line and
//! target boundaries, and each piece is remapped to a lower device, completed at once, or handed
//! to a target's worker. The request completes when its last piece does; the first error wins.
//!
//! Nothing here allocates: the per-request state is an [`IoSlot`] inside the host's request,
//! pieces are counted in it, and the table the request was mapped with is kept alive by a
//! reference held in the slot until the last piece completes.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use crate::device::Device;
use crate::errno::Errno;
use crate::platform::{Child, ChildTag, Op, Platform};
use crate::table::Table;

/// Bytes per sector: every offset and length in the core is in these units.
pub const SECTOR_SIZE: u64 = 512;

/// One request as the host hands it to [`crate::Core::submit`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IoRequest {
    /// First sector in the mapped device.
    pub sector: u64,
    /// Length in bytes: a multiple of [`SECTOR_SIZE`]; 0 for a flush.
    pub bytes: u64,
    pub op: Op,
    /// Forced unit access: complete only when durable.
    pub fua: bool,
}

/// A piece of a request that falls in one table line, as a target sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Segment {
    /// First sector, counted from the start of the line.
    pub offset: u64,
    /// Length in sectors (0 for a flush).
    pub sectors: u64,
    /// Where the piece's data starts in the request's buffer, in bytes.
    pub buf_offset: usize,
    pub op: Op,
    pub fua: bool,
}

/// The core's state inside a host request: outstanding pieces, the first error, and what the
/// request holds while in flight.
pub struct IoSlot<P: Platform> {
    pending: AtomicU32,
    error: AtomicI32,
    held: spin::Mutex<Option<Held<P>>>,
}

/// What an in-flight request keeps alive.
struct Held<P: Platform> {
    device: Arc<Device<P>>,
    table: Arc<Table<P>>,
}

impl<P: Platform> IoSlot<P> {
    pub const fn new() -> Self {
        IoSlot { pending: AtomicU32::new(0), error: AtomicI32::new(0), held: spin::Mutex::new(None) }
    }

    fn begin(&self, device: Arc<Device<P>>, table: Arc<Table<P>>) {
        self.error.store(0, Ordering::Relaxed);
        *self.held.lock() = Some(Held { device, table });
        // One reference for the mapping loop itself, dropped when it has issued every piece.
        self.pending.store(1, Ordering::Release);
    }

    fn record(&self, result: Result<(), Errno>) {
        if let Err(errno) = result {
            // Errno 0 is "no error": map a (bogus) zero errno to EIO so it is not lost.
            let code = if errno.0 == 0 { Errno::EIO.0 } else { errno.0 };
            let _ = self.error.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn table(&self) -> Option<Arc<Table<P>>> {
        self.held.lock().as_ref().map(|h| h.table.clone())
    }
}

impl<P: Platform> Default for IoSlot<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// Drops one reference to a request; the last one completes it, then lets the device and table go.
pub(crate) fn put<P: Platform>(platform: &P, io: &P::Io) {
    let slot = P::slot(io);
    if slot.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    let held = slot.held.lock().take();
    let result = match slot.error.load(Ordering::Acquire) {
        0 => Ok(()),
        code => Err(Errno(code)),
    };
    // The host may free the request on completion: nothing below touches the slot.
    platform.complete(io.clone(), result);
    if let Some(held) = held {
        held.device.io_finished(platform);
        drop(held.table);
    }
}

/// A child of `io` completed. Records its result, tells its target, and completes the parent
/// when it was the last piece.
pub(crate) fn child_done<P: Platform>(platform: &P, io: &P::Io, tag: ChildTag, result: Result<(), Errno>) {
    let slot = P::slot(io);
    slot.record(result);
    if let Some(table) = slot.table() {
        if let Some(entry) = table.entry(tag.target as usize) {
            entry.target.end_io(tag.aux, result);
        }
    }
    put(platform, io);
}

/// Maps `req` through `table` and issues its pieces. `io`'s slot must be fresh.
pub(crate) fn start<P: Platform>(
    platform: &P,
    io: &P::Io,
    req: &IoRequest,
    sectors: u64,
    device: Arc<Device<P>>,
    table: Arc<Table<P>>,
) {
    let slot = P::slot(io);
    slot.begin(device, table.clone());
    if req.op == Op::Flush {
        // A flush goes to every line: each passes it to its own lower devices.
        for (index, entry) in table.entries().iter().enumerate() {
            let seg = Segment { offset: 0, sectors: 0, buf_offset: 0, op: Op::Flush, fua: req.fua };
            let mut mapper = Mapper { platform, seg, how: How::Core { io, slot, target: index as u32 } };
            entry.target.map(&seg, &mut mapper);
        }
    } else {
        map_range(platform, io, slot, &table, req, sectors);
    }
    put(platform, io);
}

fn map_range<P: Platform>(platform: &P, io: &P::Io, slot: &IoSlot<P>, table: &Table<P>, req: &IoRequest, sectors: u64) {
    let end = req.sector.saturating_add(sectors);
    let mut pos = req.sector;
    let mut buf_offset = 0usize;
    while pos < end {
        let Some(index) = table.find(pos) else {
            slot.record(Err(Errno::EIO));
            return;
        };
        let Some(entry) = table.entry(index) else {
            slot.record(Err(Errno::EIO));
            return;
        };
        let offset = pos - entry.start;
        let in_line = (entry.start + entry.len).min(end) - pos;
        let len = in_line.min(entry.target.piece_len(offset, req.op).max(1));
        let seg = Segment { offset, sectors: len, buf_offset, op: req.op, fua: req.fua };
        let mut mapper = Mapper { platform, seg, how: How::Core { io, slot, target: index as u32 } };
        entry.target.map(&seg, &mut mapper);
        pos += len;
        buf_offset = buf_offset.saturating_add((len * SECTOR_SIZE) as usize);
    }
}

/// How a target disposes of one piece of a request.
///
/// A mapper normally belongs to the core's own I/O engine. A target built outside the core that
/// owns the request (a target module loaded through a C ABI, whose core is across that ABI)
/// gets a mapper made with [`Mapper::foreign`], whose every action goes to a [`ForeignIo`].
pub struct Mapper<'a, P: Platform> {
    platform: &'a P,
    seg: Segment,
    how: How<'a, P>,
}

enum How<'a, P: Platform> {
    Core { io: &'a P::Io, slot: &'a IoSlot<P>, target: u32 },
    Foreign { io: &'static dyn ForeignIo<P>, piece: ForeignHandle },
}

/// Names a piece of a request, or a queued piece, on the side of a [`ForeignIo`]; the core
/// only hands it back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ForeignHandle(pub usize);

/// The actions of a [`Mapper`] and a [`QueuedIo`] whose request belongs to another core: a
/// target module's side of a C ABI implements them by calling the owning core (dmcore-abi).
/// `piece` is the handle the mapper was made with; `queued` one that [`ForeignIo::queue`]
/// returned.
pub trait ForeignIo<P: Platform>: Sync {
    /// [`Mapper::issue`].
    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        platform: &P,
        piece: ForeignHandle,
        disk: &P::Disk,
        sector: u64,
        sectors: u64,
        buf_offset: usize,
        op: Op,
        aux: u32,
    );
    /// [`Mapper::fail`].
    fn fail(&self, platform: &P, piece: ForeignHandle, errno: Errno);
    /// [`Mapper::zero_fill`].
    fn zero_fill(&self, platform: &P, piece: ForeignHandle);
    /// [`Mapper::queue`]: keeps the piece in flight. `Err`: it could not be kept, and has
    /// failed with that errno.
    fn queue(&self, platform: &P, piece: ForeignHandle) -> Result<ForeignHandle, Errno>;
    /// [`QueuedIo::with_data`].
    fn queued_data(&self, platform: &P, queued: ForeignHandle, f: &mut dyn FnMut(&mut [u8])) -> Result<(), Errno>;
    /// [`QueuedIo::finish`] (and dropping a queued piece, with `EIO`).
    fn queued_finish(&self, platform: &P, queued: ForeignHandle, result: Result<(), Errno>);
    /// [`QueuedIo::remap`].
    fn queued_remap(&self, platform: &P, queued: ForeignHandle, disk: &P::Disk, sector: u64);
}

impl<'a, P: Platform> Mapper<'a, P> {
    /// A mapper whose piece belongs to another core: every action goes to `io` with `piece`.
    pub fn foreign(platform: &'a P, seg: Segment, io: &'static dyn ForeignIo<P>, piece: ForeignHandle) -> Self {
        Mapper { platform, seg, how: How::Foreign { io, piece } }
    }

    pub fn platform(&self) -> &'a P {
        self.platform
    }

    /// The piece being mapped.
    pub fn segment(&self) -> &Segment {
        &self.seg
    }

    /// Sends the whole piece to `disk`, starting at `sector`.
    pub fn remap(&mut self, disk: &P::Disk, sector: u64) {
        let seg = self.seg;
        self.issue(disk, sector, seg.sectors, seg.buf_offset, seg.op, 0);
    }

    /// Issues one child: `sectors` sectors at `sector` of `disk`, with the data at `buf_offset`
    /// bytes into the request's buffer. `aux` comes back to [`crate::target::Target::end_io`].
    pub fn issue(&mut self, disk: &P::Disk, sector: u64, sectors: u64, buf_offset: usize, op: Op, aux: u32) {
        match &self.how {
            How::Core { io, slot, target } => {
                slot.pending.fetch_add(1, Ordering::AcqRel);
                self.platform.submit(Child {
                    parent: io,
                    disk,
                    sector,
                    sectors,
                    buf_offset,
                    op,
                    fua: self.seg.fua,
                    tag: ChildTag { target: *target, aux },
                });
            }
            How::Foreign { io, piece } => io.issue(self.platform, *piece, disk, sector, sectors, buf_offset, op, aux),
        }
    }

    /// Fails the piece (and so the request) with `errno`.
    pub fn fail(&mut self, errno: Errno) {
        match &self.how {
            How::Core { slot, .. } => slot.record(Err(errno)),
            How::Foreign { io, piece } => io.fail(self.platform, *piece, errno),
        }
    }

    /// Fills the piece's part of the buffer with zeroes (a read of nothing).
    pub fn zero_fill(&mut self) {
        match &self.how {
            How::Core { io, slot, .. } => {
                let len = (self.seg.sectors * SECTOR_SIZE) as usize;
                let result = self.platform.with_data(io, self.seg.buf_offset, len, &mut |data| data.fill(0));
                slot.record(result);
            }
            How::Foreign { io, piece } => io.zero_fill(self.platform, *piece),
        }
    }

    /// Keeps the piece for the target's worker, which finishes it later with
    /// [`QueuedIo::finish`] or [`QueuedIo::remap`]. The request stays in flight until then.
    pub fn queue(&mut self) -> QueuedIo<P> {
        let platform = self.platform.clone();
        let seg = self.seg;
        match &self.how {
            How::Core { io, slot, target } => {
                slot.pending.fetch_add(1, Ordering::AcqRel);
                QueuedIo { platform, seg, held: Kept::Core { io: Some((*io).clone()), target: *target } }
            }
            How::Foreign { io, piece } => {
                // A piece that could not be kept has failed already: the handle is empty, and
                // finishing it does nothing.
                let queued = io.queue(self.platform, *piece).ok();
                QueuedIo { platform, seg, held: Kept::Foreign { io: *io, queued } }
            }
        }
    }
}

/// A piece of a request held by a target's worker.
///
/// Dropping it without finishing fails the piece with `EIO`, so a request is never lost.
pub struct QueuedIo<P: Platform> {
    platform: P,
    seg: Segment,
    held: Kept<P>,
}

enum Kept<P: Platform> {
    Core { io: Option<P::Io>, target: u32 },
    Foreign { io: &'static dyn ForeignIo<P>, queued: Option<ForeignHandle> },
}

impl<P: Platform> QueuedIo<P> {
    /// A queued piece of another core's request (see [`ForeignIo`]): `queued` is what
    /// [`ForeignIo::queue`] returned.
    pub fn foreign(platform: P, seg: Segment, io: &'static dyn ForeignIo<P>, queued: ForeignHandle) -> Self {
        QueuedIo { platform, seg, held: Kept::Foreign { io, queued: Some(queued) } }
    }

    pub fn segment(&self) -> &Segment {
        &self.seg
    }

    /// Runs `f` on the piece's data in the request's buffer.
    pub fn with_data(&self, f: &mut dyn FnMut(&mut [u8])) -> Result<(), Errno> {
        match &self.held {
            Kept::Core { io, .. } => {
                let io = io.as_ref().ok_or(Errno::EIO)?;
                let len = (self.seg.sectors * SECTOR_SIZE) as usize;
                self.platform.with_data(io, self.seg.buf_offset, len, f)
            }
            Kept::Foreign { io, queued } => {
                let queued = queued.ok_or(Errno::EIO)?;
                io.queued_data(&self.platform, queued, f)
            }
        }
    }

    /// Completes the piece with `result`.
    pub fn finish(mut self, result: Result<(), Errno>) {
        self.complete(result);
    }

    fn complete(&mut self, result: Result<(), Errno>) {
        match &mut self.held {
            Kept::Core { io, .. } => {
                if let Some(io) = io.take() {
                    P::slot(&io).record(result);
                    put(&self.platform, &io);
                }
            }
            Kept::Foreign { io, queued } => {
                if let Some(queued) = queued.take() {
                    io.queued_finish(&self.platform, queued, result);
                }
            }
        }
    }

    /// Sends the piece to `disk` at `sector`, as [`Mapper::remap`] would have. The queue's
    /// reference to the request passes to the child, whose completion drops it.
    pub fn remap(mut self, disk: &P::Disk, sector: u64) {
        match &mut self.held {
            Kept::Core { io, target } => {
                if let Some(io) = io.take() {
                    self.platform.submit(Child {
                        parent: &io,
                        disk,
                        sector,
                        sectors: self.seg.sectors,
                        buf_offset: self.seg.buf_offset,
                        op: self.seg.op,
                        fua: self.seg.fua,
                        tag: ChildTag { target: *target, aux: 0 },
                    });
                }
            }
            Kept::Foreign { io, queued } => {
                if let Some(queued) = queued.take() {
                    io.queued_remap(&self.platform, queued, disk, sector);
                }
            }
        }
    }
}

impl<P: Platform> Drop for QueuedIo<P> {
    fn drop(&mut self) {
        self.complete(Err(Errno::EIO));
    }
}
