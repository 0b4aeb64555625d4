//! The snapshot family on the in-memory platform: Linux 6.1's recorded `06-snapshot`
//! transcript replayed step by step (every TABLE and INFO line and every byte read compared),
//! the on-disk format, handover on reload and lvm2's creation order, several snapshots,
//! overflow, merge, bad tables and I/O errors.

#[path = "snapshot_support/mod.rs"]
mod support;

use dmcore::platform::mem::Fault;
use dmcore::{DevT, Errno, Op};
use support::*;

#[test]
fn linux_06_snapshot_transcript_replays_identically() {
    let text = std::fs::read_to_string(golden_dir().join("06-snapshot.txt")).unwrap();
    let compared = replay_06(&text);
    assert!(compared >= 25, "only {compared} outputs compared");
    println!("06-snapshot: {compared} outputs equal to Linux 6.1's");
}

const N: u64 = 16384;

fn snapshot_rig() -> Dm {
    let dm = Dm::with_vd(4, N);
    dm.p.fill_disk(vd(0), 0, &pattern(N as usize * SECTOR, 1));
    dm
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed).wrapping_add((i >> 9) as u8)).collect()
}

#[test]
fn cow_device_layout_is_linux_s() {
    let dm = snapshot_rig();
    dm.create("s", &format!("0 {N} snapshot /dev/vda /dev/vdb P 8")).unwrap();
    dm.create("o", &format!("0 {N} snapshot-origin /dev/vda")).unwrap();
    let cow = dm.p.disk(vd(1));
    assert_eq!(&cow[..16], &[0x53, 0x6e, 0x41, 0x70, 1, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0]);
    assert!(cow[16..4096].iter().all(|&b| b == 0), "rest of the header chunk is zero");
    // Two origin chunks, then one snapshot chunk.
    dm.write("o", 0, &[0x22; 8192]).unwrap();
    dm.write("s", 64, &[0x33; 4096]).unwrap();
    let cow = dm.p.disk(vd(1));
    let rec = |i: usize| -> (u64, u64) {
        let b = &cow[4096 + 16 * i..];
        (u64::from_le_bytes(b[..8].try_into().unwrap()), u64::from_le_bytes(b[8..16].try_into().unwrap()))
    };
    assert_eq!([rec(0), rec(1), rec(2), rec(3)], [(0, 2), (1, 3), (8, 4), (0, 0)]);
    // The data chunks: the origin's old bytes, then the snapshot's write over the origin's.
    let origin = pattern(N as usize * SECTOR, 1);
    assert_eq!(&cow[2 * 4096..3 * 4096], &origin[..4096]);
    assert_eq!(&cow[3 * 4096..4 * 4096], &origin[4096..8192]);
    assert_eq!(&cow[4 * 4096..5 * 4096], &[0x33; 4096]);
    assert_eq!(dm.info("s"), format!("40/{N} 16"));
}

