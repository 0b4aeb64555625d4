//! Runs dmctl's logic against the in-memory core, with the lower devices of the Linux golden
//! transcripts: /dev/vda = 254:0, /dev/vdb = 254:16, /dev/vdc = 254:32, 64 MiB each.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use dmclient::{LocalTransport, RawReply, Transport};
use dmcore::platform::mem::MemPlatform;
use dmcore::{Core, DevT};
use dmctl::Config;

pub struct Harness {
    pub core: Arc<Core<MemPlatform>>,
    pub platform: MemPlatform,
    pub transport: LocalTransport<MemPlatform>,
    pub config: Config,
}

/// What one run printed.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    pub status: i32,
    pub out: String,
    pub err: String,
}

impl Harness {
    /// The mapped devices' major is 253 here, as in the transcripts.
    pub fn new() -> Self {
        let (core, platform) = MemPlatform::new_core();
        platform.add_disk("/dev/vda", DevT::new(254, 0), 131_072);
        platform.add_disk("/dev/vdb", DevT::new(254, 16), 131_072);
        platform.add_disk("/dev/vdc", DevT::new(254, 32), 131_072);
        let transport = LocalTransport::new(core.clone());
        Harness { core, platform, transport, config: Config { dm_major: 253 } }
    }

    pub fn run_over(&self, transport: &dyn Transport, args: &[&str], stdin: &str) -> Run {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = dmctl::run_with(&self.config, &args, transport, &mut stdin.as_bytes(), &mut out, &mut err);
        Run { status, out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap() }
    }

    /// Runs `args` (with the program name first) with `stdin`.
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        self.run_over(&self.transport, args, stdin)
    }

    /// Runs a command that must succeed and print nothing on stderr; returns its stdout.
    pub fn ok(&self, args: &[&str], stdin: &str) -> String {
        let run = self.run(args, stdin);
        assert_eq!((run.status, run.err.as_str()), (0, ""), "{args:?}: {run:?}");
        run.out
    }
}

/// What NetBSD's ioctl gives: the reply only, the command's errno and detail swallowed.
pub struct IoctlLike<T>(pub T);

impl<T: Transport> Transport for IoctlLike<T> {
    fn call(&self, request: &[u8]) -> std::io::Result<RawReply> {
        let raw = self.0.call(request)?;
        Ok(RawReply { command_errno: None, detail: None, ..raw })
    }
}

/// A Linux golden transcript (shared/linux-dm-oracle/golden).
pub fn golden(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/linux-dm-oracle/golden").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
