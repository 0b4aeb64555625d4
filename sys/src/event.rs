//! Device events: how a target tells its device that something happened (Linux's
//! `dm_table_event`), so that a `waitevent` caller wakes up.
//!
//! Every mapped device has an event counter (`event_nr` in `info`, `status` and `waitevent`
//! replies, dmsetup's "Event number"). A target gets a cheap handle to it, an [`EventSink`],
//! in its [`crate::target::BuildContext`] and keeps a clone for as long as it needs it; each
//! [`EventSink::trigger`] adds one to the counter and wakes the waiters of
//! [`crate::platform::Platform::wait`]. Triggering is two atomic operations and a wakeup, with
//! no allocation and no lock of the core, so a target may trigger from its completion path
//! (striped does, on a failed stripe, as Linux's `stripe_end_io` does).
//!
//! What counts as an event is the target's business (Linux's rules): a stripe's first errors, a
//! mirror leg's failure or resynchronisation, a snapshot running out of room, a thin pool
//! crossing its low-water mark, a multipath path failing. The core itself adds none: in Linux,
//! loading a table and resuming with it leave the counter alone (the Linux transcripts show
//! "Event number: 0" after `load` + `resume` in 01-linear.txt, after a snapshot-merge table
//! swap in 06-snapshot.txt and after three thin-pool reloads in 09-thin.txt), and so does this
//! core.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::platform::Platform;

/// Receives a target's events. The core's implementation counts them on the device; a target
/// module loaded through the C ABI forwards them to the core that owns the device.
pub trait EventListener: Send + Sync {
    /// One event happened. Must not block, allocate or take a lock the core could hold.
    fn event(&self);
}

/// A target's handle to its device's event counter. Cloning it is cheap.
#[derive(Clone, Default)]
pub struct EventSink {
    listener: Option<Arc<dyn EventListener>>,
}

impl EventSink {
    pub fn new(listener: Arc<dyn EventListener>) -> Self {
        EventSink { listener: Some(listener) }
    }

    /// A sink that goes nowhere: for tables built outside any device (tests, benchmarks).
    pub fn detached() -> Self {
        EventSink { listener: None }
    }

    /// Reports one event: the device's counter goes up by one and `waitevent` callers wake.
    pub fn trigger(&self) {
        if let Some(listener) = &self.listener {
            listener.event();
        }
    }
}

impl core::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(if self.listener.is_some() { "EventSink" } else { "EventSink(detached)" })
    }
}

/// A device's event counter as its tables' targets see it.
pub(crate) struct DeviceEvents<P: Platform> {
    pub counter: Arc<AtomicU32>,
    pub platform: P,
}

impl<P: Platform> EventListener for DeviceEvents<P> {
    fn event(&self) {
        // The counter wraps at 2^32, as Linux's (an atomic_t reported as __u32).
        self.counter.fetch_add(1, Ordering::AcqRel);
        self.platform.wake();
    }
}
