//! The command line.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use dmcore::platform::DiskSpec;
use dmcore::DevT;

use crate::platform::DM_MAJOR;

pub const HELP: &str = "\
dmhost: the device-mapper core in user space

USAGE:
    dmhost --control PATH [--disk PATH[=MAJ:MIN]]... [--nbd-socket PATH]
           [--nbd-tcp ADDR:PORT [--nbd-tcp-any]] [OPTIONS]

Lower devices are image files or block devices given with --disk. Mapped devices are
created, loaded, suspended, resumed and removed through the control socket with the
NetBSD dm(4) protocol (proplib dictionaries), as dmctl and libdevmapper speak it. Every
mapped device with an active table is exported over NBD under its own name.

OPTIONS:
    --control PATH
        Serve the control protocol on a Unix socket at PATH (required). The socket is
        created with mode 0600: only its owner and root can connect, and every peer is
        treated as privileged. dmhost refuses to start if PATH exists and something
        answers on it; a socket nobody answers on (left by a dead dmhost) is removed.

    --disk PATH[=MAJ:MIN]
        Make the image file or block device PATH a lower device (repeatable). Table lines
        name it by PATH, by its canonical path, or by MAJ:MIN in decimal. Without =MAJ:MIN
        the disks are numbered 254:0, 254:16, 254:32, ... in the order given, as Linux
        numbers virtio disks vda, vdb, vdc, so that table lines match Linux's. A file that
        cannot be opened for writing is used read-only. Its size is rounded down to whole
        512-byte sectors.
        Mapped devices of this dmhost are lower devices too (stacking): /dev/mapper/NAME, or
        169:MINOR (169 is NetBSD's dm block major); no --disk is needed for them.

    --nbd-socket PATH
        Serve NBD (fixed newstyle) on a Unix socket at PATH (mode 0600, same rules as
        --control). Export name = device name, e.g.
            qemu-io -f raw 'nbd+unix:///NAME?socket=PATH' -c 'read 0 64k'
        A connected client holds the device open: `remove` fails with EBUSY until it
        disconnects.

    --nbd-tcp ADDR:PORT
        Also serve NBD over TCP at ADDR:PORT (port 0 picks a free port; the address is
        printed in the ready line). Only loopback addresses are accepted, since NBD has no
        authentication, unless --nbd-tcp-any is given.

    --nbd-tcp-any
        Allow --nbd-tcp on a non-loopback address.

    --target-module PATH
        Load the target module PATH (a shared object built against kmod/include/dmtarget.h,
        such as libdm_target_flakey.so of kmod/targets/flakey) and register its target types
        (repeatable), as modload(8) of a dm_target_<name> module does on NetBSD.

    --module-dir DIR
        When a table names a target type nobody registered, load DIR/dm_target_<type>.so if it
        exists (NetBSD's autoload of dm_target_<type>), then look the type up again.

    --without-target NAME
        Start without the built-in target type NAME (repeatable), so that a module may
        provide it.

    --io-threads N
        Threads that run child I/O on lower devices (default 8).

    --workers N
        Threads that run background work of targets (default 2).

    -v, --verbose
        More messages on standard error (repeat for more: -v information, -vv debugging).

    -q, --quiet
        Errors only.

    -h, --help
        Print this help.

    -V, --version
        Print the version.

STARTUP AND SHUTDOWN:
    When every socket is listening, dmhost prints one line to standard output:
        dmhost ready control=PATH [nbd-unix=PATH] [nbd-tcp=ADDR:PORT]
    On SIGTERM or SIGINT it stops accepting connections, fails requests waiting for a
    suspended device (ENXIO; NBD error ESHUTDOWN), lets every other NBD request in flight
    finish, runs fdatasync on every lower device, removes its sockets and exits 0.

I/O MAPPING:
    NBD READ/WRITE/FLUSH/TRIM/WRITE_ZEROES become read, write, flush, discard and
    write-zeroes requests of the mapped device (FUA kept). On image files: positional reads
    and writes, fdatasync for flush and after FUA writes, fallocate(PUNCH_HOLE) for discard,
    fallocate(ZERO_RANGE) or writing zeroes for write-zeroes. Errors reach NBD clients as
    EIO 5, EPERM 1 (read-only), ENOMEM 12, EINVAL 22, ENOSPC 28, ENOTSUP 95, ESHUTDOWN 108
    (the device is gone).

CONTROL SOCKET WIRE FORMAT (all integers big-endian):
    request:  u32 N, then N bytes: the request dictionary's XML text and one NUL
              (0 < N < 131072; otherwise the answer is E2BIG or EINVAL and the connection
              is closed)
    reply:    i32 transport errno (0 = accepted), i32 command errno (0 = ok),
              u32 M, then M bytes: reply XML + NUL (M = 0 when transport errno != 0),
              u32 K, then K bytes: UTF-8 detail, e.g. why a table was refused (K may be 0)
    Errno values are NetBSD's. Several requests may follow on one connection, one at a
    time.

TARGET MODULES:
    The control socket also takes two commands of dmhost's own, in the same framing and
    dictionary form (not dm(4) commands; NetBSD's equivalents are modload(8) and
    modunload(8) of a dm_target_<name> module):
        command \"module_load\", path PATH: load and register; the reply's cmd_data lists
            the module's target types
        command \"module_unload\", name NAME: unregister the types of the module NAME (the
            file name without directory, \"lib\" and \".so\", e.g. dm_target_flakey) and
            unload it; EBUSY, and nothing changed, while anything uses one of them
    At exit, modules whose types are still in use stay loaded until the process ends.

EXIT STATUS:
    0 after a clean shutdown, 1 when startup fails, 2 for a bad command line.
";

/// One `--disk` argument.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DiskArg {
    pub path: String,
    pub dev: Option<DevT>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Config {
    pub control: PathBuf,
    pub disks: Vec<DiskArg>,
    pub nbd_socket: Option<PathBuf>,
    pub nbd_tcp: Option<String>,
    pub nbd_tcp_any: bool,
    pub io_threads: usize,
    pub workers: usize,
    pub verbosity: i32,
    /// `--target-module`: shared objects to load at start, in order.
    pub target_modules: Vec<PathBuf>,
    /// `--module-dir`: where dm_target_<type>.so are autoloaded from.
    pub module_dir: Option<PathBuf>,
    /// `--without-target`: built-in target types to unregister at start.
    pub without_targets: Vec<String>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Cmd {
    Run(Config),
    Help,
    Version,
}

/// Parses `PATH[=MAJ:MIN]`: the part after the last `=` is a device number only if it reads as
/// one, so paths containing `=` still work.
pub fn parse_disk(arg: &str) -> Result<DiskArg, String> {
    if let Some((path, number)) = arg.rsplit_once('=') {
        if let DiskSpec::Number(dev) = DiskSpec::parse(number) {
            if path.is_empty() {
                return Err(format!("--disk {arg}: empty path"));
            }
            return Ok(DiskArg { path: path.to_owned(), dev: Some(dev) });
        }
    }
    if arg.is_empty() {
        return Err("--disk: empty path".into());
    }
    Ok(DiskArg { path: arg.to_owned(), dev: None })
}

fn parse_count(option: &str, value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("{option} {value}: expected a number from 1 to 1024")),
    }
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cmd, String> {
    let mut control = None;
    let mut disks = Vec::new();
    let mut nbd_socket = None;
    let mut nbd_tcp = None;
    let mut nbd_tcp_any = false;
    let mut io_threads = 8;
    let mut workers = 2;
    let mut verbosity = 0i32;
    let mut target_modules = Vec::new();
    let mut module_dir = None;
    let mut without_targets = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg.into_string().map_err(|a| format!("argument is not UTF-8: {}", a.to_string_lossy()))?;
        let (option, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .ok_or_else(|| format!("{name} needs a value"))?
                    .into_string()
                    .map_err(|a| format!("{name}: value is not UTF-8: {}", a.to_string_lossy())),
            }
        };
        match option.as_str() {
            "-h" | "--help" => return Ok(Cmd::Help),
            "-V" | "--version" => return Ok(Cmd::Version),
            "--control" => control = Some(PathBuf::from(value("--control")?)),
            "--disk" => disks.push(parse_disk(&value("--disk")?)?),
            "--nbd-socket" => nbd_socket = Some(PathBuf::from(value("--nbd-socket")?)),
            "--nbd-tcp" => nbd_tcp = Some(value("--nbd-tcp")?),
            "--nbd-tcp-any" => nbd_tcp_any = true,
            "--target-module" => target_modules.push(PathBuf::from(value("--target-module")?)),
            "--module-dir" => module_dir = Some(PathBuf::from(value("--module-dir")?)),
            "--without-target" => without_targets.push(value("--without-target")?),
            "--io-threads" => io_threads = parse_count("--io-threads", &value("--io-threads")?)?,
            "--workers" => workers = parse_count("--workers", &value("--workers")?)?,
            "-v" | "--verbose" => verbosity += 1,
            "-vv" => verbosity += 2,
            "-vvv" => verbosity += 3,
            "-q" | "--quiet" => verbosity = -1,
            other => return Err(format!("unknown argument {other}")),
        }
        if inline.is_some() && matches!(option.as_str(), "--nbd-tcp-any" | "--verbose" | "--quiet") {
            return Err(format!("{option} takes no value"));
        }
    }
    let control = control.ok_or("--control PATH is required")?;
    if nbd_tcp_any && nbd_tcp.is_none() {
        return Err("--nbd-tcp-any needs --nbd-tcp".into());
    }
    Ok(Cmd::Run(Config {
        control,
        disks,
        nbd_socket,
        nbd_tcp,
        nbd_tcp_any,
        io_threads,
        workers,
        verbosity,
        target_modules,
        module_dir,
        without_targets,
    }))
}

