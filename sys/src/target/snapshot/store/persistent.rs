//! Linux's persistent exception store (`P`, `PO`), with its on-disk format byte for byte.
//!
//! # The COW device
//!
//! The device is cut into chunks of `chunk` sectors; every number is little-endian.
//!
//! * Chunk 0 is the header: `magic u32 = 0x70416e53` (the bytes `53 6e 41 70`, "SnAp"),
//!   `valid u32` (0 once the snapshot was invalidated; never set again), `version u32 = 1`,
//!   `chunk_size u32` in sectors; the rest of the chunk is zero. A device whose first word is 0
//!   is a new store; any other magic is refused.
//! * Metadata areas: area `i` is the chunk `1 + (epa + 1) * i`, where `epa = chunk bytes / 16`
//!   is the number of exceptions an area holds. An area is an array of 16-byte records
//!   `{ old_chunk u64, new_chunk u64 }`: origin chunk `old_chunk` was copied to COW chunk
//!   `new_chunk`. The list ends at the first record whose `new_chunk` is 0 (chunk 0 is the
//!   header, so no exception can point there), or at the end of a full area, which is followed
//!   by the next one. The data chunks of an area's exceptions follow the area, so chunks are
//!   handed out from 2 upwards, skipping every area's chunk.
//!
//! # Ordering (crash safety)
//!
//! A record is written only after the chunk it points to: a commit flushes the COW device (the
//! copied chunks become durable) and then writes the whole area chunk with FUA. Before an area
//! that has just filled up is written, the next area is zeroed and flushed, so the list always
//! ends where a reader stops. A new store zeroes area 0 and flushes before the header is
//! written (with FUA): a header is never found in front of a stale area. Merging clears records
//! from the end of the list, after the merged data was flushed to the origin.
//!
//! This is the layout and the order of Linux's `dm-snap-persistent.c`; the code is this
//! project's.

use alloc::vec::Vec;

use crate::errno::Errno;
use crate::io::SECTOR_SIZE;
use crate::platform::{DiskIo, LogLevel, LowerDisk, Platform};

/// "SnAp" read as a little-endian `u32`.
pub const MAGIC: u32 = 0x7041_6e53;
/// The only on-disk version there is.
pub const DISK_VERSION: u32 = 1;
/// Chunk 0 holds the header.
pub const HEADER_CHUNKS: u64 = 1;
/// Linux's default chunk (16 KiB) when neither the table nor the header gives one.
pub const DEFAULT_CHUNK_SECTORS: u64 = 32;
/// Bytes of one exception record.
pub const RECORD_BYTES: usize = 16;
/// The largest chunk Linux accepts: `INT_MAX >> SECTOR_SHIFT` sectors, rounded down to a power
/// of two.
pub const MAX_CHUNK_SECTORS: u64 = 1 << 21;

/// The 16 bytes at the start of chunk 0.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    pub magic: u32,
    pub valid: u32,
    pub version: u32,
    /// In sectors.
    pub chunk_size: u32,
}

impl Header {
    pub const BYTES: usize = 16;

    pub fn new(valid: bool, chunk_size: u32) -> Self {
        Header { magic: MAGIC, valid: u32::from(valid), version: DISK_VERSION, chunk_size }
    }

    pub fn pack(&self) -> [u8; Self::BYTES] {
        let mut b = [0u8; Self::BYTES];
        for (dst, v) in b.chunks_exact_mut(4).zip([self.magic, self.valid, self.version, self.chunk_size]) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Reads a header from the first 16 bytes of `b` (`None` when `b` is shorter).
    pub fn unpack(b: &[u8]) -> Option<Self> {
        let word = |i: usize| -> Option<u32> {
            let bytes: [u8; 4] = b.get(i * 4..i * 4 + 4)?.try_into().ok()?;
            Some(u32::from_le_bytes(bytes))
        };
        Some(Header { magic: word(0)?, valid: word(1)?, version: word(2)?, chunk_size: word(3)? })
    }
}

/// One exception record of a metadata area.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Record {
    pub old_chunk: u64,
    pub new_chunk: u64,
}

