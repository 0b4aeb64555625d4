//! The `dmcore_*` functions of kmod/include/dmcore.h, which the glue calls.
//!
//! build.rs checks that this file exports exactly the functions the header declares, each with
//! the header's prototype. None of them unwinds or panics on any input: bad arguments become an
//! errno (or, where there is nobody to tell, are ignored).

use alloc::boxed::Box;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

use dmcore::control::MAX_REQUEST_LEN;
use dmcore::errno::Errno;
use dmcore::io::{IoRequest, IoSlot};
use dmcore::platform::{ChildTag, Platform};
use dmcore::{Caller, Core};

use alloc::vec::Vec;
use dmcore_abi::host::{self as abi, Registration};

use crate::platform::{errno_code, op_from_code, KernelIo, KernelPlatform, WorkNode};
use crate::sys;

/// The one core of the module, between dmcore_init and dmcore_fini.
static CORE: AtomicPtr<Core<KernelPlatform>> = AtomicPtr::new(ptr::null_mut());

fn core() -> Option<&'static Core<KernelPlatform>> {
    let raw = CORE.load(Ordering::Acquire);
    // SAFETY: a non-null CORE points to the boxed core dmcore_init leaked; dmcore_fini frees it
    // only when no device exists and the glue has stopped calling in (its unload protocol).
    unsafe { raw.as_ref() }
}

/// Creates the core.
///
/// # Safety
/// Called by the glue once at load, before any other dmcore_ function.
#[no_mangle]
pub unsafe extern "C" fn dmcore_init() -> i32 {
    if !CORE.load(Ordering::Acquire).is_null() {
        return Errno::EBUSY.0;
    }
    let raw = Box::into_raw(Box::new(Core::new(KernelPlatform)));
    if CORE.compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Acquire).is_err() {
        // SAFETY: raw was never published, so this is its only owner.
        drop(unsafe { Box::from_raw(raw) });
        return Errno::EBUSY.0;
    }
    0
}

/// Destroys the core, unless a mapped device exists (`EBUSY`).
///
/// # Safety
/// The glue calls it at unload, when no other dmcore_ call can be in progress or start.
#[no_mangle]
pub unsafe extern "C" fn dmcore_fini() -> i32 {
    let Some(core) = core() else {
        return 0;
    };
    if !core.is_idle() {
        return Errno::EBUSY.0;
    }
    let raw = CORE.swap(ptr::null_mut(), Ordering::AcqRel);
    // Registrations of target modules go with the core (NetBSD unloads dm only after the
    // modules that require it).
    drop(core::mem::take(&mut *MODULE_TYPES.lock()));
    if !raw.is_null() {
        // SAFETY: raw is the box dmcore_init leaked, now unpublished; nobody else uses it.
        drop(unsafe { Box::from_raw(raw) });
    }
    0
}

/// Nonzero when no mapped device exists.
///
/// # Safety
/// None beyond the header's rules.
#[no_mangle]
pub unsafe extern "C" fn dmcore_is_idle() -> i32 {
    i32::from(core().is_none_or(|c| c.is_idle()))
}

/// The control request length limit, NUL included.
///
/// # Safety
/// None.
#[no_mangle]
pub unsafe extern "C" fn dmcore_max_request_len() -> usize {
    MAX_REQUEST_LEN
}

/// Runs one control request; see dmcore.h.
///
/// # Safety
/// `req` points to `req_len` readable bytes (or req_len is 0); `reply` and `reply_len` are
/// writable; `command_error` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dmcore_control(
    req: *const u8,
    req_len: usize,
    privileged: i32,
    reply: *mut *mut u8,
    reply_len: *mut usize,
    command_error: *mut i32,
) -> i32 {
    let Some(core) = core() else {
        return Errno::ENXIO.0;
    };
    if reply.is_null() || reply_len.is_null() || (req.is_null() && req_len != 0) {
        return Errno::EFAULT.0;
    }
    let request: &[u8] = if req_len == 0 {
        &[]
    } else {
        // SAFETY: the caller passes req_len readable bytes at req, alive for the call.
        unsafe { core::slice::from_raw_parts(req, req_len) }
    };
    let caller = Caller { privileged: privileged != 0 };
    let answer = match core.control(request, caller) {
        Ok(answer) => answer,
        Err(errno) => return errno_code(Err(errno)),
    };
    if !command_error.is_null() {
        // SAFETY: the caller passes NULL or a writable int.
        unsafe { command_error.write(errno_code(answer.command_result)) };
    }
    let mut bytes = answer.bytes;
    if bytes.try_reserve_exact(1).is_err() {
        return Errno::ENOMEM.0;
    }
    bytes.push(0);
    let text: Box<[u8]> = bytes.into_boxed_slice();
    let len = text.len();
    let raw = Box::into_raw(text).cast::<u8>();
    // SAFETY: the caller passes writable out-pointers; ownership of the text passes to the
    // caller until dmcore_reply_free(raw, len).
    unsafe {
        reply.write(raw);
        reply_len.write(len);
    }
    0
}

/// Frees a reply of dmcore_control.
///
/// # Safety
/// `reply` and `reply_len` are exactly what dmcore_control returned, freed once (or NULL).
#[no_mangle]
pub unsafe extern "C" fn dmcore_reply_free(reply: *mut u8, reply_len: usize) {
    if reply.is_null() {
        return;
    }
    // SAFETY: reply/reply_len describe the boxed slice dmcore_control handed out.
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(reply, reply_len)) });
}

