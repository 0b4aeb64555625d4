//! One request of arbitrary bytes into the control entry point.
//! Run: `cargo +nightly fuzz run control` (from the repository root).
#![no_main]

use dmcore::platform::mem::MemPlatform;
use dmcore::Caller;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (core, _platform) = MemPlatform::new_core();
    if let Ok(reply) = core.control(data, Caller { privileged: true }) {
        assert!(dmcore::plist::parse_dict(&reply.bytes, &dmcore::plist::Limits::DM).is_ok());
    }
});
