//! A deterministic in-memory platform for tests: RAM disks, a virtual clock, a worker queue run
//! on demand, fault injection and crash points.
//!
//! Child requests either run at once (the default) or, with [`MemPlatform::hold`], wait in a
//! queue until the test runs them, in order or shuffled by a seed. Writes go to a disk's
//! contents at once, and are also logged until the next flush so that
//! [`MemPlatform::crash_image`] can build what the disk would hold after a power loss: the
//! flushed state plus any subset of the unflushed writes.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::{String, ToString};
use alloc::sync::{Arc, Weak};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::{Child, ChildTag, DevT, DiskIo, DiskSpec, LogLevel, LowerDisk, Op, Platform, Work};
use crate::errno::Errno;
use crate::io::{IoRequest, IoSlot, SECTOR_SIZE};
use crate::Core;

/// Block major of mapped devices (NetBSD's): a RAM disk added with it stands for the mapped
/// device of that minor, for tests of stacking rules.
pub const DM_BLOCK_MAJOR: u32 = 169;

/// A request of the test, with its buffer and, once completed, its result.
pub struct MemRequest {
    slot: IoSlot<MemPlatform>,
    minor: u32,
    req: IoRequest,
    data: spin::Mutex<Vec<u8>>,
    result: spin::Mutex<Option<Result<(), Errno>>>,
}

pub type MemIo = Arc<MemRequest>;

impl MemRequest {
    /// The result, once the core completed the request.
    pub fn result(&self) -> Option<Result<(), Errno>> {
        *self.result.lock()
    }

    /// A copy of the request's buffer.
    pub fn data(&self) -> Vec<u8> {
        self.data.lock().clone()
    }
}

/// An opened RAM disk.
pub struct MemDisk {
    platform: MemPlatform,
    dev: DevT,
    sectors: u64,
}

impl LowerDisk for MemDisk {
    fn dev(&self) -> DevT {
        self.dev
    }

    fn sectors(&self) -> u64 {
        self.sectors
    }
}

impl Drop for MemDisk {
    fn drop(&mut self) {
        if let Some(d) = self.platform.state().disks.get_mut(&self.dev) {
            d.opens = d.opens.saturating_sub(1);
        }
    }
}

/// What a crashed disk keeps of its unflushed writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CrashMode {
    /// Only what was flushed (and FUA writes).
    DropUnflushed,
    /// Every write that completed.
    KeepAll,
    /// A subset of the unflushed writes chosen by a seed: they may land in any order.
    Reorder(u64),
}

/// A rule that fails matching child requests.
#[derive(Clone, Debug)]
pub struct Fault {
    pub dev: Option<DevT>,
    /// Sectors `start .. start + len`; `None` matches every sector.
    pub range: Option<(u64, u64)>,
    /// Only these operations; empty matches all.
    pub ops: Vec<Op>,
    /// Fail only the n-th matching request (1-based) and then retire; `None` fails every one.
    pub nth: Option<u64>,
    pub errno: Errno,
    seen: u64,
}

impl Fault {
    /// Fails every request to `dev` touching sectors `start .. start + len`.
    pub fn range(dev: DevT, start: u64, len: u64, errno: Errno) -> Self {
        Fault { dev: Some(dev), range: Some((start, len)), ops: Vec::new(), nth: None, errno, seen: 0 }
    }

    /// Fails the n-th request (1-based) to any device, counted from now.
    pub fn nth(n: u64, errno: Errno) -> Self {
        Fault { dev: None, range: None, ops: Vec::new(), nth: Some(n), errno, seen: 0 }
    }

    pub fn only(mut self, ops: &[Op]) -> Self {
        self.ops = ops.to_vec();
        self
    }

    fn matches(&self, dev: DevT, op: Op, sector: u64, sectors: u64) -> bool {
        let dev_ok = self.dev.is_none_or(|d| d == dev);
        let op_ok = self.ops.is_empty() || self.ops.contains(&op);
        let range_ok = self.range.is_none_or(|(start, len)| {
            sector < start.saturating_add(len) && start < sector.saturating_add(sectors.max(1))
        });
        dev_ok && op_ok && range_ok
    }
}

