//! Requests, built as lvm2's NetBSD backend builds them (reference §15.1): `command`,
//! `version`, an empty `cmd_data` array unless the command carries data, `flags` with
//! `DM_EXISTS_FLAG`, `event_nr` 0, and the lookup keys of the device.

use dmcore::control::{flags, keys};
use dmcore::plist::{self, Dict, Number, Value};

use crate::types::DeviceRef;

/// A protocol command.
///
/// New commands are added as variants here, built with [`Request`] and run with
/// [`crate::Client::execute`]. `Message`, `WaitEvent` and `RemoveAll` are the extensions of
/// reference §11, which NetBSD's own driver answers as unknown commands.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Command {
    Version,
    Targets,
    Create,
    Reload,
    Resume,
    Suspend,
    Remove,
    Clear,
    Info,
    Names,
    Table,
    Status,
    Deps,
    Rename,
    /// `message`: DragonFly's top-level `sector` and `message` keys; the answer in `cmd_data[0]`.
    Message,
    /// `waitevent`: waits until the device's event counter differs from `event_nr`.
    WaitEvent,
    /// `remove_all`: removes every device that is not open.
    RemoveAll,
}

impl Command {
    /// The `command` string on the wire.
    pub fn wire_name(self) -> &'static str {
        match self {
            Command::Version => "version",
            Command::Targets => "targets",
            Command::Create => "create",
            Command::Reload => "reload",
            Command::Resume => "resume",
            Command::Suspend => "suspend",
            Command::Remove => "remove",
            Command::Clear => "clear",
            Command::Info => "info",
            Command::Names => "names",
            Command::Table => "table",
            Command::Status => "status",
            Command::Deps => "deps",
            Command::Rename => "rename",
            Command::Message => "message",
            Command::WaitEvent => "waitevent",
            Command::RemoveAll => "remove_all",
        }
    }

    /// The interface version lvm2 sends with the command.
    pub fn version(self) -> [u32; 3] {
        match self {
            Command::Targets => [4, 1, 0],
            Command::Message => [4, 2, 0],
            _ => [4, 0, 0],
        }
    }

    /// Whether the command looks a device up (and so clears EXISTS when there is none).
    pub fn names_device(self) -> bool {
        !matches!(self, Command::Version | Command::Targets | Command::Names | Command::Create | Command::RemoveAll)
    }
}

/// One request dictionary.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Request {
    command: Command,
    device: Option<DeviceRef>,
    dict: Dict,
}

impl Request {
    /// `command`, `version`, `cmd_data` = `[]`, `event_nr` = 0, `flags` = EXISTS.
    pub fn new(command: Command) -> Self {
        let mut dict = Dict::new();
        dict.set_string(keys::COMMAND, command.wire_name().as_bytes());
        // lvm2 fills the version array with the set-at-index helper: unsigned numbers.
        let version = command.version().iter().map(|&v| Value::Number(Number::Unsigned(u64::from(v)))).collect();
        dict.insert(keys::VERSION, Value::Array(version));
        dict.insert(keys::CMD_DATA, Value::Array(Vec::new()));
        dict.set_u32(keys::EVENT_NR, 0);
        dict.set_u32(keys::FLAGS, flags::EXISTS);
        Request { command, device: None, dict }
    }

    /// Names the device: `name`, `uuid`, or `minor` with `DM_PERSISTENT_DEV_FLAG` (lvm2 sends
    /// the flag whenever it sends a minor).
    pub fn device(mut self, device: &DeviceRef) -> Self {
        match device {
            DeviceRef::Name(name) => self.dict.set_string(keys::NAME, name.as_bytes()),
            DeviceRef::Uuid(uuid) => self.dict.set_string(keys::UUID, uuid.as_bytes()),
            DeviceRef::Minor(minor) => {
                self.dict.set_u32(keys::MINOR, *minor);
                self = self.set_flags(flags::PERSISTENT_DEV);
            }
        }
        self.device = Some(device.clone());
        self
    }

    /// Sets bits of `flags`.
    pub fn set_flags(mut self, bits: u32) -> Self {
        let f = self.flags() | bits;
        self.dict.set_u32(keys::FLAGS, f);
        self
    }

    /// Clears bits of `flags`.
    pub fn clear_flags(mut self, bits: u32) -> Self {
        let f = self.flags() & !bits;
        self.dict.set_u32(keys::FLAGS, f);
        self
    }

    /// Replaces `cmd_data`.
    pub fn cmd_data(mut self, data: Vec<Value>) -> Self {
        self.dict.insert(keys::CMD_DATA, Value::Array(data));
        self
    }

    /// Sets any other key (extension commands' own keys).
    pub fn set(mut self, key: &str, value: Value) -> Self {
        self.dict.insert(key, value);
        self
    }

    pub fn command(&self) -> Command {
        self.command
    }

    pub fn device_ref(&self) -> Option<&DeviceRef> {
        self.device.as_ref()
    }

    pub fn flags(&self) -> u32 {
        self.dict.get_u32(keys::FLAGS).unwrap_or(0)
    }

    pub fn dict(&self) -> &Dict {
        &self.dict
    }

    /// The externalized text, without the NUL the transport adds.
    pub fn to_bytes(&self) -> Vec<u8> {
        plist::write_dict(&self.dict)
    }
}
