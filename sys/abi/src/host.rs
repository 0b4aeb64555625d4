//! The core's side of the ABI: a registered `struct dmtarget_ops` as a `dmcore` target type.
//!
//! [`register`] checks the ops table (ABI version, size, name, the required functions) and adds
//! an [`AbiTargetType`] to the core's registry. Its constructor calls `dto_ctr` with a
//! `struct dmtarget_ctx` whose handles are the core's own objects:
//!
//! | handle | what it is | valid |
//! | --- | --- | --- |
//! | `dmtarget_core` | the `AbiTargetType` (inside its `Arc`) | while a reference is held |
//! | `dmtarget_disk` | a boxed `P::Disk` | until `dh_disk_close` |
//! | `dmtarget_piece` | the `dmcore` [`Mapper`] of the piece | during `dto_map` |
//! | `dmtarget_queued` | a boxed [`QueuedIo`] | until finished or remapped |
//! | `dmtarget_events` | an `Arc` of the device's [`EventSink`] | until released |
//! | `dmtarget_text` | a `String` the core collects into | during the call |
//! | `dmtarget_devices` | the callback of `Target::devices` | during the call |
//!
//! What keeps a module loaded: the registry's reference to the type, each target of it
//! ([`AbiTarget`] holds the type until its `dto_dtr` returned), each reference the module took
//! with `dh_core_hold`, and each work item of the module waiting in the core. All of them are
//! strong references to the one `Arc` the registry holds, so [`unregister`] (the registry's
//! `unregister_if`) refuses with `EBUSY` while any exists, and once it succeeded no call into
//! the module can come any more.

use alloc::alloc::{alloc as raw_alloc, dealloc, Layout};
use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::ffi::{c_char, c_int, c_void};
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, Ordering};

use dmcore::errno::Errno;
use dmcore::event::EventSink;
use dmcore::io::{Mapper, QueuedIo, Segment};
use dmcore::platform::{DevT, DiskIo, DiskSpec, LogLevel, LowerDisk, Op, Platform, Work};
use dmcore::target::{
    BuildContext, StatusKind, Target, TargetError, TargetFeatures, TargetRegistry, TargetType, NO_MESSAGES,
};

use crate::sys;
use crate::{errno_code, features_from_code, op_code, op_from_code, result_of, size_u32};

type Ctr = unsafe extern "C" fn(
    *const sys::dmtarget_ctx,
    u32,
    *const *const c_char,
    *const usize,
    *mut *mut c_void,
    *mut sys::dmtarget_text,
) -> c_int;
type Dtr = unsafe extern "C" fn(*mut c_void);
type Map = unsafe extern "C" fn(*mut c_void, *const sys::dmtarget_segment, *mut sys::dmtarget_piece);
type Status = unsafe extern "C" fn(*mut c_void, c_int, *mut sys::dmtarget_text);

/// A module's target type, registered with a core on the platform `P`.
pub struct AbiTargetType<P: Platform> {
    ops: NonNull<sys::dmtarget_ops>,
    name: String,
    version: [u32; 3],
    features: TargetFeatures,
    ctr: Ctr,
    dtr: Dtr,
    map: Map,
    status: Status,
    platform: P,
    /// The `Arc` the registry holds, for the targets and references handed out.
    this: Weak<AbiTargetType<P>>,
}

// SAFETY: the ops table is immutable and its functions may be called from any thread (the ABI's
// rules); the rest is owned data of types that are Send and Sync.
unsafe impl<P: Platform> Send for AbiTargetType<P> {}
// SAFETY: as above.
unsafe impl<P: Platform> Sync for AbiTargetType<P> {}

/// What [`register`] registered: the caller keeps it to [`unregister`] that very type.
pub struct Registration<P: Platform> {
    name: String,
    ops: usize,
    ty: Weak<AbiTargetType<P>>,
}

impl<P: Platform> Registration<P> {
    /// The type's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this registration is of the ops table at `ops`.
    pub fn is_of(&self, ops: *const sys::dmtarget_ops) -> bool {
        self.ops == ops as usize
    }
}

