//! Fixtures for the end-to-end tests: a dmhost process on temporary image files, a raw client
//! of its control socket (frames built by hand, dictionaries with dmcore's plist writer), and a
//! small raw NBD client written from the protocol's numbers.

#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use dmcore::plist::{self, Dict, Limits, Value};

pub const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------

/// A deterministic pattern: byte `i` of the pattern seeded `seed`.
pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(u32::from(seed) * 7 + (i as u32 >> 9)) as u8).collect()
}

pub fn make_image(path: &Path, bytes: u64) {
    let f = File::create(path).unwrap();
    f.set_len(bytes).unwrap();
}

pub fn write_image(path: &Path, offset: u64, data: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(data, offset).unwrap();
}

pub fn read_image(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let f = File::open(path).unwrap();
    let mut buf = vec![0; len];
    f.read_exact_at(&mut buf, offset).unwrap();
    buf
}

// ---------------------------------------------------------------------------
// The dmhost process
// ---------------------------------------------------------------------------

pub struct Host {
    pub dir: tempfile::TempDir,
    pub control: PathBuf,
    pub nbd: PathBuf,
    pub images: Vec<PathBuf>,
    /// The TCP address from the ready line, when --nbd-tcp was given.
    pub tcp: Option<String>,
    pub child: Option<Child>,
    log: PathBuf,
}

impl Host {
    /// Starts dmhost with `images` image files of the given sizes (named a.img, b.img, ...)
    /// given as `--disk` in order, plus `extra` arguments.
    pub fn start(sizes: &[u64], extra: &[&str]) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let images: Vec<PathBuf> = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let path = dir.path().join(format!("{}.img", (b'a' + i as u8) as char));
                make_image(&path, size);
                path
            })
            .collect();
        let mut host = Host {
            control: dir.path().join("control.sock"),
            nbd: dir.path().join("nbd.sock"),
            log: dir.path().join("dmhost.log"),
            images,
            tcp: None,
            child: None,
            dir,
        };
        host.spawn(extra).expect("dmhost did not start");
        host
    }

    /// The dmhost command line for this host's paths.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "--control".to_owned(),
            self.control.display().to_string(),
            "--nbd-socket".to_owned(),
            self.nbd.display().to_string(),
            "-vv".to_owned(),
        ];
        for image in &self.images {
            args.push("--disk".to_owned());
            args.push(image.display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Starts the process and waits for its ready line; `Err` carries its log when it exited.
    pub fn spawn(&mut self, extra: &[&str]) -> Result<(), String> {
        let log = File::create(&self.log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_dmhost"))
            .args(self.args(extra))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(30));
        match line {
            Ok(line) => {
                assert!(line.starts_with("dmhost ready control="), "unexpected first line {line:?}");
                self.tcp = line.split(' ').find_map(|w| w.strip_prefix("nbd-tcp=")).map(str::to_owned);
                self.child = Some(child);
                Ok(())
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                Err(format!("dmhost exited ({status}) without a ready line:\n{}", self.log()))
            }
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn image(&self, i: usize) -> &Path {
        &self.images[i]
    }

    pub fn control(&self) -> Control {
        Control::connect(&self.control)
    }

    pub fn nbd(&self, export: &str) -> Nbd {
        Nbd::unix(&self.nbd, export).unwrap_or_else(|e| panic!("NBD connect to {export}: {e}\n{}", self.log()))
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with the pid of a child process this test started and still owns.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0);
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "dmhost did not exit in {timeout:?}\n{}", self.log());
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!("---- dmhost log ----\n{}", self.log());
        }
    }
}

// ---------------------------------------------------------------------------
// Control socket
// ---------------------------------------------------------------------------

/// One reply frame.
#[derive(Debug)]
pub struct Answer {
    pub transport: i32,
    pub command: i32,
    /// The reply text including its NUL, as received.
    pub text: Vec<u8>,
    pub detail: String,
}

impl Answer {
    pub fn dict(&self) -> Dict {
        assert_eq!(self.text.last(), Some(&0), "reply text must end in NUL");
        plist::parse_dict(&self.text, &Limits::DM).unwrap()
    }

    pub fn ok(self) -> Answer {
        assert_eq!((self.transport, self.command), (0, 0), "command failed: {self:?}");
        self
    }
}

pub struct Control {
    pub stream: UnixStream,
}

pub fn request(command: &str, name: &str) -> Dict {
    let mut d = Dict::new();
    d.set_string("command", command.as_bytes());
    d.insert("version", Value::Array(vec![Value::unsigned(4), Value::unsigned(16), Value::unsigned(0)]));
    if !name.is_empty() {
        d.set_string("name", name.as_bytes());
    }
    d
}

