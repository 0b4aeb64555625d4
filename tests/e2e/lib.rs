//! Fixtures of the end-to-end tests: the real `dmhost` and `dmctl` binaries (built once per test
//! process with cargo, in the target directory the tests run from), a dmhost process on image
//! files in a temporary directory, the two dmctl front-ends (`dmctl ...` and `dmsetup ...`, the
//! latter through a symlink named `dmsetup`), qemu-io and qemu-img from Debian's qemu-utils, a
//! pipelined NBD client, and a model of linear and striped tables that says at which offset of
//! which image file every byte of a mapped device lives.
//!
//! Nothing here sleeps to wait for something that announces itself: dmhost is ready when it
//! prints its `dmhost ready` line, and a process has ended when `wait` says so. Where dmhost
//! announces nothing (an NBD connection being torn down), [`eventually`] polls the observable
//! state with a deadline.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const SECTOR: u64 = 512;

/// How long dmhost may take to print its ready line, and to exit after SIGTERM.
const STARTUP: Duration = Duration::from_secs(60);
const SHUTDOWN: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// The binaries
// ---------------------------------------------------------------------------

/// The binaries under test.
#[derive(Debug)]
pub struct Bins {
    pub dmhost: PathBuf,
    pub dmctl: PathBuf,
}

/// Builds `dmhost` and `dmctl` (once per test process) and returns their paths.
///
/// A test executable lives in `TARGET/PROFILE/deps/`, so the binaries of the same profile are
/// in `TARGET/PROFILE/`: cargo builds them there with `CARGO_TARGET_DIR=TARGET` (a no-op when
/// `cargo test --workspace` has just built them). `DM_E2E_BIN_DIR` names a directory holding
/// prebuilt binaries instead, and skips the build.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        if let Some(dir) = std::env::var_os("DM_E2E_BIN_DIR") {
            let dir = PathBuf::from(dir);
            return locate(&dir).unwrap_or_else(|e| panic!("DM_E2E_BIN_DIR={}: {e}", dir.display()));
        }
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe.parent().and_then(Path::parent).expect("test executable outside TARGET/PROFILE/deps");
        let target_dir = profile_dir.parent().expect("profile directory has a parent");
        let profile = profile_dir.file_name().and_then(OsStr::to_str).unwrap_or("debug");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "dmhost", "-p", "dmctl"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CARGO_TARGET_DIR", target_dir)
            .stdin(Stdio::null());
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let out = cmd.output().expect("cannot run cargo");
        assert!(
            out.status.success(),
            "cargo build -p dmhost -p dmctl failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        locate(profile_dir).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn locate(dir: &Path) -> Result<Bins, String> {
    let bins = Bins { dmhost: dir.join("dmhost"), dmctl: dir.join("dmctl") };
    for bin in [&bins.dmhost, &bins.dmctl] {
        if !bin.is_file() {
            return Err(format!("{} is missing", bin.display()));
        }
    }
    Ok(bins)
}

