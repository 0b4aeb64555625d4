//! Tables: the target lines of one device, validated as a whole before anything uses them, and
//! indexed so that finding the line of a sector is a short binary search.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::platform::{DevT, Platform};
use crate::target::{args, BuildContext, EventSink, StatusKind, Target, TargetFeatures, TargetRegistry, TargetType};

/// One table line as a client sends it: `<start> <length> <type> <params>`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TableLine {
    pub start: u64,
    pub len: u64,
    pub target_type: String,
    pub params: String,
}

/// Why a table was refused, with the line at fault when there is one.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TableError {
    pub errno: Errno,
    pub line: Option<usize>,
    pub message: String,
}

impl TableError {
    pub fn at(line: usize, errno: Errno, message: impl Into<String>) -> Self {
        TableError { errno, line: Some(line), message: message.into() }
    }

    pub fn whole(errno: Errno, message: impl Into<String>) -> Self {
        TableError { errno, line: None, message: message.into() }
    }
}

/// A built table line.
pub struct Entry<P: Platform> {
    pub start: u64,
    pub len: u64,
    pub target_type: Arc<dyn TargetType<P>>,
    pub target: Box<dyn Target<P>>,
}

/// A validated, constructed table.
pub struct Table<P: Platform> {
    entries: Vec<Entry<P>>,
    index: Index,
}

impl<P: Platform> Table<P> {
    /// Validates `lines` as a whole and constructs every target. Any failure drops what was
    /// built so far (closing its devices) and changes nothing else. The targets' events go
    /// nowhere: the core builds a device's tables with [`Table::build_with_events`].
    pub fn build(
        platform: &P,
        registry: &TargetRegistry<P>,
        minor: u32,
        lines: &[TableLine],
        read_only: bool,
    ) -> Result<Self, TableError> {
        Self::build_with_events(platform, registry, minor, lines, read_only, &EventSink::detached())
    }

    /// [`Table::build`], with the targets reporting their events to `events`.
    pub fn build_with_events(
        platform: &P,
        registry: &TargetRegistry<P>,
        minor: u32,
        lines: &[TableLine],
        read_only: bool,
        events: &EventSink,
    ) -> Result<Self, TableError> {
        let types = check_lines(platform, registry, lines, read_only)?;
        let mut entries = Vec::with_capacity(lines.len());
        for (i, (line, target_type)) in lines.iter().zip(types).enumerate() {
            let argv = args::split(&line.params).map_err(|e| TableError::at(i, e.errno, e.message))?;
            let ctx = BuildContext {
                platform,
                minor,
                start: line.start,
                len: line.len,
                read_only,
                shared: registry.shared(),
                events,
            };
            let target = target_type
                .construct(&ctx, &argv)
                .map_err(|e| TableError::at(i, e.errno, alloc::format!("{}: {}", line.target_type, e.message)))?;
            entries.push(Entry { start: line.start, len: line.len, target_type, target });
        }
        let index = Index::new(entries.iter().map(|e| e.start + e.len).collect());
        Ok(Table { entries, index })
    }

    /// The device size in sectors.
    pub fn size(&self) -> u64 {
        self.index.size()
    }

    pub fn entries(&self) -> &[Entry<P>] {
        &self.entries
    }

    pub fn entry(&self, index: usize) -> Option<&Entry<P>> {
        self.entries.get(index)
    }

    /// The index of the line containing `sector`.
    pub fn find(&self, sector: u64) -> Option<usize> {
        self.index.find(sector)
    }

    /// Each line's start, length, type and status string of the given kind.
    pub fn status(&self, kind: StatusKind) -> Vec<(u64, u64, String, String)> {
        self.entries
            .iter()
            .map(|e| {
                let mut s = String::new();
                e.target.status(kind, &mut s);
                (e.start, e.len, String::from(e.target_type.name()), s)
            })
            .collect()
    }

