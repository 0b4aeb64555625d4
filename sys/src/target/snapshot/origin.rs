//! `snapshot-origin <origin>`: the origin device as its users see it while it has snapshots.
//!
//! Reads and flushes pass through. Writes (and discards and write-zeroes, which change data
//! too) first make every active snapshot of the device copy the chunks they touch: at once
//! when that is already done, else through the group's worker, which holds the write until
//! the copies are committed. INFO is empty, TABLE the device as `major:minor`, IMA empty (as
//! Linux 6.1's `origin_status` writes them).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::fmt::Write;

use super::{Group, Job};
use crate::io::{Mapper, Segment};
use crate::platform::{DevT, LowerDisk, Op, Platform};
use crate::target::{BuildContext, StatusKind, Target, TargetError, TargetType};

pub struct SnapshotOriginType;

/// Linux 6.1's snapshot-origin version.
pub const VERSION: [u32; 3] = [1, 9, 0];

impl<P: Platform> TargetType<P> for SnapshotOriginType {
    fn name(&self) -> &str {
        "snapshot-origin"
    }

    fn version(&self) -> [u32; 3] {
        VERSION
    }

    fn construct(&self, ctx: &BuildContext<'_, P>, argv: &[String]) -> Result<Box<dyn Target<P>>, TargetError> {
        let [dev] = argv else {
            return Err(TargetError::invalid("origin: incorrect number of arguments"));
        };
        let disk = ctx.open_area(dev, 0, ctx.len).map_err(|e| {
            if e.message == "Device lookup failed" {
                TargetError::new(e.errno, "Cannot get target device")
            } else {
                e
            }
        })?;
        let group = Group::find_or_make(ctx.platform, ctx.shared, disk.dev())?;
        Ok(Box::new(Origin { disk, group }))
    }
}

struct Origin<P: Platform> {
    disk: P::Disk,
    group: Arc<Group<P>>,
}

impl<P: Platform> Target<P> for Origin<P> {
    fn map(&self, seg: &Segment, mapper: &mut Mapper<'_, P>) {
        match seg.op {
            Op::Flush => mapper.remap(&self.disk, 0),
            Op::Read => mapper.remap(&self.disk, seg.offset),
            Op::Write | Op::Discard | Op::WriteZeroes => {
                if self.group.write_is_free(seg.offset, seg.sectors) {
                    mapper.remap(&self.disk, seg.offset);
                } else {
                    let io = mapper.queue();
                    self.group.enqueue_or_fail(Job::Origin { io, sector: seg.offset, sectors: seg.sectors });
                }
            }
        }
    }

    fn status(&self, kind: StatusKind, out: &mut String) {
        if kind == StatusKind::Table {
            let _ = write!(out, "{}", self.disk.dev());
        }
    }

    fn devices(&self, f: &mut dyn FnMut(DevT)) {
        f(self.disk.dev());
    }
}
