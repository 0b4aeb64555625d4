//! The control path: one proplib request dictionary in, the edited dictionary out.
//!
//! This follows NetBSD's dm(4) wire contract (netbsd-protocol.md): every request passes the
//! version check, is dispatched on its `command` string, and the handler edits the request
//! dictionary in place; the edited dictionary is the reply. A command's failure is reported in
//! the reply (flags, absent keys), never as the ioctl's errno — only transport errors (size,
//! unparsable text) fail the ioctl.
//!
//! Read top to bottom: [`Core::control`] here, then `devices.rs` (create, info, names, suspend,
//! resume, rename, remove) and `tables.rs` (reload, clear, deps, status, table).

mod devices;
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

/// Sets and clears bits of the request's flags and writes them back as unsigned.
fn edit_flags(dict: &mut Dict, set: u32, clear: u32) {
    let flags = (read_flags(dict) & !clear) | set;
    dict.set_u32(keys::FLAGS, flags);
}
