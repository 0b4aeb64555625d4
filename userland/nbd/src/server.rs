//! Listening sockets, connection threads, and shutdown.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use log::{debug, info, warn};

use crate::handshake::{self, Outcome};
use crate::transmission;
use crate::Exports;

/// How long a client may stay silent during the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one write of replies may stall before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often an idle accept loop looks at the shutdown flag.
const ACCEPT_POLL: Duration = Duration::from_millis(20);
/// Back-off after an accept error such as running out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(200);
/// Read buffer of a connection (request headers are read through it).
const READ_BUFFER: usize = 64 << 10;

/// A connected stream socket of either family.
pub(crate) trait Socket: Read + Write + Send + 'static {
    fn clone_socket(&self) -> io::Result<Box<dyn Socket>>;
    fn shutdown_socket(&self, how: Shutdown);
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()>;
    fn set_blocking(&self) -> io::Result<()>;
}

macro_rules! impl_socket {
    ($t:ty) => {
        impl Socket for $t {
            fn clone_socket(&self) -> io::Result<Box<dyn Socket>> {
                Ok(Box::new(self.try_clone()?))
            }
            fn shutdown_socket(&self, how: Shutdown) {
                // Fails only if the peer is already gone, which is the point.
                let _ = self.shutdown(how);
            }
            fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
                self.set_read_timeout(read)?;
                self.set_write_timeout(write)
            }
            fn set_blocking(&self) -> io::Result<()> {
                self.set_nonblocking(false)
            }
        }
    };
}

impl_socket!(TcpStream);
impl_socket!(UnixStream);

/// An NBD server: any number of listening sockets (Unix and TCP), each
/// connection served by its own threads, all offering the same
/// [`Exports`].
///
/// Listening starts with [`listen_unix`](Server::listen_unix) or
/// [`listen_tcp`](Server::listen_tcp), which return at once; connections
/// are accepted on background threads. [`shutdown`](Server::shutdown)
/// (also run on drop) stops everything.
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    exports: Arc<dyn Exports>,
    stopping: AtomicBool,
    state: Mutex<State>,
    /// Serialises `shutdown` calls.
    shutdown_lock: Mutex<()>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    acceptors: Vec<JoinHandle<()>>,
    conns: HashMap<u64, Conn>,
}

struct Conn {
    /// A second handle on the socket, to wake the connection at shutdown.
    sock: Box<dyn Socket>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn new(exports: Arc<dyn Exports>) -> Server {
        Server {
            inner: Arc::new(Inner {
                exports,
                stopping: AtomicBool::new(false),
                state: Mutex::new(State::default()),
                shutdown_lock: Mutex::new(()),
            }),
        }
    }

    /// Listen on a Unix socket at `path` (which must not exist yet). The
    /// socket file is removed when the server shuts down.
    pub fn listen_unix(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.refuse_if_stopping()?;
        let path: PathBuf = path.as_ref().to_path_buf();
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        info!("nbd: listening on {}", path.display());
        let accept = move || listener.accept().map(|(s, _)| Box::new(s) as Box<dyn Socket>);
        let cleanup = move || {
            let _ = std::fs::remove_file(&path);
        };
        self.spawn_acceptor(accept, cleanup)
    }

    /// Listen on TCP at `addr`. Returns the address actually bound, which
    /// tells the port when `addr` asked for port 0.
    pub fn listen_tcp(&self, addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
        self.refuse_if_stopping()?;
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        info!("nbd: listening on {local}");
        let accept = move || {
            let (s, _) = listener.accept()?;
            // Replies are small and latency-bound; do not let Nagle hold them.
            let _ = s.set_nodelay(true);
            Ok(Box::new(s) as Box<dyn Socket>)
        };
        self.spawn_acceptor(accept, || {})?;
        Ok(local)
    }

    /// Stop the server: stop accepting, stop reading new requests, let every
    /// request already submitted complete and its reply be sent, then close
    /// every connection (each export's [`Exports::close`] runs). Returns
    /// when all of that is done; calling it again does nothing.
    ///
    /// It waits for exports to complete what they were given, so it must
    /// not be called from a thread an export needs to make progress.
    pub fn shutdown(&self) {
        let _serial = self.inner.shutdown_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.stopping.store(true, Ordering::SeqCst);

        let acceptors = std::mem::take(&mut self.inner.lock().acceptors);
        for handle in acceptors {
            join(handle);
        }
        // No connection can be added from here on.
        let threads: Vec<JoinHandle<()>> = {
            let mut state = self.inner.lock();
            state
                .conns
                .values_mut()
                .filter_map(|conn| {
                    // Reading stops at once (the reader sees end of file);
                    // the sending side stays open for the pending replies.
                    conn.sock.shutdown_socket(Shutdown::Read);
                    conn.thread.take()
                })
                .collect()
        };
        for handle in threads {
            join(handle);
        }
    }