/// Whether `program` is on `PATH`.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Prints a SKIP line and returns true when a tool the test needs is missing.
pub fn skip_without(program: &str, test: &str) -> bool {
    if have(program) {
        return false;
    }
    // Written to stderr directly so that it shows even when the harness captures output.
    let _ = writeln!(
        io::stderr(),
        "SKIP {test}: {program} is not installed (Debian: apt-get install qemu-utils, or bash scripts/install-deps.sh)"
    );
    true
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// What a finished command left.
#[derive(Debug, Clone)]
pub struct Run {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit status 0 and returns the run.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "{} failed:\nstdout:\n{}\nstderr:\n{}", self.what, self.stdout, self.stderr);
        self
    }

    /// Asserts the exit status `code` and returns the run.
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "{}: expected exit status {code}:\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `cmd` to completion, feeding it `stdin`.
pub fn run(mut cmd: Command, stdin: &str) -> Run {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let text = stdin.to_owned();
    let feeder = thread::spawn(move || {
        // A program that does not read its input closes the pipe; that is not an error here.
        let _ = input.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let _ = feeder.join();
    Run {
        what,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------
// Image files
// ---------------------------------------------------------------------------

pub fn make_image(path: &Path, bytes: u64) {
    File::create(path).and_then(|f| f.set_len(bytes)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

pub fn read_file_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let f = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0; len];
    f.read_exact_at(&mut buf, offset).unwrap_or_else(|e| panic!("{} at {offset}: {e}", path.display()));
    buf
}

pub fn write_file_at(path: &Path, offset: u64, data: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all_at(data, offset).unwrap_or_else(|e| panic!("{} at {offset}: {e}", path.display()));
}

/// splitmix64: a deterministic, well-mixed 64-bit function.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Data that is different at every 8-byte position of a device and for every `seed`: where a
/// byte of it lands tells which write put it there and from which device offset it came.
/// `dev_offset` must be a multiple of 8.
pub fn tagged(seed: u64, dev_offset: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut word = dev_offset / 8;
    while out.len() < len {
        let value = mix(seed.rotate_left(32) ^ word);
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&value.to_le_bytes()[..take]);
        word += 1;
    }
    out
}

/// A small deterministic random number generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

// ---------------------------------------------------------------------------
// The mapping model
// ---------------------------------------------------------------------------

/// One target of a table, in bytes.
#[derive(Clone, Debug)]
pub enum Target {
    /// The whole line maps onto image `image` from byte `offset` on.
    Linear { image: usize, offset: u64 },
    /// Chunks of `chunk` bytes go round-robin to the stripes `(image, offset)`.
    Striped { chunk: u64, stripes: Vec<(usize, u64)> },
}

/// A table: lines `(start, length, target)` in bytes, in order and without gaps.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub lines: Vec<(u64, u64, Target)>,
}

impl Layout {
    pub fn new() -> Layout {
        Layout::default()
    }

    /// Appends a line of `length` bytes.
    pub fn push(mut self, length: u64, target: Target) -> Layout {
        let start = self.size();
        self.lines.push((start, length, target));
        self
    }

    pub fn size(&self) -> u64 {
        self.lines.last().map_or(0, |(start, len, _)| start + len)
    }

    /// Where device byte `offset` lives: `(image, image offset, bytes that follow contiguously)`.
    pub fn locate(&self, offset: u64) -> (usize, u64, u64) {
        let (start, len, target) =
            self.lines.iter().find(|(s, l, _)| (*s..s + l).contains(&offset)).expect("offset outside the table");
        let rel = offset - start;
        let line_left = len - rel;
        match target {
            Target::Linear { image, offset } => (*image, offset + rel, line_left),
            Target::Striped { chunk, stripes } => {
                let n = stripes.len() as u64;
                let chunk_no = rel / chunk;
                let within = rel % chunk;
                let (image, base) = stripes[(chunk_no % n) as usize];
                (image, base + (chunk_no / n) * chunk + within, (chunk - within).min(line_left))
            }
        }
    }

    /// Compares `expected` (the device's bytes from `offset` on) with the image files.
    #[track_caller]
    pub fn assert_images(&self, images: &[PathBuf], offset: u64, expected: &[u8]) {
        let mut done = 0usize;
        while done < expected.len() {
            let (image, at, run) = self.locate(offset + done as u64);
            let n = (run as usize).min(expected.len() - done);
            let found = read_file_at(&images[image], at, n);
            if found != expected[done..done + n] {
                let first = found.iter().zip(&expected[done..]).position(|(a, b)| a != b).unwrap_or(0);
                panic!(
                    "device byte {} should be in {} at {}: found {:02x?}, expected {:02x?}",
                    offset + (done + first) as u64,
                    images[image].display(),
                    at + first as u64,
                    &found[first..(first + 16).min(n)],
                    &expected[done + first..(done + first + 16).min(done + n)],
                );
            }
            done += n;
        }
    }
}

// ---------------------------------------------------------------------------
// dmhost
// ---------------------------------------------------------------------------

/// A dmhost process on image files in a temporary directory.
pub struct Host {
    pub dir: tempfile::TempDir,
    pub control: PathBuf,
    pub nbd: PathBuf,
    pub images: Vec<PathBuf>,
    child: Option<Child>,
    log: PathBuf,
    dmsetup: PathBuf,
}

impl Host {
    /// Starts dmhost on image files `a.img`, `b.img`, ... of the given sizes, registered in
    /// that order (so numbered 254:0, 254:16, 254:32, ...), with `extra` arguments.
    pub fn start(sizes: &[u64], extra: &[&str]) -> Host {
        let dir = tempfile::Builder::new().prefix("dm-e2e.").tempdir().expect("tempdir");
        let images: Vec<PathBuf> =
            (0..sizes.len()).map(|i| dir.path().join(format!("{}.img", (b'a' + i as u8) as char))).collect();
        for (path, &size) in images.iter().zip(sizes) {
            make_image(path, size);
        }
        let dmsetup = dir.path().join("dmsetup");
        std::os::unix::fs::symlink(&bins().dmctl, &dmsetup).expect("symlink dmsetup");
        let mut host = Host {
            control: dir.path().join("control.sock"),
            nbd: dir.path().join("nbd.sock"),
            log: dir.path().join("dmhost.log"),
            images,
            child: None,
            dmsetup,
            dir,
        };
        host.spawn(extra);
        host
    }

    /// Starts a new dmhost on the same image files and socket paths, after [`Host::stop`].
    pub fn restart(&mut self, extra: &[&str]) {
        assert!(self.child.is_none(), "dmhost is still running");
        self.spawn(extra);
    }

    fn spawn(&mut self, extra: &[&str]) {
        let log = File::create(&self.log).expect("log file");
        let mut cmd = Command::new(&bins().dmhost);
        cmd.arg("--control").arg(&self.control).arg("--nbd-socket").arg(&self.nbd).arg("-v");
        for image in &self.images {
            cmd.arg("--disk").arg(image);
        }
        cmd.args(extra).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
        let mut child = cmd.spawn().expect("cannot start dmhost");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        match rx.recv_timeout(STARTUP) {
            Ok(line) => {
                let expected =
                    format!("dmhost ready control={} nbd-unix={}", self.control.display(), self.nbd.display());
                assert_eq!(line, expected, "unexpected ready line");
                self.child = Some(child);
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("dmhost did not get ready ({status:?}):\n{}", self.log());
            }
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The image files' paths as strings (for table lines).
    pub fn image(&self, i: usize) -> String {
        self.images[i].display().to_string()
    }

    fn tool(&self, program: &Path, args: &[&str], stdin: &str) -> Run {
        let mut cmd = Command::new(program);
        cmd.args(args).env("DM_CONTROL", format!("unix:{}", self.control.display())).env_remove("DM_MAJOR");
        run(cmd, stdin)
    }

    /// The real dmctl binary (NetBSD syntax; `setup ...` for dmsetup syntax).
    pub fn dmctl(&self, args: &[&str]) -> Run {
        self.tool(&bins().dmctl, args, "")
    }

    pub fn dmctl_in(&self, args: &[&str], stdin: &str) -> Run {
        self.tool(&bins().dmctl, args, stdin)
    }

    /// The real dmctl binary invoked as `dmsetup`.
    pub fn dmsetup(&self, args: &[&str]) -> Run {
        self.tool(&self.dmsetup, args, "")
    }

    pub fn dmsetup_in(&self, args: &[&str], stdin: &str) -> Run {
        self.tool(&self.dmsetup, args, stdin)
    }

    /// The NBD URI of an export, as qemu's tools take it.
    pub fn uri(&self, export: &str) -> String {
        format!("nbd+unix:///{export}?socket={}", self.nbd.display())
    }

    /// qemu-io on an export, running `commands` in order.
    pub fn qemu_io(&self, export: &str, commands: &[String]) -> Run {
        let mut cmd = Command::new("qemu-io");
        cmd.args(["-f", "raw"]);
        for c in commands {
            cmd.arg("-c").arg(c);
        }
        cmd.arg(self.uri(export));
        run(cmd, "")
    }

    /// qemu-io that must succeed and report no failed command.
    #[track_caller]
    pub fn qemu_io_ok(&self, export: &str, commands: &[String]) -> Run {
        let r = self.qemu_io(export, commands).ok();
        for bad in ["failed", "error", "Error"] {
            assert!(!r.stdout.contains(bad) && !r.stderr.contains(bad), "qemu-io reported a failure:\n{r:?}");
        }
        r
    }

    /// A new NBD connection to `export`.
    #[track_caller]
    pub fn nbd(&self, export: &str) -> Nbd {
        Nbd::connect(&self.nbd, export).unwrap_or_else(|e| panic!("NBD connect to {export}: {e}\n{}", self.log()))
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("dmhost is not running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on the pid of a child this Host started and has not reaped yet.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "kill(SIGTERM)");
        let deadline = Instant::now() + SHUTDOWN;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("dmhost did not exit within {SHUTDOWN:?} of SIGTERM:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, and the exit status must be 0 and the sockets gone.
    #[track_caller]
    pub fn stop_cleanly(&mut self) {
        let status = self.stop();
        assert!(status.success(), "dmhost exited with {status} after SIGTERM:\n{}", self.log());
        assert!(!self.control.exists() && !self.nbd.exists(), "dmhost left its sockets behind");
    }

    /// `dmsetup info` as key/value pairs.
    pub fn info(&self, name: &str) -> HashMap<String, String> {
        let r = self.dmsetup(&["info", name]).ok();
        r.stdout
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect()
    }

    /// The open count `dmsetup info` reports.
    pub fn open_count(&self, name: &str) -> u32 {
        self.info(name).get("Open count").and_then(|v| v.parse().ok()).expect("Open count")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!("---- dmhost log ({}) ----\n{}", self.log.display(), self.log());
        }
    }
}

/// Polls `f` until it is true or `timeout` passes; for states nothing announces.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// NBD client
// ---------------------------------------------------------------------------

pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
pub const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
pub const OPT_GO: u32 = 7;
pub const REP_ACK: u32 = 1;
pub const REP_INFO: u32 = 3;
pub const CMD_READ: u16 = 0;
pub const CMD_WRITE: u16 = 1;
pub const CMD_DISC: u16 = 2;
pub const CMD_FLUSH: u16 = 3;
pub const FLAG_FUA: u16 = 1;

/// One simple reply.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub handle: u64,
    pub error: u32,
    pub data: Vec<u8>,
}

/// An NBD client that may keep several requests in flight on one connection.
pub struct Nbd {
    pub stream: UnixStream,
    pub size: u64,
    next: u64,
    /// Outstanding requests: handle -> (command, length).
    pending: HashMap<u64, (u16, u32)>,
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().expect("4 bytes"))
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b.try_into().expect("8 bytes"))
}

/// The client's half of the fixed newstyle greeting: reads the server's, sends flags
/// FIXED_NEWSTYLE | NO_ZEROES.
pub fn greet(stream: &mut UnixStream) -> io::Result<()> {
    let mut hello = [0u8; 18];
    stream.read_exact(&mut hello)?;
    if be_u64(&hello[0..8]) != NBDMAGIC || be_u64(&hello[8..16]) != IHAVEOPT {
        return Err(io::Error::other("not an NBD newstyle server"));
    }
    stream.write_all(&3u32.to_be_bytes())
}

/// An NBD_OPT_GO option for `export`, requesting no particular information.
pub fn opt_go(export: &str) -> Vec<u8> {
    let mut opt = Vec::new();
    opt.extend_from_slice(&IHAVEOPT.to_be_bytes());
    opt.extend_from_slice(&OPT_GO.to_be_bytes());
    opt.extend_from_slice(&(4 + export.len() as u32 + 2).to_be_bytes());
    opt.extend_from_slice(&(export.len() as u32).to_be_bytes());
    opt.extend_from_slice(export.as_bytes());
    opt.extend_from_slice(&0u16.to_be_bytes());
    opt
}

/// One request header.
pub fn request_header(cmd: u16, flags: u16, handle: u64, offset: u64, len: u32) -> Vec<u8> {
    let mut req = Vec::with_capacity(28);
    req.extend_from_slice(&REQUEST_MAGIC.to_be_bytes());
    req.extend_from_slice(&flags.to_be_bytes());
    req.extend_from_slice(&cmd.to_be_bytes());
    req.extend_from_slice(&handle.to_be_bytes());
    req.extend_from_slice(&offset.to_be_bytes());
    req.extend_from_slice(&len.to_be_bytes());
    req
}

impl Nbd {
    pub fn connect(path: &Path, export: &str) -> io::Result<Nbd> {
        let mut stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        greet(&mut stream)?;
        stream.write_all(&opt_go(export))?;
        let mut size = None;
        loop {
            let mut hdr = [0u8; 20];
            stream.read_exact(&mut hdr)?;
            if be_u64(&hdr[0..8]) != OPT_REPLY_MAGIC {
                return Err(io::Error::other("bad option reply magic"));
            }
            let kind = be_u32(&hdr[12..16]);
            let mut data = vec![0u8; be_u32(&hdr[16..20]) as usize];
            stream.read_exact(&mut data)?;
            if kind & 0x8000_0000 != 0 {
                return Err(io::Error::other(format!("export {export:?} refused: reply type {kind:#x}")));
            }
            if kind == REP_INFO && data.len() >= 12 && data[0..2] == [0, 0] {
                size = Some(be_u64(&data[2..10]));
            }
            if kind == REP_ACK {
                break;
            }
        }
        let size = size.ok_or_else(|| io::Error::other("no NBD_INFO_EXPORT"))?;
        Ok(Nbd { stream, size, next: 1, pending: HashMap::new() })
    }

    /// Sends one request without waiting for its reply; returns its handle.
    pub fn send(&mut self, cmd: u16, flags: u16, offset: u64, len: u32, payload: &[u8]) -> io::Result<u64> {
        let handle = self.next;
        self.next += 1;
        let mut req = request_header(cmd, flags, handle, offset, len);
        req.extend_from_slice(payload);
        self.stream.write_all(&req)?;
        self.pending.insert(handle, (cmd, len));
        Ok(handle)
    }

    /// Receives the next reply, whichever request it answers.
    pub fn recv(&mut self) -> io::Result<Reply> {
        let mut hdr = [0u8; 16];
        self.stream.read_exact(&mut hdr)?;
        if be_u32(&hdr[0..4]) != SIMPLE_REPLY_MAGIC {
            return Err(io::Error::other("bad simple reply magic"));
        }
        let error = be_u32(&hdr[4..8]);
        let handle = be_u64(&hdr[8..16]);
        let (cmd, len) = self
            .pending
            .remove(&handle)
            .ok_or_else(|| io::Error::other(format!("reply to unknown handle {handle}")))?;
        let mut data = Vec::new();
        if error == 0 && cmd == CMD_READ {
            data = vec![0u8; len as usize];
            self.stream.read_exact(&mut data)?;
        }
        Ok(Reply { handle, error, data })
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    fn roundtrip(&mut self, cmd: u16, flags: u16, offset: u64, len: u32, payload: &[u8]) -> io::Result<Reply> {
        assert_eq!(self.in_flight(), 0, "synchronous request with others in flight");
        let handle = self.send(cmd, flags, offset, len, payload)?;
        let reply = self.recv()?;
        assert_eq!(reply.handle, handle);
        Ok(reply)
    }

    /// Reads `len` bytes; `Err` carries the NBD error.
    pub fn read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, u32> {
        let r = self.roundtrip(CMD_READ, 0, offset, len, &[]).expect("NBD read");
        if r.error == 0 {
            Ok(r.data)
        } else {
            Err(r.error)
        }
    }

    /// Writes `data`; returns the NBD error (0 for success).
    pub fn write(&mut self, offset: u64, data: &[u8]) -> u32 {
        self.roundtrip(CMD_WRITE, 0, offset, data.len() as u32, data).expect("NBD write").error
    }

    pub fn flush(&mut self) -> u32 {
        self.roundtrip(CMD_FLUSH, 0, 0, 0, &[]).expect("NBD flush").error
    }

    /// NBD_CMD_DISC, then close.
    pub fn disconnect(mut self) {
        let _ = self.stream.write_all(&request_header(CMD_DISC, 0, 0, 0, 0));
    }
}
