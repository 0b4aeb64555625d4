//! Cost of finding a request's table line, and of mapping a whole request, for tables of 1,
//! 100 and 10,000 lines.
//!
//! Run: `cargo bench -p dmcore --bench lookup`. `find` is the index alone (one lookup per
//! iteration, over a precomputed sequence of random sectors); `submit` maps a 4 KiB read
//! through the whole data path of the core on a platform whose children complete at once.

use std::fmt;
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dmcore::io::{IoRequest, IoSlot};
use dmcore::platform::{Child, DevT, DiskIo, DiskSpec, LogLevel, LowerDisk, Op, Platform, Work};
use dmcore::table::{Table, TableLine};
use dmcore::target::TargetRegistry;
use dmcore::{Core, Errno};

const LINES: [usize; 3] = [1, 100, 10_000];

struct Disk(DevT);

impl LowerDisk for Disk {
    fn dev(&self) -> DevT {
        self.0
    }
    fn sectors(&self) -> u64 {
        1 << 40
    }
}

struct Request {
    slot: IoSlot<Quiet>,
    done: AtomicU32,
}

/// Children complete at once; nothing is stored.
#[derive(Clone)]
struct Quiet(Arc<OnceLock<Weak<Core<Quiet>>>>);

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
        Ok(())
    }
    fn submit(&self, child: Child<'_, Self>) {
        if let Some(core) = self.0.get().and_then(Weak::upgrade) {
            core.child_done(child.parent, child.tag, Ok(()));
        }
    }
    fn complete(&self, io: Arc<Request>, _: Result<(), Errno>) {
        io.done.fetch_add(1, Ordering::Relaxed);
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

/// A small deterministic generator, so every run probes the same sectors.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// `count` linear lines of 64 to 191 sectors each, alternating over four disks.
fn lines(count: usize) -> Vec<TableLine> {
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    let mut start = 0;
    (0..count)
        .map(|i| {
            let len = 64 + next(&mut seed) % 128;
            let line =
                TableLine { start, len, target_type: "linear".into(), params: format!("8:{} {}", (i % 4) * 16, start) };
            start += len;
            line
        })
        .collect()
}

fn probes(size: u64) -> Vec<u64> {
    let mut seed = 0x2545_f491_4f6c_dd1d;
    (0..4096).map(|_| next(&mut seed) % (size - 8)).collect()
}

fn find(c: &mut Criterion) {
    let platform = Quiet(Arc::new(OnceLock::new()));
    let registry = TargetRegistry::with_builtins();
    let mut group = c.benchmark_group("find");
    for count in LINES {
        let table = Table::build(&platform, &registry, 1, &lines(count), false).expect("valid table");
        let sectors = probes(table.size());
        let mut i = 0usize;
        group.bench_with_input(BenchmarkId::from_parameter(count), &count, |b, _| {
            b.iter(|| {
                i = (i + 1) % sectors.len();
                black_box(table.find(black_box(sectors[i])))
            })
        });
    }
    group.finish();
}

fn submit(c: &mut Criterion) {
    let mut group = c.benchmark_group("submit");
    for count in LINES {
        let platform = Quiet(Arc::new(OnceLock::new()));
        let core = Arc::new(Core::new(platform.clone()));
        platform.0.set(Arc::downgrade(&core)).ok();
        let minor = setup(&core, &lines(count));
        let size = core.size(minor).unwrap_or(0);
        let sectors = probes(size);
        let io = Arc::new(Request { slot: IoSlot::new(), done: AtomicU32::new(0) });
        let mut i = 0usize;
        group.bench_with_input(BenchmarkId::from_parameter(count), &count, |b, _| {
            b.iter(|| {
                i = (i + 1) % sectors.len();
                let req = IoRequest { sector: sectors[i], bytes: 4096, op: Op::Read, fua: false };
                core.submit(minor, io.clone(), req);
            })
        });
    }
    group.finish();
}

/// Creates a device with `lines` live, through the control path; returns its minor.
fn setup(core: &Core<Quiet>, lines: &[TableLine]) -> u32 {
    use dmcore::plist::{write_dict, Dict, Value};
    let run = |command: &str| {
        let mut d = Dict::new();
        d.set_string("command", command.as_bytes());
        d.set_string("name", b"bench");
        d.insert("version", Value::Array(vec![Value::unsigned(4)]));
        let mut text = write_dict(&d);
        text.push(0);
        let reply = core.control(&text, dmcore::Caller { privileged: true }).expect("accepted");
        assert_eq!(reply.command_result, Ok(()), "{command}");
    };
    run("create");
    let minor = core.minor_of("bench").expect("created");
    core.load_table(minor, lines).expect("valid table");
    run("resume");
    minor
}

criterion_group!(benches, find, submit);
criterion_main!(benches);
