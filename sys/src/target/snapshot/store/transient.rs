//! Linux's transient exception store (`N`): exceptions live in memory only, and the COW device
//! is used from its first chunk on, with no header and no metadata.

/// Chunks handed out so far, counted in sectors as Linux's store counts them.
pub struct Transient {
    chunk: u64,
    cow_sectors: u64,
    /// The first free sector of the COW device.
    next_free: u64,
}

impl Transient {
    pub fn new(chunk: u64, cow_sectors: u64) -> Self {
        Transient { chunk, cow_sectors, next_free: 0 }
    }

    pub fn chunk(&self) -> u64 {
        self.chunk
    }

    /// Hands out the next chunk, or `None` when the device is full.
    pub fn prepare(&mut self) -> Option<u64> {
        let end = self.next_free.checked_add(self.chunk)?;
        if self.cow_sectors < end {
            return None;
        }
        let chunk = self.next_free.checked_div(self.chunk)?;
        self.next_free = end;
        Some(chunk)
    }

    /// `(allocated, total, metadata)` sectors: metadata is always 0.
    pub fn usage(&self) -> (u64, u64, u64) {
        (self.next_free, self.cow_sectors, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_from_chunk_zero_until_full() {
        let mut t = Transient::new(8, 20);
        assert_eq!(t.usage(), (0, 20, 0));
        assert_eq!(t.prepare(), Some(0));
        assert_eq!(t.prepare(), Some(1));
        assert_eq!(t.usage(), (16, 20, 0));
        assert_eq!(t.prepare(), None, "a partial chunk is never handed out");
    }
}
