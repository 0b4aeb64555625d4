//! Arbitrary input into the control entry point never panics, and every accepted request gets a
//! well-formed reply. Raw bytes, mutated valid requests and structurally valid requests with
//! random commands, keys and values are all tried; the case counts add up to well over 100,000.

mod common;

use common::*;
use dmcore::platform::mem::MemPlatform;
use dmcore::plist::{parse_dict, write_dict, Dict, Limits, Number, Value};
use proptest::prelude::*;

const COMMANDS: &[&str] = &[
    "version",
    "targets",
    "create",
    "info",
    "mknodes",
    "names",
    "suspend",
    "remove",
    "rename",
    "resume",
    "clear",
    "deps",
    "reload",
    "status",
    "table",
    "frobnicate",
];
const KEYS: &[&str] = &[
    "command",
    "version",
    "open_count",
    "minor",
    "name",
    "uuid",
    "target_count",
    "event_nr",
    "flags",
    "cmd_data",
    "type",
    "start",
    "length",
    "params",
    "dev",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|v| Value::Number(Number::Signed(v))),
        any::<u64>().prop_map(|v| Value::Number(Number::Unsigned(v))),
        (0u64..8).prop_map(|v| Value::Number(Number::Unsigned(v))),
        any::<bool>().prop_map(Value::Bool),
        "[a-z0-9/ :.-]{0,24}".prop_map(|s| Value::String(s.into_bytes())),
        prop_oneof![
            Just("/dev/dmtl0 0"),
            Just("/dev/dmtl1 8"),
            Just("2 8 /dev/dmtl0 0 /dev/dmtl1 0"),
            Just(""),
            Just("197:2 16")
        ]
        .prop_map(|s| Value::String(s.as_bytes().to_vec())),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Data),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                let mut d = Dict::new();
                for (k, v) in kv {
                    d.insert(k, v);
                }
                Value::Dict(d)
            }),
        ]
    })
}

fn request() -> impl Strategy<Value = Dict> {
    (
        proptest::sample::select(COMMANDS),
        proptest::collection::vec((proptest::sample::select(KEYS), value()), 0..6),
        proptest::option::of((0u32..20, 0u32..8, 0u32..40)),
    )
        .prop_map(|(command, extra, version)| {
            let mut d = Dict::new();
            for (k, v) in extra {
                d.insert(k, v);
            }
            d.set_string("command", command.as_bytes());
            if let Some((a, b, c)) = version {
                let major = if a < 16 { 4 } else { a };
                d.insert(
                    "version",
                    Value::Array([major, b, c].iter().map(|&v| Value::Number(Number::Unsigned(v.into()))).collect()),
                );
            }
            d
        })
}

/// A core with three small lower devices named as in the recorded exchanges.
fn small_setup() -> (std::sync::Arc<dmcore::Core<MemPlatform>>, MemPlatform) {
    let (core, platform) = MemPlatform::new_core();
    for i in 0..3 {
        platform.add_disk(&format!("/dev/dmtl{i}"), lower(i), 64);
    }
    (core, platform)
}

/// Runs a request; if accepted, the reply must parse back as a dictionary.
fn exercise(core: &dmcore::Core<MemPlatform>, bytes: &[u8]) {
    if let Ok(reply) = core.control(bytes, ROOT) {
        assert!(parse_dict(&reply.bytes, &Limits::DM).is_ok(), "unparsable reply");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn raw_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (core, _) = MemPlatform::new_core();
        exercise(&core, &bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_requests_never_panic(seed in request(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let (core, _) = small_setup();
        let mut bytes = write_dict(&seed);
        for (at, b) in flips {
            let len = bytes.len();
            bytes[at % len] = b;
        }
        exercise(&core, &bytes);
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_never_panic(requests in proptest::collection::vec(request(), 1..12)) {
        let (core, platform) = small_setup();
        for r in &requests {
            let mut bytes = write_dict(r);
            bytes.push(0);
            exercise(&core, &bytes);
        }
        // Whatever the sequence did, I/O to any minor completes.
        for minor in 0..4 {
            let io = platform.run_io(&core, minor, dmcore::Op::Read, 0, 512, None);
            prop_assert!(io.result().is_some() || platform.deferred(minor) > 0);
        }
    }
}
