//! Both sides of the ABI in one process: target types exported with `dmcore_abi::module` and
//! registered with a core on the in-memory platform with `dmcore_abi::host`, so that every
//! call crosses the C ABI twice (core → ops table → dmcore target on `ModulePlatform` → host
//! table → core).
//!
//! * flakey through the ABI against the built-in flakey: the same tables and requests on two
//!   cores, on the same virtual clock, give the same results, bytes and status lines;
//! * a test type of this file exercises what flakey does not: messages, events, devices,
//!   end_io, piece_len, queued pieces (data, finish, remap), background work, presuspend and
//!   resume, synchronous disk I/O, the log;
//! * registration: bad ops tables refused, `EBUSY` while a table, a queued work item or a
//!   reference of the module's holds the type, only the module's own type removed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use dmcore::io::{Mapper, QueuedIo, Segment};
use dmcore::platform::mem::{Fault, MemIo, MemPlatform};
use dmcore::platform::{DevT, DiskIo, LogLevel, LowerDisk, Op, Platform, Work};
use dmcore::plist::{parse_dict, write_dict, Dict, Number, Value};
use dmcore::target::flakey::FlakeyType;
use dmcore::target::{BuildContext, EventSink, StatusKind, Target, TargetError, TargetType};
use dmcore::{Caller, Core, Errno};
use dmcore_abi::host::{self, Registration};
use dmcore_abi::module::{self, ModuleDisk, ModulePlatform};
use dmcore_abi::sys;

const VDA: DevT = DevT::new(254, 0);
const VDB: DevT = DevT::new(254, 16);
const DISK: u64 = 16384;
const SEC: u64 = 1_000_000_000;

fn setup() -> (Arc<Core<MemPlatform>>, MemPlatform) {
    let (core, platform) = MemPlatform::new_core();
    platform.add_disk("/dev/vda", VDA, DISK);
    platform.add_disk("/dev/vdb", VDB, DISK);
    (core, platform)
}

fn request(command: &str, name: &str) -> Dict {
    let mut d = Dict::new();
    d.set_string("command", command.as_bytes());
    d.set_string("name", name.as_bytes());
    d.insert("version", Value::Array(vec![Value::Number(Number::Unsigned(4)), Value::Number(Number::Unsigned(2))]));
    d.set_u32("event_nr", 0);
    d
}

struct Outcome {
    reply: Dict,
    result: Result<(), Errno>,
    detail: Option<String>,
}

fn send(core: &Core<MemPlatform>, d: &Dict) -> Outcome {
    let mut bytes = write_dict(d);
    bytes.push(0);
    let r = core.control(&bytes, Caller { privileged: true }).unwrap();
    Outcome {
        reply: parse_dict(&r.bytes, &dmcore::plist::Limits::DM).unwrap(),
        result: r.command_result,
        detail: r.detail,
    }
}

fn create(core: &Core<MemPlatform>, name: &str, lines: &[(u64, u64, &str, &str)]) -> Result<u32, (Errno, String)> {
    assert_eq!(send(core, &request("create", name)).result, Ok(()));
    let mut d = request("reload", name);
    let entries = lines
        .iter()
        .map(|(start, len, ty, params)| {
            let mut e = Dict::new();
            e.set_u64("start", *start);
            e.set_u64("length", *len);
            e.set_string("type", ty.as_bytes());
            e.set_string("params", params.as_bytes());
            Value::Dict(e)
        })
        .collect();
    d.insert("cmd_data", Value::Array(entries));
    let out = send(core, &d);
    if let Err(errno) = out.result {
        assert_eq!(send(core, &request("remove", name)).result, Ok(()));
        return Err((errno, out.detail.unwrap_or_default()));
    }
    assert_eq!(send(core, &request("resume", name)).result, Ok(()));
    Ok(core.minor_of(name).unwrap())
}

