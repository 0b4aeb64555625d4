//! The panic handler: a panic in the kernel stops the machine, with the message, through the
//! glue (NetBSD: panic(9)). The core is written so that no input and no I/O result reaches one;
//! kmod/check counts the call sites that remain.

use core::fmt::Write;
use core::panic::PanicInfo;

use crate::sys;
use crate::text::StackText;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let mut text = StackText::<256>::new();
    let _ = write!(text, "dm: {}", info.message());
    if let Some(loc) = info.location() {
        let _ = write!(text, " at {}:{}", loc.file(), loc.line());
    }
    let bytes = text.as_bytes();
    // SAFETY: the pointer and length describe `bytes`, alive for the call; the glue does not
    // return.
    unsafe { sys::dmglue_panic(bytes.as_ptr().cast(), bytes.len()) }
}
