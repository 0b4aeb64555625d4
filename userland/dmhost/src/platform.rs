//! The std platform: image files and block devices as lower devices, child I/O on a pool of
//! threads, deferred requests per device, a condition variable for the core's waits, and a
//! timer plus workers for background work.
//!
//! # Requests and their data
//!
//! A host request ([`HostRequest`], handled as `Arc<HostRequest>`) embeds the core's
//! [`IoSlot`], the [`IoRequest`] it was submitted with, its data and what to do when the core
//! completes it ([`Done`]). Its data is either its own buffer (the `Vec` the NBD server handed
//! over, for instance) or, for a request a stacked device sends down to another mapped device,
//! a view of a range of its parent's data. Child requests never copy: an I/O thread claims its
//! range of the root buffer (see [`crate::buffer`]) and reads from the lower file straight into
//! it, or writes to the lower file straight from it.
//!
//! # Threads
//!
//! * `dm-io-N`: the I/O pool. [`Platform::submit`] only queues a child; an I/O thread runs it
//!   (positional read/write, `fdatasync`, `fallocate`) and calls [`Core::child_done`]. A child
//!   addressed to a mapped device becomes a new request submitted to the core for that device.
//! * `dm-work-N` and `dm-timer`: background work of targets ([`Platform::queue_work`]).
//! * The core's waits (suspend draining, sleep locks, `waitevent`) block the calling thread on
//!   one mutex/condition-variable pair; [`Platform::wake`] takes the same mutex, so no wakeup is
//!   lost between the evaluation of a condition and the sleep. An interruptible wait (the
//!   kernel's signal-interruptible sleep) ends with `EINTR` at shutdown, or when the thread's
//!   interrupt check ([`interruptible_by`]: a control connection whose client went away) says
//!   so; it looks at that check every [`INTERRUPT_POLL`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt};
#[cfg(target_os = "linux")]
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use dmcore::platform::{Child, DiskIo, DiskSpec, LogLevel, LowerDisk, Work};
use dmcore::{ChildTag, Core, DevT, Errno, IoRequest, IoSlot, Op, Platform, SECTOR_SIZE};

use crate::buffer::{Buffer, Slice};
use crate::queue::{JobQueue, Timer};

/// NetBSD's block major of dm(4): a lower device `169:N` is the mapped device of minor N.
pub const DM_MAJOR: u32 = 169;
/// Where mapped devices appear by name, as on NetBSD and Linux.
pub const MAPPER_DIR: &str = "/dev/mapper/";
/// Stacked requests deeper than this fail with `EIO`: a table that maps a device onto itself,
/// directly or through others, must not loop forever.
pub const MAX_STACK_DEPTH: u32 = 16;

/// How often an interruptible wait looks at its thread's interrupt check.
pub const INTERRUPT_POLL: Duration = Duration::from_millis(100);