fn lines(core: &Core<MemPlatform>, name: &str, table: bool) -> Vec<String> {
    let mut d = request(if table { "table" } else { "status" }, name);
    d.set_u32("flags", if table { 0x10 } else { 0 });
    let out = send(core, &d);
    assert_eq!(out.result, Ok(()));
    out.reply
        .get_array("cmd_data")
        .unwrap()
        .iter()
        .map(|v| {
            let e = v.as_dict().unwrap();
            format!("{} {}", e.get_str("type").unwrap(), e.get_str("params").unwrap_or(""))
        })
        .collect()
}

fn message(core: &Core<MemPlatform>, name: &str, sector: u64, text: &str) -> Outcome {
    let mut d = request("message", name);
    d.set_u64("sector", sector);
    d.set_string("message", text.as_bytes());
    send(core, &d)
}

fn io(
    core: &Core<MemPlatform>,
    p: &MemPlatform,
    minor: u32,
    op: Op,
    sector: u64,
    data: Option<&[u8]>,
    bytes: u64,
) -> MemIo {
    p.run_io(core, minor, op, sector, bytes, data)
}

/// Registers `ops` (leaked: it must stay valid while registered, as a module's static does).
fn register(
    core: &Core<MemPlatform>,
    platform: &MemPlatform,
    ops: sys::dmtarget_ops,
) -> Result<Registration<MemPlatform>, Errno> {
    let ops: &'static sys::dmtarget_ops = Box::leak(Box::new(ops));
    // SAFETY: the table is leaked, so it stays valid; its functions are this process's.
    unsafe { host::register(core.targets(), platform, ops) }
}

// ---------------------------------------------------------------------------------------------
// flakey through the ABI, against the built-in one
// ---------------------------------------------------------------------------------------------

/// A core whose flakey is the module's.
fn module_flakey_core() -> (Arc<Core<MemPlatform>>, MemPlatform, Registration<MemPlatform>) {
    let (core, platform) = setup();
    core.targets().unregister("flakey").unwrap();
    let registration = register(&core, &platform, module::ops::<ModFlakey>()).unwrap();
    (core, platform, registration)
}

/// The built-in flakey type as a `Default` type of `ModulePlatform` (what `export_target!`
/// with `= value` generates).
#[derive(Default)]
struct ModFlakey;

