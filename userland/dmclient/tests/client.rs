//! The client against the in-memory core: every operation, the requests' bytes, and the
//! decoding of failures both as reported (socket-like transports) and as NetBSD's ioctl hides
//! them (only the reply tells).

use std::io;
use std::sync::Arc;

use dmclient::{
    BlockDev, Client, Command, DevNum, DeviceEntry, DeviceInfo, DeviceRef, Errno, ErrorKind, LocalTransport, RawReply,
    Request, TableEntry, TableLine, TargetSpec, TargetVersion, Transport,
};
use dmcore::platform::mem::MemPlatform;
use dmcore::{Caller, Core, DevT};

const DISK_SECTORS: u64 = 131_072;

fn core() -> Arc<Core<MemPlatform>> {
    let (core, platform) = MemPlatform::new_core();
    platform.add_disk("/dev/vda", DevT::new(254, 0), DISK_SECTORS);
    platform.add_disk("/dev/vdb", DevT::new(254, 16), DISK_SECTORS);
    platform.add_disk("/dev/vdc", DevT::new(254, 32), DISK_SECTORS);
    core
}

fn client() -> Client<LocalTransport<MemPlatform>> {
    Client::new(LocalTransport::new(core()))
}

/// What NetBSD's ioctl gives: the reply only, the command's errno and detail swallowed.
struct IoctlLike<T>(T);

impl<T: Transport> Transport for IoctlLike<T> {
    fn call(&self, request: &[u8]) -> io::Result<RawReply> {
        let raw = self.0.call(request)?;
        Ok(RawReply { command_errno: None, detail: None, ..raw })
    }
}

fn name(n: &str) -> DeviceRef {
    DeviceRef::Name(n.to_string())
}

fn line(s: &str) -> TableLine {
    s.parse().expect("table line")
}

fn lin2_table() -> Vec<TableLine> {
    vec![line("0 4096 linear /dev/vda 0"), line("4096 4096 linear /dev/vdb 1024")]
}

fn entry(start: u64, length: u64, ty: &str, params: &str) -> TableEntry {
    TableEntry { start, length, target_type: ty.to_string(), params: params.to_string() }
}

#[test]
fn version_and_targets() {
    let c = client();
    assert_eq!(c.version().unwrap(), [4, 16, 0]);
    let t = |name: &str, version| TargetVersion { name: name.to_string(), version };
    assert_eq!(
        c.targets().unwrap(),
        vec![
            t("linear", [1, 4, 0]),
            t("striped", [1, 6, 0]),
            t("error", [1, 5, 0]),
            t("zero", [1, 1, 0]),
            t("delay", [1, 3, 0]),
            t("flakey", [1, 5, 0]),
            t("snapshot-origin", [1, 9, 0]),
            t("snapshot", [1, 16, 0]),
            t("snapshot-merge", [1, 5, 0])
        ]
    );
}