impl Record {
    pub const ZERO: Record = Record { old_chunk: 0, new_chunk: 0 };

    /// Writes the record as entry `index` of `area`; false when the area is too small.
    pub fn pack_into(&self, area: &mut [u8], index: u64) -> bool {
        let Some(dst) = record_slot(index).and_then(|r| area.get_mut(r)) else {
            return false;
        };
        let (old, new) = dst.split_at_mut(8);
        old.copy_from_slice(&self.old_chunk.to_le_bytes());
        new.copy_from_slice(&self.new_chunk.to_le_bytes());
        true
    }

    /// Reads entry `index` of `area`.
    pub fn unpack(area: &[u8], index: u64) -> Option<Record> {
        let b = area.get(record_slot(index)?)?;
        let old_chunk = u64::from_le_bytes(b.get(0..8)?.try_into().ok()?);
        let new_chunk = u64::from_le_bytes(b.get(8..16)?.try_into().ok()?);
        Some(Record { old_chunk, new_chunk })
    }
}

fn record_slot(index: u64) -> Option<core::ops::Range<usize>> {
    let start = usize::try_from(index).ok()?.checked_mul(RECORD_BYTES)?;
    Some(start..start.checked_add(RECORD_BYTES)?)
}

/// Whether `chunk` (sectors) is a chunk size Linux accepts for 512-byte-sector devices: a power
/// of two no larger than [`MAX_CHUNK_SECTORS`].
pub fn chunk_ok(chunk: u64) -> bool {
    chunk.is_power_of_two() && chunk <= MAX_CHUNK_SECTORS
}

/// A zeroed buffer, or `ENOMEM`.
pub fn zeroed(len: usize) -> Result<Vec<u8>, Errno> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    v.resize(len, 0);
    Ok(v)
}

/// How the store was found on the device.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Found {
    /// The first word was 0: a header and an empty area 0 were written.
    New,
    /// A valid store; its exceptions were handed to the loader.
    Valid,
    /// A store whose header says it was invalidated: no exception was read.
    Invalid,
}

/// Why a store could not be loaded: the errno, and what Linux logs for the same failure.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LoadError {
    pub errno: Errno,
    pub log: &'static str,
}

impl LoadError {
    fn new(errno: Errno, log: &'static str) -> Self {
        LoadError { errno, log }
    }
}

/// The persistent store of one COW device, in memory: the current (last) metadata area, where
/// the next record goes, and the next free chunk.
pub struct Persistent {
    /// Chunk size in sectors.
    chunk: u64,
    /// Records per area.
    epa: u64,
    /// Size of the COW device in sectors.
    cow_sectors: u64,
    /// The current area's bytes.
    area: Vec<u8>,
    current_area: u64,
    /// Records in the current area.
    current_committed: u64,
    /// The next chunk to hand out.
    next_free: u64,
    /// The header's valid flag as this store last wrote or read it.
    valid: bool,
}