#[test]
fn a_metadata_area_fills_and_the_next_one_follows_it() {
    // Chunks of 1 sector: 32 records per area; area i at chunk 1 + 33 i.
    let dm = Dm::with_vd(2, 4096);
    dm.p.fill_disk(vd(0), 0, &pattern(4096 * SECTOR, 3));
    dm.create("s", "0 4096 snapshot /dev/vda /dev/vdb P 1").unwrap();
    dm.create("o", "0 4096 snapshot-origin /dev/vda").unwrap();
    for c in 0..70u64 {
        dm.write("o", c, &[0xee; 512]).unwrap();
    }
    // 70 exceptions: areas 0 and 1 full, 6 in area 2 (chunks 1, 34, 67).
    assert_eq!(dm.info("s"), "74/4096 4");
    for c in 0..70u64 {
        assert_eq!(dm.read("s", c, 512).unwrap(), pattern(4096 * SECTOR, 3)[c as usize * 512..][..512]);
    }
    let cow = dm.p.disk(vd(1));
    let rec = |area: usize, i: usize| -> (u64, u64) {
        let b = &cow[(1 + 33 * area) * 512 + 16 * i..];
        (u64::from_le_bytes(b[..8].try_into().unwrap()), u64::from_le_bytes(b[8..16].try_into().unwrap()))
    };
    assert_eq!(rec(0, 0), (0, 2));
    assert_eq!(rec(0, 31), (31, 33));
    assert_eq!(rec(1, 0), (32, 35), "data chunks skip area 1's chunk 34");
    assert_eq!(rec(2, 5), (69, 73));
    assert_eq!(rec(2, 6), (0, 0));
    // The store reloads to the same state.
    dm.remove("o").unwrap();
    dm.remove("s").unwrap();
    dm.create("s2", "0 4096 snapshot /dev/vda /dev/vdb P 0").unwrap();
    assert_eq!(dm.info("s2"), "74/4096 4");
    assert_eq!(dm.table("s2"), "0 4096 snapshot 254:0 254:16 P 1");
    for c in [0u64, 31, 32, 69, 70] {
        assert_eq!(dm.read("s2", c, 512).unwrap(), pattern(4096 * SECTOR, 3)[c as usize * 512..][..512], "chunk {c}");
    }
}

/// lvm2's order when it creates a snapshot of a live LV: the origin's new table is loaded,
/// the origin suspended, the snapshot created and loaded, then both resumed. Writes before
/// the suspend are in the snapshot; writes after the resume are not.
#[test]
fn lvm2_creation_order_takes_the_snapshot_at_the_suspend() {
    let dm = Dm::with_vd(3, 4096);
    // vg-lv is linear over vda; -real is what the origin table points at (here vda itself).
    dm.create("vg-lv", "0 4096 linear /dev/vda 0").unwrap();
    dm.write("vg-lv", 0, &[1; 4096]).unwrap();
    dm.load("vg-lv", "0 4096 snapshot-origin /dev/vda").unwrap();
    dm.write("vg-lv", 8, &[2; 4096]).unwrap(); // still the linear table: before the snapshot
    dm.suspend("vg-lv").unwrap();
    dm.cmd("create", "vg-snap").unwrap();
    dm.load("vg-snap", "0 4096 snapshot /dev/vda /dev/vdb P 8").unwrap();
    dm.resume("vg-snap").unwrap();
    dm.resume("vg-lv").unwrap();
    assert_eq!(dm.table("vg-lv"), "0 4096 snapshot-origin 254:0");
    dm.write("vg-lv", 0, &[9; 8192]).unwrap();
    assert_eq!(dm.read("vg-snap", 0, 4096).unwrap(), vec![1; 4096]);
    assert_eq!(dm.read("vg-snap", 8, 4096).unwrap(), vec![2; 4096]);
    assert_eq!(dm.read("vg-lv", 0, 8192).unwrap(), vec![9; 8192]);
    assert_eq!(dm.info("vg-snap"), "32/4096 16");
}

/// A snapshot table is loaded and resumed again (lvm2 reloads every table of the tree):
/// the new line takes the exceptions over, the old one is gone, nothing is read again.
#[test]
fn reloading_a_snapshot_hands_its_exceptions_over() {
    let dm = snapshot_rig();
    dm.create("s", &format!("0 {N} snapshot /dev/vda /dev/vdb P 8")).unwrap();
    dm.create("o", &format!("0 {N} snapshot-origin /dev/vda")).unwrap();
    dm.write("o", 0, &[5; 4096]).unwrap();
    dm.write("s", 8, &[6; 4096]).unwrap();
    assert_eq!(dm.info("s"), format!("32/{N} 16"));
    // Loaded while the source is live: a resume refuses the handover until it is suspended.
    dm.load("s", &format!("0 {N} snapshot /dev/vda /dev/vdb PO 8")).unwrap();
    dm.suspend("s").unwrap();
    dm.resume("s").unwrap();
    assert_eq!(dm.table("s"), format!("0 {N} snapshot 254:0 254:16 PO 8"));
    assert_eq!(dm.info("s"), format!("32/{N} 16"));
    let origin = pattern(N as usize * SECTOR, 1);
    assert_eq!(dm.read("s", 0, 4096).unwrap(), origin[..4096]);
    assert_eq!(dm.read("s", 8, 4096).unwrap(), vec![6; 4096]);
    // Copy-on-write goes on into the new line's snapshot.
    dm.write("o", 16, &[7; 4096]).unwrap();
    assert_eq!(dm.read("s", 16, 4096).unwrap(), origin[16 * 512..][..4096]);
    assert_eq!(dm.info("s"), format!("40/{N} 16"));
}