    /// Every lower device of the table, each once, in order of first use.
    pub fn devices(&self) -> Vec<DevT> {
        let mut devs: Vec<DevT> = Vec::new();
        for e in &self.entries {
            e.target.devices(&mut |d| {
                if !devs.contains(&d) {
                    devs.push(d);
                }
            });
        }
        devs
    }

    /// Whether this table may replace `current` (an immutable target type stays).
    pub fn may_replace(&self, current: &Table<P>) -> Result<(), TableError> {
        let immutable = |t: &Table<P>| {
            t.entries
                .iter()
                .find(|e| e.target_type.features().contains(TargetFeatures::IMMUTABLE))
                .map(|e| String::from(e.target_type.name()))
        };
        match (immutable(current), self.entries.first()) {
            (Some(name), Some(first)) if first.target_type.name() != name => {
                Err(TableError::whole(Errno::EINVAL, alloc::format!("can't replace immutable target type {name}")))
            }
            _ => Ok(()),
        }
    }
}

/// The checks that need no device: geometry, types, and the table-wide type rules. A type
/// nobody registered is given one chance to appear through [`Platform::autoload_target`]
/// (NetBSD's `module_autoload("dm_target_<type>")`) before the line fails with `ENOENT`.
fn check_lines<P: Platform>(
    platform: &P,
    registry: &TargetRegistry<P>,
    lines: &[TableLine],
    read_only: bool,
) -> Result<Vec<Arc<dyn TargetType<P>>>, TableError> {
    if lines.is_empty() {
        return Err(TableError::whole(Errno::EINVAL, "no targets specified"));
    }
    let mut next = 0u64;
    let mut types = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.len == 0 {
            return Err(TableError::at(i, Errno::EINVAL, "zero-length target"));
        }
        if line.start != next {
            let msg = if i == 0 { "first target must start at sector 0" } else { "Gap in table" };
            return Err(TableError::at(i, Errno::EINVAL, msg));
        }
        next = line
            .start
            .checked_add(line.len)
            .ok_or_else(|| TableError::at(i, Errno::EINVAL, "target end beyond the largest sector"))?;
        let found = registry.find(&line.target_type).or_else(|| {
            platform.autoload_target(&line.target_type).then(|| registry.find(&line.target_type)).flatten()
        });
        let ty = found.ok_or_else(|| {
            TableError::at(i, Errno::ENOENT, alloc::format!("unknown target type {}", line.target_type))
        })?;
        types.push(ty);
    }
    for (i, ty) in types.iter().enumerate() {
        let features = ty.features();
        if features.contains(TargetFeatures::SINGLETON) && lines.len() > 1 {
            return Err(TableError::at(i, Errno::EINVAL, alloc::format!("{} must be the only target", ty.name())));
        }
        if features.contains(TargetFeatures::IMMUTABLE) && types.iter().any(|t| t.name() != ty.name()) {
            return Err(TableError::at(
                i,
                Errno::EINVAL,
                alloc::format!("{} can't be mixed with other types", ty.name()),
            ));
        }
        if features.contains(TargetFeatures::ALWAYS_WRITEABLE) && read_only {
            return Err(TableError::at(i, Errno::EINVAL, alloc::format!("{} may not be read-only", ty.name())));
        }
    }
    Ok(types)
}

/// Finds the line of a sector in constant time for ordinary tables.
///
/// The sector space is cut into power-of-two buckets no wider than the shortest line (within a
/// memory cap of four buckets per line), so a bucket holds at most one line boundary: the line
/// reaching into the bucket and where it ends, read from two arrays at the same index (two
/// independent loads), decide between that line and the next. Where the cap makes buckets
/// wider than some lines (very uneven tables), a bucket marked `MANY` falls back to a binary
/// search over the few lines it holds.
struct Index {
    /// End sector (exclusive) of each line; strictly increasing.
    ends: Vec<u64>,
    /// For each bucket, the first line reaching into it; `MANY` set when the bucket holds more
    /// than one line boundary.
    first: Vec<u32>,
    /// For each bucket, where its first line ends.
    first_end: Vec<u64>,
    /// log2 of the bucket width in sectors.
    shift: u32,
}

