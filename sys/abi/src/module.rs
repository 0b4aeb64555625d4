//! The module's side of the ABI: a `dmcore` target type exported as a `struct dmtarget_ops`.
//!
//! The module's targets are ordinary `dmcore` targets instantiated on [`ModulePlatform`], a
//! `Platform` whose every operation goes to the core across the ABI (`struct dmtarget_host`):
//! lower devices are the core's (opened by spec, closed on drop), synchronous I/O, time,
//! background work, waiting and the log are the core's. The module has no requests of its own
//! (its `Io` type has no values): the pieces it maps are the core's, reached through
//! `dmcore`'s foreign [`Mapper`] and [`QueuedIo`](dmcore::io::QueuedIo)
//! ([`dmcore::io::ForeignIo`]), so the target's
//! code is the same whether it is built into the core or into a module.
//!
//! ```ignore
//! // A module with the flakey target of dmcore:
//! dmcore_abi::export_target!(dm_target_flakey_ops, dmcore::target::flakey::FlakeyType);
//! ```
//!
//! The exported function returns the ops table (built once, then the same address) for the
//! module's glue to pass to `dmcore_target_register` (kernel) or for `dmtarget_module_entry`
//! (dmhost) to return.

pub use alloc::boxed::Box;
pub use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::{c_char, c_int, c_void};
use core::fmt::{self, Write};
use core::ptr::{self, NonNull};

use dmcore::errno::Errno;
use dmcore::event::{EventListener, EventSink};
use dmcore::io::{ForeignHandle, ForeignIo, IoSlot, Mapper, Segment};
use dmcore::platform::{Child, DevT, DiskIo, DiskSpec, LogLevel, LowerDisk, Op, Platform, Work};
use dmcore::target::{BuildContext, SharedState, StatusKind, Target, TargetType};

use crate::sys;
use crate::{errno_code, features_code, op_code, op_from_code, result_of, size_u32};

/// The platform of a module's targets: a reference to the core that registered the type (held
/// while the value lives, so the module cannot be unregistered meanwhile) and its functions.
pub struct ModulePlatform {
    host: NonNull<sys::dmtarget_host>,
    core: NonNull<sys::dmtarget_core>,
}

// SAFETY: the core's functions may be called from any thread (dmtarget.h); the pointers are
// only passed to them.
unsafe impl Send for ModulePlatform {}
// SAFETY: as above.
unsafe impl Sync for ModulePlatform {}

impl ModulePlatform {
    /// Takes a reference to the core of a constructor's context.
    ///
    /// # Safety
    /// `ctx` is the valid context of a running `dto_ctr`.
    unsafe fn from_ctx(ctx: &sys::dmtarget_ctx) -> Option<Self> {
        let host = NonNull::new(ctx.dc_host.cast_mut())?;
        let core = NonNull::new(ctx.dc_core)?;
        // SAFETY: the context's host table is valid while a reference to the core is held, and
        // the constructor borrows one for the call.
        let table = unsafe { host.as_ref() };
        if table.dh_abi_version != sys::DMTARGET_ABI_VERSION || table.dh_size < size_u32::<sys::dmtarget_host>() {
            return None;
        }
        let hold = table.dh_core_hold?;
        // SAFETY: the borrowed core handle is valid for the call; this takes a reference of our
        // own, given back in Drop.
        unsafe { hold(core.as_ptr()) };
        Some(ModulePlatform { host, core })
    }

    fn host(&self) -> &sys::dmtarget_host {
        // SAFETY: valid while this value holds its reference to the core.
        unsafe { self.host.as_ref() }
    }

    fn core(&self) -> *mut sys::dmtarget_core {
        self.core.as_ptr()
    }
}

impl Clone for ModulePlatform {
    fn clone(&self) -> Self {
        if let Some(hold) = self.host().dh_core_hold {
            // SAFETY: this value holds a reference, so the handle is valid; the clone takes one
            // of its own.
            unsafe { hold(self.core()) };
        }
        ModulePlatform { host: self.host, core: self.core }
    }
}

impl Drop for ModulePlatform {
    fn drop(&mut self) {
        if let Some(release) = self.host().dh_core_release {
            // SAFETY: gives back this value's reference, once.
            unsafe { release(self.core()) };
        }
    }
}

