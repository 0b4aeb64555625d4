//! What the core needs from its host, as one trait.
//!
//! A host is a kernel glue (through the C ABI adapter) or dmhost (std, image files). The core never
//! calls an OS directly: lower devices, child I/O, completion, time, waiting and background work
//! all go through [`Platform`]. The host owns every I/O request object; the core keeps its
//! per-request state in an [`IoSlot`] embedded in that object, so mapping a request allocates
//! nothing.

#[cfg(feature = "mem")]
pub mod mem;

use alloc::sync::Arc;
use core::fmt;

use crate::errno::Errno;
use crate::io::IoSlot;

/// A device number, as major and minor.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DevT {
    pub major: u32,
    pub minor: u32,
}

impl DevT {
    pub const fn new(major: u32, minor: u32) -> Self {
        DevT { major, minor }
    }

    /// NetBSD's `makedev()` encoding, which `deps` replies carry.
    pub const fn netbsd(self) -> u64 {
        let major = self.major as u64;
        let minor = self.minor as u64;
        ((major << 8) & 0x000f_ff00) | ((minor << 12) & 0xfff0_0000) | (minor & 0xff)
    }
}

/// `major:minor` in decimal, as Linux prints devices in table lines.
impl fmt::Display for DevT {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// How a table line names a lower device: a path, or `major:minor` in decimal.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DiskSpec<'a> {
    Path(&'a str),
    Number(DevT),
}

impl<'a> DiskSpec<'a> {
    /// Reads a device argument the way Linux does: `<major>:<minor>` when both halves are
    /// decimal numbers, otherwise a path.
    pub fn parse(arg: &'a str) -> Self {
        if let Some((major, minor)) = arg.split_once(':') {
            if let (Some(major), Some(minor)) = (parse_decimal_u32(major), parse_decimal_u32(minor)) {
                return DiskSpec::Number(DevT::new(major, minor));
            }
        }
        DiskSpec::Path(arg)
    }
}

fn parse_decimal_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An opened lower device.
pub trait LowerDisk: Send + Sync {
    /// Its block device number.
    fn dev(&self) -> DevT;
    /// Its size in 512-byte sectors.
    fn sectors(&self) -> u64;
}

/// The operation of an I/O request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    Read,
    Write,
    /// Make every completed write durable; carries no data.
    Flush,
    /// The range's contents are no longer needed; carries no data.
    Discard,
    /// Make the range read as zeroes; carries no data.
    WriteZeroes,
}

impl Op {
    /// Whether the operation changes the device's contents.
    pub fn writes(self) -> bool {
        matches!(self, Op::Write | Op::Discard | Op::WriteZeroes)
    }

    /// Whether the operation moves data through the request's buffer.
    pub fn has_data(self) -> bool {
        matches!(self, Op::Read | Op::Write)
    }
}

/// A synchronous request of a target's worker to a lower device.
#[derive(Debug)]
pub enum DiskIo<'a> {
    Read(&'a mut [u8]),
    /// `fua`: complete only when the data is durable.
    Write {
        data: &'a [u8],
        fua: bool,
    },
    Flush,
    Discard {
        sectors: u64,
    },
    WriteZeroes {
        sectors: u64,
    },
}

impl DiskIo<'_> {
    pub fn op(&self) -> Op {
        match self {
            DiskIo::Read(_) => Op::Read,
            DiskIo::Write { .. } => Op::Write,
            DiskIo::Flush => Op::Flush,
            DiskIo::Discard { .. } => Op::Discard,
            DiskIo::WriteZeroes { .. } => Op::WriteZeroes,
        }
    }
}

/// Identifies, at completion, which target and which of its parts a child request belonged to.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ChildTag {
    /// Index of the target in the table the parent was mapped with.
    pub target: u32,
    /// The target's own number (a stripe, a mirror leg).
    pub aux: u32,
}

/// A child request: part of a parent request, remapped to a lower device.
///
/// The host issues it and, when it finishes, calls [`crate::Core::child_done`] with the same
/// parent and tag.
pub struct Child<'a, P: Platform> {
    pub parent: &'a P::Io,
    pub disk: &'a P::Disk,
    /// First sector on the lower device.
    pub sector: u64,
    /// Length in sectors (0 for a flush).
    pub sectors: u64,
    /// Where the child's data starts in the parent's buffer, in bytes.
    pub buf_offset: usize,
    pub op: Op,
    /// Forced unit access: complete only when the data is durable.
    pub fua: bool,
    pub tag: ChildTag,
}

