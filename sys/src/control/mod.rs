//! The control path: one proplib request dictionary in, the edited dictionary out.
//!
//! This follows NetBSD's dm(4) wire contract (netbsd-protocol.md): every request passes the
//! version check, is dispatched on its `command` string, and the handler edits the request
//! dictionary in place; the edited dictionary is the reply. A command's failure is reported in
//! the reply (flags, absent keys), never as the ioctl's errno — only transport errors (size,
//! unparsable text) fail the ioctl.
//!
//! Read top to bottom: [`Core::control`] here, then `devices.rs` (create, info, names, suspend,
//! resume, rename, remove), `tables.rs` (reload, clear, deps, status, table) and
//! `extensions.rs` (message, waitevent, remove_all).
//!
//! # Commands NetBSD's driver lacks (reference §11)
//!
//! Three commands of Linux's device-mapper that NetBSD's driver answers as unknown. Their
//! requests are dictionaries of the same shape as the others (`command`, `version`, `flags`,
//! `event_nr`, `cmd_data` and the lookup keys of §9, which find the device the usual way: not
//! found → EXISTS cleared and `ENOENT`); the version check (§7) is the usual one, so lvm2's
//! `[4,2,0]` for `message` passes. On NetBSD's driver each falls into "unknown command" (§8):
//! the reply is the request with its version rewritten, so a client that needs one of them can
//! tell by the command's result (over dmhost's socket) or by the missing reply keys.
//!
//! ## `message` (privileged)
//! In: lookup keys; **`sector`** (uint64, top level; absent = 0) and **`message`** (string, top
//! level), DragonFly BSD's `DM_MESSAGE_SECTOR` and `DM_MESSAGE_STR`; `cmd_data` (sent empty,
//! ignored). Steps: lookup; split `message` into arguments as table `params` are split; refuse
//! an empty message and any message starting with `@` (Linux's core messages) with `EINVAL`;
//! find the line of the **live** table whose range contains `sector` (`EINVAL` without a live
//! table or past its end); hand the arguments to that line's target. Out: when the target
//! answers, `cmd_data` = `[answer]` (one string, Linux's result buffer); otherwise the request's
//! `cmd_data` echoed. Failures: the target's errno (`EINVAL`, with the detail "Target type does
//! not support messages", for a target that takes none: linear, striped, zero, error, delay,
//! flakey, as in Linux).
//!
//! ## `waitevent` (everybody, like `info`)
//! In: lookup keys, **`event_nr`** (uint32, the last event number the caller saw; absent = 0).
//! Steps: lookup; wait, holding no lock of the core, until the device's event counter differs
//! from `event_nr` (at once if it already does). Out: the keys of `info` (§10.4) and
//! **`event_nr`** (uint32) = the counter now. Failures: `EINTR` when the wait is interrupted
//! (a signal; dmhost: shutdown), `ENXIO` with EXISTS cleared when the device is removed
//! meanwhile.
//!
//! The counter (Linux's `event_nr`) starts at 0 and goes up by one for each event a target of
//! the live table reports ([`crate::event`]: striped on its first errors, as Linux); table
//! swaps do not count, as in Linux. `info` and `status` replies carry it in `event_nr` when the
//! request carried that key (lvm2 and libdevmapper always send it) and it differs from the
//! request's value, so that NetBSD's replies stay byte for byte the same until an event happens.
//!
//! ## `remove_all` (privileged)
//! In: no key beyond the standard ones (lvm2 sends `flags` 0x4, `event_nr` 0, an empty
//! `cmd_data`). Steps: remove every device that is not open, each as `remove` does (§10.13: all
//! or nothing), repeating while a pass removes something (removing a device closes the devices
//! its table stacked on); open devices stay, as Linux's `DM_REMOVE_ALL` keeps them. Out: nothing
//! added; the command succeeds even when devices stay (logged: "remove_all left N open
//! device(s)", Linux's warning).

mod devices;
mod extensions;
mod tables;

use alloc::string::String;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::platform::{LogLevel, Platform};
use crate::plist::{self, Dict, Number, PlistError, Value};
use crate::Core;

/// Interface version this driver reports: 4.16.0, as NetBSD's.
pub const VERSION: [u32; 3] = [4, 16, 0];

