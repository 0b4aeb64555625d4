//! Property tests of the plist module: the writer and the parser are inverse on generated
//! values, and no input, however malformed, makes the parser panic.
//!
//! Case counts are fixed here (not taken from PROPTEST_CASES) so that every CI run covers at
//! least 100,000 arbitrary inputs: 60,000 raw byte strings plus 40,000 token soups (and 10,000
//! more under tight limits), and 20,000 mutated golden documents on top.

use std::collections::BTreeMap;
use std::fs;
use std::sync::OnceLock;

use dmcore::plist::{parse, parse_dict, write, write_dict, Dict, Limits, Number, PlistError, Value};
use proptest::prelude::*;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/netbsd-golden");

const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
    <!DOCTYPE plist PUBLIC \"-//Apple Computer//DTD PLIST 1.0//EN\" \
    \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n";

fn goldens() -> &'static [Vec<u8>] {
    static FILES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut paths: Vec<_> = fs::read_dir(GOLDEN)
            .expect("golden folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "xml"))
            .collect();
        paths.sort();
        let files: Vec<Vec<u8>> = paths.iter().map(|p| fs::read(p).expect("read")).collect();
        assert!(!files.is_empty());
        files
    })
}

/// A byte of a key or string: anything but NUL, with the bytes that matter to the format
/// (markup, entities' characters, whitespace) made frequent.
fn text_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => 1u8..=255,
        2 => prop::sample::select(b"<>&;\"' \t\r\nax".to_vec()),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(text_byte(), 0..=max)
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::Signed),
        any::<u64>().prop_map(Number::Unsigned),
        prop::sample::select(vec![
            Number::Signed(i64::MIN),
            Number::Signed(i64::MAX),
            Number::Signed(-1),
            Number::Signed(0),
            Number::Unsigned(0),
            Number::Unsigned(u64::MAX),
            Number::Unsigned(1 << 63),
            Number::Unsigned(i64::MAX as u64),
            Number::Unsigned(u64::from(u32::MAX)),
            Number::Signed(i64::from(i32::MIN)),
        ]),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        bytes(40).prop_map(Value::String),
        number().prop_map(Value::Number),
        any::<bool>().prop_map(Value::Bool),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(Value::Data),
    ]
}

fn to_dict(map: BTreeMap<Vec<u8>, Value>) -> Dict {
    let mut d = Dict::new();
    for (k, v) in map {
        d.insert_raw(k, v);
    }
    d
}

/// Values with containers nested up to four deep.
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(bytes(20), inner, 0..8).prop_map(|m| Value::Dict(to_dict(m))),
        ]
    })
}

fn dict() -> impl Strategy<Value = Dict> {
    prop::collection::btree_map(bytes(20), value(), 0..6).prop_map(to_dict)
}

/// Fragments that drive the parser into its deeper states.
fn token() -> impl Strategy<Value = Vec<u8>> {
    const TOKENS: &[&str] = &[
        "<dict>",
        "</dict>",
        "<key>",
        "</key>",
        "<array>",
        "</array>",
        "<string>",
        "</string>",
        "<integer>",
        "</integer>",
        "<data>",
        "</data>",
        "<true/>",
        "<false/>",
        "<dict/>",
        "<array/>",
        "<string/>",
        "<data/>",
        "<key/>",
        "<integer/>",
        "<true>",
        "<!--",
        "-->",
        "<!-- c -->",
        "&amp;",
        "&lt;",
        "&gt;",
        "&apos;",
        "&quot;",
        "&",
        ";",
        "0x",
        "0X",
        "-",
        "+",
        "0",
        "7",
        "9",
        "f",
        "ff",
        "18446744073709551615",
        "9223372036854775808",
        "a",
        "k",
        " ",
        "\t",
        "\n",
        "\r\n",
        "<",
        ">",
        "/",
        "/>",
        "=",
        "\"",
        "'",
        "AAEC",
        "Aw==",
        "=",
        "</plist>",
        "<plist>",
        "<plist version=\"1.0\">",
        "<?xml version=\"1.0\"?>",
        "<!DOCTYPE plist>",
        "<real>",
        "<![CDATA[",
        "\0",
    ];
    prop_oneof![
        4 => prop::sample::select(TOKENS).prop_map(|t| t.as_bytes().to_vec()),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ]
}

