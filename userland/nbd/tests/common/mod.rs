//! Test fixtures: a RAM-backed export with controllable completion, a set of
//! exports that counts opens and closes, and a small raw NBD client that
//! speaks the wire protocol byte by byte (written independently of the
//! crate's own `proto` module, so that both sides are checked against the
//! numbers in the protocol, not against each other).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dm_nbd::{Command, Completion, Errno, Export, Exports, Request, Server};

// ---------------------------------------------------------------------------
// Wire numbers, spelled out from the protocol description
// ---------------------------------------------------------------------------

pub const NBDMAGIC: u64 = 0x4e42444d41474943;
pub const IHAVEOPT: u64 = 0x49484156454f5054;
pub const REPLY_MAGIC: u64 = 0x3e889045565a9;
pub const REQ_MAGIC: u32 = 0x25609513;
pub const SIMPLE_MAGIC: u32 = 0x67446698;

pub const OPT_EXPORT_NAME: u32 = 1;
pub const OPT_ABORT: u32 = 2;
pub const OPT_LIST: u32 = 3;
pub const OPT_STARTTLS: u32 = 5;
pub const OPT_INFO: u32 = 6;
pub const OPT_GO: u32 = 7;
pub const OPT_STRUCTURED_REPLY: u32 = 8;
pub const OPT_LIST_META_CONTEXT: u32 = 9;
pub const OPT_SET_META_CONTEXT: u32 = 10;

pub const REP_ACK: u32 = 1;
pub const REP_SERVER: u32 = 2;
pub const REP_INFO: u32 = 3;
pub const REP_ERR_UNSUP: u32 = 0x8000_0001;
pub const REP_ERR_INVALID: u32 = 0x8000_0003;
pub const REP_ERR_UNKNOWN: u32 = 0x8000_0006;

pub const INFO_EXPORT: u16 = 0;
pub const INFO_NAME: u16 = 1;
pub const INFO_DESCRIPTION: u16 = 2;
pub const INFO_BLOCK_SIZE: u16 = 3;

pub const CMD_READ: u16 = 0;
pub const CMD_WRITE: u16 = 1;
pub const CMD_DISC: u16 = 2;
pub const CMD_FLUSH: u16 = 3;
pub const CMD_TRIM: u16 = 4;
pub const CMD_WRITE_ZEROES: u16 = 6;
pub const FLAG_FUA: u16 = 1;
pub const FLAG_NO_HOLE: u16 = 2;

pub const EPERM: u32 = 1;
pub const EIO: u32 = 5;
pub const EINVAL: u32 = 22;

/// HAS_FLAGS | SEND_FLUSH | SEND_FUA | SEND_TRIM | SEND_WRITE_ZEROES | CAN_MULTI_CONN
pub const RW_FLAGS: u16 = 0x0001 | 0x0004 | 0x0008 | 0x0020 | 0x0040 | 0x0100;
pub const READ_ONLY: u16 = 0x0002;

// ---------------------------------------------------------------------------
// RAM export
// ---------------------------------------------------------------------------

/// How the RAM export answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Complete every request inside `submit`.
    Immediate,
    /// Hold every request until the test releases it.
    Gated,
    /// Reads at offset 0 complete 300 ms later on another thread; the
    /// rest complete at once.
    DelayOffsetZero,
    /// Requests at offset 0 are dropped without an answer (EIO expected).
    DropOffsetZero,
}

/// What the export saw of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub cmd: Command,
    pub offset: u64,
    pub len: u32,
    pub fua: bool,
    pub no_hole: bool,
}

pub struct RamExport {
    pub data: Mutex<Vec<u8>>,
    pub read_only: bool,
    pub mode: Mode,
    pub log: Mutex<Vec<Seen>>,
    held: Mutex<Vec<(Request, Completion)>>,
    held_cv: Condvar,
}

