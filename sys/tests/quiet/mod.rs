//! A platform whose child requests complete at once and touch no data: what the no-allocation
//! test and the lookup benchmark measure is then the core alone.
#![allow(dead_code)]

use std::fmt;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use dmcore::io::IoSlot;
use dmcore::platform::{Child, DevT, DiskIo, DiskSpec, LogLevel, LowerDisk, Platform, Work};
use dmcore::Core;
use dmcore::Errno;

/// A request: the core's slot, how many children it had, and its result (-1 until complete).
pub struct Request {
    pub slot: IoSlot<Quiet>,
    pub children: AtomicU32,
    pub result: AtomicI32,
}

impl Request {
    pub fn new() -> Arc<Self> {
        Arc::new(Request { slot: IoSlot::new(), children: AtomicU32::new(0), result: AtomicI32::new(-1) })
    }
}

/// A lower device named by number; every one is 2^30 sectors.
pub struct Disk(DevT);

impl LowerDisk for Disk {
    fn dev(&self) -> DevT {
        self.0
    }
    fn sectors(&self) -> u64 {
        1 << 30
    }
}

#[derive(Clone)]
pub struct Quiet(Arc<OnceLock<Weak<Core<Quiet>>>>);

impl Quiet {
    /// A core on this platform.
    pub fn new_core() -> Arc<Core<Quiet>> {
        let platform = Quiet(Arc::new(OnceLock::new()));
        let core = Arc::new(Core::new(platform.clone()));
        platform.0.set(Arc::downgrade(&core)).ok();
        core
    }
}

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
        if let Some(core) = self.0.get().and_then(Weak::upgrade) {
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
