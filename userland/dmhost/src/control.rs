//! The control socket: framed proplib requests in, framed replies out (the format is described
//! in the crate's documentation, `main.rs`).

use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use dmcore::control::MAX_REQUEST_LEN;
use dmcore::{Caller, Core, Errno};

use crate::modules::{self, Modules};
use crate::platform::{self, HostPlatform};

/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// How often the idle accept loop looks at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// Makes `path` free for a new listening socket: a socket nobody answers on (left behind by a
/// process that died) is removed; a socket something answers on, or a file that is not a
/// socket, is refused.
pub fn claim_socket_path(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(ErrorKind::AlreadyExists, format!("{} exists and is not a socket", path.display())));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            ErrorKind::AddrInUse,
            format!("{} is in use: another dmhost (or something else) is listening on it", path.display()),
        )),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            log::info!("removing stale socket {}", path.display());
            fs::remove_file(path)
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot probe {}: {e}", path.display()))),
    }
}

/// Runs `bind` with a umask that leaves the new socket file readable and writable by its owner
/// only, then sets mode 0600 explicitly (the umask is process-wide: this runs before any
/// thread that creates files).
pub fn bind_private<T>(path: &Path, bind: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    // SAFETY: umask(2) only swaps the process's file creation mask; it cannot fail.
    let old = unsafe { libc::umask(0o177) };
    let bound = bind();
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let bound = bound?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(bound)
}

/// The control server.
pub struct ControlServer {
    path: PathBuf,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Listens on `path` (claimed with [`claim_socket_path`] first).
    pub fn start(path: &Path, core: Arc<Core<HostPlatform>>, modules: Arc<Modules>) -> io::Result<ControlServer> {
        let listener = bind_private(path, || UnixListener::bind(path))?;
        listener.set_nonblocking(true)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let acceptor = thread::Builder::new()
            .name("control-accept".into())
            .spawn(move || accept_loop(&listener, &core, &modules, &stop))?;
        Ok(ControlServer { path: path.to_owned(), stopping, acceptor: Some(acceptor) })
    }