impl RamExport {
    pub fn new(size: usize, read_only: bool, mode: Mode) -> Arc<RamExport> {
        // A recognisable pattern: every 512-byte sector starts with its number.
        let mut data = vec![0u8; size];
        for (i, sector) in data.chunks_mut(512).enumerate() {
            sector.fill((i % 251) as u8);
        }
        Arc::new(RamExport {
            data: Mutex::new(data),
            read_only,
            mode,
            log: Mutex::new(Vec::new()),
            held: Mutex::new(Vec::new()),
            held_cv: Condvar::new(),
        })
    }

    /// Carry out a request on the RAM image.
    pub fn execute(&self, req: &Request) -> Result<Vec<u8>, Errno> {
        let mut data = self.data.lock().unwrap();
        let start = usize::try_from(req.offset).map_err(|_| Errno::Inval)?;
        let end = start + req.len as usize;
        let range = data.get_mut(start..end).ok_or(Errno::Inval)?;
        match req.cmd {
            Command::Read => Ok(range.to_vec()),
            Command::Write => {
                range.copy_from_slice(&req.data);
                Ok(Vec::new())
            }
            Command::Trim | Command::WriteZeroes => {
                range.fill(0);
                Ok(Vec::new())
            }
            Command::Flush => Ok(Vec::new()),
        }
    }

    pub fn held(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Wait until at least `n` requests are held.
    pub fn wait_held(&self, n: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut held = self.held.lock().unwrap();
        while held.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            held = self.held_cv.wait_timeout(held, left).unwrap().0;
        }
        true
    }

    /// Complete every held request, newest first.
    pub fn release_reversed(&self) -> usize {
        let taken: Vec<_> = std::mem::take(&mut *self.held.lock().unwrap());
        let n = taken.len();
        for (req, done) in taken.into_iter().rev() {
            let result = self.execute(&req);
            done.complete(result);
        }
        n
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    pub fn bytes(&self, offset: usize, len: usize) -> Vec<u8> {
        self.data.lock().unwrap()[offset..offset + len].to_vec()
    }
}

impl Export for RamExport {
    fn size(&self) -> u64 {
        self.data.lock().unwrap().len() as u64
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn submit(&self, req: Request, done: Completion) {
        self.log.lock().unwrap().push(Seen {
            cmd: req.cmd,
            offset: req.offset,
            len: req.len,
            fua: req.fua,
            no_hole: req.no_hole,
        });
        match self.mode {
            Mode::Immediate => done.complete(self.execute(&req)),
            Mode::Gated => {
                self.held.lock().unwrap().push((req, done));
                self.held_cv.notify_all();
            }
            Mode::DelayOffsetZero if req.offset == 0 && req.cmd == Command::Read => {
                let result = self.execute(&req);
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(300));
                    done.complete(result);
                });
            }
            Mode::DropOffsetZero if req.offset == 0 => drop(done),
            _ => done.complete(self.execute(&req)),
        }
    }
}

// ---------------------------------------------------------------------------
// The export set
// ---------------------------------------------------------------------------

#[derive(Default)]
pub struct RamExports {
    pub exports: Vec<(String, Arc<RamExport>)>,
    pub default: Option<String>,
    counts: Mutex<HashMap<String, (usize, usize)>>,
    counts_cv: Condvar,
}

impl RamExports {
    pub fn new(exports: Vec<(&str, Arc<RamExport>)>, default: Option<&str>) -> Arc<RamExports> {
        Arc::new(RamExports {
            exports: exports.into_iter().map(|(n, e)| (n.to_string(), e)).collect(),
            default: default.map(str::to_string),
            ..Default::default()
        })
    }

    /// (opens, closes) of one export so far.
    pub fn counts(&self, name: &str) -> (usize, usize) {
        self.counts.lock().unwrap().get(name).copied().unwrap_or((0, 0))
    }

    /// Wait until `name` has been closed `n` times.
    pub fn wait_closes(&self, name: &str, n: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut counts = self.counts.lock().unwrap();
        while counts.get(name).map_or(0, |c| c.1) < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            counts = self.counts_cv.wait_timeout(counts, left).unwrap().0;
        }
        true
    }
}

