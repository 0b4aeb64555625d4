//! dmcore: the OS-independent device-mapper core.
//!
//! Two paths run through it (see DESIGN.md): the control path, [`Core::control`], which takes
//! the bytes of a proplib request and returns the bytes of the reply; and the data path,
//! [`Core::submit`], which maps a request through a device's active table onto lower devices
//! through the host's [`Platform`].
#![no_std]
// A panic in a kernel is a crashed machine: no path user input or I/O reaches may panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo
    )
)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod control;
pub mod device;
pub mod errno;
pub mod event;
pub mod io;
pub mod platform;
pub mod plist;
pub mod sync;
pub mod table;
pub mod target;

use alloc::sync::Arc;
use alloc::vec::Vec;

pub use control::{Caller, Reply};
pub use errno::Errno;
pub use io::{IoRequest, IoSlot, SECTOR_SIZE};
pub use platform::{ChildTag, DevT, Op, Platform};

use device::{Admission, Device, Registry};
use sync::SleepLock;
use table::{Table, TableError, TableLine};
use target::TargetRegistry;

/// One device-mapper instance: the registered target types and the mapped devices.
pub struct Core<P: Platform> {
    platform: P,
    targets: TargetRegistry<P>,
    devices: spin::RwLock<Registry<P>>,
    /// Serialises the commands that add, remove or rename devices.
    registry_ctl: SleepLock,
}

impl<P: Platform> Core<P> {
    pub fn new(platform: P) -> Self {
        Core {
            platform,
            targets: TargetRegistry::with_builtins(),
            devices: spin::RwLock::new(Registry::new()),
            registry_ctl: SleepLock::new(),
        }
    }

    pub fn platform(&self) -> &P {
        &self.platform
    }

    pub fn targets(&self) -> &TargetRegistry<P> {
        &self.targets
    }

    fn device(&self, minor: u32) -> Option<Arc<Device<P>>> {
        self.devices.read().device(minor)
    }

    /// Maps a request of the host to the device `minor`. Every outcome, errors included, comes
    /// back through [`Platform::complete`]; a request for a suspended device waits in
    /// [`Platform::defer`] until resume.
    pub fn submit(&self, minor: u32, io: P::Io, req: IoRequest) {
        let p = &self.platform;
        if !req.bytes.is_multiple_of(SECTOR_SIZE) {
            return p.complete(io, Err(Errno::EINVAL));
        }
        let sectors = if req.op == Op::Flush { 0 } else { req.bytes / SECTOR_SIZE };
        let Some(device) = self.device(minor) else {
            return p.complete(io, Err(Errno::ENXIO));
        };
        if req.op.writes() && device.read_only {
            return p.complete(io, Err(Errno::EROFS));
        }
        if sectors == 0 && req.op != Op::Flush {
            return p.complete(io, Ok(()));
        }
        let table = match device.admit(|| p.defer(minor, io.clone())) {
            Admission::Go(table) => table,
            Admission::Defer => return,
            Admission::Refuse(errno) => return p.complete(io, Err(errno)),
        };
        if req.sector.checked_add(sectors).is_none_or(|end| end > table.size()) {
            p.complete(io, Err(Errno::EIO));
            return device.io_finished(p);
        }
        io::start(p, &io, &req, sectors, device, table);
    }

    /// A child request issued through [`Platform::submit`] completed.
    pub fn child_done(&self, parent: &P::Io, tag: ChildTag, result: Result<(), Errno>) {
        io::child_done(&self.platform, parent, tag, result);
    }

    /// Counts an open of the device's node.
    pub fn open(&self, minor: u32) -> Result<(), Errno> {
        self.device(minor).ok_or(Errno::ENXIO)?.open()
    }

    pub fn close(&self, minor: u32) {
        if let Some(device) = self.device(minor) {
            device.close();
        }
    }

    /// The size in sectors of the device's active table (0 without one).
    pub fn size(&self, minor: u32) -> Option<u64> {
        let device = self.device(minor)?;
        let size = device.active().map_or(0, |t| t.size());
        Some(size)
    }

    /// Whether no device exists (a kernel module may unload only then).
    pub fn is_idle(&self) -> bool {
        self.devices.read().is_empty()
    }

    /// Validates and builds a table for the device `minor` and puts it in the inactive slot,
    /// as `reload` does: on any failure the device is unchanged.
    pub fn load_table(&self, minor: u32, lines: &[TableLine]) -> Result<(), TableError> {
        let device = self.device(minor).ok_or_else(|| TableError::whole(Errno::ENOENT, "no such device"))?;
        self.load_inactive(&device, lines)
    }

    pub(crate) fn load_inactive(&self, device: &Device<P>, lines: &[TableLine]) -> Result<(), TableError> {
        let replaced = {
            let _ctl = device.ctl.lock(&self.platform).map_err(|errno| TableError::whole(errno, "interrupted"))?;
            let events = device.event_sink(&self.platform);
            let table = Table::build_with_events(
                &self.platform,
                &self.targets,
                device.minor,
                lines,
                device.read_only,
                &events,
            )?;
            if let Some(active) = device.active() {
                table.may_replace(&active)?;
            }
            self.check_no_loop(device.minor, &table)?;
            device.slots.lock().inactive.replace(Arc::new(table))
        };
        // The replaced table closes its devices here, outside every lock.
        drop(replaced);
        Ok(())
    }

    /// Refuses a table through which the device `minor` would, directly or through other mapped
    /// devices' tables (live or loaded), be stacked on itself.
    fn check_no_loop(&self, minor: u32, table: &Table<P>) -> Result<(), TableError> {
        let mut pending: Vec<u32> = table.devices().into_iter().filter_map(|d| self.platform.mapped_minor(d)).collect();
        let mut seen: Vec<u32> = Vec::new();
        while let Some(m) = pending.pop() {
            if m == minor {
                return Err(TableError::whole(Errno::EINVAL, "table would make the device depend on itself"));
            }
            if seen.contains(&m) {
                continue;
            }
            seen.push(m);
            if let Some(device) = self.device(m) {
                for t in [device.active(), device.inactive()].into_iter().flatten() {
                    pending.extend(t.devices().into_iter().filter_map(|d| self.platform.mapped_minor(d)));
                }
            }
        }
        Ok(())
    }

    /// Every device's minor and name, in `names` order.
    pub fn list(&self) -> Vec<(u32, Vec<u8>)> {
        self.devices.read().in_order().into_iter().map(|r| (r.device.minor, r.name.clone())).collect()
    }

    /// The minor of the device with this name.
    pub fn minor_of(&self, name: &str) -> Option<u32> {
        self.devices.read().lookup(0, name.as_bytes(), &[]).map(|r| r.device.minor)
    }
}