/// Requests whose text, with its NUL, is this long or longer are refused with `E2BIG`
/// (modern NetBSD's copy-in limit).
pub const MAX_REQUEST_LEN: usize = 131_072;

/// Request and reply flags (`"flags"`).
pub mod flags {
    pub const READONLY: u32 = 0x1;
    pub const SUSPEND: u32 = 0x2;
    pub const EXISTS: u32 = 0x4;
    pub const PERSISTENT_DEV: u32 = 0x8;
    pub const STATUS_TABLE: u32 = 0x10;
    pub const ACTIVE_PRESENT: u32 = 0x20;
    pub const INACTIVE_PRESENT: u32 = 0x40;
    pub const BUFFER_FULL: u32 = 0x100;
    pub const SKIP_BDGET: u32 = 0x200;
    pub const SKIP_LOCKFS: u32 = 0x400;
    pub const NOFLUSH: u32 = 0x800;
    pub const QUERY_INACTIVE_TABLE: u32 = 0x1000;
}

/// Dictionary keys of the protocol.
pub mod keys {
    pub const COMMAND: &str = "command";
    pub const VERSION: &str = "version";
    pub const OPEN_COUNT: &str = "open_count";
    pub const MINOR: &str = "minor";
    pub const NAME: &str = "name";
    pub const UUID: &str = "uuid";
    pub const TARGET_COUNT: &str = "target_count";
    pub const EVENT_NR: &str = "event_nr";
    pub const FLAGS: &str = "flags";
    pub const CMD_DATA: &str = "cmd_data";
    pub const TARGET_VERSION: &str = "ver";
    pub const DEV: &str = "dev";
    pub const TYPE: &str = "type";
    pub const START: &str = "start";
    pub const LENGTH: &str = "length";
    pub const STATUS: &str = "status";
    pub const PARAMS: &str = "params";
    /// `message`: the sector that selects the table line (DragonFly's `DM_MESSAGE_SECTOR`).
    pub const SECTOR: &str = "sector";
    /// `message`: the message text (DragonFly's `DM_MESSAGE_STR`).
    pub const MESSAGE: &str = "message";
}

/// Who sends a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Caller {
    /// Whether the caller may run privileged commands (NetBSD: `KAUTH_SYSTEM_DEVMAPPER`).
    pub privileged: bool,
}

/// The outcome of a request whose text was accepted.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Reply {
    /// The reply text, without the NUL the transport adds.
    pub bytes: Vec<u8>,
    /// What the command itself returned. NetBSD swallows it (the ioctl still succeeds); it is
    /// here for hosts that can report it (dmhost's socket), logs and tests.
    pub command_result: Result<(), Errno>,
    /// For a refused table, the line and Linux's message (e.g. "line 0: linear: Invalid
    /// argument count").
    pub detail: Option<String>,
}

type Handler<P> = fn(&Core<P>, &mut Dict) -> CmdResult;

/// Why a command failed: its errno, and for table loads the offending line and Linux's message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Failure {
    pub errno: Errno,
    pub detail: Option<String>,
}

impl From<Errno> for Failure {
    fn from(errno: Errno) -> Self {
        Failure { errno, detail: None }
    }
}

pub(crate) type CmdResult = Result<(), Failure>;

impl<P: Platform> Core<P> {
    /// Runs one control request. `Err` is a transport error: the ioctl fails with it and there
    /// is no reply. `Ok` carries the reply, whatever the command's own result.
    pub fn control(&self, request: &[u8], caller: Caller) -> Result<Reply, Errno> {
        if request.len() >= MAX_REQUEST_LEN {
            return Err(Errno::E2BIG);
        }
        let mut dict = plist::parse_dict(request, &plist::Limits::DM).map_err(|e| match e {
            PlistError::TooLarge => Errno::E2BIG,
            _ => Errno::EIO,
        })?;
        let (command_result, detail) = match self.run(&mut dict, caller) {
            Ok(()) => (Ok(()), None),
            Err(failure) => {
                let command = dict.get_str(keys::COMMAND).unwrap_or("?");
                self.platform.log(LogLevel::Debug, format_args!("dm: command {command} failed: {}", failure.errno));
                (Err(failure.errno), failure.detail)
            }
        };
        Ok(Reply { bytes: plist::write_dict(&dict), command_result, detail })
    }