/// Checks a module's ops table and registers its type with `registry`, whose targets will run
/// on `platform`. `EINVAL` for a table of another ABI version, too small, without a valid name
/// or without a required function; `EEXIST` when the name is taken.
///
/// # Safety
/// `ops` is NULL or points to a `struct dmtarget_ops` that stays valid and unchanged, with its
/// functions callable, until [`unregister`] of the returned registration succeeded (the module
/// stays loaded until then).
pub unsafe fn register<P: Platform>(
    registry: &TargetRegistry<P>,
    platform: &P,
    ops: *const sys::dmtarget_ops,
) -> Result<Registration<P>, Errno> {
    let ops = NonNull::new(ops.cast_mut()).ok_or(Errno::EINVAL)?;
    // SAFETY: the caller passes a valid, unchanging ops table.
    let table = unsafe { ops.as_ref() };
    if table.dto_abi_version != sys::DMTARGET_ABI_VERSION || table.dto_size < size_u32::<sys::dmtarget_ops>() {
        return Err(Errno::EINVAL);
    }
    let raw_name: Vec<u8> = table.dto_name.iter().map(|&c| c as u8).collect();
    let len = raw_name.iter().position(|&b| b == 0).ok_or(Errno::EINVAL)?;
    let name = core::str::from_utf8(raw_name.get(..len).ok_or(Errno::EINVAL)?).map_err(|_| Errno::EINVAL)?;
    if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(Errno::EINVAL);
    }
    let (Some(ctr), Some(dtr), Some(map), Some(status)) =
        (table.dto_ctr, table.dto_dtr, table.dto_map, table.dto_status)
    else {
        return Err(Errno::EINVAL);
    };
    let ty = Arc::new_cyclic(|this| AbiTargetType {
        ops,
        name: String::from(name),
        version: table.dto_version,
        features: features_from_code(table.dto_features),
        ctr,
        dtr,
        map,
        status,
        platform: platform.clone(),
        this: this.clone(),
    });
    let registration = Registration { name: String::from(name), ops: ops.as_ptr() as usize, ty: Arc::downgrade(&ty) };
    registry.register(ty)?;
    Ok(registration)
}

/// Unregisters the type of `registration`: `EBUSY` while a table line of it exists, while the
/// module holds a reference to the core or has work waiting in it; `ENOENT` when it is no longer
/// registered. After success nothing of the core calls into the module any more.
pub fn unregister<P: Platform>(registry: &TargetRegistry<P>, registration: &Registration<P>) -> Result<(), Errno> {
    let ours = registration.ty.as_ptr().cast::<()>();
    registry.unregister_if(&registration.name, |t| ptr::eq(Arc::as_ptr(t).cast::<()>(), ours))
}

impl<P: Platform> AbiTargetType<P> {
    fn ops(&self) -> &sys::dmtarget_ops {
        // SAFETY: register's caller keeps the table valid while the type is registered, and
        // the type cannot be unregistered while this reference to it exists.
        unsafe { self.ops.as_ref() }
    }

    /// The handle of this type for the module: the address inside the registry's `Arc`.
    fn core_handle(&self) -> *mut sys::dmtarget_core {
        (self as *const Self).cast_mut().cast()
    }
}

impl<P: Platform> TargetType<P> for AbiTargetType<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> [u32; 3] {
        self.version
    }

    fn features(&self) -> TargetFeatures {
        self.features
    }

    fn construct(&self, ctx: &BuildContext<'_, P>, args: &[String]) -> Result<Box<dyn Target<P>>, TargetError> {
        let ty = self.this.upgrade().ok_or_else(|| TargetError::new(Errno::ENOENT, "target type unregistered"))?;
        let (owned, argc) = c_arguments(args)?;
        let argv: Vec<*const c_char> = owned.iter().map(|a| a.as_ptr().cast()).collect();
        let argl: Vec<usize> = args.iter().map(String::len).collect();
        // The target owns this reference to the device's sink and gives it back with
        // dh_events_release.
        let events = Arc::into_raw(Arc::new(ctx.events.clone()));
        let cctx = sys::dmtarget_ctx {
            dc_core: self.core_handle(),
            dc_host: host_table::<P>(),
            dc_events: events.cast_mut().cast(),
            dc_start: ctx.start,
            dc_len: ctx.len,
            dc_minor: ctx.minor,
            dc_read_only: i32::from(ctx.read_only),
        };
        let mut error = String::new();
        let mut target: *mut c_void = ptr::null_mut();
        // SAFETY: every pointer is valid for the call: the context and its handles (the core
        // handle is this type, kept alive by `ty`), argc NUL-terminated strings and their
        // lengths, the out pointer and the error text; the module follows dmtarget.h.
        let code = unsafe {
            (self.ctr)(
                &cctx,
                argc,
                argv.as_ptr(),
                argl.as_ptr(),
                &mut target,
                (&mut error as *mut String).cast::<sys::dmtarget_text>(),
            )
        };
        if code != 0 {
            let errno = if code < 0 { Errno::EINVAL } else { Errno(code) };
            let message = if error.is_empty() { Cow::Borrowed(errno.description()) } else { Cow::Owned(error) };
            return Err(TargetError::new(errno, message));
        }
        let target = NonNull::new(target).ok_or_else(|| TargetError::new(Errno::EIO, "constructor made no target"))?;
        Ok(Box::new(AbiTarget { ty, target }))
    }
}

