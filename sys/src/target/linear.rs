//! `linear <dev> <offset>`: sector `s` of the line is sector `offset + s` of `dev`.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt::Write;

use super::{args, ima_name_version, BuildContext, StatusKind, Target, TargetError, TargetType};
use crate::io::{Mapper, Segment};
use crate::platform::{DevT, LowerDisk, Op, Platform};

pub struct LinearType;

/// Linux 6.1's linear version.
const VERSION: [u32; 3] = [1, 4, 0];

impl<P: Platform> TargetType<P> for LinearType {
    fn name(&self) -> &str {
        "linear"
    }

    fn version(&self) -> [u32; 3] {
        VERSION
    }

    fn construct(&self, ctx: &BuildContext<'_, P>, argv: &[String]) -> Result<Box<dyn Target<P>>, TargetError> {
        let [dev, offset] = argv else {
            return Err(TargetError::invalid("Invalid argument count"));
        };
        let offset = args::parse_u64(offset).ok_or_else(|| TargetError::invalid("Invalid device sector"))?;
        let disk = ctx.open_area(dev, offset, ctx.len)?;
        Ok(Box::new(Linear::<P> { disk, offset }))
    }
}

struct Linear<P: Platform> {
    disk: P::Disk,
    offset: u64,
}

impl<P: Platform> Target<P> for Linear<P> {
    fn map(&self, seg: &Segment, mapper: &mut Mapper<'_, P>) {
        let sector = if seg.op == Op::Flush { 0 } else { self.offset + seg.offset };
        mapper.remap(&self.disk, sector);
    }

    fn status(&self, kind: StatusKind, out: &mut String) {
        match kind {
            StatusKind::Info => {}
            StatusKind::Table => {
                let _ = write!(out, "{} {}", self.disk.dev(), self.offset);
            }
            StatusKind::Ima => {
                ima_name_version(out, "linear", VERSION);
                let _ = write!(out, ",device_name={},start={};", self.disk.dev(), self.offset);
            }
        }
    }

    fn devices(&self, f: &mut dyn FnMut(DevT)) {
        f(self.disk.dev());
    }
}
