//! The transmission phase of one connection.
//!
//! The connection's thread reads requests, checks them, and submits each one
//! to the export at once. Every request, valid or not, takes a [`Permit`]
//! from the connection's [`Budget`] before it is read further; the permit
//! travels with the request's [`Completion`] and then with its reply, and is
//! returned when the reply has been written (or thrown away because the
//! connection is gone). Replies go through a channel to a writer thread,
//! which owns the sending side of the socket.
//!
//! The phase ends on DISC, end of file, a socket error or a protocol
//! violation. The reader then drops its end of the channel; the writer
//! thread keeps going until every outstanding completion has been answered,
//! so by the time it is joined no request of the connection is in flight.

use std::fmt;
use std::io::{self, BufWriter, Read, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

use log::{debug, warn};

use crate::proto::*;
use crate::server::Socket;
use crate::{Command, Export, Request, MAX_IN_FLIGHT, MAX_IN_FLIGHT_BYTES};

/// Limits what one connection may have outstanding.
pub(crate) struct Budget {
    load: Mutex<Load>,
    freed: Condvar,
}

#[derive(Default)]
struct Load {
    requests: usize,
    bytes: u64,
}

impl Budget {
    pub(crate) fn new() -> Arc<Budget> {
        Arc::new(Budget { load: Mutex::new(Load::default()), freed: Condvar::new() })
    }

    fn lock(&self) -> MutexGuard<'_, Load> {
        // A poisoned lock only means some thread panicked while holding it;
        // the two counters are still meaningful.
        self.load.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait until one more request of `bytes` fits, and take its share.
    pub(crate) fn acquire(self: &Arc<Self>, bytes: u64) -> Permit {
        let mut load = self.lock();
        while load.requests >= MAX_IN_FLIGHT
            || (load.requests > 0 && load.bytes.saturating_add(bytes) > MAX_IN_FLIGHT_BYTES)
        {
            load = self.freed.wait(load).unwrap_or_else(|e| e.into_inner());
        }
        load.requests += 1;
        load.bytes = load.bytes.saturating_add(bytes);
        Permit { budget: Arc::clone(self), bytes }
    }
}

/// One request's share of the [`Budget`], given back on drop.
pub(crate) struct Permit {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut load = self.budget.lock();
        load.requests = load.requests.saturating_sub(1);
        load.bytes = load.bytes.saturating_sub(self.bytes);
        drop(load);
        self.budget.freed.notify_all();
    }
}

/// A reply on its way to the writer thread.
struct Reply {
    handle: u64,
    error: u32,
    data: Vec<u8>,
    _permit: Permit,
}

/// The answer to one request, handed to [`Export::submit`](crate::Export::submit).
///
/// Call [`complete`](Completion::complete) exactly once, from any thread.
/// If a `Completion` is dropped without it, the client is told `EIO`. It
/// never blocks on the network: the reply is queued for the connection's
/// writer thread, and silently discarded if the connection has ended.
pub struct Completion {
    pending: Option<Pending>,
}

struct Pending {
    handle: u64,
    /// For reads, the number of bytes the reply must carry.
    read_len: Option<usize>,
    permit: Permit,
    replies: Sender<Reply>,
}

impl Completion {
    fn new(handle: u64, read_len: Option<usize>, permit: Permit, replies: Sender<Reply>) -> Self {
        Completion { pending: Some(Pending { handle, read_len, permit, replies }) }
    }

    /// Answer the request. For a read, `Ok` must carry exactly the requested
    /// number of bytes (anything else is answered `EIO`, since a short
    /// payload would desynchronise the stream); for every other command the
    /// `Ok` vector is ignored (pass `Vec::new()`).
    pub fn complete(mut self, result: Result<Vec<u8>, crate::Errno>) {
        if let Some(pending) = self.pending.take() {
            pending.finish(result);
        }
    }
}

impl Pending {
    fn finish(self, result: Result<Vec<u8>, crate::Errno>) {
        let (error, data) = match (result, self.read_len) {
            (Ok(data), Some(len)) if data.len() == len => (0, data),
            (Ok(data), Some(len)) => {
                warn!("nbd: export returned {} bytes for a {len}-byte read; replying EIO", data.len());
                (Errno::Io.wire(), Vec::new())
            }
            (Ok(_), None) => (0, Vec::new()),
            (Err(errno), _) => (errno.wire(), Vec::new()),
        };
        let reply = Reply { handle: self.handle, error, data, _permit: self.permit };
        // If the writer thread is gone the reply comes back inside the error
        // and is dropped here, which returns its permit.
        let _ = self.replies.send(reply);
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            pending.finish(Err(Errno::Io));
        }
    }
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let handle = self.pending.as_ref().map(|p| p.handle);
        f.debug_struct("Completion").field("handle", &handle).finish()
    }
}