/// A second device naming the same COW may take it over only when the first is suspended;
/// after the handover the first reports `Invalid` and fails its I/O.
#[test]
fn handover_to_another_device_needs_the_source_suspended() {
    let dm = snapshot_rig();
    dm.create("s", &format!("0 {N} snapshot /dev/vda /dev/vdb P 8")).unwrap();
    dm.create("o", &format!("0 {N} snapshot-origin /dev/vda")).unwrap();
    dm.write("o", 0, &[5; 4096]).unwrap();
    dm.cmd("create", "t").unwrap();
    dm.load("t", &format!("0 {N} snapshot /dev/vda /dev/vdb P 8")).unwrap();
    let refused = dm.resume("t").unwrap_err();
    assert_eq!(refused.errno, Errno::EINVAL);
    assert!(dm
        .p
        .log_lines()
        .iter()
        .any(|l| l.contains("Unable to perform snapshot handover until source is suspended.")));
    // The refused device stays suspended with its table live; the source still works.
    assert_eq!(dm.info("s"), format!("24/{N} 16"));
    dm.suspend("s").unwrap();
    dm.resume("t").unwrap();
    assert_eq!(dm.info("t"), format!("24/{N} 16"));
    assert_eq!(dm.info("s"), "Invalid");
    assert_eq!(dm.read("t", 0, 4096).unwrap(), pattern(4096, 1));
    dm.resume("s").unwrap();
    assert_eq!(dm.read("s", 0, 512), Err(Errno::EIO));
}

#[test]
fn several_snapshots_each_keep_their_own_point_in_time() {
    let dm = Dm::with_vd(4, 8192);
    dm.p.fill_disk(vd(0), 0, &[1; 8192 * SECTOR]);
    dm.create("a", "0 8192 snapshot /dev/vda /dev/vdb P 8").unwrap();
    dm.create("o", "0 8192 snapshot-origin /dev/vda").unwrap();
    dm.write("o", 0, &[2; 8192]).unwrap();
    dm.suspend("o").unwrap();
    dm.create("b", "0 8192 snapshot /dev/vda /dev/vdc N 16").unwrap();
    dm.resume("o").unwrap();
    dm.write("o", 0, &[3; 16384]).unwrap();
    assert_eq!(dm.read("a", 0, 16384).unwrap(), vec![1; 16384]);
    assert_eq!(dm.read("b", 0, 16384).unwrap(), [vec![2; 8192], vec![1; 8192]].concat());
    assert_eq!(dm.read("o", 0, 16384).unwrap(), vec![3; 16384]);
    // a copied chunks 0..4 (8 sectors each), b its one 16-sector chunk 0 and chunk 1.
    assert_eq!(dm.info("a"), "48/8192 16");
    assert_eq!(dm.info("b"), "32/8192 0");
    assert_eq!(dm.table("b"), "0 8192 snapshot 254:0 254:32 N 16");
}

