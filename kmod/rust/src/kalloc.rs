//! The global allocator: the glue's memory functions (kmem(9) on NetBSD).
//!
//! The glue returns memory aligned to `DMGLUE_ALLOC_ALIGN`; a stricter alignment is met by
//! allocating `align` more bytes and keeping the glue's pointer in the word just below the
//! aligned block.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

use crate::sys;

const GLUE_ALIGN: usize = sys::DMGLUE_ALLOC_ALIGN as usize;
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
            return unsafe { sys::dmglue_alloc(size) }.cast();
        }
        let Some(total) = size.checked_add(layout.align()) else {
            return ptr::null_mut();
        };
        // SAFETY: as above.
        let raw: *mut u8 = unsafe { sys::dmglue_alloc(total) }.cast();
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
            unsafe { sys::dmglue_free(ptr.cast(), size) };
            return;
        }
        // SAFETY: `alloc` stored the glue's pointer in the word below the block it returned.
        let raw = unsafe { ptr.sub(WORD).cast::<*mut u8>().read() };
        // SAFETY: raw came from dmglue_alloc(size + align) (the sum did not overflow then).
        unsafe { sys::dmglue_free(raw.cast(), size + layout.align()) };
    }
}
