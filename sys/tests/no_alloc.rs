//! A counting allocator proves that mapping a request through linear and striped tables
//! allocates nothing: not for one piece, not for a split across lines and stripe chunks, not
//! for a flush fanned out to every device, nor for the completions.

mod common;
mod quiet;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::Ordering;

use dmcore::io::IoRequest;
use dmcore::platform::Op;
use quiet::{Quiet, Request};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls on this thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn mapping_linear_and_striped_requests_allocates_nothing() {
    let core = Quiet::new_core();
    let minor = common::make_device(
        &*core,
        "d",
        &[
            (0, 1024, "linear", "8:0 0"),
            (1024, 1024, "striped", "4 16 8:16 0 8:32 0 8:48 0 8:64 0"),
            (2048, 1024, "linear", "8:80 4096"),
        ],
    );

    // (sector, bytes, op, expected children)
    let cases = [
        (10, 4096, Op::Read, 1),            // inside one linear line
        (1000, 64 * 512, Op::Write, 4),     // the end of a linear line, then three stripe chunks
        (1024 + 8, 128 * 512, Op::Read, 9), // across nine chunks of the striped line
        (2000, 1048 * 512, Op::Write, 4),   // three stripe chunks, then all of a linear line
        (0, 0, Op::Flush, 6),               // one per linear line, one per stripe
        (1024, 64 * 512, Op::Discard, 4),
    ];
    let requests: Vec<_> = cases.iter().map(|_| Request::new()).collect();
    for ((sector, bytes, op, children), io) in cases.iter().zip(&requests) {
        let req = IoRequest { sector: *sector, bytes: *bytes, op: *op, fua: false };
        let before = allocations();
        core.submit(minor, io.clone(), req);
        let after = allocations();
        assert_eq!(after - before, 0, "{op:?} at {sector}: allocations on the I/O path");
        assert_eq!(io.result.load(Ordering::Relaxed), 0, "{op:?} at {sector}: completed successfully");
        assert_eq!(io.children.load(Ordering::Relaxed), *children, "{op:?} at {sector}: children");
    }
}