/// A lower device the core opened for a module's target.
pub struct ModuleDisk {
    handle: NonNull<sys::dmtarget_disk>,
    close: unsafe extern "C" fn(*mut sys::dmtarget_disk),
    dev: DevT,
    sectors: u64,
    /// The core's reference, so that the close function stays valid.
    _platform: ModulePlatform,
}

// SAFETY: the handle is this value's alone; the core's disk functions may be called from any
// thread.
unsafe impl Send for ModuleDisk {}
// SAFETY: shared use only passes the handle to the core's thread-safe functions.
unsafe impl Sync for ModuleDisk {}

impl LowerDisk for ModuleDisk {
    fn dev(&self) -> DevT {
        self.dev
    }

    fn sectors(&self) -> u64 {
        self.sectors
    }
}

impl Drop for ModuleDisk {
    fn drop(&mut self) {
        // SAFETY: the handle came from dh_disk_open and is closed once; `_platform` keeps the
        // core (and its function) alive until after this.
        unsafe { (self.close)(self.handle.as_ptr()) };
    }
}

/// The module's requests: it has none (every piece it maps belongs to the core).
#[derive(Clone, Copy, Debug)]
pub enum NoIo {}

/// Formats into a fixed buffer on the stack (a device spec of a number, a log line).
struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    const fn new() -> Self {
        StackText { buf: [0; N], len: 0 }
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl<const N: usize> fmt::Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            let Some(slot) = self.buf.get_mut(self.len) else { return Ok(()) };
            *slot = b;
            self.len += 1;
        }
        Ok(())
    }
}

impl Platform for ModulePlatform {
    type Disk = ModuleDisk;
    type Io = NoIo;

    fn open_disk(&self, spec: DiskSpec<'_>) -> Result<ModuleDisk, Errno> {
        let mut number = StackText::<32>::new();
        let text: &[u8] = match spec {
            DiskSpec::Path(path) => path.as_bytes(),
            DiskSpec::Number(dev) => {
                let _ = write!(number, "{dev}");
                number.as_bytes()
            }
        };
        let host = self.host();
        let (Some(open), Some(close)) = (host.dh_disk_open, host.dh_disk_close) else {
            return Err(Errno::ENXIO);
        };
        let mut handle = ptr::null_mut();
        let (mut sectors, mut major, mut minor) = (0u64, 0u32, 0u32);
        // SAFETY: the spec bytes and the out-pointers are valid for the call; the core handle is
        // held.
        let code = unsafe {
            open(self.core(), text.as_ptr().cast(), text.len(), &mut handle, &mut sectors, &mut major, &mut minor)
        };
        result_of(code)?;
        let handle = NonNull::new(handle).ok_or(Errno::EIO)?;
        Ok(ModuleDisk { handle, close, dev: DevT::new(major, minor), sectors, _platform: self.clone() })
    }

    fn slot(io: &NoIo) -> &IoSlot<Self> {
        match *io {}
    }

    fn with_data(&self, io: &NoIo, _: usize, _: usize, _: &mut dyn FnMut(&mut [u8])) -> Result<(), Errno> {
        match *io {}
    }

    fn submit(&self, child: Child<'_, Self>) {
        match *child.parent {}
    }

    fn complete(&self, io: NoIo, _: Result<(), Errno>) {
        match io {}
    }

    fn defer(&self, _: u32, io: NoIo) {
        match io {}
    }

    fn release_deferred(&self, _: u32) {}

    fn disk_io(&self, disk: &ModuleDisk, sector: u64, io: DiskIo<'_>) -> Result<(), Errno> {
        let op = op_code(io.op());
        let (buf, bytes, fua): (*mut u8, u64, bool) = match io {
            DiskIo::Read(buf) => (buf.as_mut_ptr(), buf.len() as u64, false),
            // The core only reads a write's buffer.
            DiskIo::Write { data, fua } => (data.as_ptr().cast_mut(), data.len() as u64, fua),
            DiskIo::Flush => (ptr::null_mut(), 0, false),
            DiskIo::Discard { sectors } | DiskIo::WriteZeroes { sectors } => {
                (ptr::null_mut(), sectors.checked_mul(dmcore::SECTOR_SIZE).ok_or(Errno::EINVAL)?, false)
            }
        };
        let f = self.host().dh_disk_io.ok_or(Errno::ENXIO)?;
        // SAFETY: buf is NULL or valid for `bytes` bytes for this synchronous call; the disk is
        // open and the core handle held.
        result_of(unsafe { f(self.core(), disk.handle.as_ptr(), op, sector, buf.cast(), bytes, i32::from(fua)) })
    }

