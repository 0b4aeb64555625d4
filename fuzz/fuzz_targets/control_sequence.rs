//! A sequence of requests (split at NUL bytes) against one core with three small lower
//! devices, followed by I/O to every minor: commands, tables and I/O interleave.
//! Run: `cargo +nightly fuzz run control_sequence` (from the repository root).
#![no_main]

use dmcore::platform::mem::MemPlatform;
use dmcore::{Caller, DevT, Op};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (core, platform) = MemPlatform::new_core();
    for i in 0..3 {
        platform.add_disk(&format!("/dev/dmtl{i}"), DevT::new(197, i), 64);
    }
    for request in data.split(|&b| b == 0).take(32) {
        let _ = core.control(request, Caller { privileged: true });
    }
    for minor in 0..4 {
        let io = platform.run_io(&core, minor, Op::Read, 0, 512, None);
        assert!(io.result().is_some() || platform.deferred(minor) > 0);
    }
});