impl TargetType<ModulePlatform> for ModFlakey {
    fn name(&self) -> &str {
        TargetType::<ModulePlatform>::name(&FlakeyType)
    }
    fn version(&self) -> [u32; 3] {
        TargetType::<ModulePlatform>::version(&FlakeyType)
    }
    fn construct(
        &self,
        ctx: &BuildContext<'_, ModulePlatform>,
        args: &[String],
    ) -> Result<Box<dyn Target<ModulePlatform>>, TargetError> {
        FlakeyType.construct(ctx, args)
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
}

#[test]
fn flakey_through_the_abi_behaves_as_the_built_in_one() {
    let params = [
        "0 10 5 corrupt_bio_byte 1 w 0 0",
        "1 1 5 corrupt_bio_byte 32 r 1 0",
        "0 10 1 drop_writes",
        "0 10 1 error_writes",
        "0 10 1 error_reads",
        "1 2",
        "0 10 2 random_read_corrupt 500000000",
        "0 10 2 random_write_corrupt 1000000000",
        "0 10 6 error_writes corrupt_bio_byte 2 r 7 0",
    ];
    for params in params {
        let (builtin, bp) = setup();
        let (module, mp, _reg) = module_flakey_core();
        let line = format!("/dev/vda 128 {params}");
        let bm = create(&builtin, "f", &[(0, 8192, "flakey", &line)]).unwrap();
        let mm = create(&module, "f", &[(0, 8192, "flakey", &line)]).unwrap();
        assert_eq!(lines(&builtin, "f", true), lines(&module, "f", true), "{params}");
        assert_eq!(lines(&builtin, "f", false), lines(&module, "f", false), "{params}");
        for step in 0..6u64 {
            let data = pattern(4096, step as u8);
            let sector = step * 24;
            type Seen = (Option<Result<(), Errno>>, Vec<u8>);
            let outcomes: Vec<Seen> = [(&builtin, &bp, bm), (&module, &mp, mm)]
                .iter()
                .map(|(core, p, minor)| {
                    let w = io(core, p, *minor, Op::Write, sector, Some(&data), 4096);
                    let r = io(core, p, *minor, Op::Read, sector, None, 4096);
                    let f = io(core, p, *minor, Op::Flush, 0, None, 0);
                    let mut seen = r.data();
                    seen.extend(format!("{:?}{:?}{:?}", w.result(), r.result(), f.result()).bytes());
                    (w.result(), seen)
                })
                .collect();
            assert_eq!(outcomes[0], outcomes[1], "{params}, step {step}");
            assert_eq!(bp.disk(VDA), mp.disk(VDA), "{params}, step {step}: the disks differ");
            // Half a second on both clocks: up and down phases alternate alike.
            bp.advance(SEC / 2);
            mp.advance(SEC / 2);
        }
        // Linux's flakey takes no messages, through the ABI neither.
        let out = message(&module, "f", 0, "drop_writes");
        assert_eq!(
            (out.result, out.detail.as_deref()),
            (Err(Errno::EINVAL), Some("Target type does not support messages"))
        );
        // The module's references go with the table: it can be unregistered after.
        assert_eq!(send(&module, &request("remove", "f")).result, Ok(()));
        assert_eq!(mp.opens(VDA), 0);
    }
}

#[test]
fn flakey_refusals_carry_linux_messages_through_the_abi() {
    let (core, platform, _reg) = module_flakey_core();
    for (params, message) in [
        ("/dev/vda 0 1", "Invalid argument count"),
        ("/dev/vda 0 1 1 1 frob", "Unrecognised flakey feature requested"),
        ("/dev/nosuch 0 1 1", "Device lookup failed"),
        ("/dev/vda 99999999 1 1", "Device too small for target"),
    ] {
        let (errno, detail) = create(&core, "f", &[(0, 8192, "flakey", params)]).unwrap_err();
        assert_eq!(detail, format!("line 0: flakey: {message}"), "{params}");
        assert_eq!(errno, if message.contains("lookup") { Errno::ENOENT } else { Errno::EINVAL }, "{params}");
    }
    assert_eq!(platform.opens(VDA), 0, "every disk the refused constructors opened is closed");
}

// ---------------------------------------------------------------------------------------------
// A test type: everything else a target can do, through the ABI
// ---------------------------------------------------------------------------------------------

/// What the test targets report back to the test.
#[derive(Default)]
struct Journal {
    lines: Mutex<Vec<String>>,
}

static JOURNAL: Journal = Journal { lines: Mutex::new(Vec::new()) };

fn journal(line: String) {
    JOURNAL.lines.lock().unwrap().push(line);
}

/// `probe <dev> <offset>`: reads of the line's first 8 sectors are done by a work item, which
/// reads the disk synchronously and inverts the bytes; other reads are remapped in pieces of at
/// most 4 sectors (aux 7); writes are kept and remapped; discards fail with EOPNOTSUPP.
#[derive(Default)]
struct ProbeType;

struct Probe {
    shared: Arc<ProbeShared>,
}

struct ProbeShared {
    platform: ModulePlatform,
    disk: ModuleDisk,
    offset: u64,
    events: EventSink,
    errors: AtomicU32,
    children: AtomicU32,
    suspended: AtomicBool,
    pending: Mutex<VecDeque<QueuedIo<ModulePlatform>>>,
}

struct ProbeWork(Arc<ProbeShared>);

impl Work for ProbeWork {
    fn run(&self) {
        let sh = &self.0;
        while let Some(q) = sh.pending.lock().unwrap().pop_front() {
            let sector = sh.offset + q.segment().offset;
            let mut result = Ok(());
            let shown = q.with_data(&mut |data| {
                result = sh.platform.disk_io(&sh.disk, sector, DiskIo::Read(data));
                data.iter_mut().for_each(|b| *b = !*b);
            });
            q.finish(shown.and(result));
        }
    }
}

impl TargetType<ModulePlatform> for ProbeType {
    fn name(&self) -> &str {
        "probe"
    }
    fn version(&self) -> [u32; 3] {
        [3, 2, 1]
    }
    fn construct(
        &self,
        ctx: &BuildContext<'_, ModulePlatform>,
        args: &[String],
    ) -> Result<Box<dyn Target<ModulePlatform>>, TargetError> {
        let [dev, offset] = args else {
            return Err(TargetError::invalid("probe: two arguments, please"));
        };
        let offset: u64 = offset.parse().map_err(|_| TargetError::invalid("probe: bad offset"))?;
        let disk = ctx.open_area(dev, offset, ctx.len)?;
        ctx.platform.log(LogLevel::Info, format_args!("probe: line at {} on {}", ctx.start, disk.dev()));
        Ok(Box::new(Probe {
            shared: Arc::new(ProbeShared {
                platform: ctx.platform.clone(),
                disk,
                offset,
                events: ctx.events.clone(),
                errors: AtomicU32::new(0),
                children: AtomicU32::new(0),
                suspended: AtomicBool::new(false),
                pending: Mutex::new(VecDeque::new()),
            }),
        }))
    }
}

impl Target<ModulePlatform> for Probe {
    fn map(&self, seg: &Segment, mapper: &mut Mapper<'_, ModulePlatform>) {
        let sh = &self.shared;
        match seg.op {
            Op::Read if seg.offset < 8 => {
                sh.pending.lock().unwrap().push_back(mapper.queue());
                mapper.platform().queue_work(Arc::new(ProbeWork(sh.clone())), None);
            }
            Op::Read => mapper.issue(&sh.disk, sh.offset + seg.offset, seg.sectors, seg.buf_offset, Op::Read, 7),
            Op::Write => mapper.queue().remap(&sh.disk, sh.offset + seg.offset),
            Op::Flush => mapper.issue(&sh.disk, 0, 0, 0, Op::Flush, 1),
            Op::Discard | Op::WriteZeroes => mapper.fail(Errno::EOPNOTSUPP),
        }
    }