struct RamDisk {
    contents: Vec<u8>,
    /// The contents as of the last flush.
    durable: Vec<u8>,
    /// Writes since the last flush, in completion order: (byte offset, data, fua).
    unflushed: Vec<(usize, Vec<u8>, bool)>,
    opens: u32,
}

/// A child request waiting in the queue, with a copy of what it needs.
struct QueuedChild {
    parent: MemIo,
    dev: DevT,
    sector: u64,
    sectors: u64,
    buf_offset: usize,
    op: Op,
    fua: bool,
    tag: ChildTag,
}

/// What a queued child request asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct QueuedView {
    pub dev: DevT,
    pub op: Op,
    pub sector: u64,
    pub sectors: u64,
    pub buf_offset: usize,
    pub tag: ChildTag,
}

struct Timed {
    at_ns: u64,
    seq: u64,
    work: Arc<dyn Work>,
}

type WaitHook = Box<dyn FnMut(&MemPlatform) -> bool + Send>;
type AutoloadHook = Box<dyn FnMut(&Core<MemPlatform>, &str) -> bool + Send>;

#[derive(Default)]
struct State {
    disks: BTreeMap<DevT, RamDisk>,
    paths: BTreeMap<String, DevT>,
    hold: bool,
    queue: VecDeque<QueuedChild>,
    deferred: BTreeMap<u32, Vec<MemIo>>,
    work: Vec<Timed>,
    work_seq: u64,
    clock_ns: u64,
    faults: Vec<Fault>,
    requests: u64,
    writes: u64,
    crash_after: Option<u64>,
    crashed: bool,
    log: Vec<String>,
    attached: BTreeSet<u32>,
    sizes: BTreeMap<u32, u64>,
    fail_attach: Option<Errno>,
    interrupt_waits: bool,
}

struct Inner {
    state: spin::Mutex<State>,
    core: spin::Once<Weak<Core<MemPlatform>>>,
    wait_hook: spin::Mutex<Option<WaitHook>>,
    autoload_hook: spin::Mutex<Option<AutoloadHook>>,
    /// Target types the core asked to autoload, in order.
    autoloads: spin::Mutex<Vec<String>>,
}

/// The in-memory platform. Clones share one state.
#[derive(Clone)]
pub struct MemPlatform(Arc<Inner>);

impl MemPlatform {
    /// A core on a fresh in-memory platform.
    pub fn new_core() -> (Arc<Core<MemPlatform>>, MemPlatform) {
        let platform = MemPlatform(Arc::new(Inner {
            state: spin::Mutex::new(State::default()),
            core: spin::Once::new(),
            wait_hook: spin::Mutex::new(None),
            autoload_hook: spin::Mutex::new(None),
            autoloads: spin::Mutex::new(Vec::new()),
        }));
        let core = Arc::new(Core::new(platform.clone()));
        platform.0.core.call_once(|| Arc::downgrade(&core));
        (core, platform)
    }

