//! The dmctl binary itself: transport chosen by `DM_CONTROL`, major by `DM_MAJOR`, front-end by
//! `argv[0]`, against a small server thread speaking dmhost's socket protocol around the
//! in-memory core.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::thread;

use dmcore::platform::mem::MemPlatform;
use dmcore::{Caller, Core, DevT};

fn serve(core: &Core<MemPlatform>, mut s: UnixStream) {
    let mut len = [0u8; 4];
    while s.read_exact(&mut len).is_ok() {
        let mut request = vec![0; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut request).unwrap();
        let (te, ce, mut reply, detail) = match core.control(&request, Caller { privileged: true }) {
            Ok(r) => (0, r.command_result.err().map_or(0, |e| e.0), r.bytes, r.detail.unwrap_or_default()),
            Err(e) => (e.0, 0, Vec::new(), String::new()),
        };
        if te == 0 {
            reply.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&i32::to_be_bytes(te));
        out.extend_from_slice(&i32::to_be_bytes(ce));
        out.extend_from_slice(&(reply.len() as u32).to_be_bytes());
        out.extend_from_slice(&reply);
        out.extend_from_slice(&(detail.len() as u32).to_be_bytes());
        out.extend_from_slice(detail.as_bytes());
        s.write_all(&out).unwrap();
    }
}

/// Serves every connection, one after the other, for the life of the test process.
fn start_server(dir: &Path) -> String {
    let (core, platform) = MemPlatform::new_core();
    platform.add_disk("/dev/vda", DevT::new(254, 0), 131_072);
    platform.add_disk("/dev/vdb", DevT::new(254, 16), 131_072);
    let core: Arc<Core<MemPlatform>> = core;
    let path = dir.join("dmhost.sock");
    let listener = UnixListener::bind(&path).unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            serve(&core, stream.unwrap());
        }
    });
    path.to_str().unwrap().to_string()
}

fn run(program: &Path, socket: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env("DM_CONTROL", format!("unix:{socket}"))
        .env("DM_MAJOR", "253")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

#[test]
fn the_binary_over_dmhosts_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = start_server(dir.path());
    let dmctl = Path::new(env!("CARGO_BIN_EXE_dmctl"));
    let dmsetup = dir.path().join("dmsetup");
    std::os::unix::fs::symlink(dmctl, &dmsetup).unwrap();

    let out = run(dmctl, &socket, &["create", "lin2"], "");
    assert!(out.status.success(), "{out:?}");
    let out = run(dmctl, &socket, &["load", "lin2"], "0 4096 linear /dev/vda 0\n4096 4096 linear /dev/vdb 1024\n");
    assert!(out.status.success(), "{out:?}");
    let out = run(dmctl, &socket, &["setup", "resume", "lin2"], "");
    assert!(out.status.success(), "{out:?}");
    let out = run(&dmsetup, &socket, &["table", "lin2"], "");
    assert_eq!(text(&out.stdout), "0 4096 linear 254:0 0\n4096 4096 linear 254:16 1024\n");
    let out = run(&dmsetup, &socket, &["ls"], "");
    assert_eq!(text(&out.stdout), "lin2\t(253:1)\n");
    let out = run(dmctl, &socket, &["ls"], "");
    assert_eq!(text(&out.stdout), "Device name: lin2, device minor: 1 \n");

    let out = run(&dmsetup, &socket, &["info", "nosuch"], "");
    assert_eq!((out.status.code(), text(&out.stderr)), (Some(1), "Device does not exist.\nCommand failed.\n"));
    let out = run(dmctl, &socket, &["load", "lin2"], "0 10 linear /dev/vda\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "dmctl: reload of lin2 failed: Invalid argument (EINVAL): line 0: linear: Invalid argument count\n\
         dmctl: table line 0: 0 10 linear /dev/vda\n"
    );
    let out = run(dmctl, &socket, &["info"], "");
    assert_eq!(out.status.code(), Some(2));

    // No daemon behind the socket: a clear message, not a panic.
    let out = run(dmctl, &dir.path().join("none").to_string_lossy(), &["ls"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("dmctl: names failed: "), "{}", text(&out.stderr));
}