/// Gives every disk its device number: explicit ones as given, the others 254:0, 254:16, ...
/// in order, skipping numbers taken explicitly. Paths and numbers must be unique, and 169 is
/// reserved for mapped devices.
pub fn assign_numbers(disks: &[DiskArg]) -> Result<Vec<(String, DevT)>, String> {
    let mut taken: Vec<DevT> = Vec::new();
    for disk in disks {
        if let Some(dev) = disk.dev {
            if dev.major == DM_MAJOR {
                return Err(format!("--disk {}={dev}: major {DM_MAJOR} is dm's own", disk.path));
            }
            if taken.contains(&dev) {
                return Err(format!("--disk: device number {dev} given twice"));
            }
            taken.push(dev);
        }
    }
    let mut next = 0u32;
    let mut out: Vec<(String, DevT)> = Vec::with_capacity(disks.len());
    for disk in disks {
        if out.iter().any(|(p, _)| *p == disk.path) {
            return Err(format!("--disk {} given twice", disk.path));
        }
        let dev = match disk.dev {
            Some(dev) => dev,
            None => loop {
                let dev = DevT::new(254, next.checked_mul(16).ok_or("too many disks")?);
                next += 1;
                if !taken.contains(&dev) {
                    taken.push(dev);
                    break dev;
                }
            },
        };
        out.push((disk.path.clone(), dev));
    }
    Ok(out)
}

