//! The core in this process: what tests (and dmhost itself) use.

use std::io;
use std::sync::Arc;

use dmcore::{Caller, Core, Platform};

use super::{RawReply, Transport};

/// Runs requests on an in-process [`Core`], reporting the command's errno and detail as
/// dmhost's socket does.
pub struct LocalTransport<P: Platform> {
    core: Arc<Core<P>>,
    caller: Caller,
}

impl<P: Platform> LocalTransport<P> {
    /// A privileged caller (root).
    pub fn new(core: Arc<Core<P>>) -> Self {
        Self::with_caller(core, Caller { privileged: true })
    }

    pub fn with_caller(core: Arc<Core<P>>, caller: Caller) -> Self {
        LocalTransport { core, caller }
    }

    pub fn core(&self) -> &Arc<Core<P>> {
        &self.core
    }
}

impl<P: Platform> Transport for LocalTransport<P> {
    fn call(&self, request: &[u8]) -> io::Result<RawReply> {
        let mut bytes = Vec::with_capacity(request.len() + 1);
        bytes.extend_from_slice(request);
        bytes.push(0);
        Ok(match self.core.control(&bytes, self.caller) {
            Ok(reply) => RawReply {
                transport_errno: 0,
                command_errno: Some(reply.command_result.err().map_or(0, |e| e.0)),
                bytes: reply.bytes,
                detail: reply.detail,
            },
            Err(errno) => RawReply { transport_errno: errno.0, ..RawReply::default() },
        })
    }
}
