//! Shared set-up for the core's integration tests: a core on the in-memory platform with the
//! lower devices of the recorded NetBSD exchanges.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use dmcore::platform::mem::MemPlatform;
use dmcore::{Caller, Core, DevT, Reply};

pub const ROOT: Caller = Caller { privileged: true };
pub const USER: Caller = Caller { privileged: false };

/// The recorded exchanges' lower devices: /dev/dmtl0..2, 8 MiB each, block major 197.
pub const LOWER_SECTORS: u64 = 16384;
pub fn lower(i: u32) -> DevT {
    DevT::new(197, i)
}

pub fn golden_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/netbsd-golden"))
}

pub fn golden(name: &str, part: &str) -> Vec<u8> {
    let path = golden_dir().join(format!("{name}.{part}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn setup() -> (Arc<Core<MemPlatform>>, MemPlatform) {
    let (core, platform) = MemPlatform::new_core();
    for i in 0..3 {
        platform.add_disk(&format!("/dev/dmtl{i}"), lower(i), LOWER_SECTORS);
    }
    (core, platform)
}

/// Sends request text the way libprop does: the text and its NUL.
pub fn send(core: &Core<MemPlatform>, text: &[u8], caller: Caller) -> Result<Reply, dmcore::Errno> {
    let mut bytes = text.to_vec();
    bytes.push(0);
    core.control(&bytes, caller)
}

pub fn send_ok(core: &Core<MemPlatform>, text: &[u8]) -> Reply {
    send(core, text, ROOT).expect("transport error")
}

/// A request document with the protocol's header, from the body of its dictionary.
pub fn doc(body: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple Computer//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n{body}</plist>\n"
    )
    .into_bytes()
}
