//! [`KernelPlatform`]: the core's `Platform` over the glue's `dmglue_*` functions.
//!
//! All state lives in the glue; the platform value itself is empty. A request is the glue's
//! object, named on both sides by the address of the `struct dmcore_io_slot` inside it, where the
//! core keeps its [`IoSlot`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::mem::{align_of, size_of};
use core::ptr::{self, NonNull};

use dmcore::errno::Errno;
use dmcore::io::IoSlot;
use dmcore::platform::{Child, DevT, DiskIo, DiskSpec, LogLevel, LowerDisk, Op, Platform, Work};

use crate::sys;
use dm_kernel_rt::StackText;

// The core's per-request state fits in the room the glue embeds for it.
const _: () = assert!(size_of::<IoSlot<KernelPlatform>>() <= size_of::<sys::dmcore_io_slot>());
const _: () = assert!(align_of::<IoSlot<KernelPlatform>>() <= align_of::<sys::dmcore_io_slot>());
const _: () = assert!(size_of::<sys::dmcore_io_slot>() == sys::DMCORE_IO_SLOT_SIZE as usize);
const _: () = assert!(align_of::<sys::dmcore_io_slot>() == sys::DMCORE_IO_SLOT_ALIGN as usize);

/// Longest lower-device path, NUL included (NetBSD's MAXPATHLEN).
const MAX_PATH: usize = 1024;
/// NetBSD's (and FreeBSD's) ENAMETOOLONG.
const ENAMETOOLONG: Errno = Errno(63);

/// The kernel platform: a handle to the glue.
#[derive(Clone, Copy, Default, Debug)]
pub struct KernelPlatform;

/// A request of the glue, by the address of the slot inside it.
#[derive(Clone, Copy, Debug)]
pub struct KernelIo(NonNull<sys::dmcore_io_slot>);

// SAFETY: the handle is an address; the glue's request it names may be completed and touched from
// any thread (the core's state in the slot is made of atomics and a lock).
unsafe impl Send for KernelIo {}
// SAFETY: as above; shared references only read the address.
unsafe impl Sync for KernelIo {}

impl KernelIo {
    pub(crate) fn new(slot: NonNull<sys::dmcore_io_slot>) -> Self {
        KernelIo(slot)
    }

    fn raw(&self) -> *mut sys::dmcore_io_slot {
        self.0.as_ptr()
    }
}

/// A lower device the glue opened; dropping it closes it.
pub struct KernelDisk {
    handle: NonNull<sys::dmglue_disk>,
    dev: DevT,
    sectors: u64,
}

// SAFETY: the handle is owned by this value alone and the glue's disk functions may be called
// from any thread.
unsafe impl Send for KernelDisk {}
// SAFETY: shared use only passes the handle to the glue's thread-safe submit and I/O functions.
unsafe impl Sync for KernelDisk {}

impl LowerDisk for KernelDisk {
    fn dev(&self) -> DevT {
        self.dev
    }

    fn sectors(&self) -> u64 {
        self.sectors
    }
}

impl Drop for KernelDisk {
    fn drop(&mut self) {
        // SAFETY: the handle came from dmglue_disk_open_* and is closed once, here.
        unsafe { sys::dmglue_disk_close(self.handle.as_ptr()) };
    }
}

pub(crate) fn op_code(op: Op) -> i32 {
    (match op {
        Op::Read => sys::DMCORE_OP_READ,
        Op::Write => sys::DMCORE_OP_WRITE,
        Op::Flush => sys::DMCORE_OP_FLUSH,
        Op::Discard => sys::DMCORE_OP_DISCARD,
        Op::WriteZeroes => sys::DMCORE_OP_WRITE_ZEROES,
    }) as i32
}

pub(crate) fn op_from_code(code: i32) -> Option<Op> {
    let code = u32::try_from(code).ok()?;
    Some(match code {
        sys::DMCORE_OP_READ => Op::Read,
        sys::DMCORE_OP_WRITE => Op::Write,
        sys::DMCORE_OP_FLUSH => Op::Flush,
        sys::DMCORE_OP_DISCARD => Op::Discard,
        sys::DMCORE_OP_WRITE_ZEROES => Op::WriteZeroes,
        _ => return None,
    })
}

pub(crate) fn errno_code(result: Result<(), Errno>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(Errno(0)) => Errno::EIO.0,
        Err(errno) => errno.0,
    }
}

fn result_of(code: i32) -> Result<(), Errno> {
    if code == 0 {
        Ok(())
    } else {
        Err(Errno(code))
    }
}

/// Queued work as the glue links it: the header's `struct dmcore_work` first, then the work.
#[repr(C)]
pub(crate) struct WorkNode {
    pub link: sys::dmcore_work,
    pub work: Arc<dyn Work>,
}