/// One table line of a module's type: the module's target, destroyed with `dto_dtr`.
struct AbiTarget<P: Platform> {
    ty: Arc<AbiTargetType<P>>,
    target: NonNull<c_void>,
}

// SAFETY: the module's target functions may be called from any thread, concurrently (the ABI's
// rules); the pointer is only passed back to them.
unsafe impl<P: Platform> Send for AbiTarget<P> {}
// SAFETY: as above.
unsafe impl<P: Platform> Sync for AbiTarget<P> {}

impl<P: Platform> AbiTarget<P> {
    fn raw(&self) -> *mut c_void {
        self.target.as_ptr()
    }

    /// Runs `f` with a text handle collecting into a new string.
    fn collect(f: impl FnOnce(*mut sys::dmtarget_text)) -> String {
        let mut text = String::new();
        f((&mut text as *mut String).cast());
        text
    }
}

/// Arguments as C strings, one NUL each, and their count; an argument holding a NUL cannot be
/// passed.
fn c_arguments(argv: &[String]) -> Result<(Vec<Vec<u8>>, u32), TargetError> {
    let mut owned = Vec::with_capacity(argv.len());
    for arg in argv {
        if arg.as_bytes().contains(&0) {
            return Err(TargetError::invalid("argument contains a NUL byte"));
        }
        let mut bytes = Vec::with_capacity(arg.len() + 1);
        bytes.extend_from_slice(arg.as_bytes());
        bytes.push(0);
        owned.push(bytes);
    }
    let argc = u32::try_from(owned.len()).map_err(|_| TargetError::invalid("Too many arguments"))?;
    Ok((owned, argc))
}

impl<P: Platform> Drop for AbiTarget<P> {
    fn drop(&mut self) {
        // SAFETY: the target came from dto_ctr and is destroyed once; the type (and so the
        // module) is kept by `self.ty` until after the call.
        unsafe { (self.ty.dtr)(self.raw()) };
    }
}

