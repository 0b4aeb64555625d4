//! Interoperability with a real NBD client: qemu-io, qemu-img and qemu-nbd
//! from Debian's qemu-utils. Each test prints why it is skipped and passes
//! when its tool is not installed.

mod common;

use std::path::Path;
use std::process::{Command as Process, Output};

use common::*;
use dm_nbd::{Command, Server};

/// The tool's path, or `None` (after saying so) when it is not installed.
fn tool(name: &str) -> Option<String> {
    match Process::new("which").arg(name).output() {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        Ok(_) => {
            eprintln!("SKIPPED: {name} is not installed (Debian package qemu-utils)");
            None
        }
        Err(e) => {
            eprintln!("SKIPPED: cannot look for {name} with `which`: {e}");
            None
        }
    }
}

fn run(program: &str, args: &[&str]) -> (Output, String) {
    let out = Process::new(program).args(args).output().expect("run tool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out, text)
}

fn unix_url(socket: &Path, export: &str) -> String {
    format!("nbd+unix:///{export}?socket={}", socket.display())
}

const DISK: usize = 4 << 20;

fn fixture() -> (Running, std::sync::Arc<RamExport>, std::sync::Arc<RamExport>) {
    let disk = RamExport::new(DISK, false, Mode::Immediate);
    let ro = RamExport::new(64 << 10, true, Mode::Immediate);
    let exports = RamExports::new(vec![("disk", disk.clone()), ("ro", ro.clone())], Some("disk"));
    (start(exports), disk, ro)
}

#[test]
fn qemu_io_writes_and_reads_a_pattern() {
    let Some(qemu_io) = tool("qemu-io") else {
        return;
    };
    let (srv, disk, _) = fixture();
    let url = unix_url(&srv.socket, "disk");
    let (out, text) = run(
        &qemu_io,
        &["-f", "raw", &url, "-c", "write -P 0xab 0 64k", "-c", "read -P 0xab 0 64k", "-c", "read -P 0xab 4k 4k"],
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("wrote 65536/65536 bytes at offset 0"), "{text}");
    assert!(text.contains("read 65536/65536 bytes at offset 0"), "{text}");
    assert!(!text.contains("Pattern verification failed"), "{text}");
    assert_eq!(disk.bytes(0, 64 << 10), vec![0xab; 64 << 10]);
    assert!(srv.exports.wait_closes("disk", 1));
    assert_eq!(srv.exports.counts("disk"), (1, 1));

    // A mismatching pattern is noticed: the check above can fail.
    let (_, text) = run(&qemu_io, &["-f", "raw", &url, "-c", "read -P 0xac 0 4k"]);
    assert!(text.contains("Pattern verification failed"), "{text}");
}

#[test]
fn qemu_io_zeroes_discard_fua_and_flush() {
    let Some(qemu_io) = tool("qemu-io") else {
        return;
    };
    let (srv, disk, _) = fixture();
    let url = unix_url(&srv.socket, "disk");
    let (out, text) = run(
        &qemu_io,
        &[
            "-f",
            "raw",
            &url,
            "-c",
            "write -P 0xcd 1M 256k",
            "-c",
            "write -z 1M 64k",
            "-c",
            "read -P 0 1M 64k",
            "-c",
            "read -P 0xcd 1088k 192k",
            "-c",
            "discard 2M 1M",
            "-c",
            "write -f -P 0x11 3M 4k",
            "-c",
            "flush",
            "-c",
            "write -z -u 0 4M",
            "-c",
            "read -P 0 0 4M",
        ],
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("Pattern verification failed"), "{text}");
    assert!(!text.to_lowercase().contains("error"), "{text}");
    assert_eq!(disk.bytes(0, DISK), vec![0; DISK]);

    let seen = disk.seen();
    let has = |f: &dyn Fn(&Seen) -> bool| seen.iter().any(f);
    assert!(has(&|s| s.cmd == Command::WriteZeroes && s.offset == 1 << 20 && s.len == 64 << 10), "{seen:?}");
    assert!(has(&|s| s.cmd == Command::Trim && s.offset == 2 << 20), "{seen:?}");
    assert!(has(&|s| s.cmd == Command::Write && s.offset == 3 << 20 && s.fua), "{seen:?}");
    assert!(has(&|s| s.cmd == Command::Flush), "{seen:?}");
    // The whole-disk zeroing, allowed to punch holes.
    assert!(has(&|s| s.cmd == Command::WriteZeroes && !s.no_hole && s.len >= 1 << 20), "{seen:?}");
}

#[test]
fn qemu_io_on_a_read_only_export() {
    let Some(qemu_io) = tool("qemu-io") else {
        return;
    };
    let (srv, _, ro) = fixture();
    let url = unix_url(&srv.socket, "ro");
    // The fixture's first sector is all zeroes, the second all ones.
    let (out, text) = run(&qemu_io, &["-r", "-f", "raw", &url, "-c", "read -P 0 0 512", "-c", "read -P 1 512 512"]);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("Pattern verification failed"), "{text}");
    // Opened for writing, qemu refuses to open it, seeing the READ_ONLY flag.
    let (out, text) = run(&qemu_io, &["-f", "raw", &url, "-c", "write -P 0xff 0 512"]);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("Permission denied"), "{text}");
    assert_eq!(ro.bytes(0, 512), vec![0; 512]);
    assert!(ro.seen().iter().all(|s| s.cmd == Command::Read), "{:?}", ro.seen());
}