/// A `reload` request with table lines `(start, length, type, params)`.
pub fn reload(name: &str, lines: &[(u64, u64, &str, &str)]) -> Dict {
    let mut d = request("reload", name);
    let entries = lines
        .iter()
        .map(|&(start, len, ty, params)| {
            let mut e = Dict::new();
            e.set_u64("start", start);
            e.set_u64("length", len);
            e.set_string("type", ty.as_bytes());
            e.set_string("params", params.as_bytes());
            Value::Dict(e)
        })
        .collect();
    d.insert("cmd_data", Value::Array(entries));
    d
}

/// Frames `text` + NUL.
pub fn frame(text: &[u8]) -> Vec<u8> {
    let mut out = ((text.len() + 1) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(text);
    out.push(0);
    out
}

impl Control {
    pub fn connect(path: &Path) -> Control {
        let stream = UnixStream::connect(path).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Control { stream }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn read_answer(&mut self) -> io::Result<Answer> {
        let transport = read_u32(&mut self.stream)? as i32;
        let command = read_u32(&mut self.stream)? as i32;
        let m = read_u32(&mut self.stream)?;
        assert!(m < 64 << 20);
        let mut text = vec![0; m as usize];
        self.stream.read_exact(&mut text)?;
        let k = read_u32(&mut self.stream)?;
        assert!(k < 1 << 20);
        let mut detail = vec![0; k as usize];
        self.stream.read_exact(&mut detail)?;
        Ok(Answer { transport, command, text, detail: String::from_utf8(detail).unwrap() })
    }

    pub fn run(&mut self, dict: &Dict) -> Answer {
        self.send_raw(&frame(&plist::write_dict(dict)));
        self.read_answer().unwrap()
    }

    pub fn cmd(&mut self, command: &str, name: &str) -> Answer {
        self.run(&request(command, name))
    }

    /// create + reload + resume.
    pub fn make_device(&mut self, name: &str, lines: &[(u64, u64, &str, &str)]) {
        self.cmd("create", name).ok();
        let answer = self.run(&reload(name, lines));
        assert_eq!((answer.transport, answer.command), (0, 0), "reload of {name} failed: {}", answer.detail);
        self.cmd("resume", name).ok();
    }

    /// Whether the peer closed the connection (reads end of file).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0))
    }
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

// ---------------------------------------------------------------------------
// NBD client
// ---------------------------------------------------------------------------

pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
pub const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
pub const OPT_GO: u32 = 7;
pub const REP_ACK: u32 = 1;
pub const REP_INFO: u32 = 3;
pub const INFO_EXPORT: u16 = 0;

pub const CMD_READ: u16 = 0;
pub const CMD_WRITE: u16 = 1;
pub const CMD_DISC: u16 = 2;
pub const CMD_FLUSH: u16 = 3;
pub const CMD_TRIM: u16 = 4;
pub const CMD_WRITE_ZEROES: u16 = 6;
pub const FLAG_FUA: u16 = 1;

pub const TFLAG_READ_ONLY: u16 = 1 << 1;

pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream {
    fn set_read_timeout(&self, t: Option<Duration>) {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t).unwrap(),
            Stream::Tcp(s) => s.set_read_timeout(t).unwrap(),
        }
    }
}

pub struct Nbd {
    pub stream: Stream,
    pub size: u64,
    pub flags: u16,
    next_handle: u64,
}

/// A simple reply: the error and, for a successful read, the data.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub handle: u64,
    pub error: u32,
    pub data: Vec<u8>,
}

impl Nbd {
    pub fn unix(path: &Path, export: &str) -> io::Result<Nbd> {
        Nbd::handshake(Stream::Unix(UnixStream::connect(path)?), export)
    }

    pub fn tcp(addr: &str, export: &str) -> io::Result<Nbd> {
        Nbd::handshake(Stream::Tcp(TcpStream::connect(addr)?), export)
    }