impl Persistent {
    /// Reads (or, on a zeroed device, creates) the store on `cow`. `table_chunk` is the chunk
    /// size of the table line (0: the header's, else [`DEFAULT_CHUNK_SECTORS`]); the header's
    /// wins when they differ. `add` receives every exception in on-disk order.
    pub fn load<P: Platform>(
        p: &P,
        cow: &P::Disk,
        table_chunk: u64,
        add: &mut dyn FnMut(u64, u64) -> Result<(), Errno>,
    ) -> Result<(Self, Found), LoadError> {
        let cow_sectors = cow.sectors();
        let mut first = [0u8; SECTOR_SIZE as usize];
        p.disk_io(cow, 0, DiskIo::Read(&mut first)).map_err(|e| LoadError::new(e, "Failed to read snapshot header"))?;
        let header = Header::unpack(&first).ok_or(LoadError::new(Errno::EIO, "Failed to read snapshot header"))?;
        let supplied = table_chunk != 0;
        let mut chunk = if supplied { table_chunk } else { DEFAULT_CHUNK_SECTORS };

        if header.magic == 0 {
            let mut store = Self::empty(chunk, cow_sectors)?;
            store.format(p, cow)?;
            return Ok((store, Found::New));
        }
        if header.magic != MAGIC {
            return Err(LoadError::new(Errno::ENXIO, "Invalid or corrupt snapshot"));
        }
        let on_disk = u64::from(header.chunk_size);
        if on_disk != chunk {
            if supplied {
                p.log(
                    LogLevel::Warning,
                    format_args!(
                        "dm: snapshots: chunk size {on_disk} in device metadata overrides table chunk size of {chunk}."
                    ),
                );
            }
            if !chunk_ok(on_disk) {
                return Err(LoadError::new(Errno::EINVAL, "invalid on-disk chunk size"));
            }
            chunk = on_disk;
        }
        let mut store = Self::empty(chunk, cow_sectors)?;
        if header.version != DISK_VERSION {
            return Err(LoadError::new(Errno::EINVAL, "unable to handle snapshot disk version"));
        }
        if header.valid == 0 {
            store.valid = false;
            return Ok((store, Found::Invalid));
        }
        store.read_exceptions(p, cow, add)?;
        Ok((store, Found::Valid))
    }

    /// A store of `chunk`-sector chunks with nothing in it (area 0, chunks from 2).
    fn empty(chunk: u64, cow_sectors: u64) -> Result<Self, LoadError> {
        let bytes = chunk
            .checked_mul(SECTOR_SIZE)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or(LoadError::new(Errno::EINVAL, "invalid chunk size"))?;
        // A header chunk and one area at least (Linux fails reading or writing them otherwise).
        if chunk.checked_mul(2).is_none_or(|two| two > cow_sectors) {
            return Err(LoadError::new(Errno::EINVAL, "COW device too small for the header and one area"));
        }
        let area = zeroed(bytes).map_err(|e| LoadError::new(e, "Unable to allocate the metadata area"))?;
        Ok(Persistent {
            chunk,
            epa: (bytes / RECORD_BYTES) as u64,
            cow_sectors,
            area,
            current_area: 0,
            current_committed: 0,
            next_free: HEADER_CHUNKS + 1,
            valid: true,
        })
    }

    /// Makes a new store: area 0 zeroed, flushed, then the header.
    fn format<P: Platform>(&mut self, p: &P, cow: &P::Disk) -> Result<(), LoadError> {
        let fail = |e| LoadError::new(e, "write_header failed");
        self.zero_area_on_disk(p, cow, 0).map_err(fail)?;
        p.disk_io(cow, 0, DiskIo::Flush).map_err(fail)?;
        self.write_header(p, cow).map_err(fail)
    }

    fn read_exceptions<P: Platform>(
        &mut self,
        p: &P,
        cow: &P::Disk,
        add: &mut dyn FnMut(u64, u64) -> Result<(), Errno>,
    ) -> Result<(), LoadError> {
        let corrupt = LoadError::new(Errno::EINVAL, "Invalid or corrupt snapshot");
        let cow_chunks = self.cow_sectors.checked_div(self.chunk).ok_or(corrupt)?;
        let mut area = 0u64;
        loop {
            let at = self.area_location(area).ok_or(corrupt)?;
            if at >= cow_chunks {
                return Err(LoadError::new(Errno::EIO, "Unable to read a metadata area"));
            }
            p.disk_io(cow, at * self.chunk, DiskIo::Read(&mut self.area))
                .map_err(|e| LoadError::new(e, "Unable to read a metadata area"))?;
            let mut count = 0;
            while count < self.epa {
                let r = Record::unpack(&self.area, count).ok_or(corrupt)?;
                if r.new_chunk == 0 {
                    break;
                }
                // A record must point at a data chunk inside the device.
                if r.new_chunk >= cow_chunks || self.is_area_chunk(r.new_chunk) {
                    return Err(corrupt);
                }
                if r.old_chunk.checked_mul(self.chunk).is_none() {
                    return Err(corrupt);
                }
                self.next_free = self.next_free.max(r.new_chunk + 1);
                add(r.old_chunk, r.new_chunk).map_err(|e| LoadError::new(e, "Unable to allocate exception"))?;
                count += 1;
            }
            if count < self.epa {
                self.current_area = area;
                self.current_committed = count;
                break;
            }
            area += 1;
        }
        self.skip_metadata();
        Ok(())
    }