#[test]
fn qemu_img_info_reports_the_size() {
    let Some(qemu_img) = tool("qemu-img") else {
        return;
    };
    let (srv, _, _) = fixture();
    let (out, text) = run(&qemu_img, &["info", "--output=json", &unix_url(&srv.socket, "disk")]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("\"virtual-size\": {DISK}")), "{text}");
    // The empty name is the default export.
    let url = format!("nbd+unix://?socket={}", srv.socket.display());
    let (out, text) = run(&qemu_img, &["info", "--output=json", &url]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("\"virtual-size\": {DISK}")), "{text}");
    // An unknown export is an error.
    let (out, text) = run(&qemu_img, &["info", &unix_url(&srv.socket, "missing")]);
    assert!(!out.status.success(), "{text}");
}

#[test]
fn qemu_nbd_lists_exports() {
    let Some(qemu_nbd) = tool("qemu-nbd") else {
        return;
    };
    let (srv, _, _) = fixture();
    let socket = srv.socket.to_string_lossy().to_string();
    let (out, text) = run(&qemu_nbd, &["-L", "-k", &socket]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("exports available: 2"), "{text}");
    assert!(text.contains("export: 'disk'"), "{text}");
    assert!(text.contains("export: 'ro'"), "{text}");
    assert!(text.contains("size:  4194304"), "{text}");
    assert!(text.contains("flags: 0x16d ( flush fua trim zeroes multi )"), "{text}");
    assert!(text.contains("flags: 0x16f ( readonly flush fua trim zeroes multi )"), "{text}");
    assert!(text.contains("min block: 512"), "{text}");
    assert!(text.contains("max block: 33554432"), "{text}");
}

#[test]
fn qemu_img_convert_in_and_out_over_tcp() {
    let Some(qemu_img) = tool("qemu-img") else {
        return;
    };
    let disk = RamExport::new(DISK, false, Mode::Immediate);
    let exports = RamExports::new(vec![("disk", disk.clone())], None);
    let server = Server::new(exports.clone());
    let addr = server.listen_tcp("127.0.0.1:0").unwrap();
    let url = format!("nbd://{addr}/disk");
    let dir = TempDir::new();

    // Into the export.
    let source = pattern(DISK, 42);
    let input = dir.path("in.img");
    std::fs::write(&input, &source).unwrap();
    let (out, text) = run(&qemu_img, &["convert", "-n", "-f", "raw", "-O", "raw", &input.to_string_lossy(), &url]);
    assert!(out.status.success(), "{text}");
    assert_eq!(disk.bytes(0, DISK), source);

    // And back out.
    let output = dir.path("out.img");
    let (out, text) = run(&qemu_img, &["convert", "-f", "raw", "-O", "raw", &url, &output.to_string_lossy()]);
    assert!(out.status.success(), "{text}");
    assert_eq!(std::fs::read(&output).unwrap(), source);

    // qemu-img compare reads both through their drivers.
    let (out, text) = run(&qemu_img, &["compare", "-f", "raw", "-F", "raw", &input.to_string_lossy(), &url]);
    assert!(out.status.success(), "{text}");
    drop(server);
    assert_eq!(exports.counts("disk").0, exports.counts("disk").1);
}

#[test]
fn qemu_discards_more_than_the_maximum_payload_at_once() {
    let Some(qemu_io) = tool("qemu-io") else {
        return;
    };
    let disk = RamExport::new(64 << 20, false, Mode::Immediate);
    let srv = start(RamExports::new(vec![("big", disk.clone())], None));
    let url = unix_url(&srv.socket, "big");
    let (out, text) = run(&qemu_io, &["-f", "raw", &url, "-c", "discard 0 64M", "-c", "read -P 0 60M 4M"]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("discard 67108864/67108864 bytes at offset 0"), "{text}");
    assert!(!text.contains("Pattern verification failed"), "{text}");
    // qemu sends the whole range as one TRIM: refusing TRIMs over 32 MiB
    // would break its discards.
    let trims: Vec<Seen> = disk.seen().into_iter().filter(|s| s.cmd == Command::Trim).collect();
    assert_eq!(trims.len(), 1, "{trims:?}");
    assert_eq!(trims[0].len, 64 << 20);
}