const MANY: u32 = 1 << 31;

impl Index {
    fn new(ends: Vec<u64>) -> Self {
        let size = ends.last().copied().unwrap_or(0);
        let mut shortest = u64::MAX;
        let mut start = 0;
        for &end in &ends {
            shortest = shortest.min(end - start);
            start = end;
        }
        // Widest power of two no longer than the shortest line...
        let mut shift = 63 - shortest.max(1).leading_zeros();
        // ...unless that makes more than four buckets per line.
        let cap = (ends.len().max(1) as u64).saturating_mul(4).next_power_of_two();
        while shift < 63 && (size.saturating_sub(1) >> shift) >= cap {
            shift += 1;
        }
        let bucket_count = if size == 0 { 0 } else { ((size - 1) >> shift) + 1 };
        let mut first = Vec::with_capacity(bucket_count as usize);
        let mut first_end = Vec::with_capacity(bucket_count as usize);
        let mut line = 0usize;
        for bucket in 0..bucket_count {
            let lo = bucket << shift;
            let hi = lo.saturating_add((1u64 << shift) - 1);
            while ends.get(line).is_some_and(|&end| end <= lo) {
                line += 1;
            }
            let end = ends.get(line).copied().unwrap_or(u64::MAX);
            // A second boundary inside the bucket: the next line ends before the bucket does.
            let many = end <= hi && ends.get(line + 1).is_some_and(|&next| next <= hi);
            first.push(line as u32 | if many { MANY } else { 0 });
            first_end.push(end);
        }
        Index { ends, first, first_end, shift }
    }

    fn size(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    fn find(&self, sector: u64) -> Option<usize> {
        if sector >= self.size() {
            return None;
        }
        let bucket = (sector >> self.shift) as usize;
        let first = *self.first.get(bucket)?;
        let end = *self.first_end.get(bucket)?;
        if first & MANY == 0 {
            return Some(first as usize + usize::from(sector >= end));
        }
        let lo = (first & !MANY) as usize;
        let hi = match self.first.get(bucket + 1) {
            Some(&next) => (next & !MANY) as usize,
            None => self.ends.len() - 1,
        };
        let candidates = self.ends.get(lo..=hi)?;
        Some(lo + candidates.partition_point(|&end| end <= sector))
    }
}

#[cfg(test)]
mod tests {
    use super::Index;
    use alloc::vec;
    use alloc::vec::Vec;

    fn naive(ends: &[u64], sector: u64) -> Option<usize> {
        ends.iter().position(|&e| sector < e)
    }

    #[test]
    fn index_matches_a_linear_scan() {
        let shapes: Vec<Vec<u64>> = vec![
            vec![1],
            vec![8],
            vec![1, 2, 3],
            vec![5, 1000, 1001, 1_000_000],
            vec![u64::MAX],
            (1..=100).map(|i| i * 7).collect(),
            vec![3, 1 << 40, (1 << 40) + 1],
            // Uneven: tiny lines among huge ones force buckets holding several boundaries.
            (0..40).map(|i| if i % 10 == 9 { (i + 1) * 100_000 } else { i * 100_000 + i + 1 }).collect(),
            (1..=64).chain([1 << 20, (1 << 20) + 1, (1 << 20) + 2, 1 << 30]).collect(),
        ];
        for ends in shapes {
            let index = Index::new(ends.clone());
            let size = *ends.last().unwrap();
            let mut probes: Vec<u64> = vec![0, size - 1, size, size.saturating_add(1), u64::MAX];
            probes.extend((0..2000).map(|i| i * (size / 2000).max(1)));
            for &e in &ends {
                probes.extend([e.saturating_sub(1), e, e.saturating_add(1)]);
            }
            for s in probes {
                assert_eq!(index.find(s), naive(&ends, s), "ends {ends:?} sector {s}");
            }
        }
    }
}