    pub fn chunk(&self) -> u64 {
        self.chunk
    }

    /// Records per metadata area.
    pub fn exceptions_per_area(&self) -> u64 {
        self.epa
    }

    /// Whether the header still says valid.
    pub fn header_valid(&self) -> bool {
        self.valid
    }

    /// The chunk of metadata area `area`.
    pub fn area_location(&self, area: u64) -> Option<u64> {
        (self.epa + 1).checked_mul(area)?.checked_add(HEADER_CHUNKS)
    }

    fn is_area_chunk(&self, chunk: u64) -> bool {
        chunk.checked_rem(self.epa.saturating_add(1)) == Some(HEADER_CHUNKS)
    }

    /// Steps `next_free` over a metadata area's chunk.
    fn skip_metadata(&mut self) {
        if self.is_area_chunk(self.next_free) {
            self.next_free += 1;
        }
    }

    /// Hands out the next free chunk, or `None` when the device is full.
    pub fn prepare(&mut self) -> Option<u64> {
        let needed = self.next_free.checked_add(1)?.checked_mul(self.chunk)?;
        if self.cow_sectors < needed {
            return None;
        }
        let chunk = self.next_free;
        self.next_free += 1;
        self.skip_metadata();
        Some(chunk)
    }

    /// `(allocated, total, metadata)` sectors, as Linux's status reports them.
    pub fn usage(&self) -> (u64, u64, u64) {
        let allocated = self.next_free.saturating_mul(self.chunk);
        let metadata = (self.current_area + 1 + HEADER_CHUNKS).saturating_mul(self.chunk);
        (allocated, self.cow_sectors, metadata)
    }

    /// Makes `records` durable, in order: each full area is followed on disk by a zeroed one
    /// before it is written. The chunks the records point at must have been written.
    pub fn commit<P: Platform>(&mut self, p: &P, cow: &P::Disk, records: &[Record]) -> Result<(), Errno> {
        if !self.valid {
            return Err(Errno::EIO);
        }
        let mut dirty = false;
        for r in records {
            if !r.pack_into(&mut self.area, self.current_committed) {
                return Err(Errno::EIO);
            }
            self.current_committed += 1;
            dirty = true;
            if self.current_committed == self.epa {
                let next = self.current_area.checked_add(1).ok_or(Errno::EIO)?;
                self.zero_area_on_disk(p, cow, next)?;
                self.write_area(p, cow)?;
                self.current_area = next;
                self.current_committed = 0;
                self.area.fill(0);
                dirty = false;
            }
        }
        if dirty {
            self.write_area(p, cow)?;
        }
        Ok(())
    }

    /// Flushes the device (what the records point at), then writes the current area with FUA.
    fn write_area<P: Platform>(&self, p: &P, cow: &P::Disk) -> Result<(), Errno> {
        let at = self.area_location(self.current_area).ok_or(Errno::EIO)?;
        p.disk_io(cow, 0, DiskIo::Flush)?;
        p.disk_io(cow, at * self.chunk, DiskIo::Write { data: &self.area, fua: true })
    }

    fn zero_area_on_disk<P: Platform>(&self, p: &P, cow: &P::Disk, area: u64) -> Result<(), Errno> {
        let at = self.area_location(area).ok_or(Errno::EIO)?;
        if at.checked_add(1).and_then(|end| end.checked_mul(self.chunk)).is_none_or(|end| end > self.cow_sectors) {
            return Err(Errno::ENOSPC);
        }
        p.disk_io(cow, at * self.chunk, DiskIo::WriteZeroes { sectors: self.chunk })
    }