impl Exports for RamExports {
    fn open(&self, name: &str) -> Option<Arc<dyn Export>> {
        let export = self.exports.iter().find(|(n, _)| n == name)?.1.clone();
        self.counts.lock().unwrap().entry(name.to_string()).or_default().0 += 1;
        Some(export)
    }

    fn close(&self, name: &str) {
        self.counts.lock().unwrap().entry(name.to_string()).or_default().1 += 1;
        self.counts_cv.notify_all();
    }

    fn list(&self) -> Vec<String> {
        self.exports.iter().map(|(n, _)| n.clone()).collect()
    }

    fn description(&self, name: &str) -> Option<String> {
        Some(format!("RAM disk {name}"))
    }

    fn default_export(&self) -> Option<String> {
        self.default.clone()
    }
}

// ---------------------------------------------------------------------------
// Server set-up
// ---------------------------------------------------------------------------

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory for sockets and images, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("dm-nbd-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Running {
    pub server: Server,
    pub socket: PathBuf,
    pub exports: Arc<RamExports>,
    pub _dir: TempDir,
}

impl Running {
    pub fn client(&self) -> Client {
        Client::unix(&self.socket)
    }
}

/// A server on a Unix socket offering `exports`.
pub fn start(exports: Arc<RamExports>) -> Running {
    let dir = TempDir::new();
    let socket = dir.path("nbd.sock");
    let server = Server::new(exports.clone());
    server.listen_unix(&socket).unwrap();
    Running { server, socket, exports, _dir: dir }
}

/// The usual fixture: "disk" (1 MiB, read-write, immediate) and "ro"
/// (64 KiB, read-only), with "disk" as the default export.
pub fn start_default() -> (Running, Arc<RamExport>, Arc<RamExport>) {
    let disk = RamExport::new(1 << 20, false, Mode::Immediate);
    let ro = RamExport::new(64 << 10, true, Mode::Immediate);
    let exports = RamExports::new(vec![("disk", disk.clone()), ("ro", ro.clone())], Some("disk"));
    (start(exports), disk, ro)
}

// ---------------------------------------------------------------------------
// Raw client
// ---------------------------------------------------------------------------

pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

pub struct Client {
    pub s: Box<dyn Stream>,
}

/// One option reply as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptReply {
    pub option: u32,
    pub kind: u32,
    pub data: Vec<u8>,
}

pub fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes(b[..2].try_into().unwrap())
}
pub fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}
pub fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap())
}

/// The payload of an INFO/GO option.
pub fn info_payload(name: &str, items: &[u16]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&(name.len() as u32).to_be_bytes());
    p.extend_from_slice(name.as_bytes());
    p.extend_from_slice(&(items.len() as u16).to_be_bytes());
    for i in items {
        p.extend_from_slice(&i.to_be_bytes());
    }
    p
}

impl Client {
    pub fn unix(path: &Path) -> Client {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { s: Box::new(s) }
    }

