//! A counting allocator proves that mapping a request through linear and striped tables
//! allocates nothing: not for one piece, not for a split across lines and stripe chunks, not
//! for a flush fanned out to every device, nor for the completions.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use dmcore::io::{IoRequest, IoSlot};
use dmcore::platform::{Child, DevT, DiskIo, DiskSpec, LogLevel, LowerDisk, Op, Platform, Work};
use dmcore::plist::{write_dict, Dict, Number, Value};
use dmcore::{Caller, Core, Errno};

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

/// A request of the test platform: the slot, a count of children, the result.
struct Request {
    slot: IoSlot<Quiet>,
    children: AtomicU32,
    result: AtomicI32,
}

struct Disk(DevT);

impl LowerDisk for Disk {
    fn dev(&self) -> DevT {
        self.0
    }
    fn sectors(&self) -> u64 {
        1 << 30
    }
}

/// A platform whose children complete at once and touch no data, so that any allocation seen
/// is the core's.
#[derive(Clone)]
struct Quiet(Arc<OnceLock<std::sync::Weak<Core<Quiet>>>>);

impl Platform for Quiet {
    type Disk = Disk;
    type Io = Arc<Request>;

    fn open_disk(&self, spec: DiskSpec<'_>) -> Result<Disk, Errno> {
        match spec {
            DiskSpec::Number(d) => Ok(Disk(d)),
            DiskSpec::Path(_) => Err(Errno::ENOENT),
        }
    }
    fn slot(io: &Arc<Request>) -> &IoSlot<Self> {
        &io.slot
    }
    fn with_data(&self, _: &Arc<Request>, _: usize, _: usize, _: &mut dyn FnMut(&mut [u8])) -> Result<(), Errno> {
        Err(Errno::EIO)
    }
    fn submit(&self, child: Child<'_, Self>) {
        child.parent.children.fetch_add(1, Ordering::Relaxed);
        if let Some(core) = self.0.get().and_then(std::sync::Weak::upgrade) {
            core.child_done(child.parent, child.tag, Ok(()));
        }
    }
    fn complete(&self, io: Arc<Request>, result: Result<(), Errno>) {
        io.result.store(result.map_or_else(|e| e.0, |()| 0), Ordering::Relaxed);
    }
    fn defer(&self, _: u32, _: Arc<Request>) {}
    fn release_deferred(&self, _: u32) {}
    fn disk_io(&self, _: &Disk, _: u64, _: DiskIo<'_>) -> Result<(), Errno> {
        Ok(())
    }
    fn now_ns(&self) -> u64 {
        0
    }
    fn wait(&self, ready: &mut dyn FnMut() -> bool, _: bool) -> Result<(), Errno> {
        if ready() {
            Ok(())
        } else {
            Err(Errno::EDEADLK)
        }
    }
    fn wake(&self) {}
    fn queue_work(&self, _: Arc<dyn Work>, _: Option<u64>) {}
    fn log(&self, _: LogLevel, _: fmt::Arguments<'_>) {}
}

fn control(core: &Core<Quiet>, command: &str, lines: &[(u64, u64, &str, &str)]) {
    let mut d = Dict::new();
    d.set_string("command", command.as_bytes());
    d.set_string("name", b"d");
    d.insert("version", Value::Array(vec![Value::Number(Number::Unsigned(4))]));
    let entries = lines
        .iter()
        .map(|&(start, len, ty, params)| {
            let mut e = Dict::new();
            e.set_u64("start", start);
            e.set_u64("length", len);
            e.set_string("type", ty.as_bytes());
            e.set_string("params", params.as_bytes());
            Value::Dict(e)
        })
        .collect();
    d.insert("cmd_data", Value::Array(entries));
    let mut text = write_dict(&d);
    text.push(0);
    let reply = core.control(&text, Caller { privileged: true }).unwrap();
    assert_eq!(reply.command_result, Ok(()), "{command}");
}

#[test]
fn mapping_linear_and_striped_requests_allocates_nothing() {
    let platform = Quiet(Arc::new(OnceLock::new()));
    let core = Arc::new(Core::new(platform.clone()));
    platform.0.set(Arc::downgrade(&core)).ok();
    control(&core, "create", &[]);
    control(
        &core,
        "reload",
        &[
            (0, 1024, "linear", "8:0 0"),
            (1024, 1024, "striped", "4 16 8:16 0 8:32 0 8:48 0 8:64 0"),
            (2048, 1024, "linear", "8:80 4096"),
        ],
    );
    control(&core, "resume", &[]);
    let minor = core.minor_of("d").unwrap();

    // (sector, bytes, op, expected children)
    let cases = [
        (10, 4096, Op::Read, 1),            // inside one linear line
        (1000, 64 * 512, Op::Write, 4),     // the end of a linear line, then three stripe chunks
        (1024 + 8, 128 * 512, Op::Read, 9), // across nine chunks of the striped line
        (2000, 1048 * 512, Op::Write, 4),   // three stripe chunks, then all of a linear line
        (0, 0, Op::Flush, 6),               // one per linear line, one per stripe
        (1024, 64 * 512, Op::Discard, 4),
    ];
    let requests: Vec<Arc<Request>> = cases
        .iter()
        .map(|_| Arc::new(Request { slot: IoSlot::new(), children: AtomicU32::new(0), result: AtomicI32::new(-1) }))
        .collect();
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