    fn state(&self) -> spin::MutexGuard<'_, State> {
        self.0.state.lock()
    }

    fn core(&self) -> Option<Arc<Core<MemPlatform>>> {
        self.0.core.get().and_then(Weak::upgrade)
    }

    /// Adds a zeroed RAM disk of `sectors` sectors, reachable as `path` and as `dev`.
    pub fn add_disk(&self, path: &str, dev: DevT, sectors: u64) {
        let bytes = (sectors * SECTOR_SIZE) as usize;
        let mut st = self.state();
        st.paths.insert(path.to_string(), dev);
        st.disks.insert(
            dev,
            RamDisk { contents: vec![0; bytes], durable: vec![0; bytes], unflushed: Vec::new(), opens: 0 },
        );
    }

    /// A copy of a disk's current contents.
    pub fn disk(&self, dev: DevT) -> Vec<u8> {
        self.state().disks.get(&dev).map(|d| d.contents.clone()).unwrap_or_default()
    }

    /// Overwrites part of a disk, as if written and flushed long ago.
    pub fn fill_disk(&self, dev: DevT, byte_offset: usize, data: &[u8]) {
        if let Some(d) = self.state().disks.get_mut(&dev) {
            for buf in [&mut d.contents, &mut d.durable] {
                if let Some(dst) = buf.get_mut(byte_offset..byte_offset + data.len()) {
                    dst.copy_from_slice(data);
                }
            }
        }
    }

    /// How many handles to the disk are open.
    pub fn opens(&self, dev: DevT) -> u32 {
        self.state().disks.get(&dev).map_or(0, |d| d.opens)
    }

    /// A request for the device `minor`; writes carry `data`, reads get a zeroed buffer.
    pub fn request(&self, minor: u32, op: Op, sector: u64, bytes: u64, data: Option<&[u8]>) -> (MemIo, IoRequest) {
        let req = IoRequest { sector, bytes, op, fua: false };
        let buf = match data {
            Some(d) => d.to_vec(),
            None => vec![0; if op.has_data() { bytes as usize } else { 0 }],
        };
        let io = Arc::new(MemRequest {
            slot: IoSlot::new(),
            minor,
            req,
            data: spin::Mutex::new(buf),
            result: spin::Mutex::new(None),
        });
        (io, req)
    }

    /// Submits a request and runs the platform until idle; returns the request.
    pub fn run_io(
        &self,
        core: &Core<MemPlatform>,
        minor: u32,
        op: Op,
        sector: u64,
        bytes: u64,
        data: Option<&[u8]>,
    ) -> MemIo {
        let (io, req) = self.request(minor, op, sector, bytes, data);
        core.submit(minor, io.clone(), req);
        self.run();
        io
    }

    /// Queue child requests instead of running them at once.
    pub fn hold(&self, hold: bool) {
        self.state().hold = hold;
    }

    pub fn queued(&self) -> usize {
        self.state().queue.len()
    }

    /// The queued child requests, oldest first.
    pub fn queued_children(&self) -> Vec<QueuedView> {
        self.state()
            .queue
            .iter()
            .map(|c| QueuedView {
                dev: c.dev,
                op: c.op,
                sector: c.sector,
                sectors: c.sectors,
                buf_offset: c.buf_offset,
                tag: c.tag,
            })
            .collect()
    }

    /// Runs the oldest queued child request; false when there is none.
    pub fn run_one(&self) -> bool {
        let next = self.state().queue.pop_front();
        match next {
            Some(child) => {
                self.execute(child);
                true
            }
            None => false,
        }
    }

    /// Runs every queued child in an order shuffled by `seed`.
    pub fn run_shuffled(&self, seed: u64) {
        let mut rng = XorShift::new(seed);
        loop {
            let next = {
                let mut st = self.state();
                let len = st.queue.len();
                if len == 0 {
                    None
                } else {
                    let pick = (rng.next() % len as u64) as usize;
                    st.queue.remove(pick)
                }
            };
            match next {
                Some(child) => self.execute(child),
                None => break,
            }
        }
    }

    /// Runs queued children and due work until nothing is left to do.
    pub fn run(&self) {
        while self.run_one() || self.run_due_work() {}
    }

    /// The virtual clock.
    pub fn now(&self) -> u64 {
        self.state().clock_ns
    }

    /// Moves the clock forward and runs what became due.
    pub fn advance(&self, ns: u64) {
        {
            let mut st = self.state();
            st.clock_ns = st.clock_ns.saturating_add(ns);
        }
        self.run();
    }

    /// The instant the earliest pending work is due, if any.
    pub fn next_work_at(&self) -> Option<u64> {
        self.state().work.iter().map(|t| t.at_ns).min()
    }

    fn run_due_work(&self) -> bool {
        let due = {
            let mut st = self.state();
            let now = st.clock_ns;
            let best = st
                .work
                .iter()
                .enumerate()
                .filter(|(_, t)| t.at_ns <= now)
                .min_by_key(|(_, t)| (t.at_ns, t.seq))
                .map(|(i, _)| i);
            best.map(|i| st.work.swap_remove(i))
        };
        match due {
            Some(t) => {
                t.work.run();
                true
            }
            None => false,
        }
    }

    pub fn add_fault(&self, fault: Fault) {
        self.state().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// After `n` more writes (child writes and worker writes), the machine stops: every later
    /// request fails with `EIO` and changes nothing.
    pub fn crash_after_writes(&self, n: u64) {
        let mut st = self.state();
        st.crash_after = Some(st.writes + n);
    }

    pub fn crashed(&self) -> bool {
        self.state().crashed
    }

    /// Child and worker requests run so far, and writes among them.
    pub fn counts(&self) -> (u64, u64) {
        let st = self.state();
        (st.requests, st.writes)
    }

    /// What `dev` would hold after a power loss now.
    pub fn crash_image(&self, dev: DevT, mode: CrashMode) -> Vec<u8> {
        let st = self.state();
        let Some(d) = st.disks.get(&dev) else {
            return Vec::new();
        };
        let mut image = d.durable.clone();
        let mut rng = match mode {
            CrashMode::Reorder(seed) => Some(XorShift::new(seed)),
            _ => None,
        };
        for (offset, data, fua) in &d.unflushed {
            let keep = *fua
                || match mode {
                    CrashMode::KeepAll => true,
                    CrashMode::DropUnflushed => false,
                    CrashMode::Reorder(_) => rng.as_mut().is_some_and(|r| r.next() & 1 == 1),
                };
            if keep {
                if let Some(dst) = image.get_mut(*offset..*offset + data.len()) {
                    dst.copy_from_slice(data);
                }
            }
        }
        image
    }

    /// Replaces every disk's contents with its crash image and restarts the machine, as a
    /// reboot after a power loss would.
    pub fn reboot_after_crash(&self, mode: CrashMode) {
        let devs: Vec<DevT> = self.state().disks.keys().copied().collect();
        for dev in devs {
            let image = self.crash_image(dev, mode);
            if let Some(d) = self.state().disks.get_mut(&dev) {
                d.contents = image.clone();
                d.durable = image;
                d.unflushed.clear();
            }
        }
        let mut st = self.state();
        st.crashed = false;
        st.crash_after = None;
        st.queue.clear();
    }

    /// Messages the core logged.
    pub fn log_lines(&self) -> Vec<String> {
        self.state().log.clone()
    }

    /// Minors the host attached (created and not removed).
    pub fn attached(&self) -> Vec<u32> {
        self.state().attached.iter().copied().collect()
    }

    /// The size the core last reported for a device.
    pub fn reported_size(&self, minor: u32) -> Option<u64> {
        self.state().sizes.get(&minor).copied()
    }

    /// Makes the next device attach fail with `errno`.
    pub fn fail_next_attach(&self, errno: Errno) {
        self.state().fail_attach = Some(errno);
    }

    /// Requests waiting for their device to resume.
    pub fn deferred(&self, minor: u32) -> usize {
        self.state().deferred.get(&minor).map_or(0, Vec::len)
    }

    /// Called when a wait cannot progress by itself (nothing due, and child requests are held):
    /// the hook may inspect state and run held children, and returns whether to keep waiting.
    pub fn set_wait_hook(&self, hook: Option<WaitHook>) {
        *self.0.wait_hook.lock() = hook;
    }

    /// What [`Platform::autoload_target`] does: the hook gets the core and the type's name
    /// (it may register target types) and says whether it loaded something.
    pub fn set_autoload_hook(&self, hook: Option<AutoloadHook>) {
        *self.0.autoload_hook.lock() = hook;
    }

    /// The target types the core asked to autoload, in order.
    pub fn autoload_requests(&self) -> Vec<String> {
        self.0.autoloads.lock().clone()
    }

    /// Makes interruptible waits fail with `EINTR`, as a signal would.
    pub fn interrupt_waits(&self, on: bool) {
        self.state().interrupt_waits = on;
    }

    /// Checks faults and crash state, counts the request, and applies it to the disk.
    fn access(&self, dev: DevT, op: Op, sector: u64, buf: &mut [u8], fua: bool) -> Result<(), Errno> {
        let mut st = self.state();
        if st.crashed {
            return Err(Errno::EIO);
        }
        st.requests += 1;
        let sectors = buf.len() as u64 / SECTOR_SIZE;
        for i in 0..st.faults.len() {
            let Some(f) = st.faults.get_mut(i) else { break };
            if f.matches(dev, op, sector, sectors) {
                f.seen += 1;
                match f.nth {
                    None => return Err(f.errno),
                    Some(n) if n == f.seen => {
                        let errno = f.errno;
                        st.faults.remove(i);
                        return Err(errno);
                    }
                    Some(_) => {}
                }
            }
        }
        if op.writes() {
            if st.crash_after.is_some_and(|limit| st.writes >= limit) {
                st.crashed = true;
                return Err(Errno::EIO);
            }
            st.writes += 1;
        }
        let disk = st.disks.get_mut(&dev).ok_or(Errno::ENXIO)?;
        let start = usize::try_from(sector.saturating_mul(SECTOR_SIZE)).map_err(|_| Errno::EIO)?;
        let len = match op {
            Op::Read | Op::Write => buf.len(),
            Op::Discard | Op::WriteZeroes => 0,
            Op::Flush => {
                disk.durable.clone_from(&disk.contents);
                disk.unflushed.clear();
                return Ok(());
            }
        };
        let range = start..start.checked_add(len).ok_or(Errno::EIO)?;
        match op {
            Op::Read => buf.copy_from_slice(disk.contents.get(range).ok_or(Errno::EIO)?),
            Op::Write => {
                disk.contents.get_mut(range).ok_or(Errno::EIO)?.copy_from_slice(buf);
                disk.unflushed.push((start, buf.to_vec(), fua));
            }
            _ => {}
        }
        Ok(())
    }

    /// Discard and write-zeroes carry a length but no buffer: zero the range.
    fn zero_range(&self, dev: DevT, sector: u64, sectors: u64, fua: bool) -> Result<(), Errno> {
        let mut zeros = vec![0u8; (sectors * SECTOR_SIZE) as usize];
        self.access(dev, Op::Write, sector, &mut zeros, fua)
    }

    fn execute(&self, child: QueuedChild) {
        let result = match child.op {
            Op::Read | Op::Write => {
                let len = (child.sectors * SECTOR_SIZE) as usize;
                let mut buf = vec![0u8; len];
                let parent_data =
                    child.parent.data.lock().get(child.buf_offset..child.buf_offset + len).map(<[u8]>::to_vec);
                match parent_data {
                    None => Err(Errno::EIO),
                    Some(data) => {
                        if child.op == Op::Write {
                            buf.copy_from_slice(&data);
                        }
                        let r = self.access(child.dev, child.op, child.sector, &mut buf, child.fua);
                        if r.is_ok() && child.op == Op::Read {
                            if let Some(dst) =
                                child.parent.data.lock().get_mut(child.buf_offset..child.buf_offset + len)
                            {
                                dst.copy_from_slice(&buf);
                            }
                        }
                        r
                    }
                }
            }
            Op::Flush => self.access(child.dev, Op::Flush, 0, &mut [], false),
            Op::Discard | Op::WriteZeroes => self.zero_range(child.dev, child.sector, child.sectors, child.fua),
        };
        if let Some(core) = self.core() {
            core.child_done(&child.parent, child.tag, result);
        }
    }
}

