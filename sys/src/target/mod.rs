//! Targets: one module per target type, each behind the [`Target`] and [`TargetType`] traits.
//!
//! A [`TargetType`] is what `targets` lists and what a table line names; its constructor checks
//! the line's arguments and opens the lower devices, and yields a [`Target`], the mapping of one
//! line. Target types live in a [`TargetRegistry`], so more can be registered at run time.

pub mod args;
pub mod delay;
pub mod error;
pub mod flakey;
pub mod linear;
pub mod snapshot;
pub mod striped;
pub mod zero;

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use bitflags::bitflags;

use crate::errno::Errno;
pub use crate::event::EventSink;
use crate::io::{Mapper, Segment};
use crate::platform::{DevT, DiskSpec, LowerDisk, Op, Platform};

/// Which status line a target writes (Linux's `status_type_t`). Every target writes all three
/// in its one [`Target::status`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StatusKind {
    /// Run-time state (`dmsetup status`; `status` without `DM_STATUS_TABLE_FLAG`).
    Info,
    /// A constructor line that reloads to the same mapping (`dmsetup table`).
    Table,
    /// Linux's IMA measurement record of the line (`STATUSTYPE_IMA`):
    /// `target_name=<name>,target_version=<x.y.z>,<key>=<value>,...;` for the targets Linux
    /// measures, and empty for those whose Linux 6.1 status writes nothing for it (zero, error,
    /// delay, flakey). The control path does not use it: it is there for a host that measures
    /// tables, and so that each target's three lines are written in one place.
    Ima,
}

/// Writes Linux's `DMEMIT_TARGET_NAME_VERSION`: the start of every non-empty IMA record.
pub fn ima_name_version(out: &mut String, name: &str, version: [u32; 3]) {
    use core::fmt::Write;
    let [a, b, c] = version;
    let _ = write!(out, "target_name={name},target_version={a}.{b}.{c}");
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

    /// The device is about to be suspended, or to have this (live) table swapped out or
    /// destroyed: called on every line of the live table after the device stopped admitting
    /// new requests and before the core waits for those in flight to drain. A target that
    /// holds requests on a timer or queue of its own must let them go here (or make sure they
    /// finish soon), or the wait lasts as long as they are held. `noflush`: the client asked
    /// for a noflush suspend (Linux's `dm_noflush_suspending()`). Linux's `presuspend`.
    fn presuspend(&self, _noflush: bool) {}

    /// The device resumes with this table live (after a suspend, or a table swap): undoes
    /// what [`Target::presuspend`] changed. Called by every `resume` command, so it must be
    /// harmless on a table that was never presuspended. Linux's `resume`.
    fn resume(&self) {}

    /// Appends the status line of the given kind (possibly empty).
    fn status(&self, kind: StatusKind, out: &mut String);

    /// Calls `f` with every lower device the target uses, in table-line order.
    fn devices(&self, _f: &mut dyn FnMut(DevT)) {}

    /// The device is about to resume with this table live (Linux's `preresume`), called on
    /// every line before any line's [`Target::resume`]. A line may refuse: the resume then
    /// fails with the errno and the device stays suspended, with this table live (as in Linux,
    /// where the swap has happened by then).
    fn preresume(&self) -> Result<(), Errno> {
        Ok(())
    }

    /// A message sent to this line with the `message` command (Linux's `message`), split into
    /// arguments as table parameters are. `Ok(Some(text))` is the answer the client gets back;
    /// an error fails the command with its errno, and its message is the command's detail.
    /// By default a target takes no messages, with Linux's refusal.
    fn message(&self, _argv: &[String]) -> Result<Option<String>, TargetError> {
        Err(TargetError::invalid(NO_MESSAGES))
    }
}

/// Linux's refusal of a message to a target that takes none (`EINVAL`).
pub const NO_MESSAGES: &str = "Target type does not support messages";

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
    /// State the targets of this core share across lines, tables and devices.
    pub shared: &'a SharedState,
    /// The device's event counter: clone it to report events (see [`crate::event`]).
    pub events: &'a EventSink,
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
    /// What the targets built through this registry share (see [`SharedState`]).
    shared: SharedState,
}