/// `ready()` runs under the glue's wait lock; the guard releases it on every way out.
struct WaitLock;

impl WaitLock {
    fn enter() -> Self {
        // SAFETY: takes the glue's wait lock; released by Drop.
        unsafe { sys::dmglue_wait_enter() };
        WaitLock
    }
}

impl Drop for WaitLock {
    fn drop(&mut self) {
        // SAFETY: this guard holds the wait lock.
        unsafe { sys::dmglue_wait_exit() };
    }
}

impl KernelPlatform {
    fn open_path(&self, path: &str) -> Result<KernelDisk, Errno> {
        if path.is_empty() || path.as_bytes().contains(&0) {
            return Err(Errno::EINVAL);
        }
        if path.len() >= MAX_PATH {
            return Err(ENAMETOOLONG);
        }
        let mut cpath: Vec<u8> = Vec::new();
        cpath.try_reserve_exact(path.len() + 1).map_err(|_| Errno::ENOMEM)?;
        cpath.extend_from_slice(path.as_bytes());
        cpath.push(0);
        let mut handle = ptr::null_mut();
        let (mut sectors, mut major, mut minor) = (0u64, 0u32, 0u32);
        // SAFETY: cpath is NUL-terminated and outlives the call; the out-pointers are locals.
        let code = unsafe {
            sys::dmglue_disk_open_path(cpath.as_ptr().cast(), &mut handle, &mut sectors, &mut major, &mut minor)
        };
        result_of(code)?;
        let handle = NonNull::new(handle).ok_or(Errno::EIO)?;
        Ok(KernelDisk { handle, dev: DevT::new(major, minor), sectors })
    }

    fn open_dev(&self, dev: DevT) -> Result<KernelDisk, Errno> {
        let mut handle = ptr::null_mut();
        let mut sectors = 0u64;
        // SAFETY: the out-pointers are locals.
        let code = unsafe { sys::dmglue_disk_open_dev(dev.major, dev.minor, &mut handle, &mut sectors) };
        result_of(code)?;
        let handle = NonNull::new(handle).ok_or(Errno::EIO)?;
        Ok(KernelDisk { handle, dev, sectors })
    }
}

impl Platform for KernelPlatform {
    type Disk = KernelDisk;
    type Io = KernelIo;

    fn open_disk(&self, spec: DiskSpec<'_>) -> Result<KernelDisk, Errno> {
        match spec {
            DiskSpec::Path(path) => self.open_path(path),
            DiskSpec::Number(dev) => self.open_dev(dev),
        }
    }

    fn slot(io: &KernelIo) -> &IoSlot<Self> {
        // SAFETY: the slot lies inside the glue's request, which stays at its address until the
        // core completes it; dmcore_strategy initialised it (the size and alignment are checked
        // above); the returned borrow lives no longer than the handle it came from.
        unsafe { &*io.raw().cast::<IoSlot<Self>>() }
    }

    fn with_data(&self, io: &KernelIo, offset: usize, len: usize, f: &mut dyn FnMut(&mut [u8])) -> Result<(), Errno> {
        if len == 0 {
            f(&mut []);
            return Ok(());
        }
        // SAFETY: io names a request in flight; the glue checks the range against its buffer.
        let data = unsafe { sys::dmglue_io_data(io.raw(), offset, len) };
        if data.is_null() {
            return Err(Errno::EIO);
        }
        // SAFETY: the glue returned the address of `len` bytes of the request's buffer, which
        // stays mapped while the request is in flight; the core touches one piece of a buffer
        // from one place at a time.
        let bytes = unsafe { core::slice::from_raw_parts_mut(data.cast::<u8>(), len) };
        f(bytes);
        Ok(())
    }

    fn submit(&self, child: Child<'_, Self>) {
        let tag = sys::dmcore_tag { dt_target: child.tag.target, dt_aux: child.tag.aux };
        // SAFETY: the disk handle is open (the table holding it outlives the request) and the
        // parent is in flight; the glue reports the child's end through dmcore_child_done.
        unsafe {
            sys::dmglue_submit(
                child.disk.handle.as_ptr(),
                child.parent.raw(),
                child.sector,
                child.sectors,
                child.buf_offset,
                op_code(child.op),
                i32::from(child.fua),
                tag,
            )
        };
    }

    fn complete(&self, io: KernelIo, result: Result<(), Errno>) {
        // SAFETY: io is in flight and the core completes it once; the glue may free it.
        unsafe { sys::dmglue_complete(io.raw(), errno_code(result)) };
    }

    fn defer(&self, minor: u32, io: KernelIo) {
        // SAFETY: io is in flight; the glue keeps it until release_deferred.
        unsafe { sys::dmglue_defer(minor, io.raw()) };
    }