/// Maps a request of the device `minor`; see dmcore.h.
///
/// # Safety
/// `io` is the slot inside a live glue request that is not in flight in the core; the request
/// stays at its address until dmglue_complete.
#[no_mangle]
pub unsafe extern "C" fn dmcore_strategy(
    minor: u32,
    io: *mut sys::dmcore_io_slot,
    sector: u64,
    bytes: u64,
    op: i32,
    fua: i32,
) {
    let Some(slot) = NonNull::new(io) else {
        // No request to complete: nothing can be done.
        return;
    };
    // SAFETY: the slot is the glue's room for the core's state, not in use by the core now
    // (caller's contract); its size and alignment are checked in platform.rs.
    unsafe { slot.as_ptr().cast::<IoSlot<KernelPlatform>>().write(IoSlot::new()) };
    let io = KernelIo::new(slot);
    let Some(core) = core() else {
        return KernelPlatform.complete(io, Err(Errno::ENXIO));
    };
    let Some(op) = op_from_code(op) else {
        return KernelPlatform.complete(io, Err(Errno::EINVAL));
    };
    let req = IoRequest { sector, bytes, op, fua: fua != 0 };
    core.submit(minor, io, req);
}

/// A child request completed; see dmcore.h.
///
/// # Safety
/// `parent` is the slot of the request the child was issued for, still in flight; each child
/// completes once.
#[no_mangle]
pub unsafe extern "C" fn dmcore_child_done(parent: *mut sys::dmcore_io_slot, tag: sys::dmcore_tag, error: i32) {
    let (Some(core), Some(slot)) = (core(), NonNull::new(parent)) else {
        return;
    };
    let result = if error == 0 { Ok(()) } else { Err(Errno(error)) };
    let tag = ChildTag { target: tag.dt_target, aux: tag.dt_aux };
    core.child_done(&KernelIo::new(slot), tag, result);
}

/// Counts an open of a mapped device's node.
///
/// # Safety
/// None beyond the header's rules.
#[no_mangle]
pub unsafe extern "C" fn dmcore_open(minor: u32) -> i32 {
    match core() {
        Some(core) => errno_code(core.open(minor)),
        None => Errno::ENXIO.0,
    }
}

/// Counts a close of a mapped device's node.
///
/// # Safety
/// None beyond the header's rules.
#[no_mangle]
pub unsafe extern "C" fn dmcore_close(minor: u32) {
    if let Some(core) = core() {
        core.close(minor);
    }
}

/// The size in sectors of the device's active table.
///
/// # Safety
/// `sectors` is writable.
#[no_mangle]
pub unsafe extern "C" fn dmcore_size(minor: u32, sectors: *mut u64) -> i32 {
    if sectors.is_null() {
        return Errno::EFAULT.0;
    }
    match core().and_then(|c| c.size(minor)) {
        Some(size) => {
            // SAFETY: checked non-null; the caller passes a writable u64.
            unsafe { sectors.write(size) };
            0
        }
        None => Errno::ENXIO.0,
    }
}

/// Runs queued work and frees it.
///
/// # Safety
/// `work` came from dmglue_work_queue and is handed back once.
#[no_mangle]
pub unsafe extern "C" fn dmcore_work_run(work: *mut sys::dmcore_work) {
    if work.is_null() {
        return;
    }
    // SAFETY: the glue hands back, once, the address of a boxed WorkNode (link first, repr(C)).
    let node = unsafe { Box::from_raw(work.cast::<WorkNode>()) };
    node.work.run();
}

/// Frees queued work without running it.
///
/// # Safety
/// As for dmcore_work_run.
#[no_mangle]
pub unsafe extern "C" fn dmcore_work_drop(work: *mut sys::dmcore_work) {
    if work.is_null() {
        return;
    }
    // SAFETY: as in dmcore_work_run.
    drop(unsafe { Box::from_raw(work.cast::<WorkNode>()) });
}

/// The types target modules registered, so that each module unregisters exactly its own.
static MODULE_TYPES: spin::Mutex<Vec<Registration<KernelPlatform>>> = spin::Mutex::new(Vec::new());

/// Registers a target module's type; see dmcore.h and dmtarget.h.
///
/// # Safety
/// `ops` is NULL or a `struct dmtarget_ops` that stays valid, with its functions loaded, until
/// dmcore_target_unregister of it returned 0 (the module stays loaded until then).
#[no_mangle]
pub unsafe extern "C" fn dmcore_target_register(ops: *const sys::dmtarget_ops) -> i32 {
    let Some(core) = core() else {
        return Errno::ENXIO.0;
    };
    let mut types = MODULE_TYPES.lock();
    if types.try_reserve(1).is_err() {
        return Errno::ENOMEM.0;
    }
    // SAFETY: the caller's contract is register's: the table outlives the registration.
    match unsafe { abi::register(core.targets(), core.platform(), ops.cast()) } {
        Ok(registration) => {
            types.push(registration);
            0
        }
        Err(errno) => errno.0,
    }
}

/// Unregisters a target module's type; `EBUSY` while anything uses it. See dmcore.h.
///
/// # Safety
/// None beyond the header's rules (`ops` is only compared).
#[no_mangle]
pub unsafe extern "C" fn dmcore_target_unregister(ops: *const sys::dmtarget_ops) -> i32 {
    let Some(core) = core() else {
        return Errno::ENXIO.0;
    };
    let mut types = MODULE_TYPES.lock();
    let Some(pos) = types.iter().position(|r| r.is_of(ops.cast())) else {
        return Errno::ENOENT.0;
    };
    let result = match types.get(pos) {
        Some(registration) => abi::unregister(core.targets(), registration),
        None => Err(Errno::ENOENT),
    };
    match result {
        Ok(()) => {
            types.remove(pos);
            if types.is_empty() {
                // Give the memory back: nothing of the module may stay behind it.
                *types = Vec::new();
            }
            0
        }
        Err(errno) => errno.0,
    }
}
