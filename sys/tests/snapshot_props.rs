//! Property tests of the snapshot family against a byte model: after any sequence of origin
//! writes, snapshot writes, reads, flushes, a second snapshot taken later, reloads (handover)
//! and restarts from the disks, every snapshot reads as the origin did when it was taken plus
//! its own writes, and the origin as its own writes. A second property runs batches of
//! requests concurrently, their children and the worker interleaved in random orders.

#[path = "snapshot_support/mod.rs"]
mod support;

use dmcore::platform::mem::MemRequest;
use dmcore::{Op, Platform};
use proptest::prelude::*;
use std::sync::Arc;
use support::*;

const SECTORS: u64 = 2048;
const COW_SECTORS: u64 = 8192;

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Step {
    /// Write `len` sectors at `sector` of device `dev` (0 origin, 1 snapshot A, 2 snapshot B).
    Write {
        dev: usize,
        sector: u64,
        len: u64,
        seed: u64,
    },
    Read {
        dev: usize,
        sector: u64,
        len: u64,
    },
    Flush {
        dev: usize,
    },
    /// lvm2's order: suspend the origin, create B, resume the origin.
    TakeB,
    /// Suspend A, load the same table (PO this time), resume: a handover.
    ReloadA,
    /// Remove every device and set them up again from the disks (a restart).
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    step_in(SECTORS)
}

/// Steps whose I/O falls in the first `span` sectors.
fn step_in(span: u64) -> impl Strategy<Value = Step> {
    let range = (0..span).prop_flat_map(move |s| (Just(s), 1..=(span - s).min(48)));
    prop_oneof![
        6 => (0..3usize, range.clone(), any::<u64>()).prop_map(|(dev, (sector, len), seed)| Step::Write { dev, sector, len, seed }),
        4 => (0..3usize, range).prop_map(|(dev, (sector, len))| Step::Read { dev, sector, len }),
        1 => (0..3usize).prop_map(|dev| Step::Flush { dev }),
        1 => Just(Step::TakeB),
        1 => Just(Step::ReloadA),
        1 => Just(Step::Restart),
    ]
}

/// The devices under test and the model of their contents.
struct World {
    dm: Dm,
    a: String,
    b: Option<String>,
    b_line: String,
    model: [Option<Vec<u8>>; 3],
}

const NAMES: [&str; 3] = ["origin", "a", "b"];

impl World {
    fn new(chunk_a: u64, chunk_b: u64, b_transient: bool) -> Self {
        let dm = Dm::with_vd(3, SECTORS);
        dm.p.add_disk("/dev/cowa", dmcore::DevT::new(7, 1), COW_SECTORS);
        dm.p.add_disk("/dev/cowb", dmcore::DevT::new(7, 2), COW_SECTORS);
        let initial = data(99, SECTORS as usize * SECTOR);
        dm.p.fill_disk(vd(0), 0, &initial);
        let a = format!("0 {SECTORS} snapshot /dev/vda /dev/cowa P {chunk_a}");
        dm.create("a", &a).unwrap();
        dm.create("origin", &format!("0 {SECTORS} snapshot-origin /dev/vda")).unwrap();
        let kind = if b_transient { "N" } else { "P" };
        let b_line = format!("0 {SECTORS} snapshot /dev/vda /dev/cowb {kind} {chunk_b}");
        World { dm, a, b: None, b_line, model: [Some(initial.clone()), Some(initial), None] }
    }

    fn check(&self, dev: usize, sector: u64, len: u64, got: &[u8]) {
        let model = self.model[dev].as_ref().unwrap();
        let want = &model[sector as usize * SECTOR..][..len as usize * SECTOR];
        if got != want {
            let first = got.iter().zip(want).position(|(a, b)| a != b).unwrap();
            panic!("{} sector {} (+{}) differs from the model at byte {first}", NAMES[dev], sector, len);
        }
    }

    fn apply(&mut self, step: &Step) {
        let dm = &self.dm;
        match *step {
            Step::Write { dev, sector, len, seed } => {
                if self.model[dev].is_none() {
                    return;
                }
                let bytes = data(seed, len as usize * SECTOR);
                dm.write(NAMES[dev], sector, &bytes).unwrap();
                self.model[dev].as_mut().unwrap()[sector as usize * SECTOR..][..bytes.len()].copy_from_slice(&bytes);
            }
            Step::Read { dev, sector, len } => {
                if self.model[dev].is_none() {
                    return;
                }
                let got = dm.read(NAMES[dev], sector, len as usize * SECTOR).unwrap();
                self.check(dev, sector, len, &got);
            }
            Step::Flush { dev } => {
                if self.model[dev].is_some() {
                    dm.flush(NAMES[dev]).unwrap();
                }
            }
            Step::TakeB => {
                if self.b.is_some() {
                    return;
                }
                dm.suspend("origin").unwrap();
                dm.create("b", &self.b_line).unwrap();
                dm.resume("origin").unwrap();
                self.b = Some(self.b_line.clone());
                self.model[2] = self.model[0].clone();
            }
            Step::ReloadA => {
                let po = self.a.replace(" P ", " PO ");
                dm.load("a", &po).unwrap();
                dm.suspend("a").unwrap();
                dm.resume("a").unwrap();
                self.a = po;
            }
            Step::Restart => {
                for name in ["origin", "b", "a"] {
                    if dm.core.minor_of(name).is_some() {
                        dm.remove(name).unwrap();
                    }
                }
                // A P snapshot comes back from its COW; an N one is gone.
                dm.create("a", &self.a.replace(" PO ", " P ")).unwrap();
                match &self.b {
                    Some(line) if line.contains(" P ") => {
                        dm.create("b", line).unwrap();
                    }
                    _ => {
                        self.b = None;
                        self.model[2] = None;
                    }
                }
                dm.create("origin", &format!("0 {SECTORS} snapshot-origin /dev/vda")).unwrap();
            }
        }
    }