/// Background work a target hands to the host's worker (a kernel workqueue, a thread).
pub trait Work: Send + Sync {
    fn run(&self);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogLevel {
    Error,
    Warning,
    Info,
    Debug,
}

/// Everything the core needs from its host.
///
/// A platform value is a cheap handle (targets keep clones of it). None of its methods may call
/// back into the core while holding a lock the core could need; callbacks into the core
/// ([`crate::Core::child_done`], resubmission of deferred requests) may happen from any thread.
pub trait Platform: Clone + Send + Sync + Sized + 'static {
    /// An opened lower device; dropping it closes the device.
    type Disk: LowerDisk;
    /// A handle to one of the host's I/O requests. The request stays at one address, with its
    /// [`IoSlot`] and buffer, until the core completes it.
    type Io: Clone + Send + Sync;

    /// Opens a lower device named by a table line.
    fn open_disk(&self, spec: DiskSpec<'_>) -> Result<Self::Disk, Errno>;

    /// The core's state inside a host request.
    fn slot(io: &Self::Io) -> &IoSlot<Self>;

    /// Runs `f` on bytes `offset .. offset + len` of the request's buffer.
    fn with_data(&self, io: &Self::Io, offset: usize, len: usize, f: &mut dyn FnMut(&mut [u8])) -> Result<(), Errno>;

    /// Issues a child request to a lower device.
    fn submit(&self, child: Child<'_, Self>);

    /// Completes a request the host handed to [`crate::Core::submit`].
    fn complete(&self, io: Self::Io, result: Result<(), Errno>);

    /// Keeps a request that arrived while its device was suspended, until
    /// [`Platform::release_deferred`].
    fn defer(&self, minor: u32, io: Self::Io);

    /// Hands every request deferred for `minor` back to [`crate::Core::submit`].
    fn release_deferred(&self, minor: u32);

    /// Synchronous I/O to a lower device with a buffer of the core's, for target workers
    /// (metadata, copy-on-write), starting at `sector`.
    fn disk_io(&self, disk: &Self::Disk, sector: u64, io: DiskIo<'_>) -> Result<(), Errno>;

    /// Monotonic time in nanoseconds.
    fn now_ns(&self) -> u64;

    /// Blocks until `ready()` returns true. `ready` is evaluated under the host's wait lock, and
    /// [`Platform::wake`] takes that lock, so a wakeup between evaluation and sleep is never lost.
    /// An interruptible wait returns `EINTR` when the caller is signalled.
    fn wait(&self, ready: &mut dyn FnMut() -> bool, interruptible: bool) -> Result<(), Errno>;

    /// Wakes every waiter so it re-evaluates its condition.
    fn wake(&self);

    /// Runs `work` on the host's worker, as soon as possible or not before `at_ns`.
    fn queue_work(&self, work: Arc<dyn Work>, at_ns: Option<u64>);

    fn log(&self, level: LogLevel, args: fmt::Arguments<'_>);

    /// A device was created: the host makes its node and disk. A failure undoes the create.
    fn attach_device(&self, _minor: u32, _name: &[u8]) -> Result<(), Errno> {
        Ok(())
    }

    /// A device was removed (no request of it is in flight any more).
    fn detach_device(&self, _minor: u32) {}

    /// A new table became active: the device now has `sectors` sectors.
    fn device_resized(&self, _minor: u32, _sectors: u64) {}

    /// The minor of the mapped device of this core that `dev` is, if it is one (a table that
    /// stacks on another mapped device). The core uses it to refuse dependency loops.
    fn mapped_minor(&self, _dev: DevT) -> Option<u32> {
        None
    }

    /// The host's encoding of a block device number for `deps` replies.
    fn encode_dev(&self, dev: DevT) -> u64 {
        dev.netbsd()
    }

    /// A table names a target type nobody registered: the host may load a target module that
    /// provides it (NetBSD: `module_autoload("dm_target_<name>", MODULE_CLASS_MISC)`; dmhost:
    /// `dm_target_<name>.so` from its module directory), which registers its types with the
    /// core. Returns whether it loaded something; the core then looks the type up once more.
    /// Called while a table is being loaded for a device: that device's control lock is held
    /// (no other command of it runs meanwhile), no spin lock of the core is, and the registry
    /// may be changed.
    fn autoload_target(&self, _name: &str) -> bool {
        false
    }
}