    fn run(&self, dict: &mut Dict, caller: Caller) -> CmdResult {
        check_version(dict)?;
        let command = dict.get_str(keys::COMMAND).and_then(command::<P>);
        // Unknown commands count as privileged, as in NetBSD's table.
        let everybody = command.is_some_and(|(_, everybody)| everybody);
        if !everybody && !caller.privileged {
            return Err(Errno::EPERM.into());
        }
        let (handler, _) = command.ok_or(Errno::EINVAL)?;
        handler(self, dict)
    }
}

/// A command's handler, and whether unprivileged callers may run it (NetBSD's command table).
fn command<P: Platform>(name: &str) -> Option<(Handler<P>, bool)> {
    let entry: (Handler<P>, bool) = match name {
        "version" => (|_, _| Ok(()), true),
        "targets" => (list_targets, true),
        "create" => (devices::create, false),
        "info" | "mknodes" => (devices::info, true),
        "names" => (devices::names, true),
        "suspend" => (devices::suspend, false),
        "remove" => (devices::remove, false),
        "rename" => (devices::rename, false),
        "resume" => (devices::resume, false),
        "clear" => (tables::clear, false),
        "deps" => (tables::deps, true),
        "reload" => (tables::reload, false),
        "status" | "table" => (tables::status, true),
        // Extensions (reference §11): NetBSD's driver answers these as unknown commands.
        "message" => (extensions::message, false),
        "waitevent" => (extensions::waitevent, true),
        "remove_all" => (extensions::remove_all, false),
        _ => return None,
    };
    Some(entry)
}

/// NetBSD's handshake: the client's major must be 4 and its minor at most 16 (missing elements
/// count as 0). On success the version becomes 4.16.0; on failure nothing is touched.
fn check_version(dict: &mut Dict) -> Result<(), Errno> {
    let sent = |i: usize| dict.get_array(keys::VERSION).and_then(|v| v.get(i)).and_then(Value::as_u32).unwrap_or(0);
    if sent(0) != VERSION[0] || sent(1) > VERSION[1] {
        return Err(Errno::EIO);
    }
    let mut version: Vec<Value> = dict.get_array(keys::VERSION).map(<[Value]>::to_vec).unwrap_or_default();
    for (i, &v) in VERSION.iter().enumerate() {
        let number = Value::Number(Number::Unsigned(u64::from(v)));
        match version.get_mut(i) {
            Some(slot) => *slot = number,
            None => version.push(number),
        }
    }
    dict.insert(keys::VERSION, Value::Array(version));
    Ok(())
}

/// `targets`: every registered target type with its version, in registration order. The
/// version elements are signed numbers, as NetBSD's array append helper writes them.
fn list_targets<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let list = core
        .targets
        .list()
        .into_iter()
        .map(|(name, ver)| {
            let mut entry = Dict::new();
            entry.set_string(keys::NAME, name.as_bytes());
            let ver = ver.iter().map(|&v| Value::Number(Number::Signed(i64::from(v)))).collect();
            entry.insert(keys::TARGET_VERSION, Value::Array(ver));
            Value::Dict(entry)
        })
        .collect();
    dict.insert(keys::CMD_DATA, Value::Array(list));
    Ok(())
}

/// The request's `flags`, 0 when absent or unreadable (NetBSD's pre-set local).
fn read_flags(dict: &Dict) -> u32 {
    dict.get_u32(keys::FLAGS).unwrap_or(0)
}

/// Writes the device's event counter into `event_nr` when the request carried that key and the
/// value differs. Clients that send `event_nr` (lvm2, libdevmapper) learn the counter from
/// `info` and `status`; a reply stays byte for byte what NetBSD's driver returns (the request's
/// key echoed) as long as the device has had no event, and requests without the key (NetBSD's
/// libdm and dmctl) never get it.
fn report_event_nr(dict: &mut Dict, event_nr: u32) {
    if dict.contains(keys::EVENT_NR) && dict.get_u32(keys::EVENT_NR) != Some(event_nr) {
        dict.set_u32(keys::EVENT_NR, event_nr);
    }
}

/// Sets and clears bits of the request's flags and writes them back as unsigned.
fn edit_flags(dict: &mut Dict, set: u32, clear: u32) {
    let flags = (read_flags(dict) & !clear) | set;
    dict.set_u32(keys::FLAGS, flags);
}