impl<P: Platform> Target<P> for AbiTarget<P> {
    fn map(&self, seg: &Segment, mapper: &mut Mapper<'_, P>) {
        let cseg = sys::dmtarget_segment {
            ds_offset: seg.offset,
            ds_sectors: seg.sectors,
            ds_buf_offset: seg.buf_offset as u64,
            ds_op: op_code(seg.op),
            ds_fua: i32::from(seg.fua),
        };
        let piece = (mapper as *mut Mapper<'_, P>).cast::<sys::dmtarget_piece>();
        // SAFETY: the target is alive; the segment and the mapper behind the piece handle live
        // for the call, and the module uses the handle only during it (dmtarget.h).
        unsafe { (self.ty.map)(self.raw(), &cseg, piece) };
    }

    fn piece_len(&self, offset: u64, op: Op) -> u64 {
        match self.ty.ops().dto_piece_len {
            // SAFETY: the target is alive; plain values.
            Some(f) => unsafe { f(self.raw(), offset, op_code(op)) },
            None => u64::MAX,
        }
    }

    fn end_io(&self, aux: u32, result: Result<(), Errno>) {
        if let Some(f) = self.ty.ops().dto_end_io {
            // SAFETY: the target is alive; plain values.
            unsafe { f(self.raw(), aux, errno_code(result)) };
        }
    }

    fn presuspend(&self, noflush: bool) {
        if let Some(f) = self.ty.ops().dto_presuspend {
            // SAFETY: the target is alive; plain values.
            unsafe { f(self.raw(), i32::from(noflush)) };
        }
    }

    fn preresume(&self) -> Result<(), Errno> {
        match self.ty.ops().dto_preresume {
            // SAFETY: the target is alive.
            Some(f) => result_of(unsafe { f(self.raw()) }),
            None => Ok(()),
        }
    }

    fn resume(&self) {
        if let Some(f) = self.ty.ops().dto_resume {
            // SAFETY: the target is alive.
            unsafe { f(self.raw()) };
        }
    }

    fn status(&self, kind: StatusKind, out: &mut String) {
        let kind = (match kind {
            StatusKind::Info => sys::DMTARGET_STATUS_INFO,
            StatusKind::Table => sys::DMTARGET_STATUS_TABLE,
            StatusKind::Ima => sys::DMTARGET_STATUS_IMA,
        }) as c_int;
        // SAFETY: the target is alive; the text handle is `out`, valid for the call.
        unsafe { (self.ty.status)(self.raw(), kind, (out as *mut String).cast()) };
    }

    fn devices(&self, f: &mut dyn FnMut(DevT)) {
        if let Some(devices) = self.ty.ops().dto_devices {
            let mut callback: &mut dyn FnMut(DevT) = f;
            let handle = (&mut callback as *mut &mut dyn FnMut(DevT)).cast::<sys::dmtarget_devices>();
            // SAFETY: the target is alive; the devices handle points to `callback`, valid for
            // the call.
            unsafe { devices(self.raw(), handle) };
        }
    }

    fn message(&self, argv: &[String]) -> Result<Option<String>, TargetError> {
        let Some(message) = self.ty.ops().dto_message else {
            return Err(TargetError::invalid(NO_MESSAGES));
        };
        let (owned, argc) = c_arguments(argv)?;
        let ptrs: Vec<*const c_char> = owned.iter().map(|a| a.as_ptr().cast()).collect();
        let lens: Vec<usize> = argv.iter().map(String::len).collect();
        let mut answered: c_int = 0;
        let mut code = 0;
        let text = Self::collect(|text| {
            // SAFETY: the target is alive; argc NUL-terminated strings with their lengths, the
            // text handle and the flag are valid for the call.
            code = unsafe { message(self.raw(), argc, ptrs.as_ptr(), lens.as_ptr(), text, &mut answered) };
        });
        if code != 0 {
            let errno = if code < 0 { Errno::EINVAL } else { Errno(code) };
            let reason = if text.is_empty() { Cow::Borrowed(errno.description()) } else { Cow::Owned(text) };
            return Err(TargetError::new(errno, reason));
        }
        Ok((answered != 0).then_some(text))
    }
}

// ---------------------------------------------------------------------------------------------
// struct dmtarget_host: the core's functions, one table per platform type.
// ---------------------------------------------------------------------------------------------

struct HostTable<P>(PhantomData<P>);

impl<P: Platform> HostTable<P> {
    const TABLE: sys::dmtarget_host = sys::dmtarget_host {
        dh_abi_version: sys::DMTARGET_ABI_VERSION,
        dh_size: size_u32::<sys::dmtarget_host>(),
        dh_core_hold: Some(core_hold::<P>),
        dh_core_release: Some(core_release::<P>),
        dh_disk_open: Some(disk_open::<P>),
        dh_disk_close: Some(disk_close::<P>),
        dh_disk_io: Some(disk_io::<P>),
        dh_piece_issue: Some(piece_issue::<P>),
        dh_piece_fail: Some(piece_fail::<P>),
        dh_piece_zero_fill: Some(piece_zero_fill::<P>),
        dh_piece_queue: Some(piece_queue::<P>),
        dh_queued_data: Some(queued_data::<P>),
        dh_queued_finish: Some(queued_finish::<P>),
        dh_queued_remap: Some(queued_remap::<P>),
        dh_event: Some(event),
        dh_events_release: Some(events_release),
        dh_text_append: Some(text_append),
        dh_devices_add: Some(devices_add),
        dh_now_ns: Some(now_ns::<P>),
        dh_queue_work: Some(queue_work::<P>),
        dh_wait: Some(wait::<P>),
        dh_wake: Some(wake::<P>),
        dh_log: Some(log::<P>),
    };
}

/// The core's function table for platform `P` (a constant: valid for ever).
pub fn host_table<P: Platform>() -> &'static sys::dmtarget_host {
    &HostTable::<P>::TABLE
}

