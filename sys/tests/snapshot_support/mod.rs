//! Helpers of the snapshot tests: a core on the in-memory platform driven with dmsetup-like
//! calls (table lines as text, status lines as dmsetup prints them), and the Linux 6.1
//! transcript of `06-snapshot` replayed against it.
#![allow(dead_code)]

use std::sync::Arc;

use dmcore::platform::mem::MemPlatform;
use dmcore::plist::Dict;
use dmcore::{Core, DevT, Errno, Op};

#[path = "../common/mod.rs"]
mod common;

pub use common::ROOT;
pub const SECTOR: usize = 512;

/// The oracle VM's disk numbers: vda = 254:0, vdb = 254:16, ...
pub fn vd(i: u32) -> DevT {
    DevT::new(254, 16 * i)
}

pub struct Dm {
    pub core: Arc<Core<MemPlatform>>,
    pub p: MemPlatform,
}

/// A failed command: its errno and the driver's detail (`line N: target: message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub errno: Errno,
    pub detail: String,
}

impl Dm {
    pub fn new() -> Self {
        let (core, p) = MemPlatform::new_core();
        Dm { core, p }
    }

    /// The oracle's layout: `n` disks of `sectors` sectors as /dev/vda... (254:0, 254:16, ...).
    pub fn with_vd(n: u32, sectors: u64) -> Self {
        let dm = Dm::new();
        for i in 0..n {
            dm.p.add_disk(&format!("/dev/vd{}", (b'a' + i as u8) as char), vd(i), sectors);
        }
        dm
    }

    pub fn request(&self, command: &str, name: &str, flags: u32, lines: &[&str]) -> (Result<(), Failed>, Dict) {
        let mut d = common::request(command, Some(name), 0);
        if command == "info" {
            d.set_u32("event_nr", 0);
        }
        d.set_u32("flags", flags);
        if !lines.is_empty() {
            d.insert("cmd_data", common::entries(lines));
        }
        let out = common::call(&self.core, &d, ROOT);
        let result = out.result.map_err(|errno| Failed { errno, detail: out.detail.unwrap_or_default() });
        (result, out.reply)
    }

    pub fn cmd(&self, command: &str, name: &str) -> Result<(), Failed> {
        self.request(command, name, 0, &[]).0
    }

    /// `dmsetup create NAME --table LINE`: create, load, resume (the device is removed again
    /// when the load or resume fails, as libdevmapper does).
    pub fn create(&self, name: &str, line: &str) -> Result<u32, Failed> {
        self.cmd("create", name)?;
        let loaded = self.load(name, line).and_then(|()| self.resume(name));
        if let Err(e) = loaded {
            self.cmd("remove", name).unwrap();
            return Err(e);
        }
        Ok(self.minor(name))
    }

    pub fn load(&self, name: &str, line: &str) -> Result<(), Failed> {
        self.request("reload", name, 0, &[line]).0
    }

    pub fn resume(&self, name: &str) -> Result<(), Failed> {
        let r = self.cmd("resume", name);
        self.p.run();
        r
    }

    pub fn suspend(&self, name: &str) -> Result<(), Failed> {
        self.cmd("suspend", name)
    }

    pub fn remove(&self, name: &str) -> Result<(), Failed> {
        self.cmd("remove", name)
    }

    pub fn minor(&self, name: &str) -> u32 {
        self.core.minor_of(name).unwrap_or_else(|| panic!("no device {name}"))
    }

    /// The lines `dmsetup table` (`table`) or `dmsetup status` prints.
    pub fn lines(&self, name: &str, table: bool, inactive: bool) -> Vec<String> {
        let flags = if table { 0x10 } else { 0 } | if inactive { 0x1000 } else { 0 };
        let (r, d) = self.request("status", name, flags, &[]);
        r.unwrap();
        common::table_lines(&d)
    }

    pub fn table(&self, name: &str) -> String {
        self.lines(name, true, false).join("\n")
    }

    pub fn status(&self, name: &str) -> String {
        self.lines(name, false, false).join("\n")
    }

    /// The device's event counter (dmsetup's "Event number") and whether it is suspended.
    pub fn events(&self, name: &str) -> (u32, bool) {
        let (r, d) = self.request("info", name, 0, &[]);
        r.unwrap();
        (d.get_u32("event_nr").unwrap(), d.get_u32("flags").unwrap() & 0x2 != 0)
    }

    /// The INFO params of a one-line device.
    pub fn info(&self, name: &str) -> String {
        let line = self.status(name);
        line.splitn(4, ' ').nth(3).unwrap_or("").to_string()
    }

    pub fn io(&self, name: &str, op: Op, sector: u64, bytes: usize, data: Option<&[u8]>) -> Result<Vec<u8>, Errno> {
        let minor = self.minor(name);
        let io = self.p.run_io(&self.core, minor, op, sector, bytes as u64, data);
        match io.result().expect("request did not complete") {
            Ok(()) => Ok(io.data()),
            Err(e) => Err(e),
        }
    }

