//! Both-way compatibility with Linux's own dm-snapshot (Linux 6.1 in QEMU, through
//! ../shared/linux-dm-oracle):
//!
//! * a COW device written here is loaded by Linux: same TABLE and INFO lines, same bytes in
//!   the snapshot, and Linux's snapshot-merge puts exactly those bytes into the origin;
//! * a COW device Linux wrote (two metadata areas' worth of exceptions) is loaded here: same
//!   lines, same bytes, and it keeps working here (more copy-on-write, then a merge);
//! * Linux's `06-snapshot` job, run live, replays step by step against this core.
//!
//! Opt-in: `DM_ORACLE=1` (each VM run takes 10 to 60 s). `ORACLE_WORK` names the oracle's
//! build directory (default `target/linux-dm-oracle` next to the workspace); it is built there
//! first if needed (about 92 MB of Debian packages are downloaded once). Without QEMU, or when
//! the oracle cannot be built, the tests say why and pass.

#[path = "snapshot_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

fn oracle_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/linux-dm-oracle"))
}

/// The oracle's work directory when the oracle can run here, or why not.
fn oracle() -> Result<PathBuf, String> {
    if std::env::var("DM_ORACLE").as_deref() != Ok("1") {
        return Err("set DM_ORACLE=1 to compare with Linux's dm in QEMU".into());
    }
    let qemu = std::env::var("ORACLE_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into());
    if Command::new(&qemu).arg("--version").output().is_err() {
        return Err(format!("{qemu} is not installed (Debian: apt-get install qemu-system-x86)"));
    }
    let work = std::env::var_os("ORACLE_WORK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/linux-dm-oracle")));
    if !work.join("out/vmlinux").exists() {
        let out = Command::new(oracle_dir().join("build.sh"))
            .env("ORACLE_WORK", &work)
            .output()
            .map_err(|e| format!("cannot run build.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!("the oracle did not build: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    Ok(work)
}

macro_rules! oracle_or_skip {
    () => {
        match oracle() {
            Ok(work) => work,
            Err(why) => {
                println!("SKIPPED: {why}");
                return;
            }
        }
    };
}

/// Runs `script` in the VM with `images` as vda, vdb, ...; returns its stdout. The images are
/// changed in place; what the job writes under /out lands in `out`.
fn run_vm(work: &Path, script: &str, images: &[&Path], out: &Path) -> String {
    let job = out.join("job.sh");
    std::fs::write(&job, script).unwrap();
    let mut cmd = Command::new(oracle_dir().join("run-vm.sh"));
    cmd.env("ORACLE_WORK", work).arg("-t").arg("240").arg("-o").arg(out.join("out")).arg(&job);
    cmd.args(images);
    let result = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(
        result.status.success(),
        "the VM job failed ({}):\n{stdout}\n{}",
        result.status,
        String::from_utf8_lossy(&result.stderr)
    );
    stdout
}

/// The output lines that follow `marker` up to the next marker.
fn section<'a>(stdout: &'a str, marker: &str) -> Vec<&'a str> {
    let mut lines = stdout.lines().skip_while(|l| *l != marker);
    lines.next();
    lines.take_while(|l| !l.starts_with("@@")).collect()
}

const SECTORS: u64 = 32768;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed).wrapping_add((i >> 9) as u8)).collect()
}

/// A directory removed again at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> Scratch {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dm-snapshot-oracle-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