/// The type behind a core handle.
///
/// # Safety
/// `core` is NULL or a handle this side gave out, whose type is alive (the caller holds a
/// reference, as dmtarget.h requires).
unsafe fn type_of<'a, P: Platform>(core: *mut sys::dmtarget_core) -> Option<&'a AbiTargetType<P>> {
    // SAFETY: per the function's contract.
    unsafe { core.cast::<AbiTargetType<P>>().as_ref() }
}

unsafe extern "C" fn core_hold<P: Platform>(core: *mut sys::dmtarget_core) {
    if core.is_null() {
        return;
    }
    // SAFETY: a core handle is the address inside the registry's Arc of the type, alive while
    // the caller holds a reference (it may take another only then).
    unsafe { Arc::increment_strong_count(core.cast_const().cast::<AbiTargetType<P>>()) };
}

unsafe extern "C" fn core_release<P: Platform>(core: *mut sys::dmtarget_core) {
    if core.is_null() {
        return;
    }
    // SAFETY: gives back one reference taken with core_hold (the module's contract).
    unsafe { Arc::decrement_strong_count(core.cast_const().cast::<AbiTargetType<P>>()) };
}

unsafe extern "C" fn disk_open<P: Platform>(
    core: *mut sys::dmtarget_core,
    spec: *const c_char,
    spec_len: usize,
    disk: *mut *mut sys::dmtarget_disk,
    sectors: *mut u64,
    major: *mut u32,
    minor: *mut u32,
) -> c_int {
    // SAFETY: the module holds a reference to the core (dmtarget.h).
    let Some(ty) = (unsafe { type_of::<P>(core) }) else {
        return Errno::EINVAL.0;
    };
    if spec.is_null() || disk.is_null() || sectors.is_null() || major.is_null() || minor.is_null() {
        return Errno::EFAULT.0;
    }
    // SAFETY: spec_len readable bytes at spec (the module's contract).
    let bytes = unsafe { core::slice::from_raw_parts(spec.cast::<u8>(), spec_len) };
    let Ok(text) = core::str::from_utf8(bytes) else {
        return Errno::EINVAL.0;
    };
    let opened = match ty.platform.open_disk(DiskSpec::parse(text)) {
        Ok(opened) => opened,
        Err(errno) => return errno.0,
    };
    let dev = opened.dev();
    let size = opened.sectors();
    let handle = Box::into_raw(Box::new(opened));
    // SAFETY: the out-pointers were checked non-NULL and are writable (the module's contract);
    // the handle is the module's until disk_close.
    unsafe {
        disk.write(handle.cast());
        sectors.write(size);
        major.write(dev.major);
        minor.write(dev.minor);
    }
    0
}

unsafe extern "C" fn disk_close<P: Platform>(disk: *mut sys::dmtarget_disk) {
    if disk.is_null() {
        return;
    }
    // SAFETY: the handle came from disk_open (a boxed P::Disk) and is closed once.
    drop(unsafe { Box::from_raw(disk.cast::<P::Disk>()) });
}

/// # Safety
/// `disk` is NULL or an open disk handle.
unsafe fn disk_of<'a, P: Platform>(disk: *mut sys::dmtarget_disk) -> Option<&'a P::Disk> {
    // SAFETY: per the function's contract.
    unsafe { disk.cast::<P::Disk>().as_ref() }
}

