//! dmcore: the OS-independent device-mapper core.
#![no_std]

extern crate alloc;

pub mod plist;