#[test]
fn a_full_cow_invalidates_p_and_overflows_po() {
    for (kind, after) in [("P", "Invalid"), ("PO", "Overflow")] {
        let dm = Dm::with_vd(2, 4096);
        dm.p.add_disk("/dev/small", DevT::new(7, 0), 48); // header, area, 4 data chunks
        dm.create("s", &format!("0 4096 snapshot /dev/vda /dev/small {kind} 8")).unwrap();
        dm.create("o", "0 4096 snapshot-origin /dev/vda").unwrap();
        for i in 0..4u64 {
            dm.write("s", i * 8, &[4; 4096]).unwrap();
        }
        assert_eq!(dm.info("s"), "48/48 16");
        // A snapshot write that needs a fifth chunk.
        assert_eq!(dm.write("s", 32, &[4; 4096]), Err(Errno::EIO), "{kind}");
        assert_eq!(dm.info("s"), after, "{kind}");
        if kind == "PO" {
            // Reads still work; no write does any more.
            assert_eq!(dm.read("s", 0, 4096).unwrap(), vec![4; 4096]);
            assert_eq!(dm.write("s", 0, &[4; 512]), Err(Errno::EIO));
            assert_eq!(&dm.p.disk(DevT::new(7, 0))[4..8], &[1, 0, 0, 0], "an overflow does not invalidate");
        }
        // The origin keeps working either way; a copy that does not fit invalidates.
        dm.write("o", 64, &[8; 4096]).unwrap();
        assert_eq!(dm.read("o", 64, 4096).unwrap(), vec![8; 4096]);
        assert_eq!(dm.info("s"), "Invalid", "{kind}");
        if kind == "P" {
            assert_eq!(dm.read("s", 0, 4096), Err(Errno::EIO));
            assert_eq!(&dm.p.disk(DevT::new(7, 0))[4..8], &[0, 0, 0, 0], "invalidated on disk");
            assert!(dm
                .p
                .log_lines()
                .iter()
                .any(|l| l.contains("Invalidating snapshot: Unable to allocate exception.")));
            // It stays invalid when loaded again.
            dm.remove("s").unwrap();
            dm.create("s", "0 4096 snapshot /dev/vda /dev/small P 8").unwrap();
            assert_eq!(dm.info("s"), "Invalid");
        }
    }
}

#[test]
fn an_io_error_on_the_cow_invalidates_but_the_origin_write_goes_through() {
    let dm = Dm::with_vd(2, 4096);
    dm.create("s", "0 4096 snapshot /dev/vda /dev/vdb P 8").unwrap();
    dm.create("o", "0 4096 snapshot-origin /dev/vda").unwrap();
    dm.p.add_fault(Fault::range(vd(1), 16, 8, Errno::EIO).only(&[Op::Write]));
    dm.write("o", 0, &[1; 4096]).unwrap();
    assert_eq!(dm.info("s"), "Invalid");
    assert_eq!(dm.read("o", 0, 4096).unwrap(), vec![1; 4096]);
    assert!(dm.p.log_lines().iter().any(|l| l.contains("Invalidating snapshot: Error reading/writing.")));
}