unsafe extern "C" fn disk_io<P: Platform>(
    core: *mut sys::dmtarget_core,
    disk: *mut sys::dmtarget_disk,
    op: c_int,
    sector: u64,
    buf: *mut c_void,
    bytes: u64,
    fua: c_int,
) -> c_int {
    // SAFETY: the module holds a reference to the core and its disk is open (dmtarget.h).
    let (Some(ty), Some(disk)) = (unsafe { type_of::<P>(core) }, unsafe { disk_of::<P>(disk) }) else {
        return Errno::EINVAL.0;
    };
    let Some(op) = op_from_code(op) else {
        return Errno::EINVAL.0;
    };
    let Ok(len) = usize::try_from(bytes) else {
        return Errno::EINVAL.0;
    };
    let data = |len: usize| -> Result<&mut [u8], Errno> {
        if len == 0 {
            return Ok(&mut []);
        }
        if buf.is_null() {
            return Err(Errno::EFAULT);
        }
        // SAFETY: the module passes `bytes` valid bytes at buf for the call (dmtarget.h);
        // nothing else uses them meanwhile.
        Ok(unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) })
    };
    let io = match op {
        Op::Read => match data(len) {
            Ok(d) => DiskIo::Read(d),
            Err(e) => return e.0,
        },
        Op::Write => match data(len) {
            Ok(d) => DiskIo::Write { data: d, fua: fua != 0 },
            Err(e) => return e.0,
        },
        Op::Flush => DiskIo::Flush,
        Op::Discard => DiskIo::Discard { sectors: bytes / dmcore::SECTOR_SIZE },
        Op::WriteZeroes => DiskIo::WriteZeroes { sectors: bytes / dmcore::SECTOR_SIZE },
    };
    errno_code(ty.platform.disk_io(disk, sector, io))
}

/// # Safety
/// `piece` is NULL or the handle of the piece being mapped by the current dto_map call.
unsafe fn mapper_of<'a, P: Platform>(piece: *mut sys::dmtarget_piece) -> Option<&'a mut Mapper<'a, P>> {
    // SAFETY: the handle is the address of the Mapper that AbiTarget::map lent for the call
    // (the lifetime is the call's, whatever the caller names); only one caller uses it at a
    // time (the module calls from within dto_map).
    unsafe { piece.cast::<Mapper<'a, P>>().as_mut() }
}

unsafe extern "C" fn piece_issue<P: Platform>(
    piece: *mut sys::dmtarget_piece,
    disk: *mut sys::dmtarget_disk,
    sector: u64,
    sectors: u64,
    buf_offset: u64,
    op: c_int,
    aux: u32,
) {
    // SAFETY: dh_piece_* are called with the piece of the current dto_map (dmtarget.h).
    let Some(mapper) = (unsafe { mapper_of::<P>(piece) }) else {
        return;
    };
    // SAFETY: the module passes a disk handle it holds open.
    let disk = unsafe { disk_of::<P>(disk) };
    match (disk, op_from_code(op), usize::try_from(buf_offset)) {
        (Some(disk), Some(op), Ok(buf_offset)) => mapper.issue(disk, sector, sectors, buf_offset, op, aux),
        _ => mapper.fail(Errno::EINVAL),
    }
}

unsafe extern "C" fn piece_fail<P: Platform>(piece: *mut sys::dmtarget_piece, error: c_int) {
    // SAFETY: as in piece_issue.
    if let Some(mapper) = unsafe { mapper_of::<P>(piece) } {
        mapper.fail(if error == 0 { Errno::EIO } else { Errno(error) });
    }
}

unsafe extern "C" fn piece_zero_fill<P: Platform>(piece: *mut sys::dmtarget_piece) {
    // SAFETY: as in piece_issue.
    if let Some(mapper) = unsafe { mapper_of::<P>(piece) } {
        mapper.zero_fill();
    }
}

/// Moves `value` to memory of its own; gives it back when there is none.
fn try_box<T>(value: T) -> Result<NonNull<T>, T> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Err(value);
    }
    // SAFETY: the layout has a nonzero size.
    let raw = unsafe { raw_alloc(layout) }.cast::<T>();
    match NonNull::new(raw) {
        None => Err(value),
        Some(slot) => {
            // SAFETY: fresh memory of T's layout.
            unsafe { slot.as_ptr().write(value) };
            Ok(slot)
        }
    }
}