#[test]
fn lifecycle_of_a_linear_device() {
    let c = client();
    let lin = name("lin2");
    assert_eq!(c.create("lin2", None, false).unwrap(), DeviceEntry { name: "lin2".into(), minor: 1 });
    assert_eq!(c.names().unwrap(), vec![DeviceEntry { name: "lin2".into(), minor: 1 }]);
    let fresh = DeviceInfo { name: "lin2".into(), minor: 1, ..DeviceInfo::default() };
    assert_eq!(c.info(&lin).unwrap(), fresh);
    assert_eq!(c.table(&lin, false).unwrap(), vec![]);

    c.reload(&lin, &lin2_table()).unwrap();
    assert_eq!(c.info(&lin).unwrap(), DeviceInfo { inactive_table: true, ..fresh.clone() });
    let table = vec![entry(0, 4096, "linear", "254:0 0"), entry(4096, 4096, "linear", "254:16 1024")];
    assert_eq!(c.table(&lin, true).unwrap(), table);
    assert_eq!(c.table(&lin, false).unwrap(), vec![]);

    c.resume(&lin).unwrap();
    let live = DeviceInfo { live_table: true, target_count: 2, ..fresh.clone() };
    assert_eq!(c.info(&lin).unwrap(), live);
    assert_eq!(c.table(&lin, false).unwrap(), table);
    assert_eq!(c.status(&lin, false).unwrap(), vec![entry(0, 4096, "linear", ""), entry(4096, 4096, "linear", "")]);
    assert_eq!(c.deps(&lin).unwrap(), vec![DevNum::new(254, 0), DevNum::new(254, 16)]);
    // The typed form of what the driver prints round-trips into the same table.
    let typed: Vec<TableLine> = table.iter().map(TableEntry::to_line).collect();
    assert_eq!(typed[1].target, TargetSpec::Linear { dev: BlockDev::Number(DevNum::new(254, 16)), offset: 1024 });

    c.suspend(&lin, false).unwrap();
    assert_eq!(c.info(&lin).unwrap(), DeviceInfo { suspended: true, ..live.clone() });
    c.resume(&lin).unwrap();
    c.suspend(&lin, true).unwrap();
    assert!(c.info(&lin).unwrap().suspended);
    c.resume(&lin).unwrap();
    assert_eq!(c.info(&lin).unwrap(), live);

    c.reload(&lin, &[line("0 8192 zero")]).unwrap();
    assert!(c.info(&lin).unwrap().inactive_table);
    c.clear(&lin).unwrap();
    assert_eq!(c.info(&lin).unwrap(), live);

    c.rename(&lin, "lin3").unwrap();
    assert_eq!(c.names().unwrap(), vec![DeviceEntry { name: "lin3".into(), minor: 1 }]);
    assert_eq!(c.info(&name("lin3")).unwrap(), DeviceInfo { name: "lin3".into(), ..live });
    assert!(c.info(&lin).unwrap_err().is_not_found());

    c.remove(&name("lin3")).unwrap();
    assert_eq!(c.names().unwrap(), vec![]);
}

#[test]
fn striped_device_and_lookup_by_uuid_and_minor() {
    let c = client();
    c.create("st2", Some("UUID-st2"), false).unwrap();
    let st = DeviceRef::Uuid("UUID-st2".into());
    c.reload(&st, &[line("0 16384 striped 2 128 /dev/vda 0 /dev/vdb 0")]).unwrap();
    c.resume(&DeviceRef::Minor(1)).unwrap();
    assert_eq!(c.table(&st, false).unwrap(), vec![entry(0, 16384, "striped", "2 128 254:0 0 254:16 0")]);
    assert_eq!(c.status(&DeviceRef::Minor(1), false).unwrap(), vec![entry(0, 16384, "striped", "2 254:0 254:16 1 AA")]);
    let info = c.info(&DeviceRef::Minor(1)).unwrap();
    assert_eq!((info.name.as_str(), info.uuid.as_str(), info.minor, info.target_count), ("st2", "UUID-st2", 1, 1));
    assert_eq!(c.deps(&st).unwrap(), vec![DevNum::new(254, 0), DevNum::new(254, 16)]);
    c.remove(&DeviceRef::Minor(1)).unwrap();
    assert_eq!(c.names().unwrap(), vec![]);
}

#[test]
fn read_only_create() {
    let c = client();
    c.create("ro", None, true).unwrap();
    c.reload(&name("ro"), &[line("0 8 zero")]).unwrap();
    c.resume(&name("ro")).unwrap();
    assert!(c.info(&name("ro")).is_ok());
}