    fn piece_len(&self, _offset: u64, op: Op) -> u64 {
        if op == Op::Read {
            4
        } else {
            u64::MAX
        }
    }

    fn end_io(&self, aux: u32, result: Result<(), Errno>) {
        self.shared.children.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            self.shared.errors.fetch_add(1, Ordering::Relaxed);
            self.shared.events.trigger();
        }
        journal(format!("end_io {aux} {result:?}"));
    }

    fn presuspend(&self, noflush: bool) {
        self.shared.suspended.store(true, Ordering::Relaxed);
        journal(format!("presuspend {noflush}"));
    }

    fn resume(&self) {
        self.shared.suspended.store(false, Ordering::Relaxed);
        journal("resume".into());
    }

    fn preresume(&self) -> Result<(), Errno> {
        journal("preresume".into());
        Ok(())
    }

    fn status(&self, kind: StatusKind, out: &mut String) {
        let sh = &self.shared;
        match kind {
            StatusKind::Info => out.push_str(&format!(
                "errors={} children={} suspended={}",
                sh.errors.load(Ordering::Relaxed),
                sh.children.load(Ordering::Relaxed),
                sh.suspended.load(Ordering::Relaxed)
            )),
            StatusKind::Table => out.push_str(&format!("{} {}", sh.disk.dev(), sh.offset)),
            StatusKind::Ima => out.push_str("target_name=probe;"),
        }
    }

    fn devices(&self, f: &mut dyn FnMut(DevT)) {
        f(self.shared.disk.dev());
        f(DevT::new(7, 7));
    }

    fn message(&self, argv: &[String]) -> Result<Option<String>, TargetError> {
        let sh = &self.shared;
        match argv.first().map(String::as_str) {
            Some("ping") => Ok(Some(format!("pong {}", argv.get(1..).unwrap_or_default().join("+")))),
            Some("event") => {
                sh.events.trigger();
                Ok(None)
            }
            Some("time") => Ok(Some(sh.platform.now_ns().to_string())),
            Some("fail") => Err(TargetError::new(Errno::ENOSPC, "probe: no room")),
            Some("wait") => {
                // The core's wait, with a condition that holds at once.
                sh.platform.wait(&mut || true, true).map_err(|e| TargetError::new(e, "wait"))?;
                sh.platform.wake();
                Ok(Some("waited".into()))
            }
            _ => Err(TargetError::invalid("probe: what?")),
        }
    }
}

