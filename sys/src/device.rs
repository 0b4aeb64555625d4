//! Mapped devices and the registry that finds them by minor, name or uuid.
//!
//! Locking (who holds what):
//! - `Registry` sits behind the core's `devices` spin lock: held only to look up, insert, remove
//!   or rename, never across I/O, waiting or table construction.
//! - Each device's `ctl` sleep lock serialises its state-changing commands (reload, clear,
//!   suspend, resume, remove); it may be held while waiting for I/O to drain.
//! - Each device's `slots` and `gate` spin locks are held for a few instructions: to swap or read
//!   a table reference, and to count requests in and out.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::platform::Platform;
use crate::sync::SleepLock;
use crate::table::Table;

/// Longest name: `DM_NAME_LEN` is 128 including the NUL.
pub const MAX_NAME_LEN: usize = 127;
/// Longest uuid: `DM_UUID_LEN` is 129 including the NUL.
pub const MAX_UUID_LEN: usize = 128;
/// Largest minor: NetBSD's `dev_t` holds 20 bits of minor.
pub const MAX_MINOR: u32 = (1 << 20) - 1;

/// The two table slots of a device.
pub(crate) struct Slots<P: Platform> {
    pub active: Option<Arc<Table<P>>>,
    pub inactive: Option<Arc<Table<P>>>,
    /// Which slot is active (0 or 1); NetBSD reports it as each table entry's `status`.
    pub active_index: i32,
}

/// The I/O admission state of a device.
struct Gate {
    suspended: bool,
    /// Set by `remove`: no new request or open is admitted.
    dying: bool,
    in_flight: u32,
    open_count: u32,
}

/// What admission decided for a new request.
pub(crate) enum Admission<P: Platform> {
    Go(Arc<Table<P>>),
    Defer,
    Refuse(Errno),
}

pub struct Device<P: Platform> {
    pub minor: u32,
    pub read_only: bool,
    pub(crate) ctl: SleepLock,
    pub(crate) slots: spin::Mutex<Slots<P>>,
    gate: spin::Mutex<Gate>,
    /// The event counter (see [`crate::event`]), shared with the event sinks of its tables.
    event_nr: Arc<core::sync::atomic::AtomicU32>,
}

impl<P: Platform> Device<P> {
    pub(crate) fn new(minor: u32, read_only: bool) -> Self {
        Device {
            minor,
            read_only,
            ctl: SleepLock::new(),
            slots: spin::Mutex::new(Slots { active: None, inactive: None, active_index: 0 }),
            gate: spin::Mutex::new(Gate { suspended: false, dying: false, in_flight: 0, open_count: 0 }),
            event_nr: Arc::new(core::sync::atomic::AtomicU32::new(0)),
        }
    }

    /// Admits a request: counts it in and hands it the active table. While the device is
    /// suspended `defer` is called instead, under the gate lock, so that a concurrent resume
    /// either sees the deferred request or lets this one through.
    pub(crate) fn admit(&self, defer: impl FnOnce()) -> Admission<P> {
        let mut gate = self.gate.lock();
        if gate.dying {
            return Admission::Refuse(Errno::ENXIO);
        }
        if gate.suspended {
            defer();
            return Admission::Defer;
        }
        let Some(table) = self.slots.lock().active.clone() else {
            return Admission::Refuse(Errno::EIO);
        };
        gate.in_flight += 1;
        Admission::Go(table)
    }

    /// Counts a request out; wakes a waiting suspend or remove when it was the last.
    pub(crate) fn io_finished(&self, platform: &P) {
        let drained = {
            let mut gate = self.gate.lock();
            gate.in_flight = gate.in_flight.saturating_sub(1);
            gate.in_flight == 0 && (gate.suspended || gate.dying)
        };
        if drained {
            platform.wake();
        }
    }

    pub fn suspended(&self) -> bool {
        self.gate.lock().suspended
    }

    pub(crate) fn set_suspended(&self, suspended: bool) {
        self.gate.lock().suspended = suspended;
    }

    pub(crate) fn drained(&self) -> bool {
        self.gate.lock().in_flight == 0
    }

    pub fn open_count(&self) -> u32 {
        self.gate.lock().open_count
    }

    pub fn event_nr(&self) -> u32 {
        self.event_nr.load(core::sync::atomic::Ordering::Acquire)
    }

    /// The sink the targets of a table built for this device report their events to.
    pub(crate) fn event_sink(&self, platform: &P) -> crate::event::EventSink {
        crate::event::EventSink::new(Arc::new(crate::event::DeviceEvents {
            counter: self.event_nr.clone(),
            platform: platform.clone(),
        }))
    }

