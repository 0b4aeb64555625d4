//! Table swaps under load: while several NBD clients write, the real dmctl binary suspends,
//! reloads and resumes the device over and over, alternating between a linear table on one
//! image and a striped table on two others. Every write the clients saw acknowledged must be in
//! the image files afterwards, in exactly one of the two places the tables give it, and in the
//! right one when no swap overlapped it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use dm_e2e::{eventually, have, read_file_at, tagged, Host, Layout, Target, CMD_WRITE, KIB, MIB};

const DEVICE: u64 = 32 * MIB;
const BLOCK: u64 = 4 * KIB;
/// Blocks at the end of the device reserved for qemu-io; the Rust writers share the rest.
const QEMU_BLOCKS: u64 = 256;
const WRITERS: u64 = 4;
const QUEUE_DEPTH: usize = 4;
/// Swap cycles to run; the writers stop when they are done.
const CYCLES: u64 = 24;

const TABLE_A: &str = "0 65536 linear 254:0 0";
const TABLE_B: &str = "0 65536 striped 2 128 254:16 2048 254:32 0";

fn layouts() -> [Layout; 2] {
    [
        Layout::new().push(DEVICE, Target::Linear { image: 0, offset: 0 }),
        Layout::new().push(DEVICE, Target::Striped { chunk: 64 * KIB, stripes: vec![(1, MIB), (2, 0)] }),
    ]
}

/// One acknowledged write: the block, and the swap epoch seen before sending and after the
/// acknowledgement (even epochs are stable: table `epoch / 2 % 2` was live all along).
struct Acked {
    block: u64,
    before: u64,
    after: u64,
}

