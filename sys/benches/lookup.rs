//! Cost of finding a request's table line, and of mapping a whole request, for tables of 1,
//! 100 and 10,000 lines.
//!
//! Run: `cargo bench -p dmcore --bench lookup`. `find` is the index alone (one lookup per
//! iteration, over a precomputed sequence of random sectors); `submit` maps a 4 KiB read
//! through the whole data path of the core on a platform whose children complete at once.

#[path = "../tests/quiet/mod.rs"]
mod quiet;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dmcore::io::IoRequest;
use dmcore::platform::Op;
use dmcore::table::{Table, TableLine};
use dmcore::target::TargetRegistry;
use dmcore::Core;
use quiet::{Quiet, Request};

const LINES: [usize; 3] = [1, 100, 10_000];

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
    let core = Quiet::new_core();
    let platform = core.platform();
    let registry = TargetRegistry::with_builtins();
    let mut group = c.benchmark_group("find");
    for count in LINES {
        let table = Table::build(platform, &registry, 1, &lines(count), false).expect("valid table");
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
        let core = Quiet::new_core();
        let minor = setup(&core, &lines(count));
        let size = core.size(minor).unwrap_or(0);
        let sectors = probes(size);
        let io = Request::new();
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
