//! The runtime of a `no_std` Rust library linked into a kernel module of this project (the dm
//! module itself, and separately built target modules): a global allocator on the glue's
//! `dmglue_alloc`/`dmglue_free`, a panic handler on `dmglue_panic` (kernel targets only), and
//! fixed-buffer formatting for messages. Linking the crate (`use dm_kernel_rt as _;`) installs
//! them; the three functions are those of kmod/include/dmcore.h.
//!
//! The glue returns memory aligned to [`GLUE_ALIGN`]; a stricter alignment is met by allocating
//! `align` more bytes and keeping the glue's pointer in the word just below the aligned block.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::fmt;
use core::ptr;

extern "C" {
    fn dmglue_alloc(size: usize) -> *mut c_void;
    fn dmglue_free(ptr: *mut c_void, size: usize);
    #[cfg(target_os = "none")]
    fn dmglue_panic(msg: *const core::ffi::c_char, len: usize) -> !;
}

/// DMGLUE_ALLOC_ALIGN of dmcore.h: the alignment of every dmglue_alloc result.
pub const GLUE_ALIGN: usize = 8;
const WORD: usize = core::mem::size_of::<usize>();

// The over-allocation scheme needs room for one pointer below an aligned block.
const _: () = assert!(GLUE_ALIGN >= WORD && GLUE_ALIGN.is_power_of_two());

struct GlueAlloc;

#[global_allocator]
static ALLOCATOR: GlueAlloc = GlueAlloc;

// SAFETY: alloc returns NULL or a block of at least layout.size() bytes aligned to layout.align()
// that nothing else uses until dealloc, which gives it back to the glue with the size it was
// taken with.
unsafe impl GlobalAlloc for GlueAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size().max(1);
        if layout.align() <= GLUE_ALIGN {
            // SAFETY: dmglue_alloc takes any nonzero size and returns aligned memory or NULL.
            return unsafe { dmglue_alloc(size) }.cast();
        }
        let Some(total) = size.checked_add(layout.align()) else {
            return ptr::null_mut();
        };
        // SAFETY: as above.
        let raw: *mut u8 = unsafe { dmglue_alloc(total) }.cast();
        if raw.is_null() {
            return raw;
        }
        // The first `align`-aligned address past `raw`: at least GLUE_ALIGN (>= one word) above
        // it, and `size` bytes from it still end inside the `total` bytes allocated.
        let offset = layout.align() - (raw as usize & (layout.align() - 1));
        // SAFETY: offset <= align < total, so the result stays inside the allocation.
        let aligned = unsafe { raw.add(offset) };
        // SAFETY: offset >= GLUE_ALIGN >= WORD, so the word below `aligned` is inside the
        // allocation and, both being GLUE_ALIGN-aligned, suitably aligned for a pointer.
        unsafe { aligned.sub(WORD).cast::<*mut u8>().write(raw) };
        aligned
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let size = layout.size().max(1);
        if layout.align() <= GLUE_ALIGN {
            // SAFETY: ptr came from dmglue_alloc(size) in `alloc` with this same layout.
            unsafe { dmglue_free(ptr.cast(), size) };
            return;
        }
        // SAFETY: `alloc` stored the glue's pointer in the word below the block it returned.
        let raw = unsafe { ptr.sub(WORD).cast::<*mut u8>().read() };
        // SAFETY: raw came from dmglue_alloc(size + align) (the sum did not overflow then).
        unsafe { dmglue_free(raw.cast(), size + layout.align()) };
    }
}

/// Formatting into a fixed buffer on the stack, for log lines and panic messages: no
/// allocation, and a message that does not fit is cut short.
pub struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    pub const fn new() -> Self {
        StackText { buf: [0; N], len: 0 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl<const N: usize> Default for StackText<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = b;
                    self.len += 1;
                }
                // Full: keep what fits, and say nothing more.
                None => return Ok(()),
            }
        }
        Ok(())
    }
}

/// A panic in the kernel stops the machine, with the message, through the glue (NetBSD:
/// panic(9)). The core is written so that no input and no I/O result reaches one; kmod/check
/// counts the call sites that remain.
#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    let mut text = StackText::<256>::new();
    let _ = write!(text, "dm: {}", info.message());
    if let Some(loc) = info.location() {
        let _ = write!(text, " at {}:{}", loc.file(), loc.line());
    }
    let bytes = text.as_bytes();
    // SAFETY: the pointer and length describe `bytes`, alive for the call; the glue does not
    // return.
    unsafe { dmglue_panic(bytes.as_ptr().cast(), bytes.len()) }
}
