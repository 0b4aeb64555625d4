//! Crash consistency of the persistent store: a workload of origin writes, snapshot writes and
//! flushes is stopped after each of its writes in turn (every crash point), the disks are
//! taken as a power loss would leave them (unflushed writes dropped, kept, or a random subset
//! kept), and the snapshot is loaded again from its COW device on a fresh core. The metadata
//! must load, and every sector of the origin and of the snapshot must hold either what it held
//! at that device's last completed flush or what a write issued after that flush put there.
//! The same for a merge stopped at each of its writes, which must then finish.

#[path = "snapshot_support/mod.rs"]
mod support;

use dmcore::platform::mem::CrashMode;
use dmcore::DevT;
use support::*;

const SECTORS: u64 = 512;
const COW: DevT = DevT::new(7, 1);
const COW_SECTORS: u64 = 2048;

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// Write `len` sectors at `sector` of device 0 (origin) or 1 (snapshot).
    Write {
        dev: usize,
        sector: u64,
        len: u64,
        seed: u64,
    },
    Flush {
        dev: usize,
    },
}

/// A fixed workload: writes that cross chunks, rewrite copied chunks, overlap each other, and
/// flushes of both devices now and then.
fn workload() -> Vec<Op> {
    let mut ops = Vec::new();
    let mut x: u64 = 0x1234_5678;
    for i in 0..48u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let dev = usize::from(x.is_multiple_of(3));
        let sector = (x >> 8) % SECTORS;
        let len = ((x >> 20) % 24 + 1).min(SECTORS - sector);
        ops.push(Op::Write { dev, sector, len, seed: i });
        if i % 7 == 6 {
            ops.push(Op::Flush { dev: ((x >> 32) % 2) as usize });
        }
    }
    ops
}

fn names() -> [&'static str; 2] {
    ["o", "s"]
}

fn setup(chunk: u64) -> Dm {
    let dm = Dm::with_vd(1, SECTORS);
    dm.p.add_disk("/dev/cow", COW, COW_SECTORS);
    dm.p.fill_disk(vd(0), 0, &data(7777, SECTORS as usize * SECTOR));
    dm.create("s", &format!("0 {SECTORS} snapshot /dev/vda /dev/cow P {chunk}")).unwrap();
    dm.create("o", &format!("0 {SECTORS} snapshot-origin /dev/vda")).unwrap();
    dm
}

/// What each device may hold after a crash: its contents at its last completed flush, and
/// every write issued since.
struct Expect {
    current: [Vec<u8>; 2],
    flushed: [Vec<u8>; 2],
    since: [Vec<(u64, Vec<u8>)>; 2],
}

impl Expect {
    fn new() -> Self {
        let initial = data(7777, SECTORS as usize * SECTOR);
        Expect {
            current: [initial.clone(), initial.clone()],
            flushed: [initial.clone(), initial],
            since: [Vec::new(), Vec::new()],
        }
    }

    fn check(&self, dev: usize, got: &[u8], what: &str) {
        for s in 0..SECTORS as usize {
            let sector = &got[s * SECTOR..][..SECTOR];
            if sector == &self.flushed[dev][s * SECTOR..][..SECTOR] {
                continue;
            }
            let from_later = self.since[dev].iter().any(|(start, bytes)| {
                let start = *start as usize;
                s >= start && s < start + bytes.len() / SECTOR && sector == &bytes[(s - start) * SECTOR..][..SECTOR]
            });
            assert!(from_later, "{what}: {} sector {s} holds neither its flushed data nor a later write", names()[dev]);
        }
    }
}

/// Runs the workload on `dm` (which may crash part way); returns what the devices may hold.
fn run(dm: &Dm, ops: &[Op]) -> Expect {
    let mut e = Expect::new();
    for op in ops {
        match *op {
            Op::Write { dev, sector, len, seed } => {
                let bytes = data(seed, len as usize * SECTOR);
                e.since[dev].push((sector, bytes.clone()));
                if dm.write(names()[dev], sector, &bytes).is_ok() {
                    e.current[dev][sector as usize * SECTOR..][..bytes.len()].copy_from_slice(&bytes);
                }
            }
            Op::Flush { dev } => {
                if dm.flush(names()[dev]).is_ok() {
                    e.flushed[dev] = e.current[dev].clone();
                    e.since[dev].clear();
                }
            }
        }
    }
    e
}

/// A fresh core on the crash images of `dm`'s disks.
fn reboot(dm: &Dm, mode: CrashMode) -> Dm {
    let fresh = Dm::with_vd(1, SECTORS);
    fresh.p.add_disk("/dev/cow", COW, COW_SECTORS);
    fresh.p.fill_disk(vd(0), 0, &dm.p.crash_image(vd(0), mode));
    fresh.p.fill_disk(COW, 0, &dm.p.crash_image(COW, mode));
    fresh
}