impl<P: Platform> TargetRegistry<P> {
    /// A registry holding the built-in targets.
    pub fn with_builtins() -> Self {
        let builtins: Vec<Arc<dyn TargetType<P>>> = alloc::vec![
            Arc::new(linear::LinearType),
            Arc::new(striped::StripedType),
            Arc::new(error::ErrorType),
            Arc::new(zero::ZeroType),
            Arc::new(delay::DelayType),
            Arc::new(flakey::FlakeyType),
            Arc::new(snapshot::SnapshotOriginType),
            Arc::new(snapshot::SnapshotType),
            Arc::new(snapshot::SnapshotMergeType),
        ];
        TargetRegistry { types: spin::RwLock::new(builtins), shared: SharedState::new() }
    }

    /// The state shared by the targets built through this registry.
    pub fn shared(&self) -> &SharedState {
        &self.shared
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
        self.unregister_if(name, |_| true)
    }

    /// Removes the type named `name` only if `is_it` recognises it (a target module removes
    /// its own type, never another of the same name): `ENOENT` otherwise, `EBUSY` while
    /// anything besides the registry holds the type (a table line, or what the type itself
    /// counts: see dmcore-abi).
    pub fn unregister_if(&self, name: &str, is_it: impl FnOnce(&Arc<dyn TargetType<P>>) -> bool) -> Result<(), Errno> {
        let mut types = self.types.write();
        let pos = types.iter().position(|t| t.name() == name).ok_or(Errno::ENOENT)?;
        if !types.get(pos).is_some_and(is_it) {
            return Err(Errno::ENOENT);
        }
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

/// State that the targets of one core share across table lines, tables and devices, found by
/// a kind (a name the owning target module chooses) and a device number: the snapshots of an
/// origin device, say, or a pool that thin devices attach to. It lives in the core's
/// [`TargetRegistry`] (never in a global, so that cores are independent) and reaches
/// constructors through [`BuildContext::shared`].
///
/// Entries are weak: a value lives as long as the targets holding it, and its entry goes with
/// it. Lookups and inserts are for constructors (they allocate); keep the returned `Arc` for
/// the I/O path.
pub struct SharedState {
    entries: spin::Mutex<Vec<SharedEntry>>,
}

struct SharedEntry {
    kind: &'static str,
    key: DevT,
    value: alloc::sync::Weak<dyn core::any::Any + Send + Sync>,
}

impl SharedState {
    pub const fn new() -> Self {
        SharedState { entries: spin::Mutex::new(Vec::new()) }
    }

    /// The live value of `kind` for `key`, if there is one and it is a `T`.
    pub fn get<T: core::any::Any + Send + Sync>(&self, kind: &'static str, key: DevT) -> Option<Arc<T>> {
        let value = {
            let entries = self.entries.lock();
            entries.iter().find(|e| e.kind == kind && e.key == key).and_then(|e| e.value.upgrade())
        };
        value.and_then(|v| v.downcast::<T>().ok())
    }

    /// The live value of `kind` for `key`; when there is none, `make()`'s, which is recorded.
    /// `EEXIST` when the live value is not a `T`.
    pub fn get_or_insert<T: core::any::Any + Send + Sync>(
        &self,
        kind: &'static str,
        key: DevT,
        make: impl FnOnce() -> Arc<T>,
    ) -> Result<Arc<T>, Errno> {
        let mut entries = self.entries.lock();
        entries.retain(|e| e.value.strong_count() > 0);
        if let Some(entry) = entries.iter().find(|e| e.kind == kind && e.key == key) {
            if let Some(value) = entry.value.upgrade() {
                drop(entries);
                return value.downcast::<T>().map_err(|_| Errno::EEXIST);
            }
        }
        let value = make();
        let any: Arc<dyn core::any::Any + Send + Sync> = value.clone();
        entries.push(SharedEntry { kind, key, value: Arc::downgrade(&any) });
        Ok(value)
    }
}

impl Default for SharedState {
    fn default() -> Self {
        Self::new()
    }
}
