//! dmclient: a typed client of dm(4)'s control protocol.
//!
//! Requests are proplib dictionaries built as NetBSD's lvm2 backend builds them ([`Request`],
//! reference §15); replies are decoded into typed values ([`DeviceInfo`], [`TableEntry`], ...).
//! Table lines have a typed, round-tripping form in dmsetup's syntax ([`TableLine`]). Requests
//! travel over a [`Transport`]: the ioctl on `/dev/mapper/control` (NetBSD, FreeBSD), dmhost's
//! control socket, or an in-process core.
//!
//! Failures come back as one [`Error`] carrying the errno and what was asked. Over NetBSD's
//! ioctl the kernel swallows command errors (§1.5): [`Client::execute`] decodes them from the
//! reply (EXISTS cleared → `ENOENT` "No such device", `create` without `minor` → `EEXIST`,
//! `reload` without INACTIVE_PRESENT → refused, ...). Transports that report the command's
//! errno and detail (dmhost's socket, [`LocalTransport`]) are believed first.
//!
//! Adding a command: a [`Command`] variant, a method that builds its [`Request`] and runs it
//! with [`Client::execute`], and a decoder for its reply. [`Client::message`],
//! [`Client::wait_event`] and [`Client::remove_all`] are built so (reference §11).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::todo,
        clippy::unimplemented
    )
)]
#![deny(unsafe_code)]

pub mod error;
mod request;
pub mod table;
pub mod transport;
mod types;

use std::borrow::Cow;

use dmcore::control::{flags, keys};
use dmcore::plist::{self, Dict, Limits, Value};

pub use dmcore::Errno;
pub use error::{Error, ErrorKind, NO_SUCH_DEVICE};
pub use request::{Command, Request};
pub use table::{parse_table, BlockDev, ParseReason, TableLine, TableParseError, TargetSpec};
pub use transport::{Control, LocalTransport, RawReply, SocketTransport, Transport, Unavailable};
pub use types::{DevNum, DeviceEntry, DeviceInfo, DeviceRef, TableEntry, TargetVersion};

pub type Result<T> = std::result::Result<T, Error>;

/// Bounds on reply text: replies have no size limit in the protocol (§1.4), so these are
/// generous, and only keep a broken driver from exhausting memory.
pub const REPLY_LIMITS: Limits =
    Limits { max_len: 64 << 20, max_depth: 8, max_entries: 1 << 20, max_string: 1 << 20, max_key: 128 };

/// A reply that passed the checks of [`Client::execute`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Response {
    /// The reply dictionary.
    pub reply: Dict,
    /// Whether the transport reported the command's errno (so success is known, not inferred).
    pub errno_reported: bool,
}

/// A client of the driver over one transport.
pub struct Client<T: Transport> {
    transport: T,
}