const MODES: [CrashMode; 4] =
    [CrashMode::DropUnflushed, CrashMode::KeepAll, CrashMode::Reorder(1), CrashMode::Reorder(0xdead)];

/// Every crash point of the workload with chunks of `chunk` sectors; returns how many
/// (crash point, crash mode) pairs were checked.
fn every_crash_point(chunk: u64) -> usize {
    let ops = workload();
    // The writes the workload does, counted on a run that does not crash.
    let dm = setup(chunk);
    let before = dm.p.counts().1;
    let e = run(&dm, &ops);
    let total = dm.p.counts().1 - before;
    assert!(!dm.p.crashed());
    assert!(e.since.iter().map(Vec::len).sum::<usize>() > 0);

    let mut checked = 0;
    for n in 0..=total {
        let dm = setup(chunk);
        dm.p.crash_after_writes(n);
        let e = run(&dm, &ops);
        assert_eq!(dm.p.crashed(), n < total, "crash point {n}");
        for mode in MODES {
            let what = format!("chunk {chunk}, crash after {n} of {total} writes, {mode:?}");
            let after = reboot(&dm, mode);
            after
                .create("s", &format!("0 {SECTORS} snapshot /dev/vda /dev/cow P 0"))
                .unwrap_or_else(|f| panic!("{what}: the metadata does not load: {f:?}"));
            after.create("o", &format!("0 {SECTORS} snapshot-origin /dev/vda")).unwrap();
            let info = after.info("s");
            assert!(!info.starts_with("Invalid"), "{what}: {info}");
            assert_eq!(after.table("s"), format!("0 {SECTORS} snapshot 254:0 7:1 P {chunk}"));
            let origin = after.read("o", 0, SECTORS as usize * SECTOR).unwrap();
            let snap = after.read("s", 0, SECTORS as usize * SECTOR).unwrap();
            e.check(0, &origin, &what);
            e.check(1, &snap, &what);
            // And it keeps working: a write to every chunk, read back.
            let fill = data(n + 1000, SECTORS as usize * SECTOR);
            after.write("o", 0, &fill).unwrap();
            assert_eq!(after.read("s", 0, SECTORS as usize * SECTOR).unwrap(), snap, "{what}: after more writes");
            checked += 1;
        }
    }
    println!("chunk {chunk}: {total} writes, {} crash points checked ({} modes each)", total + 1, MODES.len());
    checked
}

#[test]
fn every_crash_point_of_a_workload_recovers() {
    // Chunks of 8 sectors, and of 1 sector (32 records per area: areas fill and follow).
    let checked = every_crash_point(8) + every_crash_point(1);
    println!("snapshot crash consistency: {checked} (crash point, mode) pairs checked");
}

#[test]
fn every_crash_point_of_a_merge_recovers() {
    let chunk = 1;
    let prepare = || {
        let dm = setup(chunk);
        let e = run(&dm, &workload());
        dm.flush("o").unwrap();
        dm.flush("s").unwrap();
        let view = e.current[1].clone();
        dm.remove("o").unwrap();
        dm.remove("s").unwrap();
        (dm, view)
    };
    let merge = |dm: &Dm| -> Result<(), Failed> {
        dm.cmd("create", "base")?;
        dm.load("base", &format!("0 {SECTORS} snapshot-merge /dev/vda /dev/cow P {chunk}"))?;
        dm.resume("base")
    };
    let (dm, view) = prepare();
    let before = dm.p.counts().1;
    merge(&dm).unwrap();
    let total = dm.p.counts().1 - before;
    assert_eq!(dm.p.disk(vd(0)), view, "a merge without a crash");
    let done = dm.info("base");
    let (a, m) = done.split_once('/').map(|(a, r)| (a.to_string(), r.split(' ').nth(1).unwrap().to_string())).unwrap();
    assert_eq!(a, m, "{done}");

    let mut checked = 0;
    for n in 0..total {
        let (dm, view) = prepare();
        dm.p.crash_after_writes(n);
        let _ = merge(&dm);
        assert!(dm.p.crashed());
        for mode in MODES {
            let what = format!("merge crashed after {n} of {total} writes, {mode:?}");
            let after = reboot(&dm, mode);
            // The merge device shows the snapshot's view at once, and the merge finishes.
            after.cmd("create", "base").unwrap();
            after
                .load("base", &format!("0 {SECTORS} snapshot-merge /dev/vda /dev/cow P 0"))
                .unwrap_or_else(|f| panic!("{what}: {f:?}"));
            assert_eq!(after.cmd("resume", "base"), Ok(()));
            assert_eq!(after.read("base", 0, SECTORS as usize * SECTOR).unwrap(), view, "{what}");
            after.settle();
            assert_eq!(after.p.disk(vd(0)), view, "{what}: the origin after the merge");
            assert_eq!(after.info("base"), done, "{what}");
            checked += 1;
        }
    }
    assert!(checked > 0);
    println!("snapshot-merge crash consistency: {total} writes, {checked} (crash point, mode) pairs checked");
}
