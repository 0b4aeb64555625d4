//! A sleeping lock built on the platform's wait primitive.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::errno::Errno;
use crate::platform::Platform;

/// A lock whose waiters sleep (through [`Platform::wait`]) instead of spinning, so it may be
/// held across I/O and table construction.
pub struct SleepLock {
    held: AtomicBool,
}

impl SleepLock {
    pub const fn new() -> Self {
        SleepLock { held: AtomicBool::new(false) }
    }

    pub fn lock<'a, P: Platform>(&'a self, platform: &'a P) -> Result<SleepGuard<'a, P>, Errno> {
        platform.wait(
            &mut || self.held.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok(),
            false,
        )?;
        Ok(SleepGuard { lock: self, platform })
    }
}

impl Default for SleepLock {
    fn default() -> Self {
        Self::new()
    }
}

pub struct SleepGuard<'a, P: Platform> {
    lock: &'a SleepLock,
    platform: &'a P,
}

impl<P: Platform> Drop for SleepGuard<'_, P> {
    fn drop(&mut self) {
        self.lock.held.store(false, Ordering::Release);
        self.platform.wake();
    }
}
