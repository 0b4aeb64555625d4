//! End to end: LVM-style snapshots in dmhost, driven with dmctl's dmsetup front-end
//! (`dmctl setup ...`, the same code as the binary, over dmhost's control socket) and read and
//! written through NBD; every check is on bytes, through NBD and in the image files.
//!
//! The sequences are lvm2's: `lvcreate -s` (the COW LV is wiped, `-real` and `-cow` devices
//! appear, the origin gets `snapshot-origin`, the origin is suspended while the snapshot is
//! loaded and resumed, then the origin resumes), a refresh that reloads both tables (the
//! snapshot's exceptions are handed over), and `lvconvert --merge` (the origin's table becomes
//! `snapshot-merge`, the snapshot device goes away, the merge runs to its end, and the origin
//! returns to a plain linear table over the physical volume).

mod common;

use std::time::Duration;

use common::*;

const KIB: usize = 1024;
/// The origin LV: 4 MiB at the start of the first image.
const LV_SECTORS: u64 = 8192;
/// The COW LV: 1 MiB at the start of the second image.
const COW_SECTORS: u64 = 2048;

/// Runs `dmctl setup ARGS...` against the host; returns (status, stdout, stderr).
fn dmctl(host: &Host, args: &[&str]) -> (i32, String, String) {
    let transport = dmclient::SocketTransport::connect(&host.control).unwrap();
    let mut argv = vec!["dmctl".to_string(), "setup".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = dmctl::run(&argv, &transport, &mut std::io::empty(), &mut out, &mut err);
    (status, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

/// `dmctl setup ARGS...`, which must succeed; returns its stdout.
fn ok(host: &Host, args: &[&str]) -> String {
    let (status, out, err) = dmctl(host, args);
    assert_eq!(status, 0, "dmctl setup {}: {err}\n{}", args.join(" "), host.log());
    out
}

fn status_of(host: &Host, name: &str) -> String {
    ok(host, &["status", name]).trim_end_matches('\n').to_string()
}

/// `<allocated>/<total> <metadata>` of a snapshot's INFO line.
fn usage(host: &Host, name: &str) -> (u64, u64, u64) {
    let line = status_of(host, name);
    let info = line.splitn(4, ' ').nth(3).unwrap_or_default().to_string();
    let (a, rest) = info.split_once('/').unwrap_or_else(|| panic!("{name}: {line}"));
    let (t, m) = rest.split_once(' ').unwrap();
    (a.parse().unwrap(), t.parse().unwrap(), m.parse().unwrap())
}

/// Removes a device, waiting for NBD clients that are going away to let go of it.
fn remove(host: &Host, name: &str) {
    let gone = eventually(Duration::from_secs(10), || dmctl(host, &["remove", name]).0 == 0);
    assert!(gone, "remove {name} kept failing\n{}", host.log());
}

fn minor(host: &Host, name: &str) -> u32 {
    let info = ok(host, &["info", name]);
    let line = info.lines().find(|l| l.starts_with("Major, minor:")).unwrap();
    line.rsplit(' ').next().unwrap().trim().parse().unwrap()
}

#[test]
fn lvm2_snapshot_create_refresh_and_merge_through_dmctl_and_nbd() {
    let host = Host::start(&[8 * MIB, 8 * MIB], &[]);
    let lv_bytes = LV_SECTORS as usize * 512;

    // The origin LV, in use: data written through NBD.
    ok(&host, &["create", "vg-lv", "--table", &format!("0 {LV_SECTORS} linear 254:0 0")]);
    let before = pattern(11, lv_bytes);
    {
        let mut lv = host.nbd("vg-lv");
        for (i, piece) in before.chunks(256 * KIB).enumerate() {
            assert_eq!(lv.write((i * 256 * KIB) as u64, piece), 0);
        }
        assert_eq!(lv.simple(CMD_FLUSH, 0, 0), 0);
        lv.disconnect();
    }
    // Stale bytes where the COW LV is going to be.
    write_image(host.image(1), 0, &pattern(12, COW_SECTORS as usize * 512));

    // lvcreate -s: the new LV is activated alone and its start wiped, then deactivated.
    ok(&host, &["create", "vg-snap", "--table", &format!("0 {COW_SECTORS} linear 254:16 0")]);
    {
        let mut cow = host.nbd("vg-snap");
        assert_eq!(cow.write(0, &[0; 4 * KIB]), 0);
        assert_eq!(cow.simple(CMD_FLUSH, 0, 0), 0);
        cow.disconnect();
    }
    remove(&host, "vg-snap");
    // The snapshot tree: -real and -cow, the origin's new table, the snapshot.
    ok(&host, &["create", "vg-lv-real", "--table", &format!("0 {LV_SECTORS} linear 254:0 0")]);
    ok(&host, &["create", "vg-snap-cow", "--table", &format!("0 {COW_SECTORS} linear 254:16 0")]);
    ok(&host, &["load", "vg-lv", "--table", &format!("0 {LV_SECTORS} snapshot-origin /dev/mapper/vg-lv-real")]);
    ok(&host, &["suspend", "vg-lv"]);
    ok(&host, &["create", "vg-snap", "--notable"]);
    ok(
        &host,
        &[
            "load",
            "vg-snap",
            "--table",
            &format!("0 {LV_SECTORS} snapshot /dev/mapper/vg-lv-real /dev/mapper/vg-snap-cow P 8"),
        ],
    );
    ok(&host, &["resume", "vg-snap"]);
    ok(&host, &["resume", "vg-lv"]);

    let (real, cow) = (minor(&host, "vg-lv-real"), minor(&host, "vg-snap-cow"));
    assert_eq!(ok(&host, &["table", "vg-lv"]), format!("0 {LV_SECTORS} snapshot-origin 169:{real}\n"));
    assert_eq!(ok(&host, &["table", "vg-snap"]), format!("0 {LV_SECTORS} snapshot 169:{real} 169:{cow} P 8\n"));
    assert_eq!(status_of(&host, "vg-snap"), format!("0 {LV_SECTORS} snapshot 16/{COW_SECTORS} 16"));
    assert_eq!(status_of(&host, "vg-lv"), format!("0 {LV_SECTORS} snapshot-origin "));
    // The header on the COW's image, Linux's bytes.
    assert_eq!(read_image(host.image(1), 0, 16), [0x53, 0x6e, 0x41, 0x70, 1, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0]);

    // I/O: origin writes (first writes and rewrites), snapshot reads and writes.
    let mut lv = host.nbd("vg-lv");
    let mut snap = host.nbd("vg-snap");
    let mut origin_now = before.clone();
    let mut snap_view = before.clone();
    for (offset, len, seed) in
        [(0usize, 64 * KIB, 1u8), (100 * KIB, 12 * KIB, 2), (0, 8 * KIB, 3), (3 * MIB as usize, 128 * KIB, 4)]
    {
        let data = pattern(seed, len);
        assert_eq!(lv.write(offset as u64, &data), 0);
        origin_now[offset..offset + len].copy_from_slice(&data);
    }
    let snap_write = pattern(5, 20 * KIB);
    assert_eq!(snap.write(2 * MIB, &snap_write), 0);
    snap_view[2 * MIB as usize..][..snap_write.len()].copy_from_slice(&snap_write);
    assert_eq!(snap.simple(CMD_FLUSH, 0, 0), 0);
    assert_eq!(lv.simple(CMD_FLUSH, 0, 0), 0);
    assert!(snap.read(0, lv_bytes as u32).unwrap() == snap_view, "the snapshot shows the origin as it was");
    assert!(lv.read(0, lv_bytes as u32).unwrap() == origin_now);
    assert!(read_image(host.image(0), 0, lv_bytes) == origin_now);
    // Chunks of 4 KiB: 16 + 3 + 32 origin chunks copied, 5 chunks written in the snapshot.
    let (allocated, total, metadata) = usage(&host, "vg-snap");
    assert_eq!((allocated, total, metadata), ((2 + 16 + 3 + 32 + 5) * 8, COW_SECTORS, 16));
    snap.disconnect();
    lv.disconnect();

    // A refresh, as lvm2 does it: both tables reloaded under suspend; the snapshot's
    // exceptions are handed over to its new table.
    ok(&host, &["suspend", "vg-lv"]);
    ok(&host, &["suspend", "vg-snap"]);
    ok(
        &host,
        &[
            "load",
            "vg-snap",
            "--table",
            &format!("0 {LV_SECTORS} snapshot /dev/mapper/vg-lv-real /dev/mapper/vg-snap-cow P 8"),
        ],
    );
    ok(&host, &["load", "vg-lv", "--table", &format!("0 {LV_SECTORS} snapshot-origin /dev/mapper/vg-lv-real")]);
    ok(&host, &["resume", "vg-snap"]);
    ok(&host, &["resume", "vg-lv"]);
    assert_eq!(usage(&host, "vg-snap"), (allocated, total, metadata));
    let mut lv = host.nbd("vg-lv");
    let more = pattern(6, 32 * KIB);
    assert_eq!(lv.write(MIB, &more), 0);
    origin_now[MIB as usize..][..more.len()].copy_from_slice(&more);
    let mut snap = host.nbd("vg-snap");
    assert!(snap.read(0, lv_bytes as u32).unwrap() == snap_view, "the view survived the refresh");
    assert_eq!(usage(&host, "vg-snap").0, allocated + 8 * 8);
    snap.disconnect();
    lv.disconnect();

    // lvconvert --merge.
    ok(
        &host,
        &[
            "load",
            "vg-lv",
            "--table",
            &format!("0 {LV_SECTORS} snapshot-merge /dev/mapper/vg-lv-real /dev/mapper/vg-snap-cow P 8"),
        ],
    );
    ok(&host, &["suspend", "vg-lv"]);
    ok(&host, &["suspend", "vg-snap"]);
    ok(&host, &["resume", "vg-lv"]);
    remove(&host, "vg-snap");
    assert_eq!(ok(&host, &["table", "vg-lv"]), format!("0 {LV_SECTORS} snapshot-merge 169:{real} 169:{cow} P 8\n"));
    // The origin shows the snapshot's view while the merge runs, and takes writes.
    let mut lv = host.nbd("vg-lv");
    assert!(lv.read(0, lv_bytes as u32).unwrap() == snap_view);
    let during = pattern(7, 8 * KIB);
    assert_eq!(lv.write(7 * 512 * 8, &during), 0);
    snap_view[7 * 4096..][..during.len()].copy_from_slice(&during);
    let merged = eventually(Duration::from_secs(30), || {
        let (a, _, m) = usage(&host, "vg-lv");
        a == m
    });
    assert!(merged, "the merge did not finish: {}\n{}", status_of(&host, "vg-lv"), host.log());
    assert_eq!(status_of(&host, "vg-lv"), format!("0 {LV_SECTORS} snapshot-merge 16/{COW_SECTORS} 16"));
    assert!(lv.read(0, lv_bytes as u32).unwrap() == snap_view);
    lv.disconnect();
    // lvm2 ends the merge: the origin goes back to a linear table over the PV.
    ok(&host, &["suspend", "vg-lv"]);
    ok(&host, &["load", "vg-lv", "--table", &format!("0 {LV_SECTORS} linear 254:0 0")]);
    ok(&host, &["resume", "vg-lv"]);
    remove(&host, "vg-lv-real");
    remove(&host, "vg-snap-cow");
    assert!(read_image(host.image(0), 0, lv_bytes) == snap_view, "the image holds the snapshot's view");
    let mut lv = host.nbd("vg-lv");
    assert!(lv.read(0, lv_bytes as u32).unwrap() == snap_view);
    lv.disconnect();
    assert_eq!(ok(&host, &["ls"]).lines().count(), 1);
}

/// Linux's golden sequence, as far as a single host shows it: fresh INFO lines, a transient
/// snapshot, and a COW that fills up (the snapshot turns `Invalid` and fails reads, the
/// origin goes on).
#[test]
fn status_lines_and_an_overflowing_snapshot() {
    let host = Host::start(&[4 * MIB, 4 * MIB, 4 * MIB], &[]);
    ok(&host, &["create", "snapP", "--table", "0 8192 snapshot 254:0 254:16 P 8"]);
    ok(&host, &["create", "snapN", "--table", "0 8192 snapshot 254:0 254:32 N 8"]);
    ok(&host, &["create", "cowS", "--table", "0 64 linear 254:32 4096"]);
    ok(&host, &["create", "snapS", "--table", "0 8192 snapshot 254:0 /dev/mapper/cowS P 8"]);
    ok(&host, &["create", "base", "--table", "0 8192 snapshot-origin 254:0"]);
    let cows = minor(&host, "cowS");
    assert_eq!(
        ok(&host, &["table"]),
        format!(
            "base: 0 8192 snapshot-origin 254:0\ncowS: 0 64 linear 254:32 4096\nsnapN: 0 8192 snapshot 254:0 254:32 N 8\nsnapP: 0 8192 snapshot 254:0 254:16 P 8\nsnapS: 0 8192 snapshot 254:0 169:{cows} P 8\n"
        )
    );
    assert_eq!(
        ok(&host, &["status"]),
        "base: 0 8192 snapshot-origin \ncowS: 0 64 linear \nsnapN: 0 8192 snapshot 0/8192 0\nsnapP: 0 8192 snapshot 16/8192 16\nsnapS: 0 8192 snapshot 16/64 16\n"
    );
    let mut base = host.nbd("base");
    assert_eq!(base.write(0, &[0x22; 8 * KIB]), 0);
    assert_eq!(status_of(&host, "snapS"), "0 8192 snapshot 32/64 16");
    assert_eq!(status_of(&host, "snapN"), "0 8192 snapshot 16/8192 0");
    for i in 2..18u64 {
        assert_eq!(base.write(i * 4096, &[0; 4 * KIB]), 0);
    }
    assert_eq!(status_of(&host, "snapS"), "0 8192 snapshot Invalid");
    assert_eq!(status_of(&host, "snapP"), "0 8192 snapshot 160/8192 16");
    let mut s = host.nbd("snapS");
    assert_eq!(s.read(0, 4096), Err(5), "EIO from an invalid snapshot");
    assert!(host.log().contains("Invalidating snapshot: Unable to allocate exception."));
    let mut p = host.nbd("snapP");
    assert_eq!(p.read(0, 4096).unwrap(), vec![0; 4096], "the origin was zeroes when snapP was taken");
    s.disconnect();
    p.disconnect();
    base.disconnect();
}
