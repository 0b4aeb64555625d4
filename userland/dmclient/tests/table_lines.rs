//! Table lines: dmsetup's syntax, the typed targets, exact round trips, and where parse errors
//! point.

use dmclient::{parse_table, BlockDev, DevNum, ParseReason, TableLine, TableParseError, TargetSpec};
use proptest::prelude::*;

fn parse(s: &str) -> Result<TableLine, TableParseError> {
    s.parse()
}

#[test]
fn typed_targets() {
    assert_eq!(
        parse("0 4096 linear /dev/vda 0").unwrap(),
        TableLine::new(0, 4096, TargetSpec::Linear { dev: BlockDev::Path("/dev/vda".into()), offset: 0 })
    );
    assert_eq!(
        parse("\t 4096  4096\tlinear 254:16   1024  ").unwrap(),
        TableLine::new(4096, 4096, TargetSpec::Linear { dev: BlockDev::Number(DevNum::new(254, 16)), offset: 1024 })
    );
    assert_eq!(
        parse("0 16384 striped 2 128 /dev/vda 0 254:16 8").unwrap().target,
        TargetSpec::Striped {
            chunk: 128,
            stripes: vec![(BlockDev::Path("/dev/vda".into()), 0), (BlockDev::Number(DevNum::new(254, 16)), 8)],
        }
    );
    assert_eq!(parse("0 8192 zero").unwrap().target, TargetSpec::Zero);
    assert_eq!(parse("0 8192 error").unwrap().target, TargetSpec::Error);
}

#[test]
fn lines_of_the_wrong_shape_are_left_to_the_driver() {
    let other = |ty: &str, params: &str| TargetSpec::Other { target_type: ty.into(), params: params.into() };
    assert_eq!(parse("0 10 linear /dev/vda").unwrap().target, other("linear", "/dev/vda"));
    assert_eq!(parse("0 10 linear /dev/vda x").unwrap().target, other("linear", "/dev/vda x"));
    assert_eq!(parse("0 10 striped 3 128 /dev/vda 0").unwrap().target, other("striped", "3 128 /dev/vda 0"));
    assert_eq!(parse("0 10 zero 1").unwrap().target, other("zero", "1"));
    assert_eq!(
        parse("0 8192 delay /dev/vda 0 50  /dev/vdb 0 100").unwrap().target,
        other("delay", "/dev/vda 0 50  /dev/vdb 0 100")
    );
}

#[test]
fn display_is_dmsetups() {
    assert_eq!(parse("0 8192 zero").unwrap().to_string(), "0 8192 zero ");
    assert_eq!(parse("0  4096 linear  254:0   0").unwrap().to_string(), "0 4096 linear 254:0 0");
    assert_eq!(
        parse("0 16384 striped 2 128 /dev/vda 0 /dev/vdb 0").unwrap().to_string(),
        "0 16384 striped 2 128 /dev/vda 0 /dev/vdb 0"
    );
}

#[test]
fn comments_and_blank_lines() {
    let text = "# a table\n\n0 4096 linear /dev/vda 0 # first\n   \n4096 4096 linear /dev/vdb 1024\r\n#end";
    let lines = parse_table(text).unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].to_string(), "0 4096 linear /dev/vda 0");
    assert_eq!(lines[1].to_string(), "4096 4096 linear /dev/vdb 1024");
    assert_eq!(parse_table("").unwrap(), vec![]);
    assert_eq!(parse_table("0 10 zero#comment").unwrap()[0].target, TargetSpec::Zero);
}