thread_local! {
    /// What interrupts this thread's interruptible waits, besides shutdown.
    static INTERRUPT: std::cell::RefCell<Option<Box<dyn Fn() -> bool>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `interrupted` as the interrupt check of this thread's interruptible waits (a
/// control connection: "the client closed its end"), as a signal interrupts a process's sleep
/// in a kernel.
pub fn interruptible_by<R>(interrupted: Box<dyn Fn() -> bool>, f: impl FnOnce() -> R) -> R {
    let previous = INTERRUPT.with(|slot| slot.replace(Some(interrupted)));
    let result = f();
    INTERRUPT.with(|slot| *slot.borrow_mut() = previous);
    result
}

fn interrupted() -> bool {
    INTERRUPT.with(|slot| slot.try_borrow().ok().and_then(|check| check.as_ref().map(|f| f())).unwrap_or(false))
}

/// The largest piece written at once when zeroing by writing.
const ZERO_CHUNK: usize = 256 << 10;
static ZEROES: [u8; ZERO_CHUNK] = [0; ZERO_CHUNK];

/// Translates a host error to the core's numbering (the BSDs'), which differs from Linux's for
/// some values.
pub fn host_errno(err: &io::Error) -> Errno {
    match err.raw_os_error() {
        Some(c) if c == libc::EIO => Errno::EIO,
        Some(c) if c == libc::ENOSPC || c == libc::EDQUOT || c == libc::EFBIG => Errno::ENOSPC,
        Some(c) if c == libc::EROFS || c == libc::EBADF => Errno::EROFS,
        Some(c) if c == libc::EPERM || c == libc::EACCES => Errno::EPERM,
        Some(c) if c == libc::ENOMEM => Errno::ENOMEM,
        Some(c) if c == libc::EINVAL => Errno::EINVAL,
        Some(c) if c == libc::EOPNOTSUPP || c == libc::ENOTSUP => Errno::EOPNOTSUPP,
        Some(c) if c == libc::ENXIO || c == libc::ENODEV => Errno::ENXIO,
        Some(c) if c == libc::ENOENT => Errno::ENOENT,
        Some(c) if c == libc::EBUSY => Errno::EBUSY,
        _ => Errno::EIO,
    }
}

/// One lower device given on the command line: an image file or a block device.
pub struct DiskFile {
    /// The path as given on the command line.
    pub path: String,
    /// The path with symlinks and `..` resolved, when that worked.
    pub canonical: Option<PathBuf>,
    pub dev: DevT,
    /// Size in sectors (a partial last sector is not used).
    pub sectors: u64,
    pub read_only: bool,
    file: File,
}

impl DiskFile {
    /// Opens `path` for reading and writing (read-only when writing is not permitted).
    pub fn open(path: &str, dev: DevT) -> io::Result<DiskFile> {
        let (file, read_only) = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => (f, false),
            Err(e) if matches!(e.raw_os_error(), Some(c) if c == libc::EACCES || c == libc::EROFS || c == libc::EPERM) => {
                (OpenOptions::new().read(true).open(path)?, true)
            }
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let bytes = if meta.file_type().is_block_device() {
            (&file).seek(SeekFrom::End(0))?
        } else if meta.is_file() {
            meta.len()
        } else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file or a block device"));
        };
        let sectors = bytes / SECTOR_SIZE;
        if sectors == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "smaller than one 512-byte sector"));
        }
        let canonical = std::fs::canonicalize(path).ok();
        Ok(DiskFile { path: path.to_owned(), canonical, dev, sectors, read_only, file })
    }

    /// Checks that `len` bytes at `pos` lie inside the device.
    fn check(&self, pos: u64, len: u64, writes: bool) -> Result<(), Errno> {
        if writes && self.read_only {
            return Err(Errno::EROFS);
        }
        match pos.checked_add(len) {
            Some(end) if end <= self.sectors.saturating_mul(SECTOR_SIZE) => Ok(()),
            _ => Err(Errno::EIO),
        }
    }

    pub fn read_at(&self, buf: &mut [u8], pos: u64) -> Result<(), Errno> {
        self.check(pos, buf.len() as u64, false)?;
        self.file.read_exact_at(buf, pos).map_err(|e| host_errno(&e))
    }

    pub fn write_at(&self, buf: &[u8], pos: u64) -> Result<(), Errno> {
        self.check(pos, buf.len() as u64, true)?;
        self.file.write_all_at(buf, pos).map_err(|e| host_errno(&e))
    }

    pub fn sync(&self) -> Result<(), Errno> {
        if self.read_only {
            return Ok(());
        }
        self.file.sync_data().map_err(|e| host_errno(&e))
    }

    /// Deallocates the range (reads then return zeroes).
    pub fn discard(&self, pos: u64, len: u64) -> Result<(), Errno> {
        self.check(pos, len, true)?;
        if len == 0 {
            return Ok(());
        }
        self.fallocate(PUNCH_HOLE, pos, len)
    }

    /// Makes the range read as zeroes: `fallocate(ZERO_RANGE)`, or writing zeroes where the
    /// file system or device cannot.
    pub fn write_zeroes(&self, pos: u64, len: u64) -> Result<(), Errno> {
        self.check(pos, len, true)?;
        if len == 0 {
            return Ok(());
        }
        match self.fallocate(ZERO_RANGE, pos, len) {
            Err(Errno::EOPNOTSUPP) | Err(Errno::EINVAL) => {}
            other => return other,
        }
        let mut done = 0u64;
        while done < len {
            let n = usize::try_from(len - done).map_or(ZERO_CHUNK, |left| left.min(ZERO_CHUNK));
            let zeroes = ZEROES.get(..n).ok_or(Errno::EIO)?;
            self.file.write_all_at(zeroes, pos + done).map_err(|e| host_errno(&e))?;
            done += n as u64;
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn fallocate(&self, mode: libc::c_int, pos: u64, len: u64) -> Result<(), Errno> {
        let offset = libc::off_t::try_from(pos).map_err(|_| Errno::EINVAL)?;
        let length = libc::off_t::try_from(len).map_err(|_| Errno::EINVAL)?;
        loop {
            // SAFETY: fallocate(2) takes a descriptor we own (kept open by `self.file`) and plain
            // integers; it touches no memory of ours.
            let rc =
                unsafe { libc::fallocate(self.file.as_raw_fd(), mode | libc::FALLOC_FL_KEEP_SIZE, offset, length) };
            if rc == 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(host_errno(&err));
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn fallocate(&self, _mode: i32, _pos: u64, _len: u64) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
}

#[cfg(target_os = "linux")]
const PUNCH_HOLE: libc::c_int = libc::FALLOC_FL_PUNCH_HOLE;
#[cfg(target_os = "linux")]
const ZERO_RANGE: libc::c_int = libc::FALLOC_FL_ZERO_RANGE;
#[cfg(not(target_os = "linux"))]
const PUNCH_HOLE: i32 = 0;
#[cfg(not(target_os = "linux"))]
const ZERO_RANGE: i32 = 0;

/// An opened lower device, as a table holds it.
pub struct HostDisk {
    dev: DevT,
    sectors: u64,
    kind: DiskKind,
}

enum DiskKind {
    File(Arc<DiskFile>),
    /// A device of this core (stacking); the open is counted on it until the disk is dropped.
    Mapped {
        minor: u32,
        core: Weak<Core<HostPlatform>>,
    },
}

impl LowerDisk for HostDisk {
    fn dev(&self) -> DevT {
        self.dev
    }

    fn sectors(&self) -> u64 {
        self.sectors
    }
}

impl Drop for HostDisk {
    fn drop(&mut self) {
        if let DiskKind::Mapped { minor, core } = &self.kind {
            if let Some(core) = core.upgrade() {
                core.close(*minor);
            }
        }
    }
}

/// What a host request does when it completes: gets the result and, for a read that succeeded,
/// the filled buffer (otherwise an empty vector).
pub type Callback = Box<dyn FnOnce(Result<(), Errno>, Vec<u8>) + Send>;

/// The result of a synchronous request, with its data.
type Outcome = (Result<(), Errno>, Vec<u8>);

/// What happens when the core completes a request.
pub enum Done {
    /// A request of the host's own (NBD): the callback gets the result and, for a read that
    /// succeeded, the filled buffer (otherwise an empty vector).
    Callback(Callback),
    /// A child of `parent` that was sent to a mapped device.
    Stacked { parent: HostIo, tag: ChildTag },
    /// A synchronous [`Platform::disk_io`] to a mapped device.
    Sync(Arc<SyncDone>),
}

enum Data {
    None,
    Own(Buffer),
    /// Bytes `offset .. offset + len` of the parent's data.
    View {
        parent: HostIo,
        offset: usize,
        len: usize,
    },
}

/// One request of the host, as the core sees it through [`HostIo`].
pub struct HostRequest {
    slot: IoSlot<HostPlatform>,
    minor: u32,
    req: IoRequest,
    /// How many mapped devices the request went through before this one (0 for NBD's).
    depth: u32,
    data: Data,
    done: Mutex<Option<Done>>,
}

pub type HostIo = Arc<HostRequest>;

impl HostRequest {
    /// Claims a range of the request's data, following views down to the buffer that owns it.
    fn claim(&self, offset: usize, len: usize, exclusive: bool) -> Result<Slice<'_>, Errno> {
        let mut req = self;
        let mut offset = offset;
        loop {
            match &req.data {
                Data::None => return Err(Errno::EIO),
                Data::Own(buffer) => return buffer.claim(offset, len, exclusive),
                Data::View { parent, offset: base, len: view_len } => {
                    match offset.checked_add(len) {
                        Some(end) if end <= *view_len => {}
                        _ => return Err(Errno::EIO),
                    }
                    offset = base.checked_add(offset).ok_or(Errno::EIO)?;
                    req = parent;
                }
            }
        }
    }

    fn take_data(&self) -> Vec<u8> {
        match &self.data {
            Data::Own(buffer) => buffer.take(),
            _ => Vec::new(),
        }
    }

    fn take_done(&self) -> Option<Done> {
        self.done.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Where a synchronous request to a mapped device waits for its completion.
pub struct SyncDone {
    outcome: Mutex<Option<Outcome>>,
    finished: Condvar,
}

impl SyncDone {
    fn finish(&self, result: Result<(), Errno>, data: Vec<u8>) {
        *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some((result, data));
        self.finished.notify_all();
    }

    fn wait(&self) -> Outcome {
        let mut outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(o) = outcome.take() {
                return o;
            }
            outcome = self.finished.wait(outcome).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Which lower device a queued child goes to.
enum Lower {
    File(Arc<DiskFile>),
    Mapped(u32),
}

/// Work for the I/O pool.
enum Job {
    Child {
        parent: HostIo,
        lower: Lower,
        sector: u64,
        sectors: u64,
        buf_offset: usize,
        op: Op,
        fua: bool,
        tag: ChildTag,
    },
    /// Complete a request with an error, off the caller's stack (the caller may hold core locks).
    Fail(HostIo, Errno),
}

struct Deferred {
    queues: HashMap<u32, VecDeque<HostIo>>,
}

/// Settings of the platform's threads.
#[derive(Clone, Copy, Debug)]
pub struct Threads {
    pub io: usize,
    pub workers: usize,
}

struct Inner {
    disks: Vec<Arc<DiskFile>>,
    core: OnceLock<Weak<Core<HostPlatform>>>,
    io: Arc<JobQueue<Job>>,
    work: Arc<JobQueue<Arc<dyn Work>>>,
    timer: Arc<Timer<Arc<dyn Work>>>,
    deferred: Mutex<Deferred>,
    /// Set at shutdown: requests to suspended devices fail instead of waiting.
    stopping: AtomicBool,
    wait_lock: Mutex<u64>,
    wait_cv: Condvar,
    epoch: Instant,
    /// What [`Platform::autoload_target`] does (dmhost's module directory).
    autoload: OnceLock<AutoloadHook>,
}

/// Loads a target module for a type nobody registered; true when one was loaded.
pub type AutoloadHook = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The std platform; clones share one state.
#[derive(Clone)]
pub struct HostPlatform(Arc<Inner>);

impl HostPlatform {
    /// Starts the platform's threads and a core on it.
    pub fn new_core(disks: Vec<DiskFile>, threads: Threads) -> io::Result<(Arc<Core<HostPlatform>>, HostPlatform)> {
        let io = JobQueue::new();
        let work: Arc<JobQueue<Arc<dyn Work>>> = JobQueue::new();
        let timer = Timer::spawn(Arc::clone(&work))?;
        let platform = HostPlatform(Arc::new(Inner {
            disks: disks.into_iter().map(Arc::new).collect(),
            core: OnceLock::new(),
            io: Arc::clone(&io),
            work: Arc::clone(&work),
            timer,
            deferred: Mutex::new(Deferred { queues: HashMap::new() }),
            stopping: AtomicBool::new(false),
            wait_lock: Mutex::new(0),
            wait_cv: Condvar::new(),
            epoch: Instant::now(),
            autoload: OnceLock::new(),
        }));
        let core = Arc::new(Core::new(platform.clone()));
        let _ = platform.0.core.set(Arc::downgrade(&core));
        let weak = Arc::downgrade(&platform.0);
        io.spawn_threads(
            "dm-io",
            threads.io.max(1),
            Arc::new(move |job| {
                if let Some(inner) = weak.upgrade() {
                    HostPlatform(inner).run_job(job);
                }
            }),
        )?;
        work.spawn_threads("dm-work", threads.workers.max(1), Arc::new(|w: Arc<dyn Work>| w.run()))?;
        Ok((core, platform))
    }

    fn core(&self) -> Option<Arc<Core<HostPlatform>>> {
        self.0.core.get().and_then(Weak::upgrade)
    }

    /// A request of the host for the device `minor`: `data` is the buffer of a read (its length
    /// `req.bytes`) or a write, empty otherwise; `done` runs when the core completes it.
    pub fn request(minor: u32, req: IoRequest, data: Vec<u8>, done: Callback) -> HostIo {
        let data = if req.op.has_data() { Data::Own(Buffer::new(data)) } else { Data::None };
        Arc::new(HostRequest {
            slot: IoSlot::new(),
            minor,
            req,
            depth: 0,
            data,
            done: Mutex::new(Some(Done::Callback(done))),
        })
    }

    /// Shutdown: requests waiting for a suspended device fail with `ENXIO` (and so do any that
    /// arrive for one from now on); interruptible waits end with `EINTR`.
    pub fn stop(&self) {
        self.0.stopping.store(true, Ordering::SeqCst);
        let waiting: Vec<HostIo> = {
            let mut deferred = self.deferred();
            deferred.queues.drain().flat_map(|(_, q)| q).collect()
        };
        if !waiting.is_empty() {
            log::info!("failing {} request(s) waiting for suspended devices", waiting.len());
        }
        for io in waiting {
            self.complete(io, Err(Errno::ENXIO));
        }
        self.wake();
    }

    /// Sets what a table naming an unregistered target type tries (once per platform).
    pub fn set_autoload(&self, hook: AutoloadHook) {
        if self.0.autoload.set(hook).is_err() {
            log::warn!("the target autoload hook was set already");
        }
    }

    /// `fdatasync` on every lower file.
    pub fn sync_all(&self) {
        for disk in &self.0.disks {
            if let Err(e) = disk.sync() {
                log::error!("fdatasync {}: {e}", disk.path);
            }
        }
    }

    fn deferred(&self) -> MutexGuard<'_, Deferred> {
        self.0.deferred.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open_file(&self, disk: &Arc<DiskFile>) -> HostDisk {
        HostDisk { dev: disk.dev, sectors: disk.sectors, kind: DiskKind::File(Arc::clone(disk)) }
    }

    fn open_mapped(&self, minor: u32) -> Result<HostDisk, Errno> {
        let core = self.core().ok_or(Errno::ENXIO)?;
        core.open(minor)?;
        let Some(sectors) = core.size(minor) else {
            core.close(minor);
            return Err(Errno::ENXIO);
        };
        Ok(HostDisk {
            dev: DevT::new(DM_MAJOR, minor),
            sectors,
            kind: DiskKind::Mapped { minor, core: Arc::downgrade(&core) },
        })
    }

    fn run_job(&self, job: Job) {
        match job {
            Job::Fail(io, errno) => self.complete(io, Err(errno)),
            Job::Child { parent, lower: Lower::Mapped(minor), sector, sectors, buf_offset, op, fua, tag } => {
                self.stacked_child(parent, minor, sector, sectors, buf_offset, op, fua, tag)
            }
            Job::Child { parent, lower: Lower::File(file), sector, sectors, buf_offset, op, fua, tag } => {
                let result = file_child(&parent, &file, sector, sectors, buf_offset, op, fua);
                if let Err(errno) = result {
                    log::debug!("{} {op:?} at sector {sector} (+{sectors}): {errno}", file.path);
                }
                if let Some(core) = self.core() {
                    core.child_done(&parent, tag, result);
                }
            }
        }
    }

    /// Sends a child to a mapped device as a new request whose data is a view of the parent's.
    #[allow(clippy::too_many_arguments)]
    fn stacked_child(
        &self,
        parent: HostIo,
        minor: u32,
        sector: u64,
        sectors: u64,
        buf_offset: usize,
        op: Op,
        fua: bool,
        tag: ChildTag,
    ) {
        let Some(core) = self.core() else { return };
        let bytes = sectors.checked_mul(SECTOR_SIZE).and_then(|b| usize::try_from(b).ok());
        let (Some(bytes), true) = (bytes, parent.depth < MAX_STACK_DEPTH) else {
            log::error!("request to mapped device {minor} refused: too large or stacked too deep");
            return core.child_done(&parent, tag, Err(Errno::EIO));
        };
        let data = if op.has_data() {
            Data::View { parent: Arc::clone(&parent), offset: buf_offset, len: bytes }
        } else {
            Data::None
        };
        let req = IoRequest { sector, bytes: if op == Op::Flush { 0 } else { bytes as u64 }, op, fua };
        let io = Arc::new(HostRequest {
            slot: IoSlot::new(),
            minor,
            req,
            depth: parent.depth + 1,
            data,
            done: Mutex::new(Some(Done::Stacked { parent, tag })),
        });
        core.submit(minor, io, req);
    }
}

/// Runs one child on a lower file, reading into or writing from the parent's buffer in place.
fn file_child(
    parent: &HostRequest,
    file: &DiskFile,
    sector: u64,
    sectors: u64,
    buf_offset: usize,
    op: Op,
    fua: bool,
) -> Result<(), Errno> {
    let pos = sector.checked_mul(SECTOR_SIZE).ok_or(Errno::EIO)?;
    let bytes = sectors.checked_mul(SECTOR_SIZE).ok_or(Errno::EIO)?;
    match op {
        Op::Read => {
            let len = usize::try_from(bytes).map_err(|_| Errno::EIO)?;
            let mut slice = parent.claim(buf_offset, len, true)?;
            return file.read_at(slice.bytes_mut()?, pos);
        }
        Op::Write => {
            let len = usize::try_from(bytes).map_err(|_| Errno::EIO)?;
            let slice = parent.claim(buf_offset, len, false)?;
            file.write_at(slice.bytes(), pos)?;
        }
        Op::Flush => return file.sync(),
        Op::Discard => file.discard(pos, bytes)?,
        Op::WriteZeroes => file.write_zeroes(pos, bytes)?,
    }
    if fua {
        file.sync()?;
    }
    Ok(())
}

/// The filter of [`Platform::log`] in `log` crate terms.
fn log_level(level: LogLevel) -> log::Level {
    match level {
        LogLevel::Error => log::Level::Error,
        LogLevel::Warning => log::Level::Warn,
        LogLevel::Info => log::Level::Info,
        LogLevel::Debug => log::Level::Debug,
    }
}

impl Platform for HostPlatform {
    type Disk = HostDisk;
    type Io = HostIo;

    /// A registered file by its path (as given, or canonicalized) or number; a mapped device of
    /// this core as `/dev/mapper/NAME` or `169:MINOR`.
    fn open_disk(&self, spec: DiskSpec<'_>) -> Result<HostDisk, Errno> {
        match spec {
            DiskSpec::Number(dev) if dev.major == DM_MAJOR => self.open_mapped(dev.minor),
            DiskSpec::Number(dev) => {
                self.0.disks.iter().find(|d| d.dev == dev).map(|d| self.open_file(d)).ok_or(Errno::ENXIO)
            }
            DiskSpec::Path(path) => {
                if let Some(d) = self.0.disks.iter().find(|d| d.path == path) {
                    return Ok(self.open_file(d));
                }
                if let Some(name) = path.strip_prefix(MAPPER_DIR) {
                    let core = self.core().ok_or(Errno::ENXIO)?;
                    let minor = core.minor_of(name).ok_or(Errno::ENOENT)?;
                    return self.open_mapped(minor);
                }
                let canonical = std::fs::canonicalize(Path::new(path)).map_err(|_| Errno::ENOENT)?;
                self.0
                    .disks
                    .iter()
                    .find(|d| d.canonical.as_deref() == Some(canonical.as_path()))
                    .map(|d| self.open_file(d))
                    .ok_or(Errno::ENOENT)
            }
        }
    }

    fn slot(io: &HostIo) -> &IoSlot<Self> {
        &io.slot
    }

    fn with_data(&self, io: &HostIo, offset: usize, len: usize, f: &mut dyn FnMut(&mut [u8])) -> Result<(), Errno> {
        if len == 0 {
            f(&mut []);
            return Ok(());
        }
        let mut slice = io.claim(offset, len, true)?;
        f(slice.bytes_mut()?);
        Ok(())
    }

    fn submit(&self, child: Child<'_, Self>) {
        let lower = match &child.disk.kind {
            DiskKind::File(file) => Lower::File(Arc::clone(file)),
            DiskKind::Mapped { minor, .. } => Lower::Mapped(*minor),
        };
        self.0.io.push(Job::Child {
            parent: Arc::clone(child.parent),
            lower,
            sector: child.sector,
            sectors: child.sectors,
            buf_offset: child.buf_offset,
            op: child.op,
            fua: child.fua,
            tag: child.tag,
        });
    }

    fn complete(&self, io: HostIo, result: Result<(), Errno>) {
        match io.take_done() {
            None => log::warn!("a request of minor {} completed twice", io.minor),
            Some(Done::Callback(done)) => {
                let data = if result.is_ok() && io.req.op == Op::Read { io.take_data() } else { Vec::new() };
                done(result, data);
            }
            Some(Done::Stacked { parent, tag }) => {
                if let Some(core) = self.core() {
                    core.child_done(&parent, tag, result);
                }
            }
            Some(Done::Sync(sync)) => sync.finish(result, io.take_data()),
        }
    }

    /// Called under the device's admission lock: only queues (or, at shutdown, hands the
    /// failure to the I/O pool).
    fn defer(&self, minor: u32, io: HostIo) {
        let mut deferred = self.deferred();
        if self.0.stopping.load(Ordering::SeqCst) {
            drop(deferred);
            self.0.io.push(Job::Fail(io, Errno::ENXIO));
            return;
        }
        deferred.queues.entry(minor).or_default().push_back(io);
    }

    fn release_deferred(&self, minor: u32) {
        let waiting = self.deferred().queues.remove(&minor).unwrap_or_default();
        let Some(core) = self.core() else { return };
        for io in waiting {
            let req = io.req;
            core.submit(io.minor, io, req);
        }
    }

    fn disk_io(&self, disk: &HostDisk, sector: u64, io: DiskIo<'_>) -> Result<(), Errno> {
        let pos = sector.checked_mul(SECTOR_SIZE).ok_or(Errno::EIO)?;
        let span = |sectors: u64| sectors.checked_mul(SECTOR_SIZE).ok_or(Errno::EIO);
        match &disk.kind {
            DiskKind::File(file) => match io {
                DiskIo::Read(buf) => file.read_at(buf, pos),
                DiskIo::Write { data, fua } => {
                    file.write_at(data, pos)?;
                    if fua {
                        file.sync()?;
                    }
                    Ok(())
                }
                DiskIo::Flush => file.sync(),
                DiskIo::Discard { sectors } => file.discard(pos, span(sectors)?),
                DiskIo::WriteZeroes { sectors } => file.write_zeroes(pos, span(sectors)?),
            },
            DiskKind::Mapped { minor, .. } => {
                let core = self.core().ok_or(Errno::ENXIO)?;
                let op = io.op();
                let (data, bytes, fua) = match &io {
                    DiskIo::Read(buf) => (Data::Own(Buffer::new(vec![0; buf.len()])), buf.len() as u64, false),
                    DiskIo::Write { data, fua } => (Data::Own(Buffer::new(data.to_vec())), data.len() as u64, *fua),
                    DiskIo::Flush => (Data::None, 0, false),
                    DiskIo::Discard { sectors } | DiskIo::WriteZeroes { sectors } => {
                        (Data::None, span(*sectors)?, false)
                    }
                };
                if !bytes.is_multiple_of(SECTOR_SIZE) {
                    return Err(Errno::EINVAL);
                }
                let req = IoRequest { sector, bytes, op, fua };
                let sync = Arc::new(SyncDone { outcome: Mutex::new(None), finished: Condvar::new() });
                let request = Arc::new(HostRequest {
                    slot: IoSlot::new(),
                    minor: *minor,
                    req,
                    depth: 1,
                    data,
                    done: Mutex::new(Some(Done::Sync(Arc::clone(&sync)))),
                });
                core.submit(*minor, request, req);
                let (result, data) = sync.wait();
                result?;
                if let DiskIo::Read(buf) = io {
                    if data.len() != buf.len() {
                        return Err(Errno::EIO);
                    }
                    buf.copy_from_slice(&data);
                }
                Ok(())
            }
        }
    }

    fn mapped_minor(&self, dev: DevT) -> Option<u32> {
        (dev.major == DM_MAJOR).then_some(dev.minor)
    }

    fn autoload_target(&self, name: &str) -> bool {
        self.0.autoload.get().is_some_and(|hook| hook(name))
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.0.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn wait(&self, ready: &mut dyn FnMut() -> bool, interruptible: bool) -> Result<(), Errno> {
        let mut generation = self.0.wait_lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if ready() {
                return Ok(());
            }
            if !interruptible {
                generation = self.0.wait_cv.wait(generation).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            if self.0.stopping.load(Ordering::SeqCst) || interrupted() {
                return Err(Errno::EINTR);
            }
            generation = match self.0.wait_cv.wait_timeout(generation, INTERRUPT_POLL) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn wake(&self) {
        let mut generation = self.0.wait_lock.lock().unwrap_or_else(|e| e.into_inner());
        *generation = generation.wrapping_add(1);
        drop(generation);
        self.0.wait_cv.notify_all();
    }

    fn queue_work(&self, work: Arc<dyn Work>, at_ns: Option<u64>) {
        match at_ns {
            Some(at) if at > self.now_ns() => {
                let at = self.0.epoch.checked_add(Duration::from_nanos(at)).unwrap_or_else(Instant::now);
                self.0.timer.schedule(at, work);
            }
            _ => self.0.work.push(work),
        }
    }

    fn log(&self, level: LogLevel, args: fmt::Arguments<'_>) {
        log::log!(target: "dmcore", log_level(level), "{args}");
    }

    fn attach_device(&self, minor: u32, name: &[u8]) -> Result<(), Errno> {
        log::info!("device {} created (minor {minor})", String::from_utf8_lossy(name));
        Ok(())
    }

    fn detach_device(&self, minor: u32) {
        // The core released every deferred request before; drop the empty queue.
        self.deferred().queues.remove(&minor);
        log::info!("device of minor {minor} removed");
    }

    fn device_resized(&self, minor: u32, sectors: u64) {
        log::info!("device of minor {minor} now has {sectors} sectors");
    }
}