    pub fn tcp(addr: std::net::SocketAddr) -> Client {
        let s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { s: Box::new(s) }
    }

    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        self.s.read_exact(&mut b).unwrap();
        b
    }

    /// Read the greeting, check it, and answer with `flags`.
    pub fn handshake_with(&mut self, flags: u32) {
        let g = self.read_n(18);
        assert_eq!(be64(&g[0..]), NBDMAGIC);
        assert_eq!(be64(&g[8..]), IHAVEOPT);
        assert_eq!(be16(&g[16..]), 0x0003, "FIXED_NEWSTYLE | NO_ZEROES");
        self.s.write_all(&flags.to_be_bytes()).unwrap();
    }

    /// Handshake as a modern client: FIXED_NEWSTYLE | NO_ZEROES.
    pub fn handshake(mut self) -> Client {
        self.handshake_with(3);
        self
    }

    pub fn send_option(&mut self, option: u32, payload: &[u8]) {
        let mut m = Vec::new();
        m.extend_from_slice(&IHAVEOPT.to_be_bytes());
        m.extend_from_slice(&option.to_be_bytes());
        m.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        m.extend_from_slice(payload);
        self.s.write_all(&m).unwrap();
    }

    pub fn option_reply(&mut self) -> OptReply {
        let h = self.read_n(20);
        assert_eq!(be64(&h), REPLY_MAGIC, "option reply magic");
        let len = be32(&h[16..]) as usize;
        OptReply { option: be32(&h[8..]), kind: be32(&h[12..]), data: self.read_n(len) }
    }

    /// Replies up to and including the first that is not REP_INFO/REP_SERVER.
    pub fn option_replies(&mut self) -> Vec<OptReply> {
        let mut all = Vec::new();
        loop {
            let r = self.option_reply();
            let last = r.kind != REP_INFO && r.kind != REP_SERVER;
            all.push(r);
            if last {
                return all;
            }
        }
    }

    /// GO to `name`; panics unless it succeeds. Returns (size, flags).
    pub fn go(&mut self, name: &str) -> (u64, u16) {
        self.send_option(OPT_GO, &info_payload(name, &[INFO_BLOCK_SIZE]));
        let replies = self.option_replies();
        assert_eq!(replies.last().unwrap().kind, REP_ACK, "GO {name:?}: {replies:?}");
        let export =
            replies.iter().find(|r| r.kind == REP_INFO && be16(&r.data) == INFO_EXPORT).expect("NBD_INFO_EXPORT");
        assert_eq!(export.data.len(), 12);
        (be64(&export.data[2..]), be16(&export.data[10..]))
    }

    /// Connect-handshake-GO in one.
    pub fn open(path: &Path, name: &str) -> (Client, u64, u16) {
        let mut c = Client::unix(path).handshake();
        let (size, flags) = c.go(name);
        (c, size, flags)
    }

    pub fn request(&mut self, flags: u16, kind: u16, handle: u64, offset: u64, len: u32, payload: &[u8]) {
        let mut m = Vec::with_capacity(28 + payload.len());
        m.extend_from_slice(&REQ_MAGIC.to_be_bytes());
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&kind.to_be_bytes());
        m.extend_from_slice(&handle.to_be_bytes());
        m.extend_from_slice(&offset.to_be_bytes());
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(payload);
        self.s.write_all(&m).unwrap();
    }

    /// A simple reply header: (error, handle).
    pub fn reply(&mut self) -> (u32, u64) {
        let h = self.read_n(16);
        assert_eq!(be32(&h), SIMPLE_MAGIC, "simple reply magic");
        (be32(&h[4..]), be64(&h[8..]))
    }

    pub fn read(&mut self, handle: u64, offset: u64, len: u32) -> Result<Vec<u8>, u32> {
        self.request(0, CMD_READ, handle, offset, len, &[]);
        let (err, h) = self.reply();
        assert_eq!(h, handle);
        if err == 0 {
            Ok(self.read_n(len as usize))
        } else {
            Err(err)
        }
    }

    /// Send a command without payload and return its error.
    pub fn cmd(&mut self, flags: u16, kind: u16, handle: u64, offset: u64, len: u32) -> u32 {
        self.request(flags, kind, handle, offset, len, &[]);
        let (err, h) = self.reply();
        assert_eq!(h, handle);
        err
    }

    pub fn write(&mut self, flags: u16, handle: u64, offset: u64, data: &[u8]) -> u32 {
        self.request(flags, CMD_WRITE, handle, offset, data.len() as u32, data);
        let (err, h) = self.reply();
        assert_eq!(h, handle);
        err
    }

    pub fn disconnect(mut self) {
        self.request(0, CMD_DISC, 0, 0, 0, &[]);
        self.expect_closed();
    }

    /// The server must close the connection: the next read sees end of
    /// file (or a reset), not a timeout and not data.
    pub fn expect_closed(&mut self) {
        let mut b = [0u8; 1];
        match self.s.read(&mut b) {
            Ok(0) => {}
            Ok(_) => panic!("expected the connection to be closed, got data"),
            Err(e) => assert!(
                !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
                "expected the connection to be closed, timed out"
            ),
        }
    }
}

/// A buffer of `len` bytes with a position-dependent pattern.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}
