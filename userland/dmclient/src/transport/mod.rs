//! How requests reach the driver.
//!
//! Every transport carries the text of one request dictionary and brings back the reply text.
//! What differs is how much they can say about a failure: the kernel's ioctl reports only
//! transport errors (command errors are swallowed, reference §1.5); dmhost's socket and the
//! in-process core also report the command's own errno and a detail string.

mod local;
mod socket;

#[cfg(any(target_os = "netbsd", target_os = "freebsd"))]
mod ioctl;

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use local::LocalTransport;
pub use socket::SocketTransport;

#[cfg(any(target_os = "netbsd", target_os = "freebsd"))]
pub use ioctl::{IoctlTransport, NETBSD_DM_IOCTL};

/// The control node of dm(4).
pub const DEFAULT_CONTROL: &str = "/dev/mapper/control";

/// The environment variable that selects the transport.
pub const CONTROL_ENV: &str = "DM_CONTROL";

/// What a transport brought back for one request.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct RawReply {
    /// 0 when the driver accepted the request; otherwise the errno of the refusal (the
    /// ioctl's), and there is no reply.
    pub transport_errno: i32,
    /// The command's own errno (0 = it succeeded), when the transport can tell; `None` over
    /// NetBSD's ioctl, which swallows it.
    pub command_errno: Option<i32>,
    /// The reply text, without its NUL.
    pub bytes: Vec<u8>,
    /// What the driver said about a failed command, when the transport carries it.
    pub detail: Option<String>,
}

/// A way to send one request to the driver and get its reply.
pub trait Transport {
    /// Sends `request` (the text of the request dictionary, without a NUL: the transport adds
    /// the one the protocol counts) and returns what came back. `Err` means the driver could
    /// not be reached or the exchange broke down.
    fn call(&self, request: &[u8]) -> io::Result<RawReply>;
}

impl<T: Transport + ?Sized> Transport for &T {
    fn call(&self, request: &[u8]) -> io::Result<RawReply> {
        (**self).call(request)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn call(&self, request: &[u8]) -> io::Result<RawReply> {
        (**self).call(request)
    }
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn call(&self, request: &[u8]) -> io::Result<RawReply> {
        (**self).call(request)
    }
}

/// Where the control path leads.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Control {
    /// dmhost's control socket.
    Socket(PathBuf),
    /// A dm(4) control node, driven by ioctl.
    Device(PathBuf),
}

impl Control {
    /// Reads a `DM_CONTROL` value: `unix:/path` is a socket; a bare path is a socket when the
    /// file is one and a control node otherwise; no value means [`DEFAULT_CONTROL`].
    pub fn from_setting(value: Option<&OsStr>) -> Control {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Control::Device(PathBuf::from(DEFAULT_CONTROL));
        };
        if let Some(path) = value.to_str().and_then(|v| v.strip_prefix("unix:")) {
            return Control::Socket(PathBuf::from(path));
        }
        let path = PathBuf::from(value);
        if is_socket(&path) {
            Control::Socket(path)
        } else {
            Control::Device(path)
        }
    }

    /// The control chosen by the environment (`DM_CONTROL`).
    pub fn from_env() -> Control {
        Control::from_setting(std::env::var_os(CONTROL_ENV).as_deref())
    }

    /// Opens the transport.
    pub fn open(&self) -> io::Result<Box<dyn Transport + Send + Sync>> {
        match self {
            Control::Socket(path) => Ok(Box::new(SocketTransport::connect(path)?)),
            Control::Device(path) => open_device(path),
        }
    }
}

#[cfg(unix)]
fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

#[cfg(not(unix))]
fn is_socket(_path: &Path) -> bool {
    false
}

#[cfg(any(target_os = "netbsd", target_os = "freebsd"))]
fn open_device(path: &Path) -> io::Result<Box<dyn Transport + Send + Sync>> {
    Ok(Box::new(IoctlTransport::open(path)?))
}

#[cfg(not(any(target_os = "netbsd", target_os = "freebsd")))]
fn open_device(path: &Path) -> io::Result<Box<dyn Transport + Send + Sync>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "{}: the dm(4) ioctl exists only on NetBSD and FreeBSD; set {CONTROL_ENV}=unix:/path/to/dmhost.sock",
            path.display()
        ),
    ))
}

/// The transport chosen by the environment (`DM_CONTROL`), opened.
pub fn from_env() -> io::Result<Box<dyn Transport + Send + Sync>> {
    Control::from_env().open()
}

/// A transport that could not be opened: every call fails with the same error. Lets a
/// program report the failure only when it actually needs the driver.
#[derive(Debug)]
pub struct Unavailable {
    kind: io::ErrorKind,
    message: String,
}

impl Unavailable {
    pub fn new(error: &io::Error) -> Self {
        Unavailable { kind: error.kind(), message: error.to_string() }
    }
}

impl Transport for Unavailable {
    fn call(&self, _request: &[u8]) -> io::Result<RawReply> {
        Err(io::Error::new(self.kind, self.message.clone()))
    }
}