    fn now_ns(&self) -> u64 {
        match self.host().dh_now_ns {
            // SAFETY: the core handle is held.
            Some(f) => unsafe { f(self.core()) },
            None => 0,
        }
    }

    fn wait(&self, ready: &mut dyn FnMut() -> bool, interruptible: bool) -> Result<(), Errno> {
        unsafe extern "C" fn call(arg: *mut c_void) -> c_int {
            // SAFETY: arg is the `&mut dyn FnMut` below, alive for the wait.
            let ready = unsafe { &mut *arg.cast::<&mut dyn FnMut() -> bool>() };
            c_int::from(ready())
        }
        let f = self.host().dh_wait.ok_or(Errno::ENXIO)?;
        let mut ready: &mut dyn FnMut() -> bool = ready;
        let arg = (&mut ready as *mut &mut dyn FnMut() -> bool).cast::<c_void>();
        // SAFETY: `call` and `arg` stay valid until the core's wait returns; the core handle is
        // held.
        result_of(unsafe { f(self.core(), Some(call), arg, i32::from(interruptible)) })
    }

    fn wake(&self) {
        if let Some(f) = self.host().dh_wake {
            // SAFETY: the core handle is held.
            unsafe { f(self.core()) };
        }
    }

    fn queue_work(&self, work: Arc<dyn Work>, at_ns: Option<u64>) {
        unsafe extern "C" fn run(arg: *mut c_void) {
            // SAFETY: arg is the boxed Arc below, alive until `drop_work`.
            let work = unsafe { &*arg.cast::<Arc<dyn Work>>() };
            work.run();
        }
        unsafe extern "C" fn drop_work(arg: *mut c_void) {
            // SAFETY: arg is the boxed Arc below, freed once, here.
            drop(unsafe { Box::from_raw(arg.cast::<Arc<dyn Work>>()) });
        }
        let Some(f) = self.host().dh_queue_work else {
            return;
        };
        let arg = Box::into_raw(Box::new(work)).cast::<c_void>();
        // SAFETY: the core calls `run` at most once and `drop_work` exactly once with `arg`
        // (dmtarget.h); the core handle is held. A time of 0 means "as soon as possible".
        unsafe { f(self.core(), Some(run), Some(drop_work), arg, at_ns.unwrap_or(0)) };
    }

    fn log(&self, level: LogLevel, args: fmt::Arguments<'_>) {
        let Some(f) = self.host().dh_log else {
            return;
        };
        let mut text = StackText::<256>::new();
        let _ = text.write_fmt(args);
        let level = (match level {
            LogLevel::Error => sys::DMTARGET_LOG_ERROR,
            LogLevel::Warning => sys::DMTARGET_LOG_WARNING,
            LogLevel::Info => sys::DMTARGET_LOG_INFO,
            LogLevel::Debug => sys::DMTARGET_LOG_DEBUG,
        }) as c_int;
        let bytes = text.as_bytes();
        // SAFETY: pointer and length describe `bytes`; the core handle is held.
        unsafe { f(self.core(), level, bytes.as_ptr().cast(), bytes.len()) };
    }
}

/// The pieces of the core's requests, as the module's [`Mapper`] and
/// [`QueuedIo`](dmcore::io::QueuedIo) reach them.
struct CorePieces;

static CORE_PIECES: CorePieces = CorePieces;

fn piece(handle: ForeignHandle) -> *mut sys::dmtarget_piece {
    handle.0 as *mut sys::dmtarget_piece
}

fn queued(handle: ForeignHandle) -> *mut sys::dmtarget_queued {
    handle.0 as *mut sys::dmtarget_queued
}

impl ForeignIo<ModulePlatform> for CorePieces {
    fn issue(
        &self,
        platform: &ModulePlatform,
        handle: ForeignHandle,
        disk: &ModuleDisk,
        sector: u64,
        sectors: u64,
        buf_offset: usize,
        op: Op,
        aux: u32,
    ) {
        if let Some(f) = platform.host().dh_piece_issue {
            // SAFETY: the handle is the piece of the running dto_map (a foreign Mapper lives
            // no longer than the call); the disk is open.
            unsafe { f(piece(handle), disk.handle.as_ptr(), sector, sectors, buf_offset as u64, op_code(op), aux) };
        }
    }

