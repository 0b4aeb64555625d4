//! Throughput of the plist parser and writer on what the control path really carries:
//! a large lvm2 `reload` request (100 linear table entries, built as lvm2's NetBSD backend
//! builds it) and the requests and replies recorded from NetBSD's own driver.
//!
//! Run: `cargo bench -p dmcore --bench plist`. Criterion reports throughput in bytes of
//! document text per second.

use std::fs;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dmcore::plist::{parse_dict, write_dict, Dict, Limits, Value};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/netbsd-golden");

/// A `reload` by minor with `entries` linear targets, keyed and typed as lvm2 sends it
/// (reference §15.7): unsigned `start`/`length`/`flags`/`minor`/`version`, string params.
fn lvm2_reload(entries: u64) -> Dict {
    let mut table = Vec::new();
    let mut start = 0u64;
    for i in 0..entries {
        let length = 0x2000 + (i % 7) * 0x800;
        let mut e = Dict::new();
        e.set_u64("length", length);
        let params = format!("/dev/wd{}a {}", i % 8, 384 + i * 0x10000);
        e.set_string("params", params.as_bytes());
        e.set_u64("start", start);
        e.set_string("type", b"linear");
        table.push(Value::Dict(e));
        start += length;
    }
    let mut d = Dict::new();
    d.insert("cmd_data", Value::Array(table));
    d.set_string("command", b"reload");
    d.set_u32("event_nr", 0);
    d.set_u32("flags", 0x20c);
    d.set_u32("minor", 1);
    d.insert("version", Value::Array(vec![Value::unsigned(4), Value::unsigned(0), Value::unsigned(0)]));
    d
}

fn golden_documents() -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = fs::read_dir(GOLDEN)
        .expect("golden folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| fs::read(p).expect("read")).collect()
}

fn bench_reload(c: &mut Criterion) {
    let dict = lvm2_reload(100);
    let text = write_dict(&dict);
    assert_eq!(parse_dict(&text, &Limits::DM).as_ref(), Ok(&dict));
    let mut g = c.benchmark_group("lvm2-reload-100-linear");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("parse", |b| b.iter(|| parse_dict(black_box(&text), &Limits::DM)));
    g.bench_function("write", |b| b.iter(|| write_dict(black_box(&dict))));
    g.finish();
}

fn bench_golden(c: &mut Criterion) {
    let docs = golden_documents();
    let dicts: Vec<Dict> = docs.iter().map(|d| parse_dict(d, &Limits::DM).expect("golden parses")).collect();
    let total: usize = docs.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group(format!("golden-all-{}-files", docs.len()));
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("parse", |b| {
        b.iter(|| {
            for d in &docs {
                black_box(parse_dict(black_box(d), &Limits::DM).ok());
            }
        })
    });
    g.bench_function("write", |b| {
        b.iter(|| {
            for d in &dicts {
                black_box(write_dict(black_box(d)));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_reload, bench_golden);
criterion_main!(benches);
