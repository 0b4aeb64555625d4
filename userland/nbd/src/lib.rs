//! An NBD (Network Block Device) server for `dmhost`, the user-space host of
//! the device-mapper core: every mapped device becomes one named export that
//! qemu, `nbd-client` or any other NBD client can read and write.
//!
//! # Why not an existing crate
//!
//! The NBD crates already on crates.io (for instance `nbd` 0.3) are early
//! and narrow: one export per server, a synchronous `Read + Write + Seek`
//! backend, one request at a time, and no TRIM, WRITE_ZEROES or INFO/GO
//! negotiation. dmhost needs many named exports behind one socket, requests
//! that complete out of order from the device-mapper's own worker threads,
//! and the discard/zeroing commands that thin provisioning relies on, so this
//! crate implements the server side of the protocol itself, with only `std`.
//!
//! # What is implemented
//!
//! * Handshake: fixed newstyle only (the server announces `FIXED_NEWSTYLE`
//!   and `NO_ZEROES`). Options `EXPORT_NAME`, `ABORT`, `LIST`, `INFO` and
//!   `GO` are served; every other option (TLS, structured replies, metadata
//!   contexts, extended headers, ...) is answered `NBD_REP_ERR_UNSUP`, so
//!   clients fall back to plain simple replies. Option payloads are limited
//!   to [`proto::MAX_OPTION_LEN`] bytes and a connection to
//!   [`proto::MAX_OPTIONS`] options; a client that goes beyond is cut off.
//!   During the handshake a client that stays silent for 30 seconds is
//!   dropped.
//! * Block sizes: minimum 512, preferred 4096, maximum payload 32 MiB, sent
//!   with every successful INFO/GO. Offsets and lengths that are not
//!   multiples of 512, zero lengths, and ranges past the end of the export
//!   are answered `EINVAL`.
//! * Transmission: simple replies only; `READ`, `WRITE`, `FLUSH`, `TRIM`,
//!   `WRITE_ZEROES` (with `FUA`, and `NO_HOLE` for zeroing) and `DISC`.
//!   A READ longer than 32 MiB is answered `EINVAL`. A WRITE longer than
//!   32 MiB ends the connection: its payload would have to be read (and
//!   thrown away) to find the next request, and the protocol allows a server
//!   to treat such a payload as a denial of service. TRIM and WRITE_ZEROES
//!   carry no payload, so they may cover any length the client asks for
//!   (within the export); qemu sends discards far larger than the maximum
//!   payload.
//! * Concurrency: one reader thread per connection parses requests and
//!   hands each one to [`Export::submit`] at once, without waiting for the
//!   earlier ones. The export completes them in any order from any thread
//!   through the [`Completion`] it was given. Replies are queued to a
//!   per-connection writer thread, so completing a request never blocks on
//!   the network. At most [`MAX_IN_FLIGHT`] requests and
//!   [`MAX_IN_FLIGHT_BYTES`] of request and reply buffers are outstanding per
//!   connection (a single request of up to 32 MiB is always admitted); the
//!   reader stops reading the socket until older requests are answered.
//!   A client that stops reading its replies for 60 seconds is disconnected.
//! * Failure isolation: a client that vanishes, sends garbage, or stops in
//!   the middle of a payload ends only its own connection. Completions that
//!   arrive after the connection is gone are discarded quietly. An export
//!   opened by a connection is closed ([`Exports::close`]) exactly once, after
//!   the last of its requests has been completed.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::{Arc, Mutex};
//! use dm_nbd::{Command, Completion, Export, Exports, Request, Server};
//!
//! struct Ram(Mutex<Vec<u8>>);
//!
//! impl Export for Ram {
//!     fn size(&self) -> u64 { self.0.lock().unwrap().len() as u64 }
//!     fn read_only(&self) -> bool { false }
//!     fn submit(&self, req: Request, done: Completion) {
//!         let mut disk = self.0.lock().unwrap();
//!         let (start, end) = (req.offset as usize, req.offset as usize + req.len as usize);
//!         match req.cmd {
//!             Command::Read => done.complete(Ok(disk[start..end].to_vec())),
//!             Command::Write => { disk[start..end].copy_from_slice(&req.data); done.complete(Ok(Vec::new())) }
//!             Command::Trim | Command::WriteZeroes => { disk[start..end].fill(0); done.complete(Ok(Vec::new())) }
//!             Command::Flush => done.complete(Ok(Vec::new())),
//!         }
//!     }
//! }
//!
//! struct One(Arc<Ram>);
//!
//! impl Exports for One {
//!     fn open(&self, name: &str) -> Option<Arc<dyn Export>> {
//!         (name == "disk").then(|| self.0.clone() as Arc<dyn Export>)
//!     }
//!     fn close(&self, _name: &str) {}
//!     fn list(&self) -> Vec<String> { vec!["disk".into()] }
//! }
//!
//! let server = Server::new(Arc::new(One(Arc::new(Ram(Mutex::new(vec![0; 1 << 20]))))));
//! server.listen_unix("/tmp/dm.nbd")?;
//! // qemu-io -f raw 'nbd+unix:///disk?socket=/tmp/dm.nbd' -c 'read 0 4k'
//! # server.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```