    pub(crate) fn open(&self) -> Result<(), Errno> {
        let mut gate = self.gate.lock();
        if gate.dying {
            return Err(Errno::ENXIO);
        }
        gate.open_count = gate.open_count.checked_add(1).ok_or(Errno::EBUSY)?;
        Ok(())
    }

    pub(crate) fn close(&self) {
        let mut gate = self.gate.lock();
        gate.open_count = gate.open_count.saturating_sub(1);
    }

    /// Marks the device as going away unless it is open (`EBUSY`).
    pub(crate) fn start_removal(&self) -> Result<(), Errno> {
        let mut gate = self.gate.lock();
        if gate.open_count > 0 {
            return Err(Errno::EBUSY);
        }
        gate.dying = true;
        Ok(())
    }

    /// Undoes [`Device::start_removal`] when the removal could not finish.
    pub(crate) fn cancel_removal(&self) {
        self.gate.lock().dying = false;
    }

    pub(crate) fn active(&self) -> Option<Arc<Table<P>>> {
        self.slots.lock().active.clone()
    }

    pub(crate) fn inactive(&self) -> Option<Arc<Table<P>>> {
        self.slots.lock().inactive.clone()
    }
}

/// A registered device with its names.
pub(crate) struct Record<P: Platform> {
    pub device: Arc<Device<P>>,
    pub name: Vec<u8>,
    pub uuid: Vec<u8>,
    /// Position in `names` order: creation order, and a renamed device moves to the end.
    pub order: u64,
}

/// Every mapped device.
pub(crate) struct Registry<P: Platform> {
    by_minor: BTreeMap<u32, Record<P>>,
    next_minor: u32,
    next_order: u64,
}

impl<P: Platform> Registry<P> {
    pub const fn new() -> Self {
        Registry { by_minor: BTreeMap::new(), next_minor: 1, next_order: 0 }
    }

    pub fn device(&self, minor: u32) -> Option<Arc<Device<P>>> {
        self.by_minor.get(&minor).map(|r| r.device.clone())
    }

    /// NetBSD's lookup order: a non-zero minor first, then an exact non-empty name, then an
    /// exact non-empty uuid.
    pub fn lookup(&self, minor: u32, name: &[u8], uuid: &[u8]) -> Option<&Record<P>> {
        if minor > 0 {
            if let Some(r) = self.by_minor.get(&minor) {
                return Some(r);
            }
        }
        if !name.is_empty() {
            if let Some(r) = self.by_minor.values().find(|r| r.name == name) {
                return Some(r);
            }
        }
        if !uuid.is_empty() {
            return self.by_minor.values().find(|r| r.uuid == uuid);
        }
        None
    }

    fn name_taken(&self, name: &[u8]) -> bool {
        self.by_minor.values().any(|r| r.name == name)
    }

    /// Registers a new device; `EEXIST` when the name or a non-empty uuid is taken, `ENOSPC`
    /// when minors are exhausted. Minors are never reused.
    pub fn create(&mut self, name: &[u8], uuid: &[u8], read_only: bool) -> Result<Arc<Device<P>>, Errno> {
        if self.name_taken(name) || (!uuid.is_empty() && self.by_minor.values().any(|r| r.uuid == uuid)) {
            return Err(Errno::EEXIST);
        }
        let minor = self.next_minor;
        if minor > MAX_MINOR {
            return Err(Errno::ENOSPC);
        }
        self.next_minor += 1;
        let device = Arc::new(Device::new(minor, read_only));
        let order = self.bump_order();
        self.by_minor.insert(minor, Record { device: device.clone(), name: name.to_vec(), uuid: uuid.to_vec(), order });
        Ok(device)
    }

    pub fn rename(&mut self, minor: u32, new_name: &[u8]) -> Result<(), Errno> {
        if self.name_taken(new_name) {
            return Err(Errno::EEXIST);
        }
        let order = self.bump_order();
        let record = self.by_minor.get_mut(&minor).ok_or(Errno::ENOENT)?;
        record.name = new_name.to_vec();
        record.order = order;
        Ok(())
    }

    pub fn remove(&mut self, minor: u32) -> Option<Record<P>> {
        self.by_minor.remove(&minor)
    }

    /// Every device in `names` order.
    pub fn in_order(&self) -> Vec<&Record<P>> {
        let mut records: Vec<&Record<P>> = self.by_minor.values().collect();
        records.sort_by_key(|r| r.order);
        records
    }

    pub fn is_empty(&self) -> bool {
        self.by_minor.is_empty()
    }

    fn bump_order(&mut self) -> u64 {
        self.next_order += 1;
        self.next_order
    }
}
