//! Exception stores: where a snapshot records which origin chunks were copied to which COW
//! chunks. `P`/`PO` is [`persistent`] (Linux's on-disk format), `N` is [`transient`].
//!
//! Only a snapshot's worker calls a store's methods that do I/O; the store is behind a lock
//! nobody else takes (status reads the usage the worker publishes).

pub mod persistent;
pub mod transient;

use crate::errno::Errno;
use crate::platform::Platform;

pub use persistent::{Persistent, Record};
pub use transient::Transient;

/// A snapshot's exception store.
pub enum Store {
    Persistent(Persistent),
    Transient(Transient),
}

impl Store {
    /// Chunk size in sectors.
    pub fn chunk(&self) -> u64 {
        match self {
            Store::Persistent(s) => s.chunk(),
            Store::Transient(s) => s.chunk(),
        }
    }

    pub fn is_persistent(&self) -> bool {
        matches!(self, Store::Persistent(_))
    }

    /// The next free COW chunk, or `None` when the device is full.
    pub fn prepare(&mut self) -> Option<u64> {
        match self {
            Store::Persistent(s) => s.prepare(),
            Store::Transient(s) => s.prepare(),
        }
    }

    /// `(allocated, total, metadata)` sectors.
    pub fn usage(&self) -> (u64, u64, u64) {
        match self {
            Store::Persistent(s) => s.usage(),
            Store::Transient(s) => s.usage(),
        }
    }

    /// Makes `records` durable (nothing to do for a transient store).
    pub fn commit<P: Platform>(&mut self, p: &P, cow: &P::Disk, records: &[Record]) -> Result<(), Errno> {
        match self {
            Store::Persistent(s) => s.commit(p, cow, records),
            Store::Transient(_) => Ok(()),
        }
    }

    /// Marks the store invalid for good.
    pub fn drop_snapshot<P: Platform>(&mut self, p: &P, cow: &P::Disk) -> Result<(), Errno> {
        match self {
            Store::Persistent(s) => s.drop_snapshot(p, cow),
            Store::Transient(_) => Ok(()),
        }
    }

    /// See [`Persistent::prepare_merge`]; a transient store cannot merge.
    pub fn prepare_merge<P: Platform>(&mut self, p: &P, cow: &P::Disk) -> Result<Option<(u64, u64, u64)>, Errno> {
        match self {
            Store::Persistent(s) => s.prepare_merge(p, cow),
            Store::Transient(_) => Err(Errno::EINVAL),
        }
    }

    /// See [`Persistent::commit_merge`].
    pub fn commit_merge<P: Platform>(&mut self, p: &P, cow: &P::Disk, n: u64) -> Result<(), Errno> {
        match self {
            Store::Persistent(s) => s.commit_merge(p, cow, n),
            Store::Transient(_) => Err(Errno::EINVAL),
        }
    }
}