    /// Fixed newstyle, NO_ZEROES, then NBD_OPT_GO for `export`.
    fn handshake(mut stream: Stream, export: &str) -> io::Result<Nbd> {
        stream.set_read_timeout(Some(Duration::from_secs(30)));
        let mut hello = [0u8; 18];
        stream.read_exact(&mut hello)?;
        assert_eq!(u64::from_be_bytes(hello[0..8].try_into().unwrap()), NBDMAGIC);
        assert_eq!(u64::from_be_bytes(hello[8..16].try_into().unwrap()), IHAVEOPT);
        stream.write_all(&3u32.to_be_bytes())?;
        let mut opt = Vec::new();
        opt.extend_from_slice(&IHAVEOPT.to_be_bytes());
        opt.extend_from_slice(&OPT_GO.to_be_bytes());
        opt.extend_from_slice(&(4 + export.len() as u32 + 2).to_be_bytes());
        opt.extend_from_slice(&(export.len() as u32).to_be_bytes());
        opt.extend_from_slice(export.as_bytes());
        opt.extend_from_slice(&0u16.to_be_bytes());
        stream.write_all(&opt)?;
        let mut size = None;
        let mut flags = 0;
        loop {
            let mut hdr = [0u8; 20];
            stream.read_exact(&mut hdr)?;
            assert_eq!(u64::from_be_bytes(hdr[0..8].try_into().unwrap()), REPLY_MAGIC);
            let kind = u32::from_be_bytes(hdr[12..16].try_into().unwrap());
            let len = u32::from_be_bytes(hdr[16..20].try_into().unwrap());
            let mut data = vec![0u8; len as usize];
            stream.read_exact(&mut data)?;
            if kind & 0x8000_0000 != 0 {
                return Err(io::Error::other(format!("export {export:?} refused: reply type {kind:#x}")));
            }
            if kind == REP_INFO && data.len() >= 12 && data[0..2] == INFO_EXPORT.to_be_bytes() {
                size = Some(u64::from_be_bytes(data[2..10].try_into().unwrap()));
                flags = u16::from_be_bytes(data[10..12].try_into().unwrap());
            }
            if kind == REP_ACK {
                break;
            }
        }
        let size = size.ok_or_else(|| io::Error::other("no NBD_INFO_EXPORT"))?;
        Ok(Nbd { stream, size, flags, next_handle: 1 })
    }

    /// Sends one request; returns its handle.
    pub fn send(&mut self, cmd: u16, flags: u16, offset: u64, len: u32, payload: &[u8]) -> u64 {
        let handle = self.next_handle;
        self.next_handle += 1;
        let mut req = Vec::with_capacity(28 + payload.len());
        req.extend_from_slice(&REQUEST_MAGIC.to_be_bytes());
        req.extend_from_slice(&flags.to_be_bytes());
        req.extend_from_slice(&cmd.to_be_bytes());
        req.extend_from_slice(&handle.to_be_bytes());
        req.extend_from_slice(&offset.to_be_bytes());
        req.extend_from_slice(&len.to_be_bytes());
        req.extend_from_slice(payload);
        self.stream.write_all(&req).unwrap();
        handle
    }

    /// Reads one simple reply; `read_len` is the payload a successful read carries.
    pub fn reply(&mut self, read_len: usize) -> io::Result<Reply> {
        let mut hdr = [0u8; 16];
        self.stream.read_exact(&mut hdr)?;
        assert_eq!(u32::from_be_bytes(hdr[0..4].try_into().unwrap()), SIMPLE_REPLY_MAGIC);
        let error = u32::from_be_bytes(hdr[4..8].try_into().unwrap());
        let handle = u64::from_be_bytes(hdr[8..16].try_into().unwrap());
        let mut data = Vec::new();
        if error == 0 && read_len > 0 {
            data = vec![0u8; read_len];
            self.stream.read_exact(&mut data)?;
        }
        Ok(Reply { handle, error, data })
    }

    /// Whether a reply arrives within `wait` (consumes what it reads).
    pub fn reply_within(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait));
        let mut b = [0u8; 1];
        let got = match self.stream.read(&mut b) {
            Ok(n) => n > 0,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => false,
            Err(e) => panic!("NBD socket: {e}"),
        };
        self.stream.set_read_timeout(Some(Duration::from_secs(30)));
        got
    }

    pub fn read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, u32> {
        let h = self.send(CMD_READ, 0, offset, len, &[]);
        let r = self.reply(len as usize).unwrap();
        assert_eq!(r.handle, h);
        if r.error == 0 {
            Ok(r.data)
        } else {
            Err(r.error)
        }
    }

    pub fn write_flags(&mut self, offset: u64, data: &[u8], flags: u16) -> u32 {
        let h = self.send(CMD_WRITE, flags, offset, data.len() as u32, data);
        let r = self.reply(0).unwrap();
        assert_eq!(r.handle, h);
        r.error
    }

    pub fn write(&mut self, offset: u64, data: &[u8]) -> u32 {
        self.write_flags(offset, data, 0)
    }

    pub fn simple(&mut self, cmd: u16, offset: u64, len: u32) -> u32 {
        let h = self.send(cmd, 0, offset, len, &[]);
        let r = self.reply(0).unwrap();
        assert_eq!(r.handle, h);
        r.error
    }

    /// NBD_CMD_DISC, then close.
    pub fn disconnect(mut self) {
        self.send(CMD_DISC, 0, 0, 0, &[]);
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