    fn refuse_if_stopping(&self) -> io::Result<()> {
        if self.inner.stopping.load(Ordering::SeqCst) {
            return Err(io::Error::other("NBD server is shut down"));
        }
        Ok(())
    }

    fn spawn_acceptor<A, C>(&self, accept: A, cleanup: C) -> io::Result<()>
    where
        A: FnMut() -> io::Result<Box<dyn Socket>> + Send + 'static,
        C: FnOnce() + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let handle =
            thread::Builder::new().name("nbd-accept".into()).spawn(move || inner.accept_loop(accept, cleanup))?;
        self.inner.lock().acceptors.push(handle);
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn accept_loop(self: Arc<Self>, mut accept: impl FnMut() -> io::Result<Box<dyn Socket>>, cleanup: impl FnOnce()) {
        while !self.stopping.load(Ordering::SeqCst) {
            match accept() {
                Ok(sock) => self.start_connection(sock),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("nbd: accept failed: {e}");
                    thread::sleep(ACCEPT_BACKOFF);
                }
            }
        }
        cleanup();
    }

    fn start_connection(self: &Arc<Self>, sock: Box<dyn Socket>) {
        // Some systems hand out accepted sockets non-blocking, like the
        // listener; the connection threads want blocking ones.
        let wake = match sock.set_blocking().and_then(|()| sock.clone_socket()) {
            Ok(wake) => wake,
            Err(e) => {
                warn!("nbd: cannot set up connection: {e}");
                return;
            }
        };
        let mut state = self.lock();
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        let id = state.next_id;
        state.next_id = state.next_id.wrapping_add(1);
        let inner = Arc::clone(self);
        let spawned = thread::Builder::new().name(format!("nbd-conn-{id}")).spawn(move || {
            // Deregister even if an export panics inside `submit`, so that
            // the wake-up handle does not keep the socket open.
            let _registered = Registered { inner: &inner, id };
            inner.run_connection(sock);
        });
        match spawned {
            Ok(thread) => {
                state.conns.insert(id, Conn { sock: wake, thread: Some(thread) });
            }
            Err(e) => warn!("nbd: cannot start connection thread: {e}"),
        }
    }

    fn run_connection(&self, sock: Box<dyn Socket>) {
        let writer =
            match sock.set_timeouts(Some(HANDSHAKE_TIMEOUT), Some(WRITE_TIMEOUT)).and_then(|()| sock.clone_socket()) {
                Ok(writer) => writer,
                Err(e) => {
                    warn!("nbd: cannot set up connection: {e}");
                    return;
                }
            };
        let mut reader = BufReader::with_capacity(READ_BUFFER, sock);
        let mut writer = writer;
        let opened = match handshake::negotiate(&mut reader, &mut writer, &self.exports, &self.stopping) {
            Ok(Outcome::Transmit(opened)) => opened,
            Ok(Outcome::Aborted) => {
                debug!("nbd: client aborted the handshake");
                return;
            }
            Err(e) => {
                debug!("nbd: handshake ended: {e}");
                return;
            }
        };
        debug!("nbd: client opened export {:?}", opened.name);
        // Idle clients are fine once an export is open.
        if let Err(e) = reader.get_ref().set_timeouts(None, Some(WRITE_TIMEOUT)) {
            warn!("nbd: cannot clear handshake timeout: {e}");
            return;
        }
        transmission::serve(&mut reader, writer, &opened.export);
        reader.get_ref().shutdown_socket(Shutdown::Both);
        // Dropping `opened` calls Exports::close, after the last reply.
        drop(opened);
    }
}

/// A connection's entry in the registry, removed when its thread ends.
struct Registered<'a> {
    inner: &'a Inner,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.inner.lock().conns.remove(&self.id);
    }
}

fn join(handle: JoinHandle<()>) {
    if handle.thread().id() == thread::current().id() {
        return;
    }
    if handle.join().is_err() {
        warn!("nbd: a server thread panicked");
    }
}