fn probe_core() -> (Arc<Core<MemPlatform>>, MemPlatform, Registration<MemPlatform>) {
    let (core, platform) = setup();
    let reg = register(&core, &platform, module::ops::<ProbeType>()).unwrap();
    (core, platform, reg)
}

#[test]
fn the_test_type_is_listed_and_prints_its_lines() {
    let (core, platform, reg) = probe_core();
    assert_eq!(reg.name(), "probe");
    assert!(core.targets().list().contains(&("probe".to_string(), [3, 2, 1])));
    create(&core, "p", &[(0, 64, "probe", "/dev/vdb 100"), (64, 64, "probe", "254:0 0")]).unwrap();
    assert_eq!(lines(&core, "p", true), ["probe 254:16 100", "probe 254:0 0"]);
    assert_eq!(lines(&core, "p", false), ["probe errors=0 children=0 suspended=false"; 2]);
    // deps: each device once, in order, through dto_devices.
    let out = send(&core, &request("deps", "p"));
    let deps: Vec<u64> = out.reply.get_array("cmd_data").unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(deps, vec![VDB.netbsd(), DevT::new(7, 7).netbsd(), VDA.netbsd()]);
    assert!(platform.log_lines().iter().any(|l| l == "probe: line at 64 on 254:0"), "{:?}", platform.log_lines());
    assert_eq!(platform.opens(VDA), 1);
    assert_eq!(platform.opens(VDB), 1);
    let t = dmcore::table::Table::build(
        &platform,
        core.targets(),
        9,
        &[dmcore::table::TableLine { start: 0, len: 8, target_type: "probe".into(), params: "/dev/vda 0".into() }],
        false,
    )
    .unwrap();
    assert_eq!(t.status(StatusKind::Ima)[0].3, "target_name=probe;");
}

#[test]
fn requests_go_through_pieces_queues_work_and_children() {
    let (core, platform, _reg) = probe_core();
    let minor = create(&core, "p", &[(0, 64, "probe", "/dev/vdb 100")]).unwrap();
    let on_disk = pattern(64 * 512, 3);
    platform.fill_disk(VDB, 100 * 512, &on_disk);
    // Sectors 0..8 go to the work item (inverted bytes), 8..16 are remapped in 4-sector
    // pieces; the request is one.
    let r = io(&core, &platform, minor, Op::Read, 0, None, 16 * 512);
    assert_eq!(r.result(), Some(Ok(())));
    let data = r.data();
    let inverted: Vec<u8> = on_disk[..8 * 512].iter().map(|b| !b).collect();
    assert_eq!(&data[..8 * 512], &inverted[..]);
    assert_eq!(&data[8 * 512..], &on_disk[8 * 512..16 * 512]);
    assert_eq!(lines(&core, "p", false), ["probe errors=0 children=2 suspended=false"]);
    // Writes are kept, then remapped from the queue.
    let w = io(&core, &platform, minor, Op::Write, 20, Some(&[0xab; 1024]), 1024);
    assert_eq!(w.result(), Some(Ok(())));
    assert_eq!(platform.disk(VDB)[120 * 512..122 * 512], [0xab; 1024]);
    assert_eq!(io(&core, &platform, minor, Op::Discard, 0, None, 512).result(), Some(Err(Errno::EOPNOTSUPP)));
    // Failed children (both 4-sector pieces of sectors 28..36 touch the fault): end_io sees
    // them, and reports an event for each.
    platform.add_fault(Fault::range(VDB, 130, 4, Errno::EIO));
    let before = JOURNAL.lines.lock().unwrap().len();
    assert_eq!(io(&core, &platform, minor, Op::Read, 28, None, 8 * 512).result(), Some(Err(Errno::EIO)));
    let after: Vec<String> = JOURNAL.lines.lock().unwrap()[before..].to_vec();
    assert!(after.contains(&"end_io 7 Err(EIO(5))".to_string()), "{after:?}");
    let out = send(&core, &request("info", "p"));
    assert_eq!(out.reply.get_u32("event_nr"), Some(2));
    // Children: two remapped read pieces, the write remapped from the queue, two failed pieces.
    assert_eq!(lines(&core, "p", false), ["probe errors=2 children=5 suspended=false"]);
    // A worker read that fails on the disk fails the request.
    platform.clear_faults();
    platform.add_fault(Fault::range(VDB, 100, 1, Errno::EIO));
    assert_eq!(io(&core, &platform, minor, Op::Read, 0, None, 512).result(), Some(Err(Errno::EIO)));
}

