//! Typed values of requests and replies.

use std::fmt;

use crate::table::{TableLine, TargetSpec};

/// How a request names its device (reference §9: the kernel tries the minor, then the name,
/// then the uuid).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum DeviceRef {
    Name(String),
    Uuid(String),
    Minor(u32),
}

impl From<&str> for DeviceRef {
    fn from(name: &str) -> Self {
        DeviceRef::Name(name.to_string())
    }
}

impl From<String> for DeviceRef {
    fn from(name: String) -> Self {
        DeviceRef::Name(name)
    }
}

/// `vg0-lv0`, `uuid LVM-...`, `minor 3`: how errors name the device.
impl fmt::Display for DeviceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceRef::Name(name) => f.write_str(name),
            DeviceRef::Uuid(uuid) => write!(f, "uuid {uuid}"),
            DeviceRef::Minor(minor) => write!(f, "minor {minor}"),
        }
    }
}

/// A block device number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl DevNum {
    pub const fn new(major: u32, minor: u32) -> Self {
        DevNum { major, minor }
    }

    /// Decodes NetBSD's `dev_t` (`deps` replies): major = `(d & 0x000fff00) >> 8`,
    /// minor = `((d & 0xfff00000) >> 12) | (d & 0xff)`.
    pub const fn from_netbsd(d: u64) -> Self {
        DevNum { major: ((d & 0x000f_ff00) >> 8) as u32, minor: (((d & 0xfff0_0000) >> 12) | (d & 0xff)) as u32 }
    }

    /// NetBSD's `makedev()`.
    pub const fn to_netbsd(self) -> u64 {
        let (major, minor) = (self.major as u64, self.minor as u64);
        ((major << 8) & 0x000f_ff00) | ((minor << 12) & 0xfff0_0000) | (minor & 0xff)
    }
}

/// `major:minor`, as table lines name devices.
impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// What `info` reports about a device.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct DeviceInfo {
    /// The reply's name; the name asked for when the kernel does not add one (NetBSD's
    /// kernel echoes the request); empty when the device was looked up otherwise.
    pub name: String,
    /// Empty when the device has none.
    pub uuid: String,
    pub minor: u32,
    pub open_count: u32,
    /// Lines of the active table.
    pub target_count: u32,
    pub event_nr: u32,
    pub suspended: bool,
    pub read_only: bool,
    /// An active table is present.
    pub live_table: bool,
    /// An inactive (loaded, not yet resumed) table is present.
    pub inactive_table: bool,
}

/// One registered target type.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TargetVersion {
    pub name: String,
    pub version: [u32; 3],
}

/// One device of `names`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceEntry {
    pub name: String,
    pub minor: u32,
}

/// One line of a `table` or `status` reply. `params` is the TABLE line (`table`) or the INFO
/// line (`status`), possibly empty.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TableEntry {
    pub start: u64,
    pub length: u64,
    pub target_type: String,
    pub params: String,
}

impl TableEntry {
    /// The entry as a typed table line (meaningful for `table` replies, whose params are
    /// constructor arguments).
    pub fn to_line(&self) -> TableLine {
        TableLine {
            start: self.start,
            length: self.length,
            target: TargetSpec::from_parts(&self.target_type, &self.params),
        }
    }
}

/// `<start> <length> <type> <params>`, with the space after the type even when `params` is
/// empty: `dmsetup table` and `dmsetup status` print lines so.
impl fmt::Display for TableEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {}", self.start, self.length, self.target_type, self.params)
    }
}
