//! dm_target_flakey: the flakey target of `dmcore` (Linux's flakey 1.5.0) as a separately built
//! target module, through the C ABI of kmod/include/dmtarget.h. The target's code is
//! `dmcore::target::flakey`, unchanged, instantiated on `dmcore_abi::module::ModulePlatform`;
//! this crate only exports it:
//!
//! * `dm_target_flakey_ops()`: the ops table, for the NetBSD module's glue (netbsd/flakey.c),
//!   which registers it with `dmcore_target_register` at load and unregisters it at unload;
//! * `dmtarget_module_entry(index)`: the module's types for dmhost (index 0: flakey).
//!
//! Built for the kernel targets (target_os "none") it is `no_std`: memory comes from the dm
//! module's allocator (`dmglue_alloc`, `dmglue_free`) and a panic is the dm module's
//! `dmglue_panic`, the only symbols it takes from outside besides the memory functions. Built
//! for a hosted target (dmhost) it links std.
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

// In the kernel: the dm module's allocator and panic (dmglue_alloc, dmglue_free, dmglue_panic).
#[cfg(target_os = "none")]
use dm_kernel_rt as _;

use core::ptr;

use dmcore_abi::sys::dmtarget_ops;

dmcore_abi::export_target!(
    dm_target_flakey_ops,
    dmcore::target::flakey::FlakeyType = dmcore::target::flakey::FlakeyType
);

/// The module's target types for a user-space host: flakey, then none.
#[no_mangle]
pub extern "C" fn dmtarget_module_entry(index: u32) -> *const dmtarget_ops {
    match index {
        0 => dm_target_flakey_ops(),
        _ => ptr::null(),
    }
}