/// Each failure, through a transport that reports the errno (dmhost's socket, the core in
/// process) and through one that does not (NetBSD's ioctl): same errno, same meaning.
#[test]
fn failures_are_decoded_with_and_without_the_commands_errno() {
    let core = core();
    let reported = Client::new(LocalTransport::new(core.clone()));
    let swallowed = Client::new(IoctlLike(LocalTransport::new(core.clone())));
    reported.create("lin", None, false).unwrap();

    for c in [&reported as &dyn Ops, &swallowed] {
        // Missing device: EXISTS cleared.
        for e in [
            c.info(&name("nosuch")),
            c.reload(&name("nosuch")),
            c.resume(&name("nosuch")),
            c.suspend(&name("nosuch")),
            c.remove(&name("nosuch")),
            c.clear(&name("nosuch")),
            c.table(&name("nosuch")),
            c.status(&name("nosuch")),
            c.deps(&name("nosuch")),
            c.rename(&name("nosuch")),
        ] {
            let e = e.unwrap_err();
            assert!(e.is_not_found(), "{e}");
            assert_eq!(e.errno(), Some(Errno::ENOENT));
        }
        let e = c.info(&name("nosuch")).unwrap_err();
        assert_eq!(e.to_string(), "info of nosuch failed: No such device (ENOENT)");
        let e = c.info(&DeviceRef::Minor(77)).unwrap_err();
        assert_eq!(e.to_string(), "info of minor 77 failed: No such device (ENOENT)");

        // Duplicate create: EEXIST.
        let e = c.create("lin").unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EEXIST));
        assert!(e.to_string().starts_with("create of lin failed: File exists (EEXIST)"), "{e}");
    }

    // A refused table: the reporting transport carries the driver's detail.
    let bad = [line("0 10 linear /dev/vda")];
    let e = reported.reload(&name("lin"), &bad).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL));
    assert_eq!(e.detail(), Some("line 0: linear: Invalid argument count"));
    assert_eq!(
        e.to_string(),
        "reload of lin failed: Invalid argument (EINVAL): line 0: linear: Invalid argument count"
    );
    // Over the ioctl only the missing INACTIVE_PRESENT tells.
    let e = swallowed.reload(&name("lin"), &bad).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL));
    assert_eq!(
        e.to_string(),
        "reload of lin failed: Invalid argument (EINVAL): table refused by the driver, which does not say why over this transport"
    );
    assert!(!reported.info(&name("lin")).unwrap().inactive_table);

    // Unknown target type.
    let e = reported.reload(&name("lin"), &[line("0 10 nosuchtarget")]).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ENOENT));
    assert!(!e.is_not_found());
    assert!(swallowed.reload(&name("lin"), &[line("0 10 nosuchtarget")]).is_err());

    // Rename onto a taken name.
    reported.create("other", None, false).unwrap();
    assert_eq!(reported.rename(&name("lin"), "other").unwrap_err().errno(), Some(Errno::EEXIST));
    assert!(swallowed.rename(&name("lin"), "other").is_err());
    assert_eq!(reported.names().unwrap().len(), 2);

    // Remove of an open device: EBUSY, reported or found out by looking.
    let minor = reported.info(&name("lin")).unwrap().minor;
    core.open(minor).unwrap();
    assert_eq!(reported.remove(&name("lin")).unwrap_err().errno(), Some(Errno::EBUSY));
    let e = swallowed.remove(&name("lin")).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EBUSY));
    assert_eq!(e.to_string(), "remove of lin failed: Device busy (EBUSY): the device still exists (open count 1)");
    core.close(minor);
    swallowed.remove(&name("lin")).unwrap();
}

#[test]
fn unprivileged_callers_may_only_query() {
    let core = core();
    let root = Client::new(LocalTransport::new(core.clone()));
    root.create("lin", None, false).unwrap();
    let user = Client::new(LocalTransport::with_caller(core.clone(), Caller { privileged: false }));
    assert!(user.info(&name("lin")).is_ok());
    assert!(user.names().is_ok());
    let e = user.create("x", None, false).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EPERM));
    assert_eq!(e.to_string(), "create of x failed: Operation not permitted (EPERM)");
    assert_eq!(user.remove(&name("lin")).unwrap_err().errno(), Some(Errno::EPERM));
    // Over the ioctl the refusal is still noticed, though its reason is not.
    let user = Client::new(IoctlLike(LocalTransport::with_caller(core.clone(), Caller { privileged: false })));
    assert!(user.create("x", None, false).is_err());
    assert!(user.resume(&name("lin")).is_err());
    assert!(user.suspend(&name("lin"), false).is_err());
    assert_eq!(user.remove(&name("lin")).unwrap_err().errno(), Some(Errno::EPERM));
    assert_eq!(root.names().unwrap().len(), 1);
}