    fn fail(&self, platform: &ModulePlatform, handle: ForeignHandle, errno: Errno) {
        if let Some(f) = platform.host().dh_piece_fail {
            // SAFETY: as in issue.
            unsafe { f(piece(handle), errno_code(Err(errno))) };
        }
    }

    fn zero_fill(&self, platform: &ModulePlatform, handle: ForeignHandle) {
        if let Some(f) = platform.host().dh_piece_zero_fill {
            // SAFETY: as in issue.
            unsafe { f(piece(handle)) };
        }
    }

    fn queue(&self, platform: &ModulePlatform, handle: ForeignHandle) -> Result<ForeignHandle, Errno> {
        let f = platform.host().dh_piece_queue.ok_or(Errno::ENOMEM)?;
        // SAFETY: as in issue.
        let kept = unsafe { f(piece(handle)) };
        if kept.is_null() {
            // The core failed the piece with ENOMEM.
            Err(Errno::ENOMEM)
        } else {
            Ok(ForeignHandle(kept as usize))
        }
    }

    fn queued_data(
        &self,
        platform: &ModulePlatform,
        handle: ForeignHandle,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), Errno> {
        unsafe extern "C" fn call(arg: *mut c_void, data: *mut u8, len: usize) {
            // SAFETY: arg is the `&mut dyn FnMut` below, alive for the call.
            let f = unsafe { &mut *arg.cast::<&mut dyn FnMut(&mut [u8])>() };
            if data.is_null() {
                f(&mut []);
            } else {
                // SAFETY: the core passes the piece's `len` bytes, for this call only.
                f(unsafe { core::slice::from_raw_parts_mut(data, len) });
            }
        }
        let data = platform.host().dh_queued_data.ok_or(Errno::EIO)?;
        let mut f: &mut dyn FnMut(&mut [u8]) = f;
        let arg = (&mut f as *mut &mut dyn FnMut(&mut [u8])).cast::<c_void>();
        // SAFETY: the handle is a kept piece not yet finished (QueuedIo finishes it once);
        // `call` and `arg` are valid for the call.
        result_of(unsafe { data(queued(handle), Some(call), arg) })
    }

    fn queued_finish(&self, platform: &ModulePlatform, handle: ForeignHandle, result: Result<(), Errno>) {
        if let Some(f) = platform.host().dh_queued_finish {
            // SAFETY: a kept piece, finished once (QueuedIo takes the handle out first).
            unsafe { f(queued(handle), errno_code(result)) };
        }
    }

    fn queued_remap(&self, platform: &ModulePlatform, handle: ForeignHandle, disk: &ModuleDisk, sector: u64) {
        if let Some(f) = platform.host().dh_queued_remap {
            // SAFETY: a kept piece, remapped once; the disk is open.
            unsafe { f(queued(handle), disk.handle.as_ptr(), sector) };
        }
    }
}

/// The device's event counter, across the ABI; the reference is given back when the last
/// clone of the sink goes.
struct CoreEvents {
    events: NonNull<sys::dmtarget_events>,
    platform: ModulePlatform,
}

// SAFETY: dh_event may be called from any thread, on the I/O path too.
unsafe impl Send for CoreEvents {}
// SAFETY: as above.
unsafe impl Sync for CoreEvents {}

impl EventListener for CoreEvents {
    fn event(&self) {
        if let Some(f) = self.platform.host().dh_event {
            // SAFETY: the events handle is ours until released in Drop.
            unsafe { f(self.events.as_ptr()) };
        }
    }
}

impl Drop for CoreEvents {
    fn drop(&mut self) {
        if let Some(f) = self.platform.host().dh_events_release {
            // SAFETY: gives back the reference dto_ctr handed over, once.
            unsafe { f(self.events.as_ptr()) };
        }
    }
}

/// State the module's targets share (its own: cores do not share state across the ABI).
static SHARED: SharedState = SharedState::new();

/// One target of the module: the `dmcore` target, then the platform (dropped after it).
struct ModuleTarget {
    target: Box<dyn Target<ModulePlatform>>,
    platform: ModulePlatform,
}

/// Appends `s` to a core text handle.
fn append(host: &sys::dmtarget_host, text: *mut sys::dmtarget_text, s: &str) {
    if let Some(f) = host.dh_text_append {
        // SAFETY: the text handle is the core's for the current call; s is valid for it.
        unsafe { f(text, s.as_ptr().cast(), s.len()) };
    }
}