#[test]
fn bad_tables_are_refused_with_linux_s_messages() {
    let dm = Dm::with_vd(3, 4096);
    let cases = [
        ("snapshot /dev/vda /dev/vdb P", "requires 4 or more arguments"),
        ("snapshot /dev/vda /dev/vdb X 8", "Couldn't create exception store"),
        ("snapshot /dev/vda /dev/vdb P 7", "Couldn't create exception store"),
        ("snapshot /dev/vda /dev/vdb P 4194304", "Couldn't create exception store"),
        ("snapshot /dev/vda /dev/vdb PX 8", "Couldn't create exception store"),
        ("snapshot /dev/vda /dev/vda P 8", "COW device cannot be the same as origin device"),
        ("snapshot /dev/nope /dev/vdb P 8", "Cannot get origin device"),
        ("snapshot /dev/vda /dev/nope P 8", "Cannot get COW device"),
        ("snapshot /dev/vda /dev/vdb N 0", "Chunk size not set"),
        ("snapshot /dev/vda /dev/vdb P 8 1 bogus", "Unsupported feature"),
        ("snapshot /dev/vda /dev/vdb P 8 1 discard_passdown_origin", "depends on discard_zeroes_cow"),
        ("snapshot /dev/vda /dev/vdb P 8 2 discard_zeroes_cow", "Invalid number of feature arguments"),
        ("snapshot-merge /dev/vda /dev/vdb N 8", "does not support snapshot-merge."),
        ("snapshot-origin", "origin: incorrect number of arguments"),
        ("snapshot-origin /dev/vda /dev/vdb", "origin: incorrect number of arguments"),
    ];
    for (params, message) in cases {
        let e = dm.create("bad", &format!("0 4096 {params}")).unwrap_err();
        let errno = if params.contains("nope") { Errno::ENOENT } else { Errno::EINVAL };
        assert_eq!(e.errno, errno, "{params}: {e:?}");
        assert!(e.detail.contains(message), "{params}: {:?}", e.detail);
    }
    // A snapshot longer than its origin.
    let e = dm.create("bad", "0 8192 snapshot /dev/vda /dev/vdb P 8").unwrap_err();
    assert_eq!(e.errno, Errno::EINVAL);
    // A COW with a foreign first word.
    dm.p.fill_disk(vd(2), 0, b"garbage!");
    let e = dm.create("bad", "0 4096 snapshot /dev/vda /dev/vdc P 8").unwrap_err();
    assert!(e.detail.contains("Failed to read snapshot metadata"), "{e:?}");
    assert!(dm.p.log_lines().iter().any(|l| l.contains("Invalid or corrupt snapshot")));
    // Nothing stays open.
    for i in 0..3 {
        assert_eq!(dm.p.opens(vd(i)), 0);
    }
}

#[test]
fn table_features_and_discards() {
    let dm = Dm::with_vd(2, 4096);
    dm.p.fill_disk(vd(0), 0, &[1; 4096 * SECTOR]);
    dm.create("s", "0 4096 snapshot /dev/vda /dev/vdb P 8 2 discard_zeroes_cow discard_passdown_origin").unwrap();
    assert_eq!(dm.table("s"), "0 4096 snapshot 254:0 254:16 P 8 2 discard_zeroes_cow discard_passdown_origin");
    dm.write("s", 0, &[2; 8192]).unwrap();
    // A whole copied chunk reads as zeroes after a discard; the origin got it too.
    dm.io("s", Op::Discard, 0, 4096, None).unwrap();
    assert_eq!(dm.read("s", 0, 4096).unwrap(), vec![0; 4096]);
    assert_eq!(dm.read("s", 8, 4096).unwrap(), vec![2; 4096]);
    assert!(dm.p.disk(vd(0))[..4096].iter().all(|&b| b == 0), "passed down to the origin");
    // Without the feature a snapshot refuses discards.
    let dm = Dm::with_vd(3, 4096);
    dm.create("t", "0 4096 snapshot /dev/vda /dev/vdc N 8").unwrap();
    assert_eq!(dm.io("t", Op::Discard, 0, 4096, None), Err(Errno::EOPNOTSUPP));
    assert_eq!(
        dm.lines("t", false, false),
        vec!["0 4096 snapshot 0/4096 0".to_string()],
        "INFO of a fresh transient snapshot"
    );
}