/// Why the request loop stopped.
enum End {
    Disconnect,
    Eof,
    Failed(io::Error),
    Violation(&'static str),
}

/// Serve requests until the connection ends, then wait until every request
/// taken from it has been answered or discarded.
pub(crate) fn serve<R: Read>(rd: &mut R, writer: Box<dyn Socket>, export: &Arc<dyn Export>) {
    let (tx, rx) = mpsc::channel();
    let writer = match thread::Builder::new().name("nbd-reply".into()).spawn(move || write_replies(writer, rx)) {
        Ok(handle) => handle,
        Err(e) => {
            warn!("nbd: cannot start reply thread: {e}");
            return;
        }
    };
    match read_requests(rd, export, &tx) {
        End::Disconnect | End::Eof => debug!("nbd: client disconnected"),
        End::Failed(e) => debug!("nbd: connection failed: {e}"),
        End::Violation(what) => warn!("nbd: dropping client: {what}"),
    }
    drop(tx);
    // The writer ends once the last outstanding Completion is answered.
    if writer.join().is_err() {
        warn!("nbd: reply thread panicked");
    }
}

fn read_requests<R: Read>(rd: &mut R, export: &Arc<dyn Export>, tx: &Sender<Reply>) -> End {
    let budget = Budget::new();
    loop {
        let mut raw = [0u8; REQUEST_LEN];
        if let Err(e) = rd.read_exact(&mut raw) {
            return if e.kind() == io::ErrorKind::UnexpectedEof { End::Eof } else { End::Failed(e) };
        }
        let hdr = RequestHeader::parse(&raw);
        if hdr.magic != REQUEST_MAGIC {
            return End::Violation("bad request magic");
        }
        if hdr.kind == CMD_DISC {
            return End::Disconnect;
        }
        if hdr.kind == CMD_WRITE && hdr.len > MAX_PAYLOAD {
            return End::Violation("write payload over 32 MiB");
        }
        let buffered = match hdr.kind {
            CMD_READ | CMD_WRITE if hdr.len <= MAX_PAYLOAD => u64::from(hdr.len),
            _ => 0,
        };
        let permit = budget.acquire(buffered);

        let mut payload = Vec::new();
        if hdr.kind == CMD_WRITE {
            payload = vec![0u8; hdr.len as usize];
            if let Err(e) = rd.read_exact(&mut payload) {
                return End::Failed(e);
            }
        }

        let cmd = match check(&hdr, export.as_ref()) {
            Ok(cmd) => cmd,
            Err(errno) => {
                let reply = Reply { handle: hdr.handle, error: errno.wire(), data: Vec::new(), _permit: permit };
                let _ = tx.send(reply);
                continue;
            }
        };
        let (offset, len) = if cmd == Command::Flush { (0, 0) } else { (hdr.offset, hdr.len) };
        let (data, read_len) = match cmd {
            Command::Read => (vec![0u8; len as usize], Some(len as usize)),
            Command::Write => (payload, None),
            _ => (Vec::new(), None),
        };
        let req = Request {
            cmd,
            offset,
            len,
            fua: hdr.flags & CMD_FLAG_FUA != 0,
            no_hole: hdr.flags & CMD_FLAG_NO_HOLE != 0,
            data,
        };
        export.submit(req, Completion::new(hdr.handle, read_len, permit, tx.clone()));
    }
}

/// Decide whether a request may go to the export.
fn check(hdr: &RequestHeader, export: &dyn Export) -> Result<Command, Errno> {
    let cmd = match hdr.kind {
        CMD_READ => Command::Read,
        CMD_WRITE => Command::Write,
        CMD_FLUSH => Command::Flush,
        CMD_TRIM => Command::Trim,
        CMD_WRITE_ZEROES => Command::WriteZeroes,
        _ => return Err(Errno::Inval),
    };
    if hdr.flags & !KNOWN_CMD_FLAGS != 0 {
        return Err(Errno::Inval);
    }
    if cmd == Command::Flush {
        return Ok(cmd);
    }
    let block = u64::from(MIN_BLOCK_SIZE);
    let len = u64::from(hdr.len);
    if len == 0 || !hdr.offset.is_multiple_of(block) || !len.is_multiple_of(block) {
        return Err(Errno::Inval);
    }
    if matches!(cmd, Command::Read | Command::Write) && hdr.len > MAX_PAYLOAD {
        return Err(Errno::Inval);
    }
    match hdr.offset.checked_add(len) {
        Some(end) if end <= export.size() => {}
        _ => return Err(Errno::Inval),
    }
    if cmd != Command::Read && export.read_only() {
        return Err(Errno::Perm);
    }
    Ok(cmd)
}

/// The writer thread: send replies in the order they were completed. After
/// the first failed write the socket is shut down (which also wakes the
/// reader) and the remaining replies are only drained, so that their
/// permits are returned.
fn write_replies(sock: Box<dyn Socket>, rx: Receiver<Reply>) {
    let mut out = BufWriter::with_capacity(64 << 10, sock);
    let mut alive = true;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(reply) = next {
            if alive {
                if let Err(e) = write_reply(&mut out, &reply) {
                    debug!("nbd: cannot send reply: {e}");
                    alive = false;
                    out.get_ref().shutdown_socket(std::net::Shutdown::Both);
                }
            }
            drop(reply);
            next = rx.try_recv().ok();
        }
        // Nothing else queued: push what is buffered onto the wire.
        if alive {
            if let Err(e) = out.flush() {
                debug!("nbd: cannot send reply: {e}");
                alive = false;
                out.get_ref().shutdown_socket(std::net::Shutdown::Both);
            }
        }
    }
    if alive {
        let _ = out.flush();
    }
}

fn write_reply<W: Write>(out: &mut W, reply: &Reply) -> io::Result<()> {
    out.write_all(&simple_reply(reply.error, reply.handle))?;
    if reply.error == 0 && !reply.data.is_empty() {
        out.write_all(&reply.data)?;
    }
    Ok(())
}