#[test]
fn transport_errors() {
    let c = client();
    c.create("lin", None, false).unwrap();
    // A request beyond the driver's copy-in limit is refused before it runs.
    let params = "x".repeat(200_000);
    let e = c.reload(&name("lin"), &[TableLine::new(0, 8, TargetSpec::from_parts("error", &params))]).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Transport(Errno::E2BIG)), "{e:?}");
    assert_eq!(e.to_string(), "reload of lin failed: the driver refused the request: Argument list too long (E2BIG)");

    struct Broken;
    impl Transport for Broken {
        fn call(&self, _: &[u8]) -> io::Result<RawReply> {
            Ok(RawReply { bytes: b"<plist".to_vec(), command_errno: Some(0), ..RawReply::default() })
        }
    }
    let e = Client::new(Broken).version().unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Reply(_)), "{e:?}");

    let down = dmclient::Unavailable::new(&io::Error::new(io::ErrorKind::NotFound, "/dev/mapper/control: gone"));
    let e = Client::new(down).names().unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Io(_)));
    assert_eq!(e.to_string(), "names failed: /dev/mapper/control: gone");
}

const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple Computer//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n";

fn body(command: &str, version: &str, flags: &str, extra: &str) -> String {
    format!(
        "{HEADER}<dict>\n\t<key>cmd_data</key>\n\t<array/>\n\t<key>command</key>\n\t<string>{command}</string>\n\t<key>event_nr</key>\n\t<integer>0x0</integer>\n\t<key>flags</key>\n\t<integer>{flags}</integer>\n{extra}\t<key>version</key>\n\t<array>\n\t\t<integer>0x4</integer>\n\t\t<integer>{version}</integer>\n\t\t<integer>0x0</integer>\n\t</array>\n</dict>\n</plist>\n"
    )
}

/// The requests are lvm2's, byte for byte (reference §15.7: `version`, `targets`, `names`,
/// `info` and `deps` and `clear` by minor).
#[test]
fn requests_are_lvm2s() {
    let minor = "\t<key>minor</key>\n\t<integer>0x1</integer>\n";
    let cases = [
        (Request::new(Command::Version), body("version", "0x0", "0x4", "")),
        (Request::new(Command::Targets), body("targets", "0x1", "0x4", "")),
        (Request::new(Command::Names), body("names", "0x0", "0x4", "")),
        (Request::new(Command::Info).device(&DeviceRef::Minor(1)), body("info", "0x0", "0xc", minor)),
        (Request::new(Command::Deps).device(&DeviceRef::Minor(1)), body("deps", "0x0", "0xc", minor)),
        (Request::new(Command::Clear).device(&DeviceRef::Minor(1)), body("clear", "0x0", "0xc", minor)),
    ];
    for (request, expected) in cases {
        assert_eq!(String::from_utf8(request.to_bytes()).unwrap(), expected);
    }
}

/// The request bytes the client sends for each operation.
#[test]
fn operation_requests() {
    struct Recorder(std::cell::RefCell<Vec<String>>, LocalTransport<MemPlatform>);
    impl Transport for Recorder {
        fn call(&self, request: &[u8]) -> io::Result<RawReply> {
            self.0.borrow_mut().push(String::from_utf8_lossy(request).into_owned());
            self.1.call(request)
        }
    }
    let c = Client::new(Recorder(Default::default(), LocalTransport::new(core())));
    c.create("vg0-lv0", Some("U1"), true).unwrap();
    c.reload(&name("vg0-lv0"), &[line("0 20480 linear /dev/vda 384")]).unwrap();
    c.suspend(&name("vg0-lv0"), true).unwrap();
    c.table(&name("vg0-lv0"), true).unwrap();
    c.rename(&name("vg0-lv0"), "vg0-lv1").unwrap();
    let sent = c.transport().0.borrow();
    let name_key = |n: &str| format!("\t<key>name</key>\n\t<string>{n}</string>\n");
    // create: READONLY, EXISTS left clear (see `create_request`), name and uuid.
    let create =
        body("create", "0x0", "0x1", &format!("{}\t<key>uuid</key>\n\t<string>U1</string>\n", name_key("vg0-lv0")));
    assert_eq!(sent[0], create);
    let reload = body("reload", "0x0", "0x4", &name_key("vg0-lv0")).replace(
        "\t<array/>\n\t<key>command</key>",
        "\t<array>\n\t\t<dict>\n\t\t\t<key>length</key>\n\t\t\t<integer>0x5000</integer>\n\t\t\t<key>params</key>\n\t\t\t<string>/dev/vda 384</string>\n\t\t\t<key>start</key>\n\t\t\t<integer>0x0</integer>\n\t\t\t<key>type</key>\n\t\t\t<string>linear</string>\n\t\t</dict>\n\t</array>\n\t<key>command</key>",
    );
    assert_eq!(sent[1], reload);
    // suspend: SUSPEND | EXISTS | NOFLUSH.
    assert_eq!(sent[2], body("suspend", "0x0", "0x806", &name_key("vg0-lv0")));
    // table of the inactive slot: EXISTS | STATUS_TABLE | QUERY_INACTIVE_TABLE.
    assert_eq!(sent[3], body("table", "0x0", "0x1014", &name_key("vg0-lv0")));
    let rename = body("rename", "0x0", "0x4", &name_key("vg0-lv0")).replace(
        "\t<array/>\n\t<key>command</key>",
        "\t<array>\n\t\t<string>vg0-lv1</string>\n\t</array>\n\t<key>command</key>",
    );
    assert_eq!(sent[4], rename);
}