/// lvextend of an origin with a snapshot: the origin's table grows, the snapshot keeps its
/// size, and writes past the snapshot's end copy nothing (Linux's `__origin_write` rule).
#[test]
fn an_origin_grows_under_a_snapshot() {
    let dm = Dm::with_vd(2, 8192);
    dm.p.fill_disk(vd(0), 0, &[1; 8192 * SECTOR]);
    dm.create("s", "0 4096 snapshot /dev/vda /dev/vdb P 8").unwrap();
    dm.create("o", "0 4096 snapshot-origin /dev/vda").unwrap();
    dm.write("o", 4088, &[2; 4096]).unwrap();
    assert_eq!(dm.info("s"), "24/8192 16", "chunk 511 copied");
    dm.suspend("o").unwrap();
    dm.load("o", "0 8192 snapshot-origin /dev/vda").unwrap();
    dm.resume("o").unwrap();
    dm.write("o", 4088, &[3; 8192]).unwrap();
    dm.write("o", 6000, &[3; 4096]).unwrap();
    assert_eq!(dm.info("s"), "24/8192 16", "nothing past the snapshot's end is copied");
    assert_eq!(dm.read("s", 4088, 4096).unwrap(), vec![1; 4096]);
    assert_eq!(dm.read("o", 4088, 8192).unwrap(), vec![3; 8192]);
    // A snapshot may not be longer than its origin device.
    assert_eq!(dm.create("t", "0 8200 snapshot /dev/vda /dev/vdb P 8").unwrap_err().errno, Errno::EINVAL);
}

#[test]
fn merge_puts_the_snapshot_back_and_the_origin_stays_usable() {
    let dm = snapshot_rig();
    dm.create("s", &format!("0 {N} snapshot /dev/vda /dev/vdb P 8")).unwrap();
    dm.create("base", &format!("0 {N} snapshot-origin /dev/vda")).unwrap();
    // A second snapshot, which must keep its own view through the merge.
    dm.suspend("base").unwrap();
    dm.create("keep", &format!("0 {N} snapshot /dev/vda /dev/vdc P 16")).unwrap();
    dm.resume("base").unwrap();
    let origin = pattern(N as usize * SECTOR, 1);
    for c in [0u64, 1, 2, 3, 10, 11, 40] {
        dm.write("base", c * 8, &[0xaa; 4096]).unwrap();
    }
    dm.write("s", 80, &[0x55; 4096]).unwrap();
    let mut want = origin.clone();
    want[80 * 512..][..4096].fill(0x55);
    let keep_before = dm.read("keep", 0, 1 << 20).unwrap();

    // lvm2's merge: the origin's table becomes snapshot-merge of the snapshot's COW, taken
    // over from the snapshot device, which is suspended and then removed.
    dm.load("base", &format!("0 {N} snapshot-merge /dev/vda /dev/vdb P 8")).unwrap();
    dm.suspend("base").unwrap();
    dm.suspend("s").unwrap();
    assert_eq!(dm.cmd("resume", "base"), Ok(()));
    dm.remove("s").unwrap();
    // Before the worker runs, the merge device already shows the snapshot's view.
    assert_eq!(dm.read("base", 0, 1 << 20).unwrap(), want[..1 << 20]);
    dm.settle();
    assert_eq!(dm.info("base"), format!("16/{N} 16"));
    assert_eq!(dm.table("base"), format!("0 {N} snapshot-merge 254:0 254:16 P 8"));
    assert_eq!(&dm.p.disk(vd(0))[..1 << 20], &want[..1 << 20], "the origin holds the snapshot's view");
    assert_eq!(dm.read("keep", 0, 1 << 20).unwrap(), keep_before, "the other snapshot did not change");
    // The merged origin is writable and still copies into the other snapshot.
    dm.write("base", 200 * 8, &[0xcc; 4096]).unwrap();
    assert_eq!(dm.read("keep", 200 * 8, 4096).unwrap(), origin[200 * 4096..][..4096]);
}