/// Takes back what [`try_box`] stored, and frees its memory.
///
/// # Safety
/// `slot` came from `try_box::<T>` and is taken back once.
unsafe fn unbox<T>(slot: NonNull<T>) -> T {
    // SAFETY: the slot holds an initialised T (try_box), read once.
    let value = unsafe { slot.as_ptr().read() };
    // SAFETY: allocated by try_box with this layout.
    unsafe { dealloc(slot.as_ptr().cast(), Layout::new::<T>()) };
    value
}

unsafe extern "C" fn piece_queue<P: Platform>(piece: *mut sys::dmtarget_piece) -> *mut sys::dmtarget_queued {
    // SAFETY: as in piece_issue.
    let Some(mapper) = (unsafe { mapper_of::<P>(piece) }) else {
        return ptr::null_mut();
    };
    match try_box(mapper.queue()) {
        Ok(slot) => slot.as_ptr().cast(),
        Err(queued) => {
            queued.finish(Err(Errno::ENOMEM));
            ptr::null_mut()
        }
    }
}

unsafe extern "C" fn queued_data<P: Platform>(
    queued: *mut sys::dmtarget_queued,
    f: Option<unsafe extern "C" fn(*mut c_void, *mut u8, usize)>,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: a queued handle is a boxed QueuedIo until finished or remapped (dmtarget.h).
    let (Some(queued), Some(f)) = (unsafe { queued.cast::<QueuedIo<P>>().as_ref() }, f) else {
        return Errno::EINVAL.0;
    };
    errno_code(queued.with_data(&mut |data| {
        // SAFETY: the module's function gets the piece's bytes for the duration of the call,
        // with its own argument.
        unsafe { f(arg, data.as_mut_ptr(), data.len()) }
    }))
}

unsafe extern "C" fn queued_finish<P: Platform>(queued: *mut sys::dmtarget_queued, error: c_int) {
    if let Some(slot) = NonNull::new(queued.cast::<QueuedIo<P>>()) {
        // SAFETY: the handle came from piece_queue and is finished once (dmtarget.h).
        let queued = unsafe { unbox(slot) };
        queued.finish(result_of(error));
    }
}

unsafe extern "C" fn queued_remap<P: Platform>(
    queued: *mut sys::dmtarget_queued,
    disk: *mut sys::dmtarget_disk,
    sector: u64,
) {
    let Some(slot) = NonNull::new(queued.cast::<QueuedIo<P>>()) else {
        return;
    };
    // SAFETY: the handle came from piece_queue and is remapped once (dmtarget.h).
    let queued = unsafe { unbox(slot) };
    // SAFETY: the module passes a disk handle it holds open.
    match unsafe { disk_of::<P>(disk) } {
        Some(disk) => queued.remap(disk, sector),
        None => queued.finish(Err(Errno::EINVAL)),
    }
}

unsafe extern "C" fn event(events: *mut sys::dmtarget_events) {
    // SAFETY: an events handle is an Arc'd EventSink, alive until released (dmtarget.h).
    if let Some(sink) = unsafe { events.cast::<EventSink>().as_ref() } {
        sink.trigger();
    }
}

unsafe extern "C" fn events_release(events: *mut sys::dmtarget_events) {
    if !events.is_null() {
        // SAFETY: the reference construct handed over with Arc::into_raw, given back once.
        drop(unsafe { Arc::from_raw(events.cast_const().cast::<EventSink>()) });
    }
}

unsafe extern "C" fn text_append(text: *mut sys::dmtarget_text, s: *const c_char, len: usize) {
    if s.is_null() && len != 0 {
        return;
    }
    // SAFETY: a text handle is a String the core lent for the call (dmtarget.h).
    let Some(text) = (unsafe { text.cast::<String>().as_mut() }) else {
        return;
    };
    let bytes: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: len readable bytes at s (the module's contract).
        unsafe { core::slice::from_raw_parts(s.cast::<u8>(), len) }
    };
    text.push_str(&String::from_utf8_lossy(bytes));
}

unsafe extern "C" fn devices_add(devices: *mut sys::dmtarget_devices, major: u32, minor: u32) {
    // SAFETY: a devices handle is the callback AbiTarget::devices lent for the call.
    if let Some(callback) = unsafe { devices.cast::<&mut dyn FnMut(DevT)>().as_mut() } {
        callback(DevT::new(major, minor));
    }
}