/// The arguments of a call: argc UTF-8 strings, with their lengths (which dmtarget.h passes,
/// so that nothing here needs strlen, which a kernel module should not import).
///
/// # Safety
/// `argv` and `argl` point to `argc` entries (or argc is 0): strings of `argl[i]` readable
/// bytes.
unsafe fn arguments(argc: u32, argv: *const *const c_char, argl: *const usize) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(argc as usize);
    for i in 0..argc as usize {
        // SAFETY: i < argc entries in both arrays (the caller's contract).
        let (arg, len) = unsafe { (*argv.add(i), *argl.add(i)) };
        if arg.is_null() {
            return None;
        }
        // SAFETY: `len` readable bytes at arg (the caller's contract).
        let bytes = unsafe { core::slice::from_raw_parts(arg.cast::<u8>(), len) };
        out.push(String::from(core::str::from_utf8(bytes).ok()?));
    }
    Some(out)
}

/// `dto_ctr` of the type `T`.
unsafe extern "C" fn ctr<T: TargetType<ModulePlatform> + Default>(
    ctx: *const sys::dmtarget_ctx,
    argc: u32,
    argv: *const *const c_char,
    argl: *const usize,
    target: *mut *mut c_void,
    error: *mut sys::dmtarget_text,
) -> c_int {
    // SAFETY: the core passes a valid context for the call.
    let Some(ctx) = (unsafe { ctx.as_ref() }) else {
        return Errno::EINVAL.0;
    };
    // SAFETY: as above.
    let Some(platform) = (unsafe { ModulePlatform::from_ctx(ctx) }) else {
        return Errno::EINVAL.0;
    };
    // The events reference is ours from here on: released when the sink's last clone goes.
    let events = match NonNull::new(ctx.dc_events) {
        Some(events) => EventSink::new(Arc::new(CoreEvents { events, platform: platform.clone() })),
        None => EventSink::detached(),
    };
    let host = platform.host();
    if target.is_null() || (argc > 0 && (argv.is_null() || argl.is_null())) {
        return Errno::EINVAL.0;
    }
    // SAFETY: argc strings and lengths at argv and argl (dmtarget.h).
    let Some(args) = (unsafe { arguments(argc, argv, argl) }) else {
        append(host, error, "argument is not UTF-8");
        return Errno::EINVAL.0;
    };
    let bctx = BuildContext {
        platform: &platform,
        minor: ctx.dc_minor,
        start: ctx.dc_start,
        len: ctx.dc_len,
        read_only: ctx.dc_read_only != 0,
        shared: &SHARED,
        events: &events,
    };
    match T::default().construct(&bctx, &args) {
        Ok(built) => {
            let made = Box::new(ModuleTarget { target: built, platform });
            // SAFETY: checked non-NULL, writable (dmtarget.h).
            unsafe { target.write(Box::into_raw(made).cast()) };
            0
        }
        Err(e) => {
            append(host, error, &e.message);
            errno_code(Err(e.errno))
        }
    }
}

/// The target behind a `void *target` of the core.
///
/// # Safety
/// `target` is NULL or what `ctr` made, not yet destroyed.
unsafe fn target_of<'a>(target: *mut c_void) -> Option<&'a ModuleTarget> {
    // SAFETY: per the function's contract.
    unsafe { target.cast::<ModuleTarget>().as_ref() }
}

unsafe extern "C" fn dtr(target: *mut c_void) {
    if !target.is_null() {
        // SAFETY: what ctr made, destroyed once (dmtarget.h).
        drop(unsafe { Box::from_raw(target.cast::<ModuleTarget>()) });
    }
}

unsafe extern "C" fn map(target: *mut c_void, seg: *const sys::dmtarget_segment, handle: *mut sys::dmtarget_piece) {
    // SAFETY: the core passes a live target and a valid segment for the call.
    let (Some(t), Some(seg)) = (unsafe { target_of(target) }, unsafe { seg.as_ref() }) else {
        return;
    };
    let handle = ForeignHandle(handle as usize);
    let (op, buf_offset) = match (op_from_code(seg.ds_op), usize::try_from(seg.ds_buf_offset)) {
        (Some(op), Ok(buf_offset)) => (op, buf_offset),
        _ => return CORE_PIECES.fail(&t.platform, handle, Errno::EINVAL),
    };
    let segment = Segment { offset: seg.ds_offset, sectors: seg.ds_sectors, buf_offset, op, fua: seg.ds_fua != 0 };
    let mut mapper = Mapper::foreign(&t.platform, segment, &CORE_PIECES, handle);
    t.target.map(&segment, &mut mapper);
}