    pub fn write(&self, name: &str, sector: u64, data: &[u8]) -> Result<(), Errno> {
        self.io(name, Op::Write, sector, data.len(), Some(data)).map(|_| ())
    }

    pub fn read(&self, name: &str, sector: u64, bytes: usize) -> Result<Vec<u8>, Errno> {
        self.io(name, Op::Read, sector, bytes, None)
    }

    pub fn flush(&self, name: &str) -> Result<(), Errno> {
        self.io(name, Op::Flush, 0, 0, None).map(|_| ())
    }

    /// Runs workers and child requests until nothing is left to do.
    pub fn settle(&self) {
        self.p.run();
    }
}

impl Default for Dm {
    fn default() -> Self {
        Self::new()
    }
}

/// `od -An -tx1 -v` of `bytes`: lines of 16, each byte as " xx".
pub fn od(bytes: &[u8]) -> String {
    bytes.chunks(16).map(|c| c.iter().map(|b| format!(" {b:02x}")).collect::<String>() + "\n").collect()
}

/// One command of a transcript and what it printed.
#[derive(Debug, Clone)]
pub struct Step {
    pub command: String,
    pub output: String,
}

/// Reads a golden transcript: `$ command` lines, each followed by its output, up to the next
/// command, section (`=== ...`) or the kernel log at the end.
pub fn transcript(text: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for line in text.lines() {
        if line.starts_with("=== kernel log") {
            break;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push(Step { command: cmd.to_string(), output: String::new() });
        } else if line.starts_with("===") || line.starts_with('#') {
            continue;
        } else if let Some(step) = steps.last_mut() {
            step.output.push_str(line);
            step.output.push('\n');
        }
    }
    for step in &mut steps {
        // dmsetup info prints a blank line after each device; sections start with one.
        while step.output.ends_with("\n\n") {
            step.output.pop();
        }
        if step.output == "\n" {
            step.output.clear();
        }
    }
    steps
}

/// The value of `word=` arguments like `bs=512` in a dd command line.
pub fn dd_arg(cmd: &str, key: &str) -> Option<String> {
    cmd.split_whitespace().find_map(|w| w.strip_prefix(&format!("{key}=")).map(str::to_string))
}

/// A device path of the transcript as a name of this core's devices (`/dev/mapper/X` → `X`)
/// or `None` for a raw disk.
pub fn mapped(path: &str) -> Option<&str> {
    path.strip_prefix("/dev/mapper/")
}

// ---------------------------------------------------------------------------
// The 06-snapshot transcript
// ---------------------------------------------------------------------------

pub fn golden_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/linux-dm-oracle/golden"))
}

/// The text between the first pair of double quotes.
fn quoted(cmd: &str) -> &str {
    let start = cmd.find('"').unwrap() + 1;
    let end = start + cmd[start..].find('"').unwrap();
    &cmd[start..end]
}

/// What our dmsetup would print for a failed create/load (libdevmapper's lines are not ours;
/// the table error is checked instead).
fn failure_matches(expected: &str, got: &Failed) {
    assert!(expected.contains("[exit 1]"), "Linux succeeded where we failed: {got:?}");
    if let Some(k) = expected.lines().find(|l| l.starts_with("[kernel] device-mapper: table:")) {
        // "[kernel] device-mapper: table: 253:0: snapshot: Couldn't create exception store (-EINVAL)"
        let msg = k.splitn(4, ": ").nth(3).unwrap();
        let (text, errno) = msg.rsplit_once(" (-").unwrap();
        assert!(got.detail.ends_with(text), "detail {:?} vs Linux {text:?}", got.detail);
        assert_eq!(got.errno.name(), errno.trim_end_matches(')'));
    }
}