mod handshake;
pub mod proto;
mod server;
mod transmission;

use std::sync::Arc;

pub use proto::Errno;
pub use server::Server;
pub use transmission::Completion;

/// Requests outstanding on one connection (submitted, or answered but not
/// yet written to the socket) before the server stops reading new ones.
pub const MAX_IN_FLIGHT: usize = 64;
/// Bytes of READ and WRITE buffers outstanding on one connection before the
/// server stops reading new requests. One request is always admitted when
/// nothing else is outstanding, so this is a soft bound plus 32 MiB.
pub const MAX_IN_FLIGHT_BYTES: u64 = 128 << 20;

/// What a request asks the export to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Return `len` bytes from `offset`.
    Read,
    /// Store `data` (exactly `len` bytes) at `offset`.
    Write,
    /// Make every write completed so far (on any connection) durable.
    Flush,
    /// The client no longer needs `len` bytes at `offset`; the export may
    /// discard them (reads afterwards may return anything) or do nothing.
    Trim,
    /// Make `len` bytes at `offset` read back as zeroes. Without `no_hole`
    /// the export may deallocate the range to do so.
    WriteZeroes,
}

/// One validated request, handed to [`Export::submit`].
///
/// The server has already checked it: `offset` and `len` are multiples of
/// 512, `len` is not zero, `offset + len` does not pass the export's size,
/// READ and WRITE are at most 32 MiB, and no write-type command reaches a
/// read-only export. For `Flush`, `offset` and `len` are zero.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub cmd: Command,
    /// Byte offset into the export.
    pub offset: u64,
    /// Length in bytes.
    pub len: u32,
    /// Force unit access: the reply must not be sent before the data this
    /// request wrote is durable.
    pub fua: bool,
    /// For `WriteZeroes`: the range must stay allocated (no hole punched).
    pub no_hole: bool,
    /// For `Write`, the payload (`len` bytes). For `Read`, a zero-filled
    /// buffer of `len` bytes the export may fill and hand back to
    /// [`Completion::complete`]. Empty otherwise.
    pub data: Vec<u8>,
}

/// One device as seen by NBD clients.
///
/// `submit` must not block for long: it is called on the connection's
/// reader thread, and while it runs no further request of that connection
/// is read. Long work belongs on the export's own threads, which then call
/// [`Completion::complete`].
pub trait Export: Send + Sync {
    /// Size in bytes; should be a multiple of 512. Requests are checked
    /// against the value at the time they arrive.
    fn size(&self) -> u64;

    /// Whether writes, trims and zeroing are refused (`EPERM`).
    fn read_only(&self) -> bool;

    /// Start one request; answer it through `done`, now or later, from any
    /// thread. Dropping `done` unanswered replies `EIO`.
    ///
    /// The server announces `CAN_MULTI_CONN`: a flush or FUA write must
    /// cover writes completed through every connection to this export.
    fn submit(&self, req: Request, done: Completion);
}

/// The set of exports a [`Server`] offers.
pub trait Exports: Send + Sync + 'static {
    /// Open an export for a connection that chose it with GO or
    /// EXPORT_NAME. `None` answers "unknown export". The export counts as
    /// open by that connection until [`Exports::close`] is called.
    fn open(&self, name: &str) -> Option<Arc<dyn Export>>;

    /// Called exactly once for every successful `open`, when the connection
    /// has ended and every request it submitted has been completed.
    fn close(&self, name: &str);

    /// Names announced by `NBD_OPT_LIST`.
    fn list(&self) -> Vec<String>;

    /// Size and read-only state for `NBD_OPT_INFO`, which describes an
    /// export without selecting it. The default opens and closes it.
    fn info(&self, name: &str) -> Option<(u64, bool)> {
        let export = self.open(name)?;
        let info = (export.size(), export.read_only());
        drop(export);
        self.close(name);
        Some(info)
    }

    /// A human-readable description, sent when a client asks for
    /// `NBD_INFO_DESCRIPTION`. None by default.
    fn description(&self, _name: &str) -> Option<String> {
        None
    }

    /// The export a client gets when it asks for the empty name. None by
    /// default (the empty name is then an unknown export).
    fn default_export(&self) -> Option<String> {
        None
    }
}