unsafe extern "C" fn piece_len(target: *mut c_void, offset: u64, op: c_int) -> u64 {
    // SAFETY: the core passes a live target.
    match (unsafe { target_of(target) }, op_from_code(op)) {
        (Some(t), Some(op)) => t.target.piece_len(offset, op),
        _ => u64::MAX,
    }
}

unsafe extern "C" fn end_io(target: *mut c_void, aux: u32, error: c_int) {
    // SAFETY: the core passes a live target.
    if let Some(t) = unsafe { target_of(target) } {
        t.target.end_io(aux, result_of(error));
    }
}

unsafe extern "C" fn presuspend(target: *mut c_void, noflush: c_int) {
    // SAFETY: the core passes a live target.
    if let Some(t) = unsafe { target_of(target) } {
        t.target.presuspend(noflush != 0);
    }
}

unsafe extern "C" fn preresume(target: *mut c_void) -> c_int {
    // SAFETY: the core passes a live target.
    match unsafe { target_of(target) } {
        Some(t) => errno_code(t.target.preresume()),
        None => Errno::EINVAL.0,
    }
}

unsafe extern "C" fn resume(target: *mut c_void) {
    // SAFETY: the core passes a live target.
    if let Some(t) = unsafe { target_of(target) } {
        t.target.resume();
    }
}

unsafe extern "C" fn status(target: *mut c_void, kind: c_int, text: *mut sys::dmtarget_text) {
    // SAFETY: the core passes a live target.
    let Some(t) = (unsafe { target_of(target) }) else {
        return;
    };
    let kind = match u32::try_from(kind) {
        Ok(sys::DMTARGET_STATUS_TABLE) => StatusKind::Table,
        Ok(sys::DMTARGET_STATUS_IMA) => StatusKind::Ima,
        _ => StatusKind::Info,
    };
    let mut line = String::new();
    t.target.status(kind, &mut line);
    append(t.platform.host(), text, &line);
}

unsafe extern "C" fn message(
    target: *mut c_void,
    argc: u32,
    argv: *const *const c_char,
    argl: *const usize,
    text: *mut sys::dmtarget_text,
    answered: *mut c_int,
) -> c_int {
    // SAFETY: the core passes a live target.
    let Some(t) = (unsafe { target_of(target) }) else {
        return Errno::EINVAL.0;
    };
    let host = t.platform.host();
    if argc > 0 && (argv.is_null() || argl.is_null()) {
        return Errno::EINVAL.0;
    }
    // SAFETY: argc strings and lengths at argv and argl (dmtarget.h).
    let Some(args) = (unsafe { arguments(argc, argv, argl) }) else {
        append(host, text, "argument is not UTF-8");
        return Errno::EINVAL.0;
    };
    match t.target.message(&args) {
        Ok(answer) => {
            if let Some(answer) = &answer {
                append(host, text, answer);
            }
            if !answered.is_null() {
                // SAFETY: checked non-NULL, writable (dmtarget.h).
                unsafe { answered.write(c_int::from(answer.is_some())) };
            }
            0
        }
        Err(e) => {
            append(host, text, &e.message);
            errno_code(Err(e.errno))
        }
    }
}

unsafe extern "C" fn devices(target: *mut c_void, list: *mut sys::dmtarget_devices) {
    // SAFETY: the core passes a live target.
    let Some(t) = (unsafe { target_of(target) }) else {
        return;
    };
    let Some(add) = t.platform.host().dh_devices_add else {
        return;
    };
    t.target.devices(&mut |dev| {
        // SAFETY: the list handle is the core's for the current call.
        unsafe { add(list, dev.major, dev.minor) }
    });
}

