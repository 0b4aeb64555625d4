//! `zero`: reads return zeroes, writes are accepted and forgotten (Linux 6.1's zero 1.1.0:
//! discard and write-zeroes are not supported).

use alloc::boxed::Box;
use alloc::string::String;

use super::{BuildContext, StatusKind, Target, TargetError, TargetType};
use crate::errno::Errno;
use crate::io::{Mapper, Segment};
use crate::platform::{Op, Platform};

pub struct ZeroType;

impl<P: Platform> TargetType<P> for ZeroType {
    fn name(&self) -> &str {
        "zero"
    }

    fn version(&self) -> [u32; 3] {
        [1, 1, 0]
    }

    fn construct(&self, _ctx: &BuildContext<'_, P>, argv: &[String]) -> Result<Box<dyn Target<P>>, TargetError> {
        if !argv.is_empty() {
            return Err(TargetError::invalid("No arguments required"));
        }
        Ok(Box::new(Zero))
    }
}

struct Zero;

impl<P: Platform> Target<P> for Zero {
    fn map(&self, seg: &Segment, mapper: &mut Mapper<'_, P>) {
        match seg.op {
            Op::Read => mapper.zero_fill(),
            Op::Write | Op::Flush => {}
            Op::Discard | Op::WriteZeroes => mapper.fail(Errno::EOPNOTSUPP),
        }
    }

    /// INFO and TABLE are empty; so is IMA: Linux 6.1's zero has no status function, and its IMA
    /// record of the line then carries no target data.
    fn status(&self, kind: StatusKind, _out: &mut String) {
        match kind {
            StatusKind::Info | StatusKind::Table | StatusKind::Ima => {}
        }
    }
}
