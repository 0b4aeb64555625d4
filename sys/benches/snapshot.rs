//! Write throughput to an origin with one snapshot, as a ratio to a plain linear device: the
//! first write to every chunk (each one copied into the snapshot and committed), and a rewrite
//! (every chunk copied already: remapped at once).
//!
//! Run: `cargo bench -p dmcore --bench snapshot` (RAM disks: what the core itself costs, plus
//! the copy's extra data movement), or with `SNAPSHOT_BENCH_DIR=/some/dir` for disks that are
//! files there (flush and FUA are `fdatasync`, so the commits' cost shows). `SNAPSHOT_BENCH_MIB`
//! sets the device size (default 128).
//!
//! The platform here is the smallest that runs the core for real, on one thread, so that the
//! time is all the work done: children are done at once when they are issued; the targets'
//! work is queued and run whenever 16 requests are in flight (64 KiB writes, sequential over
//! the whole device), as a worker that is busy while requests pile up would find it.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Instant;

use dmcore::io::{IoRequest, IoSlot};
use dmcore::platform::{Child, DevT, DiskIo, DiskSpec, LogLevel, LowerDisk, Op, Platform, Work};
use dmcore::plist::{self, Dict, Limits, Number, Value};
use dmcore::{Caller, Core, Errno, SECTOR_SIZE};

const WRITE: usize = 64 << 10;
const DEPTH: usize = 16;

enum Store {
    Ram(RwLock<Vec<u8>>),
    File(File),
}

struct DiskData {
    dev: DevT,
    sectors: u64,
    store: Store,
}

impl DiskData {
    fn read(&self, pos: u64, buf: &mut [u8]) -> Result<(), Errno> {
        match &self.store {
            Store::Ram(v) => {
                let v = v.read().unwrap();
                buf.copy_from_slice(v.get(pos as usize..pos as usize + buf.len()).ok_or(Errno::EIO)?);
                Ok(())
            }
            Store::File(f) => f.read_exact_at(buf, pos).map_err(|_| Errno::EIO),
        }
    }

    fn write(&self, pos: u64, buf: &[u8], fua: bool) -> Result<(), Errno> {
        match &self.store {
            Store::Ram(v) => {
                let mut v = v.write().unwrap();
                v.get_mut(pos as usize..pos as usize + buf.len()).ok_or(Errno::EIO)?.copy_from_slice(buf);
                Ok(())
            }
            Store::File(f) => {
                f.write_all_at(buf, pos).map_err(|_| Errno::EIO)?;
                if fua {
                    f.sync_data().map_err(|_| Errno::EIO)?;
                }
                Ok(())
            }
        }
    }

    fn flush(&self) -> Result<(), Errno> {
        match &self.store {
            Store::Ram(_) => Ok(()),
            Store::File(f) => f.sync_data().map_err(|_| Errno::EIO),
        }
    }
}

struct Disk(Arc<DiskData>);

impl LowerDisk for Disk {
    fn dev(&self) -> DevT {
        self.0.dev
    }
    fn sectors(&self) -> u64 {
        self.0.sectors
    }
}

struct Request {
    slot: IoSlot<Bench>,
    data: Mutex<Vec<u8>>,
    done: AtomicBool,
}

struct Inner {
    disks: Vec<Arc<DiskData>>,
    core: OnceLock<Weak<Core<Bench>>>,
    work: Mutex<VecDeque<Arc<dyn Work>>>,
    /// Requests completed.
    completed: AtomicU64,
    deferred: Mutex<VecDeque<Arc<Request>>>,
}

#[derive(Clone)]
struct Bench(Arc<Inner>);

impl Bench {
    fn core(&self) -> Option<Arc<Core<Bench>>> {
        self.0.core.get().and_then(Weak::upgrade)
    }
}

impl Platform for Bench {
    type Disk = Disk;
    type Io = Arc<Request>;