#[test]
fn netbsd_dev_t() {
    // reference §2.2: makedev(169, 1) = 0xa901; 014-deps: makedev(197, 0) = 50432.
    assert_eq!(DevNum::new(169, 1).to_netbsd(), 0xa901);
    assert_eq!(DevNum::from_netbsd(50432), DevNum::new(197, 0));
    assert_eq!(DevNum::from_netbsd(50434), DevNum::new(197, 2));
    let big = DevNum::new(0xfff, 0xfffff);
    assert_eq!(DevNum::from_netbsd(big.to_netbsd()), big);
    assert_eq!(DevNum::new(254, 16).to_string(), "254:16");
}

/// The operations under test, over either client.
trait Ops {
    fn info(&self, d: &DeviceRef) -> dmclient::Result<()>;
    fn reload(&self, d: &DeviceRef) -> dmclient::Result<()>;
    fn resume(&self, d: &DeviceRef) -> dmclient::Result<()>;
    fn suspend(&self, d: &DeviceRef) -> dmclient::Result<()>;
    fn remove(&self, d: &DeviceRef) -> dmclient::Result<()>;
    fn clear(&self, d: &DeviceRef) -> dmclient::Result<()>;
    fn table(&self, d: &DeviceRef) -> dmclient::Result<()>;
    fn status(&self, d: &DeviceRef) -> dmclient::Result<()>;
    fn deps(&self, d: &DeviceRef) -> dmclient::Result<()>;
    fn rename(&self, d: &DeviceRef) -> dmclient::Result<()>;
    fn create(&self, n: &str) -> dmclient::Result<()>;
}

impl<T: Transport> Ops for Client<T> {
    fn info(&self, d: &DeviceRef) -> dmclient::Result<()> {
        Client::info(self, d).map(drop)
    }
    fn reload(&self, d: &DeviceRef) -> dmclient::Result<()> {
        Client::reload(self, d, &[line("0 8 zero")])
    }
    fn resume(&self, d: &DeviceRef) -> dmclient::Result<()> {
        Client::resume(self, d)
    }
    fn suspend(&self, d: &DeviceRef) -> dmclient::Result<()> {
        Client::suspend(self, d, false)
    }
    fn remove(&self, d: &DeviceRef) -> dmclient::Result<()> {
        Client::remove(self, d)
    }
    fn clear(&self, d: &DeviceRef) -> dmclient::Result<()> {
        Client::clear(self, d)
    }
    fn table(&self, d: &DeviceRef) -> dmclient::Result<()> {
        Client::table(self, d, false).map(drop)
    }
    fn status(&self, d: &DeviceRef) -> dmclient::Result<()> {
        Client::status(self, d, true).map(drop)
    }
    fn deps(&self, d: &DeviceRef) -> dmclient::Result<()> {
        Client::deps(self, d).map(drop)
    }
    fn rename(&self, d: &DeviceRef) -> dmclient::Result<()> {
        Client::rename(self, d, "renamed")
    }
    fn create(&self, n: &str) -> dmclient::Result<()> {
        Client::create(self, n, None, false).map(drop)
    }
}
