//! Targets: one module per target type, each behind the [`Target`] and [`TargetType`] traits.
//!
//! A [`TargetType`] is what `targets` lists and what a table line names; its constructor checks
//! the line's arguments and opens the lower devices, and yields a [`Target`], the mapping of one
//! line. Target types live in a [`TargetRegistry`], so more can be registered at run time.

pub mod args;
pub mod error;
pub mod linear;
pub mod striped;
pub mod zero;

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use bitflags::bitflags;

use crate::errno::Errno;
use crate::io::{Mapper, Segment};
use crate::platform::{DevT, DiskSpec, LowerDisk, Op, Platform};

/// Which status line a target writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StatusKind {
    /// Run-time state (`dmsetup status`; `status` without `DM_STATUS_TABLE_FLAG`).
    Info,
    /// A constructor line that reloads to the same mapping (`dmsetup table`).
    Table,
}

bitflags! {
    /// Table-wide rules a target type imposes, as Linux's device-mapper core enforces them.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct TargetFeatures: u32 {
        /// Must be the only line of its table.
        const SINGLETON = 1 << 0;
        /// Cannot share a table with other types, nor be replaced by another type on reload.
        const IMMUTABLE = 1 << 1;
        /// May not appear in a read-only device.
        const ALWAYS_WRITEABLE = 1 << 2;
    }
}

/// Why a constructor refused its line: an errno and Linux's message for the same failure.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TargetError {
    pub errno: Errno,
    pub message: Cow<'static, str>,
}

impl TargetError {
    pub fn new(errno: Errno, message: impl Into<Cow<'static, str>>) -> Self {
        TargetError { errno, message: message.into() }
    }

    /// `EINVAL` with a message: the usual argument error.
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Errno::EINVAL, message)
    }
}

/// The mapping of one table line.
pub trait Target<P: Platform>: Send + Sync {
    /// Maps one piece of a request. The piece never crosses the line's end nor a boundary that
    /// [`Target::piece_len`] reported. Every outcome goes through `mapper`: remapped children,
    /// an immediate result, or a hand-off to the target's worker.
    fn map(&self, seg: &Segment, mapper: &mut Mapper<'_, P>);

    /// How many sectors of an `op` request, starting at `offset` into the line, can be mapped as
    /// one piece (a stripe chunk, say). `u64::MAX` when the target never splits.
    fn piece_len(&self, _offset: u64, _op: Op) -> u64 {
        u64::MAX
    }

    /// A child issued with this target's tag completed.
    fn end_io(&self, _aux: u32, _result: Result<(), Errno>) {}

    /// Appends the status line of the given kind (possibly empty).
    fn status(&self, kind: StatusKind, out: &mut String);

    /// Calls `f` with every lower device the target uses, in table-line order.
    fn devices(&self, _f: &mut dyn FnMut(DevT)) {}
}

/// A kind of target: its name, version and constructor.
pub trait TargetType<P: Platform>: Send + Sync {
    fn name(&self) -> &str;
    fn version(&self) -> [u32; 3];
    fn features(&self) -> TargetFeatures {
        TargetFeatures::empty()
    }
    /// Checks the arguments of one table line and builds its mapping.
    fn construct(&self, ctx: &BuildContext<'_, P>, args: &[String]) -> Result<Box<dyn Target<P>>, TargetError>;
}

/// What a constructor may use: the line's geometry and the platform.
pub struct BuildContext<'a, P: Platform> {
    pub platform: &'a P,
    /// The minor of the device the table is for.
    pub minor: u32,
    /// The line's first sector in the device.
    pub start: u64,
    /// The line's length in sectors.
    pub len: u64,
    /// Whether the device is read-only.
    pub read_only: bool,
}

impl<P: Platform> BuildContext<'_, P> {
    /// Opens a lower device named as a path or `major:minor`, and checks that sectors
    /// `offset .. offset + sectors` of it exist.
    pub fn open_area(&self, arg: &str, offset: u64, sectors: u64) -> Result<P::Disk, TargetError> {
        let disk = self
            .platform
            .open_disk(DiskSpec::parse(arg))
            .map_err(|errno| TargetError::new(errno, "Device lookup failed"))?;
        match offset.checked_add(sectors) {
            Some(end) if end <= disk.sectors() => Ok(disk),
            _ => Err(TargetError::invalid("Device too small for target")),
        }
    }
}

/// The registered target types, in registration order.
pub struct TargetRegistry<P: Platform> {
    types: spin::RwLock<Vec<Arc<dyn TargetType<P>>>>,
}

impl<P: Platform> TargetRegistry<P> {
    /// A registry holding the built-in targets.
    pub fn with_builtins() -> Self {
        let builtins: Vec<Arc<dyn TargetType<P>>> = alloc::vec![
            Arc::new(linear::LinearType),
            Arc::new(striped::StripedType),
            Arc::new(error::ErrorType),
            Arc::new(zero::ZeroType),
        ];
        TargetRegistry { types: spin::RwLock::new(builtins) }
    }

    /// Adds a target type; `EEXIST` when its name is taken.
    pub fn register(&self, ty: Arc<dyn TargetType<P>>) -> Result<(), Errno> {
        let mut types = self.types.write();
        if types.iter().any(|t| t.name() == ty.name()) {
            return Err(Errno::EEXIST);
        }
        types.push(ty);
        Ok(())
    }

    /// Removes a target type: `ENOENT` when unknown, `EBUSY` while a table uses it.
    pub fn unregister(&self, name: &str) -> Result<(), Errno> {
        let mut types = self.types.write();
        let pos = types.iter().position(|t| t.name() == name).ok_or(Errno::ENOENT)?;
        // The registry holds one reference; every table line of this type holds another.
        if types.get(pos).is_some_and(|t| Arc::strong_count(t) > 1) {
            return Err(Errno::EBUSY);
        }
        types.remove(pos);
        Ok(())
    }

    pub fn find(&self, name: &str) -> Option<Arc<dyn TargetType<P>>> {
        self.types.read().iter().find(|t| t.name() == name).cloned()
    }

    /// Name and version of every type, in registration order.
    pub fn list(&self) -> Vec<(String, [u32; 3])> {
        self.types.read().iter().map(|t| (String::from(t.name()), t.version())).collect()
    }
}