/// Replays one `06-snapshot` transcript; returns how many outputs were compared.
pub fn replay_06(text: &str) -> usize {
    let dm = Dm::with_vd(4, 131072);
    // cowS is `linear /dev/vdd 0` over 64 sectors in Linux (253:2 there); this platform does
    // not stack devices, so it is a RAM disk with that number.
    dm.p.add_disk("/dev/mapper/cowS", DevT::new(253, 2), 64);
    let mut compared = 0;
    for step in transcript(text) {
        let cmd = step.command.as_str();
        let want = step.output.as_str();
        if cmd.starts_with("printf") {
            // printf '\xNN%.0s' $(seq 1 K) | dd of=DEV bs=512 seek=S count=C ...
            let byte = u8::from_str_radix(&cmd[10..12], 16).unwrap();
            let dev = dd_arg(cmd, "of").unwrap();
            let seek: u64 = dd_arg(cmd, "seek").unwrap().parse().unwrap();
            let count: usize = dd_arg(cmd, "count").unwrap().parse().unwrap();
            let data = vec![byte; count * SECTOR];
            match mapped(&dev) {
                Some(name) => dm.write(name, seek, &data).unwrap(),
                None => dm.p.fill_disk(vd((dev.as_bytes()[7] - b'a') as u32), seek as usize * SECTOR, &data),
            }
            assert_eq!(want, "", "{cmd}");
        } else if let Some(rest) = cmd.strip_prefix("dmsetup create ") {
            let name = rest.split_whitespace().next().unwrap();
            if name == "cowS" {
                continue;
            }
            match dm.create(name, quoted(cmd)) {
                Ok(_) => assert_eq!(want, "", "{cmd}"),
                Err(e) => failure_matches(want, &e),
            }
            compared += 1;
        } else if let Some(rest) = cmd.strip_prefix("dmsetup load ") {
            let name = rest.split_whitespace().next().unwrap();
            dm.load(name, quoted(cmd)).unwrap();
        } else if cmd.starts_with("dmsetup table --inactive ") {
            let name = cmd.rsplit(' ').next().unwrap();
            assert_eq!(dm.lines(name, true, true).join("\n") + "\n", want, "{cmd}");
            compared += 1;
        } else if let Some(name) = cmd.strip_prefix("dmsetup table ") {
            assert_eq!(dm.table(name) + "\n", want, "{cmd}");
            compared += 1;
        } else if let Some(name) = cmd.strip_prefix("dmsetup status ") {
            assert_eq!(dm.status(name) + "\n", want, "{cmd}");
            compared += 1;
        } else if let Some(name) = cmd.strip_prefix("dmsetup info ") {
            // Minors and open counts are this core's; the state and the event counter must be
            // Linux's.
            let field = |key: &str| want.lines().find_map(|l| l.strip_prefix(key)).unwrap().trim().to_string();
            let (events, suspended) = dm.events(name);
            assert_eq!(events.to_string(), field("Event number:"), "{cmd}");
            assert_eq!(if suspended { "SUSPENDED" } else { "ACTIVE" }, field("State:"), "{cmd}");
            compared += 1;
        } else if let Some(name) = cmd.strip_prefix("dmsetup remove ") {
            if name != "cowS" {
                dm.remove(name).unwrap();
            }
        } else if let Some(name) = cmd.strip_prefix("dmsetup suspend ") {
            dm.suspend(name).unwrap();
        } else if let Some(name) = cmd.strip_prefix("dmsetup resume ") {
            dm.resume(name).unwrap();
        } else if cmd == "sync" {
            dm.settle();
        } else if cmd.starts_with("dd if=/dev/") && cmd.contains("| od") {
            let dev = dd_arg(cmd, "if").unwrap();
            let skip: usize = dd_arg(cmd, "skip").unwrap().parse().unwrap();
            let count: usize = dd_arg(cmd, "count").unwrap().parse().unwrap();
            let bytes = match mapped(&dev) {
                Some(name) => {
                    let first = skip / SECTOR;
                    let last = (skip + count).div_ceil(SECTOR);
                    let data = dm.read(name, first as u64, (last - first) * SECTOR).unwrap();
                    data[skip - first * SECTOR..][..count].to_vec()
                }
                None => dm.p.disk(vd((dev.as_bytes()[7] - b'a') as u32))[skip..skip + count].to_vec(),
            };
            assert_eq!(od(&bytes), want, "{cmd}");
            compared += 1;
        } else if cmd.starts_with("for i in $(seq ") && cmd.contains(" of=") {
            // for i in $(seq A B); do dd if=/dev/zero of=DEV bs=4096 seek=$i count=1 ...; done
            let seq: Vec<u64> = cmd[15..].split(')').next().unwrap().split(' ').map(|n| n.parse().unwrap()).collect();
            let name = mapped(&dd_arg(cmd, "of").unwrap()).unwrap().to_string();
            for i in seq[0]..=seq[1] {
                dm.write(&name, i * 8, &[0; 4096]).unwrap();
            }
            assert_eq!(want, "", "{cmd}");
        } else if cmd.starts_with("dd if=/dev/mapper/") {
            // A read of one block, expected to fail.
            let name = mapped(&dd_arg(cmd, "if").unwrap()).unwrap().to_string();
            let r = dm.read(&name, 0, 4096);
            if want.contains("Input/output error") {
                assert_eq!(r, Err(Errno::EIO), "{cmd}");
            } else {
                assert!(r.is_ok(), "{cmd}");
            }
            compared += 1;
        } else if cmd.starts_with("for i in $(seq 1 100)") {
            // The wait for the merge to finish.
            dm.settle();
            let info = dm.info("base");
            let mut f = info.split(['/', ' ']);
            let (a, _, m) = (f.next().unwrap(), f.next(), f.next().unwrap());
            assert_eq!(a, m, "merge did not finish: {info}");
            assert_eq!(want, "merged\n");
        } else {
            panic!("transcript command not replayed: {cmd}");
        }
    }
    compared
}