    /// Writes the whole header chunk (header, then zeroes) with FUA.
    fn write_header<P: Platform>(&self, p: &P, cow: &P::Disk) -> Result<(), Errno> {
        let chunk_size = u32::try_from(self.chunk).map_err(|_| Errno::EINVAL)?;
        let mut block = zeroed(self.area.len())?;
        let header = Header::new(self.valid, chunk_size).pack();
        block.get_mut(..Header::BYTES).ok_or(Errno::EIO)?.copy_from_slice(&header);
        p.disk_io(cow, 0, DiskIo::Write { data: &block, fua: true })
    }

    /// Marks the store invalid on disk for good (Linux's `drop_snapshot`).
    pub fn drop_snapshot<P: Platform>(&mut self, p: &P, cow: &P::Disk) -> Result<(), Errno> {
        self.valid = false;
        self.write_header(p, cow)
    }

    /// The last run of exceptions to merge: `(last old chunk, last new chunk, count)` of the
    /// records at the end of the list that are consecutive in both the origin and the COW and
    /// lie in one area. `None` when no exception is left.
    pub fn prepare_merge<P: Platform>(&mut self, p: &P, cow: &P::Disk) -> Result<Option<(u64, u64, u64)>, Errno> {
        if self.current_committed == 0 {
            if self.current_area == 0 {
                return Ok(None);
            }
            self.current_area -= 1;
            let at = self.area_location(self.current_area).ok_or(Errno::EIO)?;
            p.disk_io(cow, at * self.chunk, DiskIo::Read(&mut self.area))?;
            self.current_committed = self.epa;
        }
        let last = Record::unpack(&self.area, self.current_committed - 1).ok_or(Errno::EIO)?;
        let mut n = 1;
        while n < self.current_committed {
            let r = Record::unpack(&self.area, self.current_committed - 1 - n).ok_or(Errno::EIO)?;
            if Some(r.old_chunk) != last.old_chunk.checked_sub(n) || Some(r.new_chunk) != last.new_chunk.checked_sub(n)
            {
                break;
            }
            n += 1;
        }
        Ok(Some((last.old_chunk, last.new_chunk, n)))
    }

    /// Removes the last `n` records (merged) from the list on disk.
    pub fn commit_merge<P: Platform>(&mut self, p: &P, cow: &P::Disk, n: u64) -> Result<(), Errno> {
        if n > self.current_committed {
            return Err(Errno::EINVAL);
        }
        for i in 0..n {
            Record::ZERO.pack_into(&mut self.area, self.current_committed - 1 - i);
        }
        self.write_area(p, cow)?;
        self.current_committed -= n;
        // What next_free would be had every exception been committed in order.
        self.next_free = self.area_location(self.current_area).ok_or(Errno::EIO)? + self.current_committed + 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes_are_linux_s() {
        let h = Header::new(true, 8);
        assert_eq!(h.pack(), [0x53, 0x6e, 0x41, 0x70, 1, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0]);
        assert_eq!(Header::unpack(&h.pack()), Some(h));
        assert_eq!(Header::unpack(&[0; 15]), None);
    }

    #[test]
    fn records_are_two_little_endian_words() {
        let mut area = [0u8; 48];
        assert!(Record { old_chunk: 8, new_chunk: 4 }.pack_into(&mut area, 2));
        assert_eq!(&area[32..48], &[8, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Record::unpack(&area, 2), Some(Record { old_chunk: 8, new_chunk: 4 }));
        assert_eq!(Record::unpack(&area, 3), None);
        assert!(!Record::ZERO.pack_into(&mut area, 3));
    }

    #[test]
    fn chunk_sizes() {
        for ok in [1, 8, 32, 1 << 21] {
            assert!(chunk_ok(ok), "{ok}");
        }
        for bad in [0, 7, 12, (1 << 21) + 1, 1 << 22] {
            assert!(!chunk_ok(bad), "{bad}");
        }
    }
}