fn writer(host_nbd: std::path::PathBuf, id: u64, epoch: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Vec<Acked> {
    let mut nbd = dm_e2e::Nbd::connect(&host_nbd, "swap").expect("connect");
    let writable = DEVICE / BLOCK - QEMU_BLOCKS;
    let mut next = id;
    let mut sent = std::collections::HashMap::new();
    let mut acked = Vec::new();
    loop {
        while nbd.in_flight() < QUEUE_DEPTH && next < writable && !stop.load(Ordering::SeqCst) {
            let before = epoch.load(Ordering::SeqCst);
            let data = tagged(7, next * BLOCK, BLOCK as usize);
            let handle = nbd.send(CMD_WRITE, 0, next * BLOCK, BLOCK as u32, &data).expect("send");
            sent.insert(handle, (next, before));
            next += WRITERS;
        }
        if nbd.in_flight() == 0 {
            break;
        }
        let reply = nbd.recv().expect("reply");
        let after = epoch.load(Ordering::SeqCst);
        let (block, before) = sent.remove(&reply.handle).expect("known handle");
        assert_eq!(reply.error, 0, "write of block {block} failed with NBD error {}", reply.error);
        acked.push(Acked { block, before, after });
    }
    assert_eq!(nbd.flush(), 0);
    nbd.disconnect();
    acked
}

#[test]
fn reload_and_resume_under_concurrent_writes_loses_no_write() {
    let mut host = Host::start(&[DEVICE, DEVICE / 2 + MIB, DEVICE / 2], &[]);
    host.dmsetup(&["create", "swap", "--table", TABLE_A]).ok();

    let epoch = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| {
            let (path, epoch, stop) = (host.nbd.clone(), Arc::clone(&epoch), Arc::clone(&stop));
            thread::spawn(move || writer(path, id, epoch, stop))
        })
        .collect();
    // A real NBD client too, on its own blocks, when qemu-io is installed: one process, many
    // writes; its exit status 0 means every one was acknowledged.
    let qemu = have("qemu-io").then(|| {
        let first = DEVICE - QEMU_BLOCKS * BLOCK;
        let commands: Vec<String> =
            (0..QEMU_BLOCKS).map(|i| format!("write -P 0x{:02x} {} 4k", 0x40 + i % 64, first + i * BLOCK)).collect();
        let uri = host.uri("swap");
        thread::spawn(move || {
            let mut cmd = std::process::Command::new("qemu-io");
            cmd.args(["-f", "raw"]);
            for c in &commands {
                cmd.arg("-c").arg(c);
            }
            cmd.arg(uri);
            dm_e2e::run(cmd, "")
        })
    });

    // Wait until the writers have written something, so that swaps overlap I/O from the start.
    let started = Instant::now();
    while host.info("swap").get("Open count").map(String::as_str) == Some("0") {
        assert!(started.elapsed() < Duration::from_secs(30), "the writers never connected");
        thread::yield_now();
    }

    let tables = [TABLE_A, TABLE_B];
    for cycle in 1..=CYCLES {
        let table = tables[(cycle % 2) as usize];
        epoch.store(2 * cycle - 1, Ordering::SeqCst);
        if cycle % 2 == 1 {
            // dmsetup syntax: explicit suspend, load, resume.
            host.dmsetup(&["suspend", "swap"]).ok();
            let info = host.info("swap");
            assert_eq!(info["State"], "SUSPENDED");
            host.dmsetup(&["load", "swap", "--table", table]).ok();
            assert_eq!(host.info("swap")["Tables present"], "LIVE & INACTIVE");
            host.dmsetup(&["resume", "swap"]).ok();
        } else {
            // NetBSD syntax: load from stdin, then resume (which suspends, swaps, resumes).
            host.dmctl_in(&["load", "swap"], &format!("{table}\n")).ok();
            host.dmctl(&["resume", "swap"]).ok();
        }
        epoch.store(2 * cycle, Ordering::SeqCst);
        let live = host.dmsetup(&["table", "swap"]).ok();
        assert_eq!(live.stdout, format!("{table}\n"));
    }
    stop.store(true, Ordering::SeqCst);
    let acked: Vec<Acked> = writers.into_iter().flat_map(|w| w.join().expect("writer panicked")).collect();
    let qemu = qemu.map(|q| q.join().expect("qemu-io thread").ok());

    // Every acknowledged write is in the images: in the place the live table gave it when no
    // swap overlapped it, otherwise in one of the two places (never in none).
    let layouts = layouts();
    let images = host.images.clone();
    let place = |layout: &Layout, block: u64| {
        let (image, at, _) = layout.locate(block * BLOCK);
        read_file_at(&images[image], at, BLOCK as usize)
    };
    let mut during_swaps = 0;
    for a in &acked {
        let expected = tagged(7, a.block * BLOCK, BLOCK as usize);
        let found = [place(&layouts[0], a.block) == expected, place(&layouts[1], a.block) == expected];
        if a.before == a.after && a.before % 2 == 0 {
            let live = (a.before / 2 % 2) as usize;
            assert!(
                found[live],
                "block {} written under table {live} (epoch {}) is not where it maps",
                a.block, a.before
            );
        } else {
            during_swaps += 1;
            assert!(
                found[0] || found[1],
                "block {} (epochs {}..{}) was acknowledged but is lost",
                a.block,
                a.before,
                a.after
            );
        }
    }
    if qemu.is_some() {
        let first = DEVICE / BLOCK - QEMU_BLOCKS;
        for i in 0..QEMU_BLOCKS {
            let expected = vec![(0x40 + i % 64) as u8; BLOCK as usize];
            let block = first + i;
            assert!(
                place(&layouts[0], block) == expected || place(&layouts[1], block) == expected,
                "qemu-io's write of block {block} is lost"
            );
        }
    } else {
        eprintln!("table_swap: qemu-io is not installed: only the Rust NBD clients wrote");
    }
    eprintln!("table_swap: {} writes acknowledged, {during_swaps} of them overlapped a swap", acked.len());
    assert!(acked.len() > 200, "too few writes to mean anything: {}", acked.len());
    assert!(during_swaps > 0, "no write overlapped a swap");

    // dmhost still answers, and shuts down cleanly.
    // (The server closes an export when the connection's teardown is done: poll for it.)
    assert!(
        eventually(Duration::from_secs(30), || host.open_count("swap") == 0),
        "the writers' opens were not released"
    );
    host.stop_cleanly();
}