    /// Stops accepting (connections still open answer no further request) and removes the
    /// socket file.
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        if let Err(e) = fs::remove_file(&self.path) {
            if e.kind() != ErrorKind::NotFound {
                log::warn!("cannot remove {}: {e}", self.path.display());
            }
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: &UnixListener,
    core: &Arc<Core<HostPlatform>>,
    modules: &Arc<Modules>,
    stopping: &Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stopping.load(Ordering::SeqCst) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("control: accept failed: {e}");
                thread::sleep(ACCEPT_POLL * 10);
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            log::warn!("control: too many connections, closing a new one");
            continue;
        }
        let core = Arc::clone(core);
        let modules = Arc::clone(modules);
        let stop = Arc::clone(stopping);
        let count = Arc::clone(&active);
        let spawned = thread::Builder::new().name("control-conn".into()).spawn(move || {
            if let Err(e) = serve(stream, &core, &modules, &stop) {
                log::debug!("control: connection ended: {e}");
            }
            count.fetch_sub(1, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            active.fetch_sub(1, Ordering::SeqCst);
            log::warn!("control: cannot start a connection thread: {e}");
        }
    }
}

/// Reads exactly `buf.len()` bytes. `Ok(false)` when the peer closed before the first byte.
fn read_frame_part(stream: &mut UnixStream, buf: &mut [u8]) -> io::Result<bool> {
    let mut done = 0;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else { break };
        match stream.read(rest) {
            Ok(0) if done == 0 => return Ok(false),
            Ok(0) => return Err(io::Error::new(ErrorKind::UnexpectedEof, "truncated frame")),
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Whether the client closed its end of the connection (it sends nothing while it waits for a
/// reply, so end of file is the only thing there is to read).
fn peer_gone(stream: &UnixStream) -> bool {
    use std::os::unix::io::AsRawFd;
    let mut byte = 0u8;
    // SAFETY: recv(2) on a descriptor `stream` owns, into one byte of ours; MSG_PEEK leaves
    // what it sees in the socket and MSG_DONTWAIT makes it return at once.
    let n = unsafe {
        libc::recv(stream.as_raw_fd(), (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT)
    };
    n == 0
}

/// One reply frame: transport errno, command errno, reply text + NUL, detail.
pub fn encode_reply(transport: Result<&dmcore::Reply, Errno>) -> Vec<u8> {
    let mut out = Vec::new();
    match transport {
        Err(errno) => {
            out.extend_from_slice(&errno.0.to_be_bytes());
            out.extend_from_slice(&0i32.to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes());
        }
        Ok(reply) => {
            let command = match reply.command_result {
                Ok(()) => 0,
                Err(errno) => errno.0,
            };
            let detail = reply.detail.as_deref().unwrap_or("").as_bytes();
            // Replies are bounded by what the core writes; a length that does not fit in u32 is
            // impossible, and saturating keeps the frame self-consistent if it ever were not.
            let text_len = u32::try_from(reply.bytes.len() + 1).unwrap_or(u32::MAX);
            let detail_len = u32::try_from(detail.len()).unwrap_or(0);
            out.extend_from_slice(&0i32.to_be_bytes());
            out.extend_from_slice(&command.to_be_bytes());
            out.extend_from_slice(&text_len.to_be_bytes());
            out.extend_from_slice(reply.bytes.get(..text_len as usize - 1).unwrap_or(&reply.bytes));
            out.push(0);
            out.extend_from_slice(&detail_len.to_be_bytes());
            out.extend_from_slice(detail.get(..detail_len as usize).unwrap_or_default());
        }
    }
    out
}

/// Serves one connection: requests one at a time until the peer closes, sends a frame this
/// server refuses to read, or the server stops.
fn serve(
    mut stream: UnixStream,
    core: &Core<HostPlatform>,
    modules: &Modules,
    stopping: &AtomicBool,
) -> io::Result<()> {
    // The listener is non-blocking; the connection must not be.
    stream.set_nonblocking(false)?;
    let mut request = Vec::new();
    loop {
        let mut header = [0u8; 4];
        if !read_frame_part(&mut stream, &mut header)? {
            return Ok(());
        }
        if stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        let len = u32::from_be_bytes(header) as usize;
        if len == 0 || len >= MAX_REQUEST_LEN {
            let errno = if len == 0 { Errno::EINVAL } else { Errno::E2BIG };
            log::debug!("control: refusing a {len}-byte request ({errno})");
            stream.write_all(&encode_reply(Err(errno)))?;
            return Ok(());
        }
        request.clear();
        request.resize(len, 0);
        if !read_frame_part(&mut stream, &mut request)? {
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "truncated frame"));
        }
        // A connection thread may block in the core as long as the command lasts (waitevent
        // waits for an event): other connections have threads of their own. A client that
        // goes away meanwhile interrupts the wait, as a signal interrupts the ioctl.
        let reply = match modules::control(modules, &request) {
            Some(reply) => Ok(reply),
            None => {
                let peer = stream.try_clone()?;
                platform::interruptible_by(Box::new(move || peer_gone(&peer)), || {
                    core.control(&request, Caller { privileged: true })
                })
            }
        };
        if let Err(errno) = &reply {
            log::debug!("control: request refused: {errno}");
        }
        stream.write_all(&encode_reply(reply.as_ref().map_err(|e| *e)))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_frames_are_laid_out_as_documented() {
        assert_eq!(encode_reply(Err(Errno::E2BIG)), [0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let reply =
            dmcore::Reply { bytes: b"<x/>".to_vec(), command_result: Err(Errno::EBUSY), detail: Some("why".into()) };
        assert_eq!(
            encode_reply(Ok(&reply)),
            [0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 5, b'<', b'x', b'/', b'>', 0, 0, 0, 0, 3, b'w', b'h', b'y']
        );
    }
}