/// The ops table of the target type `T` (a `dmcore` type instantiated on [`ModulePlatform`]):
/// its name (cut to `DMTARGET_NAME_MAX - 1` bytes, which the core then refuses if that
/// changed it), version and features, and the functions above.
pub fn ops<T: TargetType<ModulePlatform> + Default>() -> sys::dmtarget_ops {
    let ty = T::default();
    let mut name = [0 as c_char; sys::DMTARGET_NAME_MAX as usize];
    let room = name.len().saturating_sub(1);
    for (slot, &b) in name.iter_mut().zip(ty.name().as_bytes().iter().take(room)) {
        *slot = b as c_char;
    }
    if ty.name().len() > room {
        // Too long to carry: an empty name the core refuses.
        name = [0; sys::DMTARGET_NAME_MAX as usize];
    }
    sys::dmtarget_ops {
        dto_abi_version: sys::DMTARGET_ABI_VERSION,
        dto_size: size_u32::<sys::dmtarget_ops>(),
        dto_name: name,
        dto_version: ty.version(),
        dto_features: features_code(ty.features()),
        dto_ctr: Some(ctr::<T>),
        dto_dtr: Some(dtr),
        dto_map: Some(map),
        dto_piece_len: Some(piece_len),
        dto_end_io: Some(end_io),
        dto_presuspend: Some(presuspend),
        dto_preresume: Some(preresume),
        dto_resume: Some(resume),
        dto_status: Some(status),
        dto_message: Some(message),
        dto_devices: Some(devices),
    }
}

/// Where an exported ops table lives: built on first use, at one address for ever.
pub struct OpsSlot(spin::Once<sys::dmtarget_ops>);

// SAFETY: the table is immutable once built, and its function pointers and data may be read
// from any thread.
unsafe impl Sync for OpsSlot {}

impl OpsSlot {
    pub const fn new() -> Self {
        OpsSlot(spin::Once::new())
    }

    /// The ops table of `T`, built the first time.
    pub fn get<T: TargetType<ModulePlatform> + Default>(&'static self) -> *const sys::dmtarget_ops {
        self.0.call_once(ops::<T>)
    }
}

impl Default for OpsSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// Defines `extern "C" fn $name() -> *const dmtarget_ops`, returning the ops table of a
/// `dmcore` target type for the module's glue.
///
/// * `export_target!(name, Type)`: `Type` implements `TargetType<ModulePlatform>` and `Default`.
/// * `export_target!(name, Type = value)`: `value` is a constant of `Type`, which implements
///   `TargetType<P>` for every platform (the `dmcore` targets' unit types, such as
///   `dmcore::target::flakey::FlakeyType`).
#[macro_export]
macro_rules! export_target {
    ($name:ident, $ty:ty) => {
        /// The ops table of this module's target type (kmod/include/dmtarget.h).
        #[no_mangle]
        pub extern "C" fn $name() -> *const $crate::sys::dmtarget_ops {
            static SLOT: $crate::module::OpsSlot = $crate::module::OpsSlot::new();
            SLOT.get::<$ty>()
        }
    };
    ($name:ident, $ty:ty = $value:expr) => {
        /// The ops table of this module's target type (kmod/include/dmtarget.h).
        #[no_mangle]
        pub extern "C" fn $name() -> *const $crate::sys::dmtarget_ops {
            /// The exported type, by value.
            #[derive(Default)]
            struct Exported;
            const VALUE: $ty = $value;
            impl ::dmcore::target::TargetType<$crate::module::ModulePlatform> for Exported {
                fn name(&self) -> &str {
                    ::dmcore::target::TargetType::<$crate::module::ModulePlatform>::name(&VALUE)
                }
                fn version(&self) -> [u32; 3] {
                    ::dmcore::target::TargetType::<$crate::module::ModulePlatform>::version(&VALUE)
                }
                fn features(&self) -> ::dmcore::target::TargetFeatures {
                    ::dmcore::target::TargetType::<$crate::module::ModulePlatform>::features(&VALUE)
                }
                fn construct(
                    &self,
                    ctx: &::dmcore::target::BuildContext<'_, $crate::module::ModulePlatform>,
                    args: &[$crate::module::String],
                ) -> ::core::result::Result<
                    $crate::module::Box<dyn ::dmcore::target::Target<$crate::module::ModulePlatform>>,
                    ::dmcore::target::TargetError,
                > {
                    ::dmcore::target::TargetType::<$crate::module::ModulePlatform>::construct(&VALUE, ctx, args)
                }
            }
            static SLOT: $crate::module::OpsSlot = $crate::module::OpsSlot::new();
            SLOT.get::<Exported>()
        }
    };
}