/// Resolves `--nbd-tcp`; every address it names must be loopback unless `any`.
pub fn tcp_addrs(spec: &str, any: bool) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = spec.to_socket_addrs().map_err(|e| format!("--nbd-tcp {spec}: {e}"))?.collect();
    if addrs.is_empty() {
        return Err(format!("--nbd-tcp {spec}: no address"));
    }
    if !any {
        if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(format!(
                "--nbd-tcp {spec}: {} is not a loopback address; NBD has no authentication (use --nbd-tcp-any to allow it)",
                bad.ip()
            ));
        }
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        match parse(args.iter().map(OsString::from))? {
            Cmd::Run(c) => Ok(c),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn disks_get_linux_virtio_numbers_in_order() {
        let c = run(&["--control", "/c", "--disk", "/a.img", "--disk=/b=x.img", "--disk", "/c.img=254:0"]).unwrap();
        assert_eq!(c.disks[1], DiskArg { path: "/b=x.img".into(), dev: None });
        let numbers = assign_numbers(&c.disks).unwrap();
        assert_eq!(
            numbers,
            vec![
                ("/a.img".into(), DevT::new(254, 16)),
                ("/b=x.img".into(), DevT::new(254, 32)),
                ("/c.img".into(), DevT::new(254, 0)),
            ]
        );
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert!(run(&[]).is_err());
        assert!(run(&["--control"]).is_err());
        assert!(run(&["--control", "/c", "--bogus"]).is_err());
        assert!(run(&["--control", "/c", "--io-threads", "0"]).is_err());
        assert!(run(&["--control", "/c", "--nbd-tcp-any"]).is_err());
        let dup = run(&["--control", "/c", "--disk", "/a=1:2", "--disk", "/b=1:2"]).unwrap();
        assert!(assign_numbers(&dup.disks).is_err());
        let dm = run(&["--control", "/c", "--disk", "/a=169:1"]).unwrap();
        assert!(assign_numbers(&dm.disks).is_err());
        assert_eq!(parse(["-h"].iter().map(OsString::from)), Ok(Cmd::Help));
    }

    #[test]
    fn target_module_options() {
        let c = run(&[
            "--control",
            "/c",
            "--target-module",
            "/m/a.so",
            "--target-module=/m/b.so",
            "--module-dir",
            "/m",
            "--without-target",
            "flakey",
        ])
        .unwrap();
        assert_eq!(c.target_modules, vec![PathBuf::from("/m/a.so"), PathBuf::from("/m/b.so")]);
        assert_eq!(c.module_dir, Some(PathBuf::from("/m")));
        assert_eq!(c.without_targets, vec!["flakey".to_string()]);
        assert!(run(&["--control", "/c", "--target-module"]).is_err());
    }

    #[test]
    fn tcp_must_be_loopback_unless_allowed() {
        assert!(tcp_addrs("127.0.0.1:0", false).is_ok());
        assert!(tcp_addrs("[::1]:0", false).is_ok());
        assert!(tcp_addrs("0.0.0.0:0", false).is_err());
        assert!(tcp_addrs("0.0.0.0:0", true).is_ok());
        assert!(tcp_addrs("nonsense", false).is_err());
    }
}