#[test]
fn linux_loads_a_cow_written_here() {
    let work = oracle_or_skip!();
    let dm = Dm::with_vd(2, SECTORS);
    dm.p.fill_disk(vd(0), 0, &pattern(SECTORS as usize * SECTOR, 1));
    dm.create("snap", &format!("0 {SECTORS} snapshot /dev/vda /dev/vdb P 8")).unwrap();
    dm.create("base", &format!("0 {SECTORS} snapshot-origin /dev/vda")).unwrap();
    // 300 origin chunks (two metadata areas), snapshot writes into copied and new chunks.
    for c in 0..300u64 {
        dm.write("base", c * 16, &[0xaa; 4096]).unwrap();
    }
    dm.write("snap", 3, &[0x55; 1024]).unwrap();
    dm.write("snap", 5000, &[0x66; 8192]).unwrap();
    dm.write("base", 5000, &[0x77; 4096]).unwrap();
    dm.flush("snap").unwrap();
    dm.flush("base").unwrap();
    let table = dm.table("snap");
    let status = dm.status("snap");
    let view = dm.read("snap", 0, SECTORS as usize * SECTOR).unwrap();

    let dir = scratch();
    let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
    std::fs::write(&a, dm.p.disk(vd(0))).unwrap();
    std::fs::write(&b, dm.p.disk(vd(1))).unwrap();
    let script = format!(
        r#"#!/bin/bash
set -e
dmsetup create snap --table "0 {SECTORS} snapshot /dev/vda /dev/vdb P 8"
echo @@table; dmsetup table snap
echo @@status; dmsetup status snap
dd if=/dev/mapper/snap of=/out/snap.img bs=1M iflag=direct status=none
dmsetup remove snap
dmsetup create base --table "0 {SECTORS} snapshot-merge /dev/vda /dev/vdb P 8"
for i in $(seq 1 300); do s=$(dmsetup status base); set -- $s; a=${{4%/*}}; [ "$a" = "$5" ] && break; sleep 0.2; done
echo @@merged; dmsetup status base
dmsetup remove base
echo @@end
"#
    );
    let stdout = run_vm(&work, &script, &[&a, &b], dir.path());
    assert_eq!(section(&stdout, "@@table"), vec![table.as_str()], "{stdout}");
    assert_eq!(section(&stdout, "@@status"), vec![status.as_str()], "{stdout}");
    let linux_view = std::fs::read(dir.path().join("out/snap.img")).unwrap();
    assert!(linux_view == view, "Linux reads other bytes from the snapshot");
    // Linux merged the snapshot into the origin: the origin is now the snapshot's view.
    assert!(std::fs::read(&a).unwrap() == view, "Linux's merge left other bytes in the origin");
    let merged = section(&stdout, "@@merged");
    assert_eq!(merged, vec![format!("0 {SECTORS} snapshot-merge 16/{SECTORS} 16").as_str()]);
    // Linux's merged COW loads here as an empty store.
    let back = Dm::with_vd(2, SECTORS);
    back.p.fill_disk(vd(0), 0, &std::fs::read(&a).unwrap());
    back.p.fill_disk(vd(1), 0, &std::fs::read(&b).unwrap());
    back.create("base", &format!("0 {SECTORS} snapshot-merge /dev/vda /dev/vdb P 8")).unwrap();
    assert_eq!(back.status("base"), merged[0]);
    println!("here -> Linux: TABLE {table:?}, INFO {status:?}, {} bytes and Linux's merge identical", view.len());
}

#[test]
fn a_cow_written_by_linux_loads_here() {
    let work = oracle_or_skip!();
    let dir = scratch();
    let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
    let origin = pattern(SECTORS as usize * SECTOR, 9);
    std::fs::write(&a, &origin).unwrap();
    std::fs::write(&b, vec![0u8; SECTORS as usize * SECTOR]).unwrap();
    let script = format!(
        r#"#!/bin/bash
set -e
dmsetup create snap --table "0 {SECTORS} snapshot /dev/vda /dev/vdb P 8"
dmsetup create base --table "0 {SECTORS} snapshot-origin /dev/vda"
for i in $(seq 0 299); do
  dd if=/dev/urandom of=/dev/mapper/base bs=4096 seek=$((i * 2)) count=1 oflag=direct status=none
done
printf '\x5a%.0s' $(seq 1 1024) | dd of=/dev/mapper/snap bs=512 seek=3 count=2 oflag=direct status=none
printf '\x6b%.0s' $(seq 1 8192) | dd of=/dev/mapper/snap bs=4096 seek=700 count=2 oflag=direct status=none
sync
echo @@table; dmsetup table snap
echo @@status; dmsetup status snap
dd if=/dev/mapper/snap of=/out/snap.img bs=1M iflag=direct status=none
dd if=/dev/mapper/base of=/out/base.img bs=1M iflag=direct status=none
dmsetup remove base
dmsetup remove snap
echo @@end
"#
    );
    let stdout = run_vm(&work, &script, &[&a, &b], dir.path());
    let linux_table = section(&stdout, "@@table");
    let linux_status = section(&stdout, "@@status");
    let linux_view = std::fs::read(dir.path().join("out/snap.img")).unwrap();
    let linux_origin = std::fs::read(dir.path().join("out/base.img")).unwrap();
    assert!(linux_view.len() == origin.len() && linux_view != origin, "the snapshot has Linux's writes");

    let dm = Dm::with_vd(2, SECTORS);
    dm.p.fill_disk(vd(0), 0, &std::fs::read(&a).unwrap());
    dm.p.fill_disk(vd(1), 0, &std::fs::read(&b).unwrap());
    dm.create("snap", &format!("0 {SECTORS} snapshot /dev/vda /dev/vdb P 8")).unwrap();
    dm.create("base", &format!("0 {SECTORS} snapshot-origin /dev/vda")).unwrap();
    assert_eq!(vec![dm.table("snap")], linux_table, "{stdout}");
    assert_eq!(vec![dm.status("snap")], linux_status, "{stdout}");
    let view = dm.read("snap", 0, SECTORS as usize * SECTOR).unwrap();
    assert!(view == linux_view, "the snapshot reads other bytes here than in Linux");
    assert!(dm.read("base", 0, SECTORS as usize * SECTOR).unwrap() == linux_origin);
    // It keeps working here: more copy-on-write, then a merge.
    dm.write("base", 20000, &[0x99; 65536]).unwrap();
    assert!(dm.read("snap", 0, SECTORS as usize * SECTOR).unwrap() == view);
    dm.remove("base").unwrap();
    dm.suspend("snap").unwrap();
    dm.cmd("create", "base").unwrap();
    dm.load("base", &format!("0 {SECTORS} snapshot-merge /dev/vda /dev/vdb P 8")).unwrap();
    dm.resume("base").unwrap();
    dm.remove("snap").unwrap();
    dm.settle();
    assert_eq!(dm.info("base"), format!("16/{SECTORS} 16"));
    assert!(dm.p.disk(vd(0)) == view, "the merge here put other bytes into the origin");
    println!("Linux -> here: TABLE {linux_table:?}, INFO {linux_status:?}, {} bytes identical", view.len());
}

#[test]
fn linux_06_snapshot_job_live_replays_here() {
    let work = oracle_or_skip!();
    let dir = scratch();
    let jobs = oracle_dir().join("golden/jobs");
    let mut images = Vec::new();
    for name in ["vda", "vdb", "vdc", "vdd"] {
        let p = dir.path().join(format!("{name}.img"));
        std::fs::File::create(&p).unwrap().set_len(64 << 20).unwrap();
        images.push(p);
    }
    let out = Command::new(oracle_dir().join("run-vm.sh"))
        .env("ORACLE_WORK", &work)
        .args(["-t", "300", "-f"])
        .arg(jobs.join("lib.sh"))
        .arg(jobs.join("06-snapshot.sh"))
        .args(&images)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let live = String::from_utf8_lossy(&out.stdout);
    let compared = replay_06(&live);
    assert!(compared >= 25, "only {compared} outputs compared");
    println!("06-snapshot live in Linux 6.1: {compared} outputs equal here");
}