impl Platform for MemPlatform {
    type Disk = MemDisk;
    type Io = MemIo;

    fn open_disk(&self, spec: DiskSpec<'_>) -> Result<MemDisk, Errno> {
        let mut st = self.state();
        let dev = match spec {
            DiskSpec::Path(p) => *st.paths.get(p).ok_or(Errno::ENOENT)?,
            DiskSpec::Number(d) => d,
        };
        let disk = st.disks.get_mut(&dev).ok_or(Errno::ENXIO)?;
        disk.opens += 1;
        let sectors = disk.contents.len() as u64 / SECTOR_SIZE;
        Ok(MemDisk { platform: self.clone(), dev, sectors })
    }

    fn slot(io: &MemIo) -> &IoSlot<Self> {
        &io.slot
    }

    fn with_data(&self, io: &MemIo, offset: usize, len: usize, f: &mut dyn FnMut(&mut [u8])) -> Result<(), Errno> {
        let mut data = io.data.lock();
        let end = offset.checked_add(len).ok_or(Errno::EIO)?;
        f(data.get_mut(offset..end).ok_or(Errno::EIO)?);
        Ok(())
    }

    fn submit(&self, child: Child<'_, Self>) {
        let queued = QueuedChild {
            parent: child.parent.clone(),
            dev: child.disk.dev,
            sector: child.sector,
            sectors: child.sectors,
            buf_offset: child.buf_offset,
            op: child.op,
            fua: child.fua,
            tag: child.tag,
        };
        {
            let mut st = self.state();
            if st.hold {
                st.queue.push_back(queued);
                return;
            }
        }
        self.execute(queued);
    }