fn soup() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(token(), 0..40), any::<bool>(), any::<bool>()).prop_map(|(tokens, head, tail)| {
        let mut v = Vec::new();
        if head {
            v.extend_from_slice(HEADER.as_bytes());
        }
        for t in tokens {
            v.extend_from_slice(&t);
        }
        if tail {
            v.extend_from_slice(b"</plist>\n");
        }
        v
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (any::<usize>(), prop::sample::select(b"<>/&;=\"x0- \n\0".to_vec()))
            .prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), token()).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Delete { at, len }),
    ]
}

fn apply(doc: &mut Vec<u8>, m: &Mutation) {
    let n = doc.len().max(1);
    match m {
        Mutation::Flip { at, mask } => {
            if let Some(b) = doc.get_mut(at % n) {
                *b ^= mask;
            }
        }
        Mutation::Set { at, byte } => {
            if let Some(b) = doc.get_mut(at % n) {
                *b = *byte;
            }
        }
        Mutation::Insert { at, bytes } => {
            let at = at % (doc.len() + 1);
            doc.splice(at..at, bytes.iter().copied());
        }
        Mutation::Delete { at, len } => {
            let at = at % n;
            let end = (at + len).min(doc.len());
            if at < end {
                doc.drain(at..end);
            }
        }
    }
}

/// Whatever the parser accepts, the writer writes back in a form it reads the same way.
fn check_accepted(text: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(v) = parse(text, &Limits::DM) {
        let again = write(&v);
        prop_assert_eq!(parse(&again, &Limits::DM), Ok(v.clone()));
        prop_assert_eq!(write(&v), again);
        match &v {
            Value::Dict(d) => prop_assert_eq!(parse_dict(text, &Limits::DM), Ok(d.clone())),
            _ => prop_assert_eq!(parse_dict(text, &Limits::DM), Err(PlistError::NotADict)),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn write_then_parse_is_identity(v in value()) {
        let text = write(&v);
        prop_assert!(!text.contains(&0));
        prop_assert!(text.starts_with(HEADER.as_bytes()));
        prop_assert!(text.ends_with(b"</plist>\n"));
        prop_assert_eq!(parse(&text, &Limits::DM), Ok(v));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn write_dict_then_parse_dict_is_identity(d in dict()) {
        let text = write_dict(&d);
        prop_assert_eq!(&text, &write(&Value::Dict(d.clone())));
        // The transport's NUL, and junk after it, change nothing.
        let mut framed = text.clone();
        framed.push(0);
        framed.extend_from_slice(b"<junk");
        prop_assert_eq!(parse_dict(&framed, &Limits::DM), Ok(d.clone()));
        prop_assert_eq!(parse_dict(&text, &Limits::DM), Ok(d));
    }
}

/// Arbitrary bytes, generated eight at a time (generating them one by one costs most of the
/// test's time in a debug build); shrinking still works word by word.
fn raw_bytes() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(any::<u64>(), 0..40), 0usize..8).prop_map(|(words, cut)| {
        let mut v: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        v.truncate(v.len().saturating_sub(cut));
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(text in raw_bytes()) {
        let _ = parse_dict(&text, &Limits::DM);
        check_accepted(&text)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40_000, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(text in soup()) {
        let _ = parse_dict(&text, &Limits::DM);
        check_accepted(&text)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_golden_documents_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let files = goldens();
        let mut doc = pick.get(files).clone();
        for m in &mutations {
            apply(&mut doc, m);
        }
        let _ = parse_dict(&doc, &Limits::DM);
        check_accepted(&doc)?;
    }
}

/// Small limits make the limit checks reachable from small generated inputs.
#[test]
fn tight_limits_never_panic_on_soup() {
    let limits = Limits { max_len: 200, max_depth: 2, max_entries: 2, max_string: 3, max_key: 2 };
    let mut runner =
        proptest::test_runner::TestRunner::new(ProptestConfig { cases: 10_000, ..ProptestConfig::default() });
    let result = runner.run(&soup(), |text| {
        if let Ok(v) = parse(&text, &limits) {
            // Anything accepted under tight limits is accepted under the normal ones too.
            prop_assert_eq!(parse(&text, &Limits::DM), Ok(v));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