    fn open_disk(&self, spec: DiskSpec<'_>) -> Result<Disk, Errno> {
        let dev = match spec {
            DiskSpec::Number(d) => d,
            DiskSpec::Path(_) => return Err(Errno::ENOENT),
        };
        self.0.disks.iter().find(|d| d.dev == dev).map(|d| Disk(d.clone())).ok_or(Errno::ENXIO)
    }
    fn slot(io: &Arc<Request>) -> &IoSlot<Self> {
        &io.slot
    }
    fn with_data(
        &self,
        io: &Arc<Request>,
        offset: usize,
        len: usize,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), Errno> {
        let mut data = io.data.lock().unwrap();
        f(data.get_mut(offset..offset + len).ok_or(Errno::EIO)?);
        Ok(())
    }
    fn submit(&self, child: Child<'_, Self>) {
        let disk = &child.disk.0;
        let pos = child.sector * SECTOR_SIZE;
        let len = (child.sectors * SECTOR_SIZE) as usize;
        let result = match child.op {
            Op::Read => {
                let mut data = child.parent.data.lock().unwrap();
                disk.read(pos, &mut data[child.buf_offset..child.buf_offset + len])
            }
            Op::Write => {
                let data = child.parent.data.lock().unwrap();
                disk.write(pos, &data[child.buf_offset..child.buf_offset + len], child.fua)
            }
            Op::Flush => disk.flush(),
            Op::Discard | Op::WriteZeroes => disk.write(pos, &vec![0; len], child.fua),
        };
        if let Some(core) = self.core() {
            core.child_done(child.parent, child.tag, result);
        }
    }
    fn complete(&self, io: Arc<Request>, result: Result<(), Errno>) {
        assert_eq!(result, Ok(()), "a benchmark request failed");
        io.done.store(true, Ordering::Release);
        self.0.completed.fetch_add(1, Ordering::AcqRel);
    }
    fn defer(&self, _: u32, io: Arc<Request>) {
        self.0.deferred.lock().unwrap().push_back(io);
    }
    fn release_deferred(&self, _: u32) {}
    fn disk_io(&self, disk: &Disk, sector: u64, io: DiskIo<'_>) -> Result<(), Errno> {
        let pos = sector * SECTOR_SIZE;
        match io {
            DiskIo::Read(buf) => disk.0.read(pos, buf),
            DiskIo::Write { data, fua } => disk.0.write(pos, data, fua),
            DiskIo::Flush => disk.0.flush(),
            DiskIo::Discard { sectors } | DiskIo::WriteZeroes { sectors } => {
                disk.0.write(pos, &vec![0; (sectors * SECTOR_SIZE) as usize], false)
            }
        }
    }
    fn now_ns(&self) -> u64 {
        0
    }
    fn wait(&self, ready: &mut dyn FnMut() -> bool, _: bool) -> Result<(), Errno> {
        while !ready() {
            std::thread::yield_now();
        }
        Ok(())
    }
    fn wake(&self) {}
    fn queue_work(&self, work: Arc<dyn Work>, _: Option<u64>) {
        self.0.work.lock().unwrap().push_back(work);
    }
    fn log(&self, _: LogLevel, args: fmt::Arguments<'_>) {
        eprintln!("{args}");
    }
}

/// A core on disks 254:0 (origin, `sectors`), 254:16 (COW, a quarter more), 254:32 (linear).
fn setup(sectors: u64, dir: Option<&PathBuf>) -> (Arc<Core<Bench>>, Bench) {
    let sizes = [sectors, sectors + sectors / 4, sectors];
    let disks = sizes
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let bytes = s * SECTOR_SIZE;
            let store = match dir {
                // Every page touched now, so that no pass pays for first faults.
                None => Store::Ram(RwLock::new(vec![0xa5; bytes as usize])),
                Some(dir) => {
                    let path = dir.join(format!("snapshot-bench-{i}.img"));
                    let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
                    f.set_len(bytes).unwrap();
                    // Allocated, so that first writes do not pay for the file system's allocation.
                    for off in (0..bytes).step_by(1 << 20) {
                        f.write_all_at(&vec![1u8; (1 << 20).min(bytes - off) as usize], off).unwrap();
                    }
                    f.sync_all().unwrap();
                    Store::File(f)
                }
            };
            let disk = DiskData { dev: DevT::new(254, 16 * i as u32), sectors: s, store };
            if i == 1 {
                // A new COW device starts zeroed, as lvm2 leaves it.
                disk.write(0, &[0; 64 << 10], true).unwrap();
            }
            Arc::new(disk)
        })
        .collect();
    let platform = Bench(Arc::new(Inner {
        disks,
        core: OnceLock::new(),
        work: Mutex::new(VecDeque::new()),
        completed: AtomicU64::new(0),
        deferred: Mutex::new(VecDeque::new()),
    }));
    let core = Arc::new(Core::new(platform.clone()));
    platform.0.core.set(Arc::downgrade(&core)).ok();
    (core, platform)
}

fn control(core: &Core<Bench>, command: &str, name: &str, line: Option<&str>) {
    let mut d = Dict::new();
    d.set_string("command", command.as_bytes());
    d.set_string("name", name.as_bytes());
    d.insert("version", Value::Array(vec![Value::Number(Number::Unsigned(4))]));
    if let Some(line) = line {
        let mut it = line.splitn(4, ' ');
        let mut e = Dict::new();
        e.set_u64("start", it.next().unwrap().parse().unwrap());
        e.set_u64("length", it.next().unwrap().parse().unwrap());
        e.set_string("type", it.next().unwrap().as_bytes());
        e.set_string("params", it.next().unwrap_or("").as_bytes());
        d.insert("cmd_data", Value::Array(vec![Value::Dict(e)]));
    }
    let mut text = plist::write_dict(&d);
    text.push(0);
    let reply = core.control(&text, Caller { privileged: true }).unwrap();
    assert_eq!(reply.command_result, Ok(()), "{command} {name}: {:?}", reply.detail);
    let _ = plist::parse_dict(&reply.bytes, &Limits::DM);
}