#[test]
fn merge_stops_at_suspend_and_resumes() {
    let dm = snapshot_rig();
    dm.create("s", &format!("0 {N} snapshot /dev/vda /dev/vdb P 8")).unwrap();
    dm.create("base", &format!("0 {N} snapshot-origin /dev/vda")).unwrap();
    for c in 0..300u64 {
        dm.write("base", c * 8, &[0xaa; 4096]).unwrap();
    }
    dm.remove("s").unwrap();
    dm.suspend("base").unwrap();
    dm.load("base", &format!("0 {N} snapshot-merge /dev/vda /dev/vdb P 8")).unwrap();
    // Resume without running the worker, then suspend: no step runs after the suspend.
    dm.cmd("resume", "base").unwrap();
    dm.suspend("base").unwrap();
    let info = dm.info("base");
    assert_ne!(info, format!("16/{N} 16"), "stopped before the end");
    dm.resume("base").unwrap();
    assert_eq!(dm.info("base"), format!("16/{N} 16"));
    let origin = pattern(N as usize * SECTOR, 1);
    assert_eq!(&dm.p.disk(vd(0))[..300 * 4096], &origin[..300 * 4096]);
}

#[test]
fn suspend_waits_for_queued_copies_and_tables_close_their_devices() {
    let dm = Dm::with_vd(2, 4096);
    dm.create("s", "0 4096 snapshot /dev/vda /dev/vdb P 8").unwrap();
    dm.create("o", "0 4096 snapshot-origin /dev/vda").unwrap();
    let minor = dm.minor("o");
    let (io, req) = dm.p.request(minor, Op::Write, 0, 4096, Some(&[1; 4096]));
    dm.core.submit(minor, io.clone(), req);
    assert_eq!(io.result(), None, "held for the copy");
    dm.suspend("o").unwrap();
    assert_eq!(io.result(), Some(Ok(())), "the suspend waited for it");
    dm.resume("o").unwrap();
    dm.remove("o").unwrap();
    dm.remove("s").unwrap();
    assert_eq!((dm.p.opens(vd(0)), dm.p.opens(vd(1))), (0, 0));
}

/// A snapshot read in flight to the origin holds back an origin write to its chunk.
#[test]
fn an_origin_write_waits_for_snapshot_reads_of_its_chunk() {
    let dm = Dm::with_vd(2, 4096);
    dm.p.fill_disk(vd(0), 0, &[1; 4096 * SECTOR]);
    dm.create("s", "0 4096 snapshot /dev/vda /dev/vdb P 8").unwrap();
    dm.create("o", "0 4096 snapshot-origin /dev/vda").unwrap();
    let (s, o) = (dm.minor("s"), dm.minor("o"));
    dm.p.hold(true);
    let (read, req) = dm.p.request(s, Op::Read, 0, 4096, None);
    dm.core.submit(s, read.clone(), req);
    let (write, req) = dm.p.request(o, Op::Write, 0, 4096, Some(&[2; 4096]));
    dm.core.submit(o, write.clone(), req);
    // Run the worker (it copies and commits) but not the held read.
    let _ = dmcore::Platform::wait(&dm.p, &mut || false, false);
    assert_eq!(dm.p.queued(), 1, "only the read is queued; the write waits for it");
    // The chunk is copied now, but a second write to it must wait for the read all the same.
    let (second, req) = dm.p.request(o, Op::Write, 4, 512, Some(&[3; 512]));
    dm.core.submit(o, second.clone(), req);
    let _ = dmcore::Platform::wait(&dm.p, &mut || false, false);
    assert_eq!(dm.p.queued(), 1, "the second write waits too");
    dm.p.run_one();
    let _ = dmcore::Platform::wait(&dm.p, &mut || false, false);
    assert_eq!(read.result(), Some(Ok(())));
    assert_eq!(read.data(), vec![1; 4096]);
    dm.p.run();
    assert_eq!((write.result(), second.result()), (Some(Ok(())), Some(Ok(()))));
    dm.p.hold(false);
    assert_eq!(dm.read("s", 0, 4096).unwrap(), vec![1; 4096]);
    let mut origin = vec![2; 4096];
    origin[2048..2560].fill(3);
    assert_eq!(dm.read("o", 0, 4096).unwrap(), origin);
}