#[test]
fn errors_name_the_line_and_column() {
    let e = parse_table("0 8 zero\n0 abc linear /dev/vda 0\n").unwrap_err();
    assert_eq!((e.line, e.column), (2, 3));
    assert_eq!(e.reason, ParseReason::BadLength("abc".into()));
    assert_eq!(
        e.to_string(),
        "line 2, column 3: expected the length in sectors (a decimal number), found \"abc\": \"0 abc linear /dev/vda 0\""
    );
    let e = parse("  -1 10 zero").unwrap_err();
    assert_eq!((e.line, e.column, e.reason), (1, 3, ParseReason::BadStart("-1".into())));
    let e = parse("0 10").unwrap_err();
    assert_eq!((e.column, e.reason), (5, ParseReason::MissingType));
    let e = parse("0").unwrap_err();
    assert_eq!((e.column, e.reason), (2, ParseReason::MissingLength));
    let e = parse("0 99999999999999999999 zero").unwrap_err();
    assert_eq!((e.column, e.reason), (3, ParseReason::BadLength("99999999999999999999".into())));
    let e = parse("0 10 #zero").unwrap_err();
    assert_eq!(e.reason, ParseReason::MissingType);
    assert_eq!(parse("# only a comment").unwrap_err().reason, ParseReason::Empty);
    assert_eq!(parse("0 8 zero\n0 8 zero").unwrap_err().reason, ParseReason::LineBreak);
    // Columns count characters, not bytes.
    let e = parse("é 10 zero").unwrap_err();
    assert_eq!(e.column, 1);
    let e = parse("0 é zero").unwrap_err();
    assert_eq!(e.column, 3);
}

fn block_dev() -> impl Strategy<Value = BlockDev> {
    prop_oneof![
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| BlockDev::Number(DevNum::new(a, b))),
        "/dev/[a-z0-9/_.-]{1,16}".prop_map(BlockDev::Path),
        "[a-z][a-z0-9]{0,8}(:[a-z0-9]{1,4})?".prop_map(BlockDev::Path),
    ]
}

/// Parameters in canonical form: tokens without `#`, separated by runs of blanks.
fn params() -> impl Strategy<Value = String> {
    prop::collection::vec(
        ("[A-Za-z0-9:/._=,+-]{1,12}", prop_oneof![Just(" "), Just("  "), Just("\t"), Just(" \t ")]),
        0..8,
    )
    .prop_map(|tokens| {
        let mut s = String::new();
        for (i, (token, sep)) in tokens.iter().enumerate() {
            if i > 0 {
                s.push_str(sep);
            }
            s.push_str(token);
        }
        s
    })
}

fn target() -> impl Strategy<Value = TargetSpec> {
    prop_oneof![
        (block_dev(), any::<u64>()).prop_map(|(dev, offset)| TargetSpec::Linear { dev, offset }),
        (any::<u64>(), prop::collection::vec((block_dev(), any::<u64>()), 0..6))
            .prop_map(|(chunk, stripes)| TargetSpec::Striped { chunk, stripes }),
        Just(TargetSpec::Zero),
        Just(TargetSpec::Error),
        // Any type and parameters, classified as the parser would (a well-formed "linear"
        // line becomes Linear).
        (prop_oneof!["[a-z][a-z0-9_-]{0,14}", Just("linear".to_string()), Just("striped".to_string())], params())
            .prop_map(|(ty, params)| TargetSpec::from_parts(&ty, &params)),
    ]
}

fn table_line() -> impl Strategy<Value = TableLine> {
    (any::<u64>(), any::<u64>(), target()).prop_map(|(start, length, target)| TableLine { start, length, target })
}

proptest! {
    /// parse(display(x)) == x.
    #[test]
    fn one_line_round_trips(line in table_line()) {
        let text = line.to_string();
        prop_assert_eq!(parse(&text), Ok(line));
    }

    /// A table of several lines, with comments and blank lines between, reads back the same.
    #[test]
    fn tables_round_trip(lines in prop::collection::vec(table_line(), 0..8), noise in prop::collection::vec(0u8..4, 8)) {
        let mut text = String::new();
        for (line, n) in lines.iter().zip(noise.iter().cycle()) {
            match n {
                0 => text.push_str("# comment\n"),
                1 => text.push_str("\n  \t\n"),
                2 => text.push_str("  "),
                _ => {}
            }
            text.push_str(&line.to_string());
            if *n == 3 {
                text.push_str(" # trailing comment");
            }
            text.push('\n');
        }
        prop_assert_eq!(parse_table(&text), Ok(lines));
    }

    /// Whatever the input, the parser does not panic, and what it accepts prints to a line
    /// that reads back the same.
    #[test]
    fn parsing_is_total_and_canonical(text in "[ -~\t]{0,60}") {
        if let Ok(line) = parse(&text) {
            prop_assert_eq!(parse(&line.to_string()), Ok(line));
        }
    }
}
