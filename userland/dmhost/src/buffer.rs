//! A request's data buffer, shared by the child requests that fill or drain it concurrently.
//!
//! A striped read is split into children that run on different I/O threads at once, each
//! reading straight from its lower file into its own part of the one buffer the NBD client will
//! get back. To do that without copies and without a lock held across the system call, the
//! buffer is a range lock: a thread *claims* a byte range, shared (to read the buffer, for a
//! write to a file) or exclusive (to fill it, for a read from a file), and gets a slice of just
//! that range. Claims that overlap a conflicting claim wait for it to be released, so a slice
//! handed out is never aliased mutably, whatever the targets do. Well-behaved targets issue
//! disjoint children, so in practice nobody waits.
//!
//! When the request completes its owner takes the `Vec` back ([`Buffer::take`]); later claims
//! fail with `EIO`.

use std::cell::UnsafeCell;
use std::sync::{Condvar, Mutex, MutexGuard};

use dmcore::Errno;

/// One claim on a byte range.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Claim {
    id: u64,
    start: usize,
    end: usize,
    exclusive: bool,
}

impl Claim {
    fn conflicts(&self, start: usize, end: usize, exclusive: bool) -> bool {
        let overlaps = self.start < end && start < self.end;
        overlaps && (exclusive || self.exclusive)
    }
}

#[derive(Default)]
struct Claims {
    live: Vec<Claim>,
    next_id: u64,
    /// The data was taken back by its owner: every claim fails.
    taken: bool,
}

pub struct Buffer {
    /// The start of the vector's heap data, fixed at construction: the vector is never resized.
    ptr: *mut u8,
    len: usize,
    data: UnsafeCell<Vec<u8>>,
    claims: Mutex<Claims>,
    released: Condvar,
}

// SAFETY: the heap data behind `ptr` is only reached through `Slice`s, which `claim` hands out
// only for ranges that no conflicting live claim overlaps (exclusive claims overlap nothing,
// shared claims overlap only shared ones), and `data` itself is only touched by `take` under the
// claims lock when no claim is live. So no two threads ever hold aliasing `&mut` access.
unsafe impl Sync for Buffer {}
// SAFETY: the buffer owns its vector; moving it to another thread moves the vector.
unsafe impl Send for Buffer {}

impl Buffer {
    pub fn new(mut data: Vec<u8>) -> Self {
        let ptr = data.as_mut_ptr();
        let len = data.len();
        Buffer {
            ptr,
            len,
            data: UnsafeCell::new(data),
            claims: Mutex::new(Claims::default()),
            released: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Claims> {
        self.claims.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims bytes `offset .. offset + len`, waiting while a conflicting claim is live.
    pub fn claim(&self, offset: usize, len: usize, exclusive: bool) -> Result<Slice<'_>, Errno> {
        let end = offset.checked_add(len).ok_or(Errno::EIO)?;
        if end > self.len {
            return Err(Errno::EIO);
        }
        let mut claims = self.lock();
        loop {
            if claims.taken {
                return Err(Errno::EIO);
            }
            if !claims.live.iter().any(|c| c.conflicts(offset, end, exclusive)) {
                break;
            }
            claims = self.released.wait(claims).unwrap_or_else(|e| e.into_inner());
        }
        let id = claims.next_id;
        claims.next_id = claims.next_id.wrapping_add(1);
        claims.live.push(Claim { id, start: offset, end, exclusive });
        Ok(Slice { buffer: self, id, offset, len })
    }

    /// Takes the data back once no claim is live; later claims fail.
    pub fn take(&self) -> Vec<u8> {
        let mut claims = self.lock();
        while !claims.live.is_empty() {
            claims = self.released.wait(claims).unwrap_or_else(|e| e.into_inner());
        }
        if claims.taken {
            return Vec::new();
        }
        claims.taken = true;
        // SAFETY: no claim is live and none can start (`taken` is set under the same lock), so
        // nothing else accesses the vector or its heap data now or later.
        unsafe { std::mem::take(&mut *self.data.get()) }
    }

    fn release(&self, id: u64) {
        let mut claims = self.lock();
        claims.live.retain(|c| c.id != id);
        drop(claims);
        self.released.notify_all();
    }
}

/// A live claim: access to its range until dropped.
pub struct Slice<'a> {
    buffer: &'a Buffer,
    id: u64,
    offset: usize,
    len: usize,
}

impl Slice<'_> {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `offset + len <= buffer.len` was checked at claim time, so the range lies in
        // the vector's heap data, which stays allocated and unmoved until `take`, which waits
        // for this claim to be released. The claim excludes any overlapping exclusive claim, so
        // nobody writes these bytes while this shared view lives.
        unsafe { std::slice::from_raw_parts(self.buffer.ptr.add(self.offset), self.len) }
    }

    /// The range, writable. Only for exclusive claims; a shared claim gets `EIO`.
    pub fn bytes_mut(&mut self) -> Result<&mut [u8], Errno> {
        let exclusive = self.buffer.lock().live.iter().any(|c| c.id == self.id && c.exclusive);
        if !exclusive {
            return Err(Errno::EIO);
        }
        // SAFETY: as in `bytes` for bounds and lifetime; the claim is exclusive, so no other
        // claim overlaps this range while it lives, and `&mut self` keeps this slice unique.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.buffer.ptr.add(self.offset), self.len) })
    }
}

impl Drop for Slice<'_> {
    fn drop(&mut self) {
        self.buffer.release(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn disjoint_exclusive_claims_fill_one_buffer() {
        let buf = Arc::new(Buffer::new(vec![0; 4096]));
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let buf = buf.clone();
                thread::spawn(move || {
                    let mut s = buf.claim(usize::from(i) * 512, 512, true).map_err(|_| ()).unwrap();
                    s.bytes_mut().map_err(|_| ()).unwrap().fill(i + 1);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let data = buf.take();
        for (i, chunk) in data.chunks(512).enumerate() {
            assert!(chunk.iter().all(|&b| usize::from(b) == i + 1));
        }
        assert!(buf.claim(0, 1, false).is_err());
    }

    #[test]
    fn out_of_range_claims_fail() {
        let buf = Buffer::new(vec![0; 1024]);
        assert!(buf.claim(512, 513, false).is_err());
        assert!(buf.claim(usize::MAX, 2, true).is_err());
        assert!(buf.claim(1024, 0, true).is_ok());
    }

    #[test]
    fn shared_claim_cannot_write_and_overlapping_exclusive_waits() {
        let buf = Arc::new(Buffer::new(vec![7; 1024]));
        let mut shared = buf.claim(0, 1024, false).map_err(|_| ()).unwrap();
        assert!(shared.bytes_mut().is_err());
        let other = buf.claim(0, 512, false).map_err(|_| ()).unwrap();
        drop(other);
        let b2 = buf.clone();
        let writer = thread::spawn(move || {
            let mut s = b2.claim(256, 256, true).map_err(|_| ()).unwrap();
            s.bytes_mut().map_err(|_| ()).unwrap().fill(9);
        });
        thread::sleep(Duration::from_millis(50));
        assert!(shared.bytes().iter().all(|&b| b == 7), "exclusive claim ran under a shared one");
        drop(shared);
        writer.join().unwrap();
        let data = buf.take();
        assert_eq!(data.get(256..512), Some(&[9u8; 256][..]));
        assert_eq!(data.get(0..256), Some(&[7u8; 256][..]));
    }
}