    fn release_deferred(&self, minor: u32) {
        // SAFETY: no core lock is held here (Platform contract); the glue resubmits through
        // dmcore_strategy.
        unsafe { sys::dmglue_release_deferred(minor) };
    }

    fn disk_io(&self, disk: &KernelDisk, sector: u64, io: DiskIo<'_>) -> Result<(), Errno> {
        let op = op_code(io.op());
        let (buf, bytes, fua): (*mut u8, u64, bool) = match io {
            DiskIo::Read(buf) => (buf.as_mut_ptr(), buf.len() as u64, false),
            // The glue only reads a write's buffer.
            DiskIo::Write { data, fua } => (data.as_ptr().cast_mut(), data.len() as u64, fua),
            DiskIo::Flush => (ptr::null_mut(), 0, false),
            DiskIo::Discard { sectors } | DiskIo::WriteZeroes { sectors } => {
                let bytes = sectors.checked_mul(dmcore::io::SECTOR_SIZE).ok_or(Errno::EINVAL)?;
                (ptr::null_mut(), bytes, false)
            }
        };
        // SAFETY: buf is NULL or valid for `bytes` bytes for this synchronous call (read: written
        // by the glue; write: only read); the handle is open.
        let code = unsafe { sys::dmglue_disk_io(disk.handle.as_ptr(), op, sector, buf.cast(), bytes, i32::from(fua)) };
        result_of(code)
    }

    fn now_ns(&self) -> u64 {
        // SAFETY: no arguments, no state.
        unsafe { sys::dmglue_now_ns() }
    }

    fn wait(&self, ready: &mut dyn FnMut() -> bool, interruptible: bool) -> Result<(), Errno> {
        let _lock = WaitLock::enter();
        loop {
            if ready() {
                return Ok(());
            }
            // SAFETY: the wait lock is held (by _lock); the glue sleeps and re-takes it.
            let interrupted = unsafe { sys::dmglue_wait_sleep(i32::from(interruptible)) };
            if interrupted != 0 && interruptible {
                return Err(Errno::EINTR);
            }
        }
    }

    fn wake(&self) {
        // SAFETY: takes and releases the wait lock itself.
        unsafe { sys::dmglue_wake_all() };
    }

    fn queue_work(&self, work: Arc<dyn Work>, at_ns: Option<u64>) {
        let node = Box::new(WorkNode {
            link: sys::dmcore_work { dw_next: ptr::null_mut(), dw_at_ns: at_ns.unwrap_or(0) },
            work,
        });
        let raw = Box::into_raw(node);
        // SAFETY: WorkNode is repr(C) with the link first, so the node's address is the link's;
        // the glue hands it back exactly once, to dmcore_work_run or dmcore_work_drop, which
        // rebuild the box.
        unsafe { sys::dmglue_work_queue(raw.cast::<sys::dmcore_work>()) };
    }

    fn log(&self, level: LogLevel, args: fmt::Arguments<'_>) {
        let mut text = StackText::<256>::new();
        let _ = text.write_fmt(args);
        let level = match level {
            LogLevel::Error => sys::DMGLUE_LOG_ERROR,
            LogLevel::Warning => sys::DMGLUE_LOG_WARNING,
            LogLevel::Info => sys::DMGLUE_LOG_INFO,
            LogLevel::Debug => sys::DMGLUE_LOG_DEBUG,
        } as i32;
        let bytes = text.as_bytes();
        // SAFETY: pointer and length describe `bytes`, alive for the call.
        unsafe { sys::dmglue_log(level, bytes.as_ptr().cast(), bytes.len()) };
    }

    fn attach_device(&self, minor: u32, name: &[u8]) -> Result<(), Errno> {
        // SAFETY: pointer and length describe `name`, alive for the call; the glue copies it.
        result_of(unsafe { sys::dmglue_device_attach(minor, name.as_ptr().cast(), name.len()) })
    }

    fn detach_device(&self, minor: u32) {
        // SAFETY: plain values.
        unsafe { sys::dmglue_device_detach(minor) };
    }

    fn device_resized(&self, minor: u32, sectors: u64) {
        // SAFETY: plain values.
        unsafe { sys::dmglue_device_resized(minor, sectors) };
    }

    fn autoload_target(&self, name: &str) -> bool {
        // SAFETY: pointer and length describe `name`, alive for the call; the glue copies it.
        unsafe { sys::dmglue_autoload_target(name.as_ptr().cast(), name.len()) != 0 }
    }

    fn mapped_minor(&self, dev: DevT) -> Option<u32> {
        let mut minor = 0u32;
        // SAFETY: the out-pointer is a local.
        let mapped = unsafe { sys::dmglue_mapped_minor(dev.major, dev.minor, &mut minor) };
        (mapped != 0).then_some(minor)
    }
}