    fn complete(&self, io: MemIo, result: Result<(), Errno>) {
        *io.result.lock() = Some(result);
    }

    fn defer(&self, minor: u32, io: MemIo) {
        self.state().deferred.entry(minor).or_default().push(io);
    }

    fn release_deferred(&self, minor: u32) {
        let ios = self.state().deferred.remove(&minor).unwrap_or_default();
        if let Some(core) = self.core() {
            for io in ios {
                let req = io.req;
                core.submit(io.minor, io, req);
            }
        }
    }

    fn disk_io(&self, disk: &MemDisk, sector: u64, io: DiskIo<'_>) -> Result<(), Errno> {
        match io {
            DiskIo::Read(buf) => self.access(disk.dev, Op::Read, sector, buf, false),
            DiskIo::Write { data, fua } => self.access(disk.dev, Op::Write, sector, &mut data.to_vec(), fua),
            DiskIo::Flush => self.access(disk.dev, Op::Flush, 0, &mut [], false),
            DiskIo::Discard { sectors } | DiskIo::WriteZeroes { sectors } => {
                self.zero_range(disk.dev, sector, sectors, false)
            }
        }
    }

    fn now_ns(&self) -> u64 {
        self.state().clock_ns
    }

    fn wait(&self, ready: &mut dyn FnMut() -> bool, interruptible: bool) -> Result<(), Errno> {
        loop {
            if ready() {
                return Ok(());
            }
            if interruptible && self.state().interrupt_waits {
                return Err(Errno::EINTR);
            }
            // Held children run only when the test says so (here, through the hook).
            let held = self.state().hold;
            if (!held && self.run_one()) || self.run_due_work() {
                continue;
            }
            let hook = self.0.wait_hook.lock().take();
            let Some(mut hook) = hook else {
                return Err(Errno::EDEADLK);
            };
            let keep_waiting = hook(self);
            *self.0.wait_hook.lock() = Some(hook);
            if !keep_waiting {
                return Err(Errno::EDEADLK);
            }
        }
    }

