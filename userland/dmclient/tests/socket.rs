//! SocketTransport against a small server thread speaking dmhost's wire format around the
//! in-memory core; and the choice of transport from `DM_CONTROL`.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use dmclient::transport::{Control, DEFAULT_CONTROL};
use dmclient::{Client, DeviceRef, Errno, SocketTransport, TableLine, Transport};
use dmcore::platform::mem::MemPlatform;
use dmcore::{Caller, Core, DevT};

fn read_exact(s: &mut UnixStream, n: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// One connection of the server: requests until the client hangs up. Returns how many it
/// served.
fn serve(core: Arc<Core<MemPlatform>>, mut s: UnixStream) -> usize {
    let mut served = 0;
    while let Some(len) = read_exact(&mut s, 4) {
        let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
        let request = read_exact(&mut s, len).expect("request body");
        assert_eq!(request.last(), Some(&0), "the request ends with its NUL");
        let (te, ce, mut reply, detail) = match core.control(&request, Caller { privileged: true }) {
            Ok(r) => (0, r.command_result.err().map_or(0, |e| e.0), r.bytes, r.detail.unwrap_or_default()),
            Err(e) => (e.0, 0, Vec::new(), String::new()),
        };
        if te == 0 {
            reply.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&te.to_be_bytes());
        out.extend_from_slice(&ce.to_be_bytes());
        out.extend_from_slice(&(reply.len() as u32).to_be_bytes());
        out.extend_from_slice(&reply);
        out.extend_from_slice(&(detail.len() as u32).to_be_bytes());
        out.extend_from_slice(detail.as_bytes());
        s.write_all(&out).unwrap();
        served += 1;
    }
    served
}

fn server() -> (tempfile::TempDir, PathBuf, thread::JoinHandle<usize>) {
    let (core, platform) = MemPlatform::new_core();
    platform.add_disk("/dev/vda", DevT::new(254, 0), 131_072);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dmhost.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        serve(core, stream)
    });
    (dir, path, handle)
}

#[test]
fn requests_over_one_connection() {
    let (_dir, path, server) = server();
    {
        let client = Client::new(SocketTransport::connect(&path).unwrap());
        let lin = DeviceRef::Name("lin".into());
        assert_eq!(client.version().unwrap(), [4, 16, 0]);
        client.create("lin", None, false).unwrap();
        client.reload(&lin, &["0 4096 linear /dev/vda 0".parse::<TableLine>().unwrap()]).unwrap();
        client.resume(&lin).unwrap();
        assert_eq!(client.table(&lin, false).unwrap()[0].to_string(), "0 4096 linear 254:0 0");

        // The command's errno and detail come through the socket.
        let e = client.reload(&lin, &["0 4096 linear /dev/vda".parse::<TableLine>().unwrap()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reload of lin failed: Invalid argument (EINVAL): line 0: linear: Invalid argument count"
        );
        let e = client.info(&DeviceRef::Name("nosuch".into())).unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(client.create("lin", None, false).unwrap_err().errno(), Some(Errno::EEXIST));

        // A transport error: no reply, no command errno.
        let raw = client.transport().call(b"<plist").unwrap();
        assert_eq!(
            (raw.transport_errno, raw.command_errno, raw.bytes.len(), raw.detail),
            (Errno::EIO.0, None, 0, None)
        );
        client.remove(&lin).unwrap();
        assert_eq!(client.names().unwrap(), vec![]);
    }
    assert_eq!(server.join().unwrap(), 11);
}

#[test]
fn a_server_that_hangs_up_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let listener = UnixListener::bind(&path).unwrap();
    let t = thread::spawn(move || drop(listener.accept().unwrap()));
    let client = Client::new(SocketTransport::connect(&path).unwrap());
    t.join().unwrap();
    let e = client.names().unwrap_err();
    assert!(matches!(e.kind, dmclient::ErrorKind::Io(_)), "{e:?}");
}

#[test]
fn oversized_replies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let listener = UnixListener::bind(&path).unwrap();
    let t = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let len = read_exact(&mut s, 4).unwrap();
        read_exact(&mut s, u32::from_be_bytes(len.try_into().unwrap()) as usize).unwrap();
        let mut out = vec![0; 8];
        out.extend_from_slice(&u32::MAX.to_be_bytes());
        let _ = s.write_all(&out);
    });
    let client = Client::new(SocketTransport::connect(&path).unwrap());
    let e = client.names().unwrap_err();
    assert!(e.to_string().contains("at most"), "{e}");
    t.join().unwrap();
}

#[test]
fn control_from_the_environment() {
    assert_eq!(Control::from_setting(None), Control::Device(PathBuf::from(DEFAULT_CONTROL)));
    assert_eq!(Control::from_setting(Some(OsStr::new(""))), Control::Device(PathBuf::from(DEFAULT_CONTROL)));
    assert_eq!(
        Control::from_setting(Some(OsStr::new("unix:/run/dmhost.sock"))),
        Control::Socket("/run/dmhost.sock".into())
    );
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dmhost.sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    assert_eq!(Control::from_setting(Some(sock.as_os_str())), Control::Socket(sock.clone()));
    let file = dir.path().join("control");
    std::fs::write(&file, b"").unwrap();
    assert_eq!(Control::from_setting(Some(file.as_os_str())), Control::Device(file.clone()));
    assert!(Control::Socket(sock).open().is_ok());
    #[cfg(not(any(target_os = "netbsd", target_os = "freebsd")))]
    {
        let e = Control::Device(file).open().err().unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
    }
}