/// The INFO status of a one-line device.
fn info(core: &Core<Bench>, name: &str) -> String {
    let mut d = Dict::new();
    d.set_string("command", b"status");
    d.set_string("name", name.as_bytes());
    d.insert("version", Value::Array(vec![Value::Number(Number::Unsigned(4))]));
    let mut text = plist::write_dict(&d);
    text.push(0);
    let reply = core.control(&text, Caller { privileged: true }).unwrap();
    let dict = plist::parse_dict(&reply.bytes, &Limits::DM).unwrap();
    let lines = dict.get_array("cmd_data").unwrap_or_default();
    lines.first().and_then(|l| l.as_dict()).and_then(|l| l.get_str("params")).unwrap_or("").to_string()
}

fn device(core: &Core<Bench>, name: &str, line: &str) -> u32 {
    control(core, "create", name, None);
    control(core, "reload", name, Some(line));
    control(core, "resume", name, None);
    core.minor_of(name).unwrap()
}

/// Writes the whole device once, 64 KiB at a time, `DEPTH` in flight; returns MB/s.
fn write_all(core: &Core<Bench>, platform: &Bench, minor: u32, sectors: u64, seed: u8) -> f64 {
    let total = (sectors * SECTOR_SIZE) as usize;
    let payload = vec![seed; WRITE];
    let start = Instant::now();
    let done = || platform.0.completed.load(Ordering::Acquire);
    let run_work = || {
        let work = platform.0.work.lock().unwrap().pop_front();
        work.map(|w| w.run()).is_some()
    };
    let base = done();
    let mut issued = 0u64;
    for off in (0..total).step_by(WRITE) {
        // Keep at most DEPTH in flight: the worker runs when they are.
        while issued - (done() - base) >= DEPTH as u64 {
            assert!(run_work(), "requests in flight and no work to run");
        }
        let io =
            Arc::new(Request { slot: IoSlot::new(), data: Mutex::new(payload.clone()), done: AtomicBool::new(false) });
        let req = IoRequest { sector: off as u64 / SECTOR_SIZE, bytes: WRITE as u64, op: Op::Write, fua: false };
        core.submit(minor, io, req);
        issued += 1;
    }
    // The last writes, and a flush, as a writer that wants its data durable would end.
    while done() - base < issued {
        assert!(run_work(), "requests in flight and no work to run");
    }
    let flush = Arc::new(Request { slot: IoSlot::new(), data: Mutex::new(Vec::new()), done: AtomicBool::new(false) });
    core.submit(minor, flush.clone(), IoRequest { sector: 0, bytes: 0, op: Op::Flush, fua: false });
    while !flush.done.load(Ordering::Acquire) {
        assert!(run_work(), "a flush in flight and no work to run");
    }
    total as f64 / 1e6 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, without it: then
    // only a small smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let dir = std::env::var_os("SNAPSHOT_BENCH_DIR").map(PathBuf::from);
    let mib: u64 = std::env::var("SNAPSHOT_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(128);
    let mib = if smoke { 4 } else { mib };
    let sectors = mib << 11;
    let disks = dir.as_ref().map_or("RAM disks".to_string(), |d| format!("files in {} (fdatasync)", d.display()));
    println!("snapshot write throughput: {disks}, {mib} MiB devices, 64 KiB writes, {DEPTH} in flight");
    println!("{:>7} {:>12} {:>24} {:>24}", "chunk", "linear MB/s", "first write MB/s (ratio)", "rewrite MB/s (ratio)");
    let rounds = if smoke { 1 } else { 5 };
    for chunk in [8u64, 32, 128] {
        // Fresh devices each round (a first write happens once per snapshot); the medians.
        let (mut base, mut first, mut rewrite) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (core, platform) = setup(sectors, dir.as_ref());
            let linear = device(&core, "lin", &format!("0 {sectors} linear 254:32 0"));
            device(&core, "snap", &format!("0 {sectors} snapshot 254:0 254:16 P {chunk}"));
            let origin = device(&core, "origin", &format!("0 {sectors} snapshot-origin 254:0"));
            base.push(write_all(&core, &platform, linear, sectors, round as u8));
            first.push(write_all(&core, &platform, origin, sectors, 7));
            let info = info(&core, "snap");
            let allocated: u64 = info.split('/').next().and_then(|a| a.parse().ok()).unwrap_or(0);
            assert!(allocated >= sectors, "the snapshot did not copy every chunk: {info}");
            rewrite.push(write_all(&core, &platform, origin, sectors, 8));
        }
        let (base, first, rewrite) = (median(base), median(first), median(rewrite));
        println!(
            "{:>5} K {:>12.0} {:>15.0} ({:>5.2}) {:>15.0} ({:>5.2})",
            chunk / 2,
            base,
            first,
            first / base,
            rewrite,
            rewrite / base
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
