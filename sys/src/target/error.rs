//! `error`: every read, write and discard fails with `EIO`. Accepts any arguments (Linux's
//! wildcard target). Flushes succeed: Linux sends none to this target.

use alloc::boxed::Box;
use alloc::string::String;

use super::{BuildContext, StatusKind, Target, TargetError, TargetType};
use crate::errno::Errno;
use crate::io::{Mapper, Segment};
use crate::platform::{Op, Platform};

pub struct ErrorType;

impl<P: Platform> TargetType<P> for ErrorType {
    fn name(&self) -> &str {
        "error"
    }

    fn version(&self) -> [u32; 3] {
        [1, 5, 0]
    }

    fn construct(&self, _ctx: &BuildContext<'_, P>, _argv: &[String]) -> Result<Box<dyn Target<P>>, TargetError> {
        Ok(Box::new(Error))
    }
}

struct Error;

impl<P: Platform> Target<P> for Error {
    fn map(&self, seg: &Segment, mapper: &mut Mapper<'_, P>) {
        if seg.op != Op::Flush {
            mapper.fail(Errno::EIO);
        }
    }

    /// INFO and TABLE are empty; so is IMA: Linux 6.1's error has no status function, and its IMA
    /// record of the line then carries no target data.
    fn status(&self, kind: StatusKind, _out: &mut String) {
        match kind {
            StatusKind::Info | StatusKind::Table | StatusKind::Ima => {}
        }
    }
}
