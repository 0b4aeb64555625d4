//! What a `no_std` library linked into a kernel module needs: the global allocator and the
//! panic handler, both the dm module's (kmod/include/dmcore.h: dmglue_alloc, dmglue_free,
//! dmglue_panic), which this module requires.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::{c_char, c_void};
use core::fmt::{self, Write};
use core::panic::PanicInfo;
use core::ptr;

extern "C" {
    fn dmglue_alloc(size: usize) -> *mut c_void;
    fn dmglue_free(ptr: *mut c_void, size: usize);
    fn dmglue_panic(msg: *const c_char, len: usize) -> !;
}

/// DMGLUE_ALLOC_ALIGN of dmcore.h: the alignment of every dmglue_alloc result.
const GLUE_ALIGN: usize = 8;
const WORD: usize = core::mem::size_of::<usize>();

const _: () = assert!(GLUE_ALIGN >= WORD && GLUE_ALIGN.is_power_of_two());

struct GlueAlloc;

#[global_allocator]
static ALLOCATOR: GlueAlloc = GlueAlloc;

// SAFETY: alloc returns NULL or a block of at least layout.size() bytes aligned to layout.align()
// that nothing else uses until dealloc, which gives it back with the size it was taken with.
// (The same scheme as the dm module's own allocator, kmod/rust/src/kalloc.rs.)
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
        let offset = layout.align() - (raw as usize & (layout.align() - 1));
        // SAFETY: offset <= align < total: inside the allocation.
        let aligned = unsafe { raw.add(offset) };
        // SAFETY: offset >= GLUE_ALIGN >= WORD: the word below `aligned` is inside the
        // allocation and aligned for a pointer.
        unsafe { aligned.sub(WORD).cast::<*mut u8>().write(raw) };
        aligned
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let size = layout.size().max(1);
        if layout.align() <= GLUE_ALIGN {
            // SAFETY: ptr came from dmglue_alloc(size) with this layout.
            unsafe { dmglue_free(ptr.cast(), size) };
            return;
        }
        // SAFETY: alloc stored the glue's pointer in the word below the block.
        let raw = unsafe { ptr.sub(WORD).cast::<*mut u8>().read() };
        // SAFETY: raw came from dmglue_alloc(size + align).
        unsafe { dmglue_free(raw.cast(), size + layout.align()) };
    }
}

/// Formats a panic message into a fixed buffer.
struct Message {
    buf: [u8; 256],
    len: usize,
}

impl Write for Message {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            let Some(slot) = self.buf.get_mut(self.len) else { return Ok(()) };
            *slot = b;
            self.len += 1;
        }
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let mut text = Message { buf: [0; 256], len: 0 };
    let _ = write!(text, "dm_target_flakey: {}", info.message());
    if let Some(loc) = info.location() {
        let _ = write!(text, " at {}:{}", loc.file(), loc.line());
    }
    let bytes = text.buf.get(..text.len).unwrap_or(&[]);
    // SAFETY: the pointer and length describe `bytes`; the dm module's panic does not return.
    unsafe { dmglue_panic(bytes.as_ptr().cast(), bytes.len()) }
}
