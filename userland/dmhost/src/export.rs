//! Every mapped device with an active table, as an NBD export named like the device.
//!
//! Opening an export counts as an open of the device ([`Core::open`]), so `remove` fails with
//! `EBUSY` while a client is connected; the NBD server closes it when the connection has ended
//! and its last request is answered. NBD requests become [`Core::submit`] calls whose buffer is
//! the NBD request's own: a read is filled in place by the I/O threads and handed back to the
//! server as the reply's payload.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use dm_nbd::{Command, Completion, Export, Exports, Request};
use dmcore::control::{flags, keys};
use dmcore::plist::{self, Dict, Limits, Value};
use dmcore::{Caller, Core, Errno, IoRequest, Op, SECTOR_SIZE};

use crate::platform::HostPlatform;

/// The limits for parsing the core's own replies (a `names` reply grows with the devices).
const REPLY_LIMITS: Limits =
    Limits { max_len: 64 << 20, max_depth: 8, max_entries: 1 << 20, max_string: 1 << 20, max_key: 128 };

/// The NBD error for a core error.
pub fn nbd_errno(errno: Errno) -> dm_nbd::Errno {
    match errno {
        Errno::EROFS | Errno::EPERM => dm_nbd::Errno::Perm,
        Errno::ENOMEM => dm_nbd::Errno::NoMem,
        Errno::EINVAL => dm_nbd::Errno::Inval,
        Errno::ENOSPC => dm_nbd::Errno::NoSpc,
        Errno::EOPNOTSUPP => dm_nbd::Errno::NotSup,
        // The device went away (removed, or dmhost is shutting down).
        Errno::ENXIO => dm_nbd::Errno::Shutdown,
        _ => dm_nbd::Errno::Io,
    }
}

/// Runs one control command on the core, as a privileged caller, and returns the reply
/// dictionary when the command succeeded.
pub fn command(core: &Core<HostPlatform>, request: &Dict) -> Option<Dict> {
    let reply = core.control(&plist::write_dict(request), Caller { privileged: true }).ok()?;
    reply.command_result.ok()?;
    plist::parse_dict(&reply.bytes, &REPLY_LIMITS).ok()
}

fn request(command: &str) -> Dict {
    let mut dict = Dict::new();
    dict.set_string(keys::COMMAND, command.as_bytes());
    let version = dmcore::control::VERSION.iter().map(|&v| Value::unsigned(u64::from(v))).collect();
    dict.insert(keys::VERSION, Value::Array(version));
    dict
}

/// The exports of one core.
pub struct DmExports {
    core: Arc<Core<HostPlatform>>,
    /// Minors opened under each export name, so that `close` (which only has the name) closes
    /// the device that was opened even if it has been renamed since.
    opened: Mutex<HashMap<String, Vec<u32>>>,
}

impl DmExports {
    pub fn new(core: Arc<Core<HostPlatform>>) -> Arc<Self> {
        Arc::new(DmExports { core, opened: Mutex::new(HashMap::new()) })
    }

    fn opened(&self) -> MutexGuard<'_, HashMap<String, Vec<u32>>> {
        self.opened.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The minor, size in bytes and read-only flag of the device `name`, when it has an active
    /// table.
    fn lookup(&self, name: &str) -> Option<(u32, u64, bool)> {
        let minor = self.core.minor_of(name)?;
        let mut info = request("info");
        info.set_u32(keys::MINOR, minor);
        let reply = command(&self.core, &info)?;
        let device_flags = reply.get_u32(keys::FLAGS).unwrap_or(0);
        if device_flags & flags::ACTIVE_PRESENT == 0 {
            return None;
        }
        let bytes = self.core.size(minor)?.checked_mul(SECTOR_SIZE)?;
        (bytes > 0).then_some((minor, bytes, device_flags & flags::READONLY != 0))
    }
}

impl Exports for DmExports {
    fn open(&self, name: &str) -> Option<Arc<dyn Export>> {
        let (minor, _, read_only) = self.lookup(name)?;
        if let Err(errno) = self.core.open(minor) {
            log::info!("nbd: cannot open {name}: {errno}");
            return None;
        }
        self.opened().entry(name.to_owned()).or_default().push(minor);
        log::info!("nbd: export {name} opened");
        Some(Arc::new(DmExport { core: Arc::clone(&self.core), minor, read_only }))
    }

    fn close(&self, name: &str) {
        let minor = {
            let mut opened = self.opened();
            let minor = opened.get_mut(name).and_then(Vec::pop);
            if opened.get(name).is_some_and(Vec::is_empty) {
                opened.remove(name);
            }
            minor
        };
        if let Some(minor) = minor {
            self.core.close(minor);
            log::info!("nbd: export {name} closed");
        }
    }

    fn list(&self) -> Vec<String> {
        let Some(reply) = command(&self.core, &request("names")) else { return Vec::new() };
        let names = reply.get_array(keys::CMD_DATA).unwrap_or_default();
        names
            .iter()
            .filter_map(|entry| entry.as_dict()?.get_str(keys::NAME))
            .filter(|name| self.lookup(name).is_some())
            .map(str::to_owned)
            .collect()
    }

    /// Describes an export without opening the device.
    fn info(&self, name: &str) -> Option<(u64, bool)> {
        self.lookup(name).map(|(_, bytes, read_only)| (bytes, read_only))
    }

    fn description(&self, name: &str) -> Option<String> {
        Some(format!("device-mapper device {name}"))
    }
}

/// One open of a mapped device by an NBD connection.
struct DmExport {
    core: Arc<Core<HostPlatform>>,
    minor: u32,
    read_only: bool,
}

impl Export for DmExport {
    fn size(&self) -> u64 {
        self.core.size(self.minor).unwrap_or(0).saturating_mul(SECTOR_SIZE)
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn submit(&self, req: Request, done: Completion) {
        let op = match req.cmd {
            Command::Read => Op::Read,
            Command::Write => Op::Write,
            Command::Flush => Op::Flush,
            Command::Trim => Op::Discard,
            Command::WriteZeroes => Op::WriteZeroes,
        };
        // The server checked alignment (512) and range; the core checks both again.
        let bytes = if op == Op::Flush { 0 } else { u64::from(req.len) };
        let io_req = IoRequest { sector: req.offset / SECTOR_SIZE, bytes, op, fua: req.fua };
        let io = HostPlatform::request(
            self.minor,
            io_req,
            req.data,
            Box::new(move |result, data| done.complete(result.map(|()| data).map_err(nbd_errno))),
        );
        self.core.submit(self.minor, io, io_req);
    }
}