    fn wake(&self) {}

    fn queue_work(&self, work: Arc<dyn Work>, at_ns: Option<u64>) {
        let mut st = self.state();
        let at_ns = at_ns.unwrap_or(st.clock_ns);
        st.work_seq += 1;
        let seq = st.work_seq;
        st.work.push(Timed { at_ns, seq, work });
    }

    fn log(&self, _level: LogLevel, args: fmt::Arguments<'_>) {
        self.state().log.push(alloc::format!("{args}"));
    }

    fn attach_device(&self, minor: u32, _name: &[u8]) -> Result<(), Errno> {
        let mut st = self.state();
        if let Some(errno) = st.fail_attach.take() {
            return Err(errno);
        }
        st.attached.insert(minor);
        Ok(())
    }

    fn detach_device(&self, minor: u32) {
        self.state().attached.remove(&minor);
    }

    fn device_resized(&self, minor: u32, sectors: u64) {
        self.state().sizes.insert(minor, sectors);
    }

    fn autoload_target(&self, name: &str) -> bool {
        self.0.autoloads.lock().push(name.to_string());
        let Some(core) = self.core() else {
            return false;
        };
        let hook = self.0.autoload_hook.lock().take();
        let Some(mut hook) = hook else {
            return false;
        };
        let loaded = hook(&core, name);
        *self.0.autoload_hook.lock() = Some(hook);
        loaded
    }

    /// RAM disks with NetBSD's dm block major stand for mapped devices of this core.
    fn mapped_minor(&self, dev: DevT) -> Option<u32> {
        (dev.major == DM_BLOCK_MAJOR).then_some(dev.minor)
    }
}

/// A small seeded generator for shuffles and crash subsets (xorshift64*).
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