#[test]
fn messages_events_and_suspension_through_the_abi() {
    let (core, _platform, _reg) = probe_core();
    create(&core, "p", &[(0, 64, "probe", "/dev/vdb 0"), (64, 64, "probe", "/dev/vda 0")]).unwrap();
    let answer = |out: Outcome| {
        assert_eq!(out.result, Ok(()), "{:?}", out.detail);
        out.reply.get_array("cmd_data").and_then(|a| a.first()).map(|v| v.as_str().unwrap().to_string())
    };
    assert_eq!(answer(message(&core, "p", 70, "ping a b")).as_deref(), Some("pong a+b"));
    assert_eq!(answer(message(&core, "p", 0, "event")), None);
    assert_eq!(answer(message(&core, "p", 0, "wait")).as_deref(), Some("waited"));
    assert_eq!(answer(message(&core, "p", 0, "time")).as_deref(), Some("0"));
    let out = message(&core, "p", 0, "fail");
    assert_eq!((out.result, out.detail.as_deref()), (Err(Errno::ENOSPC), Some("probe: no room")));
    let out = message(&core, "p", 0, "huh");
    assert_eq!((out.result, out.detail.as_deref()), (Err(Errno::EINVAL), Some("probe: what?")));
    // Events reached the device's counter; waitevent sees them.
    let mut w = request("waitevent", "p");
    w.set_u32("event_nr", 0);
    assert_eq!(send(&core, &w).reply.get_u32("event_nr"), Some(1));
    // presuspend / preresume / resume reach the module.
    let before = JOURNAL.lines.lock().unwrap().len();
    let mut s = request("suspend", "p");
    s.set_u32("flags", 0x800);
    assert_eq!(send(&core, &s).result, Ok(()));
    assert_eq!(lines(&core, "p", false), ["probe errors=0 children=0 suspended=true"; 2]);
    assert_eq!(send(&core, &request("resume", "p")).result, Ok(()));
    let calls: Vec<String> = JOURNAL.lines.lock().unwrap()[before..]
        .iter()
        .filter(|l| l.starts_with("pre") || *l == "resume")
        .cloned()
        .collect();
    assert!(
        calls
            .windows(6)
            .any(|w| w == ["presuspend true", "presuspend true", "preresume", "preresume", "resume", "resume"]),
        "{calls:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_ops_tables_are_refused() {
    let (core, platform) = setup();
    let good = module::ops::<ProbeType>();
    let mut bad_version = good;
    bad_version.dto_abi_version = 2;
    let mut small = good;
    small.dto_size = 8;
    let mut no_name = good;
    no_name.dto_name = [0; sys::DMTARGET_NAME_MAX as usize];
    let mut unterminated = good;
    unterminated.dto_name = [b'x' as _; sys::DMTARGET_NAME_MAX as usize];
    let mut spaced = good;
    spaced.dto_name[2] = b' ' as _;
    let mut no_map = good;
    no_map.dto_map = None;
    for ops in [bad_version, small, no_name, unterminated, spaced, no_map] {
        assert_eq!(register(&core, &platform, ops).err(), Some(Errno::EINVAL));
    }
    // SAFETY: NULL is refused before it is read.
    assert_eq!(unsafe { host::register(core.targets(), &platform, std::ptr::null()) }.err(), Some(Errno::EINVAL));
    // A name the core has: EEXIST (the built-in flakey stays).
    assert_eq!(register(&core, &platform, module::ops::<ModFlakey>()).err(), Some(Errno::EEXIST));
    // A name too long for the ABI is exported empty, and so refused.
    #[derive(Default)]
    struct Long;
    impl TargetType<ModulePlatform> for Long {
        fn name(&self) -> &str {
            "a-name-of-sixteen"
        }
        fn version(&self) -> [u32; 3] {
            [1, 0, 0]
        }
        fn construct(
            &self,
            _: &BuildContext<'_, ModulePlatform>,
            _: &[String],
        ) -> Result<Box<dyn Target<ModulePlatform>>, TargetError> {
            Err(TargetError::invalid("never"))
        }
    }
    assert_eq!(register(&core, &platform, module::ops::<Long>()).err(), Some(Errno::EINVAL));
    assert_eq!(core.targets().list().len(), 9);
}

/// `hold`: keeps a clone of its platform in a static until the message `drop` (a module's
/// reference to the core), and queues a work item that waits on the virtual clock.
#[derive(Default)]
struct HoldType;

static HELD: Mutex<Option<ModulePlatform>> = Mutex::new(None);

struct Hold(ModulePlatform);

struct Later;

impl Work for Later {
    fn run(&self) {
        journal("later ran".into());
    }
}

impl TargetType<ModulePlatform> for HoldType {
    fn name(&self) -> &str {
        "hold"
    }
    fn version(&self) -> [u32; 3] {
        [1, 0, 0]
    }
    fn construct(
        &self,
        ctx: &BuildContext<'_, ModulePlatform>,
        _: &[String],
    ) -> Result<Box<dyn Target<ModulePlatform>>, TargetError> {
        Ok(Box::new(Hold(ctx.platform.clone())))
    }
}

impl Target<ModulePlatform> for Hold {
    fn map(&self, _: &Segment, mapper: &mut Mapper<'_, ModulePlatform>) {
        mapper.zero_fill();
    }
    fn status(&self, _: StatusKind, _: &mut String) {}
    fn message(&self, argv: &[String]) -> Result<Option<String>, TargetError> {
        match argv.first().map(String::as_str) {
            Some("keep") => *HELD.lock().unwrap() = Some(self.0.clone()),
            Some("later") => self.0.queue_work(Arc::new(Later), Some(self.0.now_ns() + SEC)),
            _ => {}
        }
        Ok(None)
    }
}

#[test]
fn unregistering_is_refused_while_anything_of_the_module_is_in_use() {
    let (core, platform) = setup();
    let reg = register(&core, &platform, module::ops::<HoldType>()).unwrap();
    let other = register(&core, &platform, module::ops::<ProbeType>()).unwrap();
    create(&core, "h", &[(0, 8, "hold", "")]).unwrap();
    // A table line.
    assert_eq!(host::unregister(core.targets(), &reg), Err(Errno::EBUSY));
    // A reference the module keeps (here in a static), after the table is gone.
    assert_eq!(message(&core, "h", 0, "keep").result, Ok(()));
    // A work item of the module waiting in the core.
    assert_eq!(message(&core, "h", 0, "later").result, Ok(()));
    assert_eq!(send(&core, &request("remove", "h")).result, Ok(()));
    assert_eq!(host::unregister(core.targets(), &reg), Err(Errno::EBUSY));
    drop(HELD.lock().unwrap().take());
    assert_eq!(host::unregister(core.targets(), &reg), Err(Errno::EBUSY), "the work item still waits");
    platform.advance(SEC);
    assert!(JOURNAL.lines.lock().unwrap().contains(&"later ran".to_string()));
    assert_eq!(host::unregister(core.targets(), &reg), Ok(()));
    assert_eq!(host::unregister(core.targets(), &reg), Err(Errno::ENOENT));
    // Another module's type is untouched, and a registration removes only its own type.
    assert!(core.targets().find("probe").is_some());
    let (other_core, other_platform) = setup();
    let foreign = register(&other_core, &other_platform, module::ops::<ProbeType>()).unwrap();
    assert_eq!(host::unregister(core.targets(), &foreign), Err(Errno::ENOENT));
    assert_eq!(host::unregister(core.targets(), &other), Ok(()));
    let out = create(&core, "p", &[(0, 8, "probe", "/dev/vda 0")]);
    assert_eq!(out.unwrap_err(), (Errno::ENOENT, "line 0: unknown target type probe".to_string()));
}