    fn check_all(&self) {
        for (dev, name) in NAMES.iter().enumerate() {
            if self.model[dev].is_some() {
                let got = self.dm.read(name, 0, SECTORS as usize * SECTOR).unwrap();
                self.check(dev, 0, SECTORS, &got);
            }
        }
        for name in ["a", "b"] {
            if self.dm.core.minor_of(name).is_some() {
                let info = self.dm.info(name);
                let (alloc, rest) = info.split_once('/').unwrap_or_else(|| panic!("{name}: {info}"));
                let total: u64 = rest.split(' ').next().unwrap().parse().unwrap();
                assert!(alloc.parse::<u64>().unwrap() <= total, "{name}: {info}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn snapshots_match_the_model(
        chunk_a in prop::sample::select(vec![1u64, 8, 16]),
        chunk_b in prop::sample::select(vec![8u64, 32]),
        b_transient in any::<bool>(),
        steps in prop::collection::vec(step(), 1..40),
    ) {
        let mut w = World::new(chunk_a, chunk_b, b_transient);
        for s in &steps {
            w.apply(s);
        }
        w.check_all();
    }
}

/// A tiny generator for scheduling choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Whether `[a, a + n)` and `[b, b + m)` overlap.
fn overlap(a: u64, n: u64, b: u64, m: u64) -> bool {
    a < b + m && b < a + n
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Batches of requests in flight together; within a batch no two requests to one device
    /// overlap if one of them writes (their outcome would depend on the order). Reads of a
    /// snapshot and writes of the origin may overlap: the snapshot's answer does not depend on
    /// it, and that is what copy-on-write has to get right.
    #[test]
    fn concurrent_batches_match_the_model(
        chunk in prop::sample::select(vec![1u64, 8, 16]),
        batches in prop::collection::vec(prop::collection::vec(step_in(96), 1..8), 1..12),
        seed in any::<u64>(),
    ) {
        let mut w = World::new(chunk, 8, false);
        w.apply(&Step::TakeB);
        let mut rng = Rng(seed | 1);
        for batch in batches {
            // Keep the reads and writes that do not conflict within the batch.
            let mut taken: Vec<(usize, u64, u64, bool)> = Vec::new();
            let mut ios: Vec<(Arc<MemRequest>, Step)> = Vec::new();
            w.dm.p.hold(true);
            for s in batch {
                let (dev, sector, len, writes) = match s {
                    Step::Write { dev, sector, len, .. } => (dev, sector, len, true),
                    Step::Read { dev, sector, len } => (dev, sector, len, false),
                    _ => continue,
                };
                if taken.iter().any(|&(d, s2, l2, w2)| d == dev && (writes || w2) && overlap(sector, len, s2, l2)) {
                    continue;
                }
                taken.push((dev, sector, len, writes));
                let minor = w.dm.minor(NAMES[dev]);
                let (op, bytes) = if writes { (Op::Write, None) } else { (Op::Read, None) };
                let payload = match s {
                    Step::Write { seed, .. } => Some(data(seed, len as usize * SECTOR)),
                    _ => bytes,
                };
                let (io, req) = w.dm.p.request(minor, op, sector, len * SECTOR as u64, payload.as_deref());
                w.dm.core.submit(minor, io.clone(), req);
                ios.push((io, s));
            }
            let mut rounds = 0;
            while ios.iter().any(|(io, _)| io.result().is_none()) {
                match rng.next() % 4 {
                    0 | 1 => {
                        w.dm.p.run_one();
                    }
                    2 => w.dm.p.run_shuffled(rng.next()),
                    _ => {
                        let _ = w.dm.p.wait(&mut || false, false);
                    }
                }
                rounds += 1;
                prop_assert!(rounds < 100_000, "requests never completed");
            }
            w.dm.p.hold(false);
            w.dm.settle();
            // Reads saw the state before the batch; then the writes apply.
            for (io, s) in &ios {
                prop_assert_eq!(io.result(), Some(Ok(())));
                if let Step::Read { dev, sector, len } = *s {
                    w.check(dev, sector, len, &io.data());
                }
            }
            for (_, s) in &ios {
                if let Step::Write { dev, sector, len, seed } = *s {
                    let bytes = data(seed, len as usize * SECTOR);
                    w.model[dev].as_mut().unwrap()[sector as usize * SECTOR..][..bytes.len()].copy_from_slice(&bytes);
                }
            }
        }
        w.check_all();
    }
}