impl<T: Transport> Client<T> {
    pub fn new(transport: T) -> Self {
        Client { transport }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Sends a request and checks its reply: transport errors, an unreadable reply, a reply
    /// from an incompatible interface, and the command's own failure (reported by the
    /// transport, or decoded from the reply) all become an [`Error`].
    pub fn execute(&self, request: &Request) -> Result<Response> {
        let command = request.command();
        let fail = |kind| Error::new(command.wire_name(), request.device_ref().map(|d| d.to_string()), kind);
        let raw = self.transport.call(&request.to_bytes()).map_err(|e| fail(ErrorKind::Io(e)))?;
        if raw.transport_errno != 0 {
            return Err(fail(ErrorKind::Transport(Errno(raw.transport_errno))));
        }
        let reply = plist::parse_dict(&raw.bytes, &REPLY_LIMITS)
            .map_err(|e| fail(ErrorKind::Reply(format!("unreadable reply ({e:?})"))))?;
        let version: Vec<u32> =
            reply.get_array(keys::VERSION).unwrap_or_default().iter().map(|v| v.as_u32().unwrap_or(0)).collect();
        if version.first() != Some(&4) {
            return Err(fail(ErrorKind::Reply(format!("the driver speaks interface version {version:?}, not 4"))));
        }
        let reply_flags = reply.get_u32(keys::FLAGS).unwrap_or(0);
        // The kernel clears EXISTS when a device command finds no device (§9).
        let not_found =
            command.names_device() && request.flags() & flags::EXISTS != 0 && reply_flags & flags::EXISTS == 0;
        let failure = match raw.command_errno {
            Some(0) => None,
            Some(errno) => {
                let errno = Errno(errno);
                let meaning = if not_found && errno == Errno::ENOENT {
                    Cow::Borrowed(NO_SUCH_DEVICE)
                } else {
                    Cow::Borrowed(errno.description())
                };
                Some(ErrorKind::Command { errno, meaning, detail: raw.detail })
            }
            None => decode_failure(command, not_found, &reply),
        };
        match failure {
            Some(kind) => Err(fail(kind)),
            None => Ok(Response { reply, errno_reported: raw.command_errno.is_some() }),
        }
    }

    fn run(
        &self,
        command: Command,
        device: Option<&DeviceRef>,
        build: impl FnOnce(Request) -> Request,
    ) -> Result<Response> {
        let mut request = Request::new(command);
        if let Some(device) = device {
            request = request.device(device);
        }
        self.execute(&build(request))
    }

    /// The driver's interface version (4.16.0 for NetBSD's).
    pub fn version(&self) -> Result<[u32; 3]> {
        let response = self.run(Command::Version, None, |r| r)?;
        let v = response.reply.get_array(keys::VERSION).unwrap_or_default();
        let at = |i: usize| v.get(i).and_then(Value::as_u32).unwrap_or(0);
        Ok([at(0), at(1), at(2)])
    }

    /// The registered target types with their versions, in the driver's order.
    pub fn targets(&self) -> Result<Vec<TargetVersion>> {
        let response = self.run(Command::Targets, None, |r| r)?;
        let entries = cmd_data(&response.reply)
            .iter()
            .filter_map(Value::as_dict)
            .map(|t| {
                let v = t.get_array(keys::TARGET_VERSION).unwrap_or_default();
                let at = |i: usize| v.get(i).and_then(Value::as_u32).unwrap_or(0);
                TargetVersion { name: text(t, keys::NAME), version: [at(0), at(1), at(2)] }
            })
            .collect();
        Ok(entries)
    }

    /// Creates a device with no table. Returns its name and minor.
    pub fn create(&self, name: &str, uuid: Option<&str>, read_only: bool) -> Result<DeviceEntry> {
        let response = self.execute(&create_request(name, uuid, read_only))?;
        let minor = response.reply.get_u32(keys::MINOR).unwrap_or(0);
        Ok(DeviceEntry { name: name.to_string(), minor })
    }

    /// Loads `lines` into the device's inactive table (made live by [`Client::resume`]).
    pub fn reload(&self, device: &DeviceRef, lines: &[TableLine]) -> Result<()> {
        let data = lines
            .iter()
            .map(|line| {
                let mut entry = Dict::new();
                entry.set_u64(keys::START, line.start);
                entry.set_u64(keys::LENGTH, line.length);
                entry.set_string(keys::TYPE, line.target_type().as_bytes());
                entry.set_string(keys::PARAMS, line.params().as_bytes());
                Value::Dict(entry)
            })
            .collect();
        self.run(Command::Reload, Some(device), |r| r.cmd_data(data)).map(drop)
    }

    /// Makes a loaded table live and ends a suspension.
    pub fn resume(&self, device: &DeviceRef) -> Result<()> {
        self.run(Command::Resume, Some(device), |r| r).map(drop)
    }

    /// Suspends the device: new I/O waits, I/O in flight completes (flushed unless `noflush`).
    pub fn suspend(&self, device: &DeviceRef, noflush: bool) -> Result<()> {
        let bits = flags::SUSPEND | if noflush { flags::NOFLUSH } else { 0 };
        self.run(Command::Suspend, Some(device), |r| r.set_flags(bits)).map(drop)
    }

    /// Removes the device.
    pub fn remove(&self, device: &DeviceRef) -> Result<()> {
        let response = self.run(Command::Remove, Some(device), |r| r)?;
        if !response.errno_reported {
            // The reply of `remove` looks the same whether it worked or not (§10.13): look.
            if let Ok(info) = self.info(device) {
                let errno = if info.open_count > 0 { Errno::EBUSY } else { Errno::EPERM };
                let detail = format!("the device still exists (open count {})", info.open_count);
                return Err(Error::new(
                    Command::Remove.wire_name(),
                    Some(device.to_string()),
                    command_error(errno, detail),
                ));
            }
        }
        Ok(())
    }

    /// Drops the device's inactive table.
    pub fn clear(&self, device: &DeviceRef) -> Result<()> {
        let response = self.run(Command::Clear, Some(device), |r| r)?;
        if !response.errno_reported {
            // `clear` adds nothing to its reply (§10.9): look.
            if let Ok(info) = self.info(device) {
                if info.inactive_table {
                    let detail = "the inactive table is still there".to_string();
                    return Err(Error::new(
                        Command::Clear.wire_name(),
                        Some(device.to_string()),
                        command_error(Errno::EPERM, detail),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The device's state.
    pub fn info(&self, device: &DeviceRef) -> Result<DeviceInfo> {
        let response = self.run(Command::Info, Some(device), |r| r)?;
        Ok(decode_info(&response.reply, device))
    }

    /// Sends `message` to the line of the device's live table that contains `sector`
    /// (`dmsetup message NAME SECTOR MSG...`). Returns the target's answer, if it gave one.
    pub fn message(&self, device: &DeviceRef, sector: u64, message: &str) -> Result<Option<String>> {
        let response = self.run(Command::Message, Some(device), |r| {
            r.set(keys::SECTOR, Value::unsigned(sector)).set(keys::MESSAGE, Value::string(message.as_bytes()))
        })?;
        let answer = cmd_data(&response.reply).first().and_then(Value::as_bytes);
        Ok(answer.map(|a| String::from_utf8_lossy(a).into_owned()))
    }

    /// Waits until the device's event counter differs from `event_nr` (the last one seen), then
    /// returns the device's state, with the counter now in [`DeviceInfo::event_nr`]
    /// (`dmsetup wait NAME [EVENT_NR]`). Blocks the calling thread; `EINTR` when the driver's
    /// wait was interrupted.
    pub fn wait_event(&self, device: &DeviceRef, event_nr: u32) -> Result<DeviceInfo> {
        let response =
            self.run(Command::WaitEvent, Some(device), |r| r.set(keys::EVENT_NR, Value::unsigned(event_nr.into())))?;
        Ok(decode_info(&response.reply, device))
    }

    /// Removes every device that is not open (`dmsetup remove_all`); open ones stay.
    pub fn remove_all(&self) -> Result<()> {
        self.run(Command::RemoveAll, None, |r| r).map(drop)
    }

    /// Every device, in the driver's order.
    pub fn names(&self) -> Result<Vec<DeviceEntry>> {
        let response = self.run(Command::Names, None, |r| r)?;
        let entries = cmd_data(&response.reply)
            .iter()
            .filter_map(Value::as_dict)
            .map(|d| DeviceEntry { name: text(d, keys::NAME), minor: d.get_u32(keys::DEV).unwrap_or(0) })
            .collect();
        Ok(entries)
    }

    /// The table lines (constructor arguments) of the active table, or of the inactive one.
    pub fn table(&self, device: &DeviceRef, inactive: bool) -> Result<Vec<TableEntry>> {
        self.table_or_status(Command::Table, device, inactive)
    }

    /// The status lines (run-time state) of the active table, or of the inactive one.
    pub fn status(&self, device: &DeviceRef, inactive: bool) -> Result<Vec<TableEntry>> {
        self.table_or_status(Command::Status, device, inactive)
    }

    fn table_or_status(&self, command: Command, device: &DeviceRef, inactive: bool) -> Result<Vec<TableEntry>> {
        let mut bits = if command == Command::Table { flags::STATUS_TABLE } else { 0 };
        if inactive {
            bits |= flags::QUERY_INACTIVE_TABLE;
        }
        let response = self.run(command, Some(device), |r| r.set_flags(bits))?;
        let entries = cmd_data(&response.reply)
            .iter()
            .filter_map(Value::as_dict)
            .map(|e| TableEntry {
                start: e.get_u64(keys::START).unwrap_or(0),
                length: e.get_u64(keys::LENGTH).unwrap_or(0),
                target_type: text(e, keys::TYPE),
                // The 2016 kernel omits `params` for a target with nothing to say.
                params: text(e, keys::PARAMS),
            })
            .collect();
        Ok(entries)
    }

    /// The lower block devices the active table uses.
    pub fn deps(&self, device: &DeviceRef) -> Result<Vec<DevNum>> {
        let response = self.run(Command::Deps, Some(device), |r| r)?;
        let devs = cmd_data(&response.reply).iter().filter_map(Value::as_u64).map(DevNum::from_netbsd).collect();
        Ok(devs)
    }

    /// Renames the device.
    pub fn rename(&self, device: &DeviceRef, new_name: &str) -> Result<()> {
        let data = vec![Value::String(new_name.as_bytes().to_vec())];
        self.run(Command::Rename, Some(device), |r| r.cmd_data(data)).map(drop)
    }
}

/// The `create` request: lvm2's form, except that `DM_EXISTS_FLAG` is left clear. NetBSD sets
/// EXISTS on success and on `EEXIST` alike; sent clear, its presence in a reply without
/// `minor` is what tells a duplicate from any other refusal.
fn create_request(name: &str, uuid: Option<&str>, read_only: bool) -> Request {
    let mut request = Request::new(Command::Create).clear_flags(flags::EXISTS).device(&DeviceRef::Name(name.into()));
    if let Some(uuid) = uuid {
        request = request.set(keys::UUID, Value::String(uuid.as_bytes().to_vec()));
    }
    if read_only {
        request = request.set_flags(flags::READONLY);
    }
    request
}

/// An `info` (or `waitevent`) reply as a [`DeviceInfo`].
fn decode_info(reply: &Dict, device: &DeviceRef) -> DeviceInfo {
    let f = reply.get_u32(keys::FLAGS).unwrap_or(0);
    let name = match (reply.get_bytes(keys::NAME), device) {
        (Some(name), _) => String::from_utf8_lossy(name).into_owned(),
        (None, DeviceRef::Name(name)) => name.clone(),
        (None, _) => String::new(),
    };
    DeviceInfo {
        name,
        uuid: text(reply, keys::UUID),
        minor: reply.get_u32(keys::MINOR).unwrap_or(0),
        open_count: reply.get_u32(keys::OPEN_COUNT).unwrap_or(0),
        target_count: reply.get_u32(keys::TARGET_COUNT).unwrap_or(0),
        event_nr: reply.get_u32(keys::EVENT_NR).unwrap_or(0),
        suspended: f & flags::SUSPEND != 0,
        read_only: f & flags::READONLY != 0,
        live_table: f & flags::ACTIVE_PRESENT != 0,
        inactive_table: f & flags::INACTIVE_PRESENT != 0,
    }
}

fn command_error(errno: Errno, detail: String) -> ErrorKind {
    ErrorKind::Command { errno, meaning: Cow::Borrowed(errno.description()), detail: Some(detail) }
}

/// Decodes a command's failure from a NetBSD reply, whose ioctl succeeded whatever happened
/// (§1.5, §21): the device was not found (EXISTS cleared), or the keys a successful command
/// adds are missing. Commands anyone may run can fail only by not finding their device.
fn decode_failure(command: Command, not_found: bool, reply: &Dict) -> Option<ErrorKind> {
    if not_found {
        let detail = None;
        return Some(ErrorKind::Command { errno: Errno::ENOENT, meaning: Cow::Borrowed(NO_SUCH_DEVICE), detail });
    }
    let reply_flags = reply.get_u32(keys::FLAGS).unwrap_or(0);
    let refused = "refused by the driver, which does not say why over this transport";
    match command {
        // `create` adds `minor` on success; EXISTS (sent clear) set without it is EEXIST.
        Command::Create if !reply.contains(keys::MINOR) => Some(if reply_flags & flags::EXISTS != 0 {
            command_error(Errno::EEXIST, "a device with this name or uuid exists".to_string())
        } else {
            command_error(Errno::EINVAL, refused.to_string())
        }),
        // `reload` sets INACTIVE_PRESENT on success (it is never sent).
        Command::Reload if reply_flags & flags::INACTIVE_PRESENT == 0 => {
            Some(command_error(Errno::EINVAL, format!("table {refused}")))
        }
        // These add `open_count` on success (it is never sent).
        Command::Resume | Command::Suspend | Command::Rename if !reply.contains(keys::OPEN_COUNT) => {
            Some(command_error(Errno::EINVAL, refused.to_string()))
        }
        // `waitevent` adds the info keys on success; NetBSD's own driver, which lacks the
        // command, echoes the request.
        Command::WaitEvent if !reply.contains(keys::OPEN_COUNT) => {
            Some(command_error(Errno::EINVAL, format!("{refused} (a driver without waitevent answers so)")))
        }
        _ => None,
    }
}

/// The elements of `cmd_data`.
fn cmd_data(reply: &Dict) -> &[Value] {
    reply.get_array(keys::CMD_DATA).unwrap_or_default()
}

/// A string value as text (empty when absent).
fn text(dict: &Dict, key: &str) -> String {
    dict.get_bytes(key).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
}