unsafe extern "C" fn now_ns<P: Platform>(core: *mut sys::dmtarget_core) -> u64 {
    // SAFETY: the module holds a reference to the core.
    unsafe { type_of::<P>(core) }.map_or(0, |ty| ty.platform.now_ns())
}

/// A module's work item in the core's queue; it keeps the module's type registered.
struct ForeignWork<P: Platform> {
    run: unsafe extern "C" fn(*mut c_void),
    drop: unsafe extern "C" fn(*mut c_void),
    arg: *mut c_void,
    ran: AtomicBool,
    _ty: Arc<AbiTargetType<P>>,
}

// SAFETY: the module's work functions may run on any thread (dmtarget.h); `arg` is only passed
// back to them.
unsafe impl<P: Platform> Send for ForeignWork<P> {}
// SAFETY: as above; `ran` makes run happen at most once.
unsafe impl<P: Platform> Sync for ForeignWork<P> {}

impl<P: Platform> Work for ForeignWork<P> {
    fn run(&self) {
        if !self.ran.swap(true, Ordering::AcqRel) {
            // SAFETY: the module's function with its own argument, once; the module stays
            // loaded (`_ty`).
            unsafe { (self.run)(self.arg) };
        }
    }
}

impl<P: Platform> Drop for ForeignWork<P> {
    fn drop(&mut self) {
        // SAFETY: the module's drop function with its own argument, once, while the module is
        // loaded (`_ty` is dropped after this).
        unsafe { (self.drop)(self.arg) };
    }
}

unsafe extern "C" fn queue_work<P: Platform>(
    core: *mut sys::dmtarget_core,
    run: Option<unsafe extern "C" fn(*mut c_void)>,
    drop_fn: Option<unsafe extern "C" fn(*mut c_void)>,
    arg: *mut c_void,
    at_ns: u64,
) {
    // SAFETY: the module holds a reference to the core.
    let Some(ty) = (unsafe { type_of::<P>(core) }) else {
        return;
    };
    let (Some(run), Some(drop_fn), Some(this)) = (run, drop_fn, ty.this.upgrade()) else {
        return;
    };
    let work = Arc::new(ForeignWork { run, drop: drop_fn, arg, ran: AtomicBool::new(false), _ty: this });
    ty.platform.queue_work(work, (at_ns != 0).then_some(at_ns));
}

unsafe extern "C" fn wait<P: Platform>(
    core: *mut sys::dmtarget_core,
    ready: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    arg: *mut c_void,
    interruptible: c_int,
) -> c_int {
    // SAFETY: the module holds a reference to the core.
    let (Some(ty), Some(ready)) = (unsafe { type_of::<P>(core) }, ready) else {
        return Errno::EINVAL.0;
    };
    errno_code(ty.platform.wait(
        &mut || {
            // SAFETY: the module's function with its own argument.
            unsafe { ready(arg) != 0 }
        },
        interruptible != 0,
    ))
}

unsafe extern "C" fn wake<P: Platform>(core: *mut sys::dmtarget_core) {
    // SAFETY: the module holds a reference to the core.
    if let Some(ty) = unsafe { type_of::<P>(core) } {
        ty.platform.wake();
    }
}

unsafe extern "C" fn log<P: Platform>(core: *mut sys::dmtarget_core, level: c_int, msg: *const c_char, len: usize) {
    // SAFETY: the module holds a reference to the core.
    let Some(ty) = (unsafe { type_of::<P>(core) }) else {
        return;
    };
    if msg.is_null() {
        return;
    }
    // SAFETY: len readable bytes at msg (the module's contract).
    let bytes = unsafe { core::slice::from_raw_parts(msg.cast::<u8>(), len) };
    let level = match u32::try_from(level).unwrap_or(sys::DMTARGET_LOG_DEBUG) {
        sys::DMTARGET_LOG_ERROR => LogLevel::Error,
        sys::DMTARGET_LOG_WARNING => LogLevel::Warning,
        sys::DMTARGET_LOG_INFO => LogLevel::Info,
        _ => LogLevel::Debug,
    };
    ty.platform.log(level, format_args!("{}", String::from_utf8_lossy(bytes)));
}
