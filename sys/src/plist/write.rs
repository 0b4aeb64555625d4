//! The writer: produces the exact bytes proplib externalizes (reference §4.1).
//!
//! Non-recursive: nested containers are walked with an explicit stack, so a deep value built in
//! code cannot exhaust a kernel stack here.

use alloc::vec::Vec;
use core::slice;

use super::base64;
use super::value::{Dict, DictIter, Number, Value};

/// The three header lines every externalized plist starts with.
const HEADER: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<!DOCTYPE plist PUBLIC \"-//Apple Computer//DTD PLIST 1.0//EN\" \
\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
<plist version=\"1.0\">\n";

const FOOTER: &[u8] = b"</plist>\n";

/// Externalizes `root` as a whole document: header, the object at depth 0, `</plist>\n`.
/// No NUL is appended (the transport adds it and counts it in `pref_len`).
pub fn write(root: &Value) -> Vec<u8> {
    document(Node::Value(root))
}

/// Externalizes a dictionary as a whole document (see [`write`]).
pub fn write_dict(d: &Dict) -> Vec<u8> {
    document(Node::Dict(d))
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Value(&'a Value),
    Dict(&'a Dict),
}

/// An open container: the rest of its entries, and its own depth.
enum Frame<'a> {
    Dict(DictIter<'a>, usize),
    Array(slice::Iter<'a, Value>, usize),
}

fn document(root: Node<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(HEADER);
    let mut stack: Vec<Frame<'_>> = Vec::new();
    open(&mut out, root, 0, &mut stack);
    loop {
        let next = match stack.last_mut() {
            None => break,
            Some(Frame::Dict(entries, depth)) => {
                let depth = *depth;
                match entries.next() {
                    Some((key, value)) => {
                        let inner = depth.saturating_add(1);
                        indent(&mut out, inner);
                        out.extend_from_slice(b"<key>");
                        escape_into(&mut out, key);
                        out.extend_from_slice(b"</key>\n");
                        Some((Node::Value(value), inner))
                    }
                    None => {
                        indent(&mut out, depth);
                        out.extend_from_slice(b"</dict>\n");
                        None
                    }
                }
            }
            Some(Frame::Array(items, depth)) => {
                let depth = *depth;
                match items.next() {
                    Some(value) => Some((Node::Value(value), depth.saturating_add(1))),
                    None => {
                        indent(&mut out, depth);
                        out.extend_from_slice(b"</array>\n");
                        None
                    }
                }
            }
        };
        match next {
            Some((node, depth)) => open(&mut out, node, depth, &mut stack),
            None => {
                stack.pop();
            }
        }
    }
    out.extend_from_slice(FOOTER);
    out
}

/// Writes a scalar or an empty container completely, or the start tag of a non-empty container
/// (pushing a frame for its entries).
fn open<'a>(out: &mut Vec<u8>, node: Node<'a>, depth: usize, stack: &mut Vec<Frame<'a>>) {
    indent(out, depth);
    let value = match node {
        Node::Dict(d) => return open_dict(out, d, depth, stack),
        Node::Value(v) => v,
    };
    match value {
        Value::Dict(d) => open_dict(out, d, depth, stack),
        Value::Array(items) if items.is_empty() => out.extend_from_slice(b"<array/>\n"),
        Value::Array(items) => {
            out.extend_from_slice(b"<array>\n");
            stack.push(Frame::Array(items.iter(), depth));
        }
        Value::String(s) if s.is_empty() => out.extend_from_slice(b"<string/>\n"),
        Value::String(s) => {
            out.extend_from_slice(b"<string>");
            escape_into(out, s);
            out.extend_from_slice(b"</string>\n");
        }
        Value::Number(n) => {
            out.extend_from_slice(b"<integer>");
            number_into(out, *n);
            out.extend_from_slice(b"</integer>\n");
        }
        Value::Bool(true) => out.extend_from_slice(b"<true/>\n"),
        Value::Bool(false) => out.extend_from_slice(b"<false/>\n"),
        Value::Data(d) if d.is_empty() => out.extend_from_slice(b"<data/>\n"),
        Value::Data(d) => {
            out.extend_from_slice(b"<data>");
            base64::encode_into(d, out);
            out.extend_from_slice(b"</data>\n");
        }
    }
}

fn open_dict<'a>(out: &mut Vec<u8>, d: &'a Dict, depth: usize, stack: &mut Vec<Frame<'a>>) {
    if d.is_empty() {
        out.extend_from_slice(b"<dict/>\n");
    } else {
        out.extend_from_slice(b"<dict>\n");
        stack.push(Frame::Dict(d.iter(), depth));
    }
}

fn indent(out: &mut Vec<u8>, depth: usize) {
    out.extend(core::iter::repeat_n(b'\t', depth));
}

/// Keys and strings: only `<`, `>` and `&` are escaped; every other byte is written raw.
fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut rest = s;
    while let Some(i) = rest.iter().position(|&c| matches!(c, b'<' | b'>' | b'&')) {
        let (plain, tail) = rest.split_at(i);
        out.extend_from_slice(plain);
        let Some((&c, after)) = tail.split_first() else {
            break;
        };
        out.extend_from_slice(match c {
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            _ => b"&amp;",
        });
        rest = after;
    }
    out.extend_from_slice(rest);
}

/// Unsigned numbers in lower-case hex with `0x`; signed numbers in decimal.
fn number_into(out: &mut Vec<u8>, n: Number) {
    match n {
        Number::Unsigned(u) => {
            out.extend_from_slice(b"0x");
            digits_into(out, u, 16);
        }
        Number::Signed(s) => {
            if s < 0 {
                out.push(b'-');
            }
            digits_into(out, s.unsigned_abs(), 10);
        }
    }
}

fn digits_into(out: &mut Vec<u8>, mut v: u64, base: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 20]; // u64::MAX has 20 decimal digits, 16 hex digits
    let mut n = buf.len();
    loop {
        let d = v.checked_rem(base).and_then(|d| usize::try_from(d).ok());
        v = v.checked_div(base).unwrap_or(0);
        n = n.saturating_sub(1);
        if let (Some(slot), Some(&digit)) = (buf.get_mut(n), d.and_then(|d| DIGITS.get(d))) {
            *slot = digit;
        }
        if v == 0 || n == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(n..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    fn doc(body: &str) -> Vec<u8> {
        let mut v = HEADER.to_vec();
        v.extend_from_slice(body.as_bytes());
        v.extend_from_slice(FOOTER);
        v
    }

    fn show(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn header_is_exact() {
        let out = write_dict(&Dict::new());
        let expected = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
            <!DOCTYPE plist PUBLIC \"-//Apple Computer//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
            <plist version=\"1.0\">\n\
            <dict/>\n\
            </plist>\n";
        assert_eq!(show(&out), expected);
        assert_ne!(out.last(), Some(&0));
    }

    #[test]
    fn empty_forms() {
        let mut d = Dict::new();
        d.insert("a", Value::Array(vec![]));
        d.insert("d", Value::Dict(Dict::new()));
        d.insert("s", Value::String(vec![]));
        d.insert("x", Value::Data(vec![]));
        d.insert("t", Value::Bool(true));
        d.insert("f", Value::Bool(false));
        assert_eq!(
            show(&write_dict(&d)),
            show(&doc("<dict>\n\t<key>a</key>\n\t<array/>\n\t<key>d</key>\n\t<dict/>\n\
                 \t<key>f</key>\n\t<false/>\n\t<key>s</key>\n\t<string/>\n\
                 \t<key>t</key>\n\t<true/>\n\t<key>x</key>\n\t<data/>\n</dict>\n"))
        );
    }

    #[test]
    fn numbers_hex_unsigned_decimal_signed() {
        let cases: [(Number, &str); 10] = [
            (Number::Unsigned(0), "0x0"),
            (Number::Unsigned(0x5000), "0x5000"),
            (Number::Unsigned(0xabcdef), "0xabcdef"),
            (Number::Unsigned(u64::MAX), "0xffffffffffffffff"),
            (Number::Signed(0), "0"),
            (Number::Signed(-1), "-1"),
            (Number::Signed(384), "384"),
            (Number::Signed(50432), "50432"),
            (Number::Signed(i64::MAX), "9223372036854775807"),
            (Number::Signed(i64::MIN), "-9223372036854775808"),
        ];
        for (n, text) in cases {
            let out = write(&Value::Number(n));
            let expected = doc(&alloc::format!("<integer>{text}</integer>\n"));
            assert_eq!(show(&out), show(&expected));
        }
    }

    #[test]
    fn escapes_only_lt_gt_amp() {
        let mut d = Dict::new();
        d.insert_raw(b"k<&>\"'".to_vec(), Value::string(b"a<b>c&d \"q\" 'a' \t\r\n\x01\xff"));
        let out = write_dict(&d);
        let mut expected = b"<dict>\n\t<key>k&lt;&amp;&gt;\"'</key>\n\t<string>a&lt;b&gt;c&amp;d \"q\" 'a' \t\r\n\x01\xff</string>\n</dict>\n".to_vec();
        let mut full = HEADER.to_vec();
        full.append(&mut expected);
        full.extend_from_slice(FOOTER);
        assert_eq!(out, full);
    }

    #[test]
    fn nesting_uses_tabs_and_sorted_keys() {
        let mut entry = Dict::new();
        entry.set_string("type", b"linear");
        entry.set_u64("start", 0);
        entry.set_u64("length", 0x1000);
        entry.set_string("params", b"/dev/dmtl0 2048");
        entry.set_i32("status", 1);
        let mut d = Dict::new();
        d.set_string("name", b"dmt0");
        d.insert("cmd_data", Value::Array(vec![Value::Dict(entry)]));
        d.insert("version", Value::Array(vec![Value::unsigned(4), Value::unsigned(16), Value::unsigned(0)]));
        let expected = doc("<dict>\n\
            \t<key>cmd_data</key>\n\
            \t<array>\n\
            \t\t<dict>\n\
            \t\t\t<key>length</key>\n\
            \t\t\t<integer>0x1000</integer>\n\
            \t\t\t<key>params</key>\n\
            \t\t\t<string>/dev/dmtl0 2048</string>\n\
            \t\t\t<key>start</key>\n\
            \t\t\t<integer>0x0</integer>\n\
            \t\t\t<key>status</key>\n\
            \t\t\t<integer>1</integer>\n\
            \t\t\t<key>type</key>\n\
            \t\t\t<string>linear</string>\n\
            \t\t</dict>\n\
            \t</array>\n\
            \t<key>name</key>\n\
            \t<string>dmt0</string>\n\
            \t<key>version</key>\n\
            \t<array>\n\
            \t\t<integer>0x4</integer>\n\
            \t\t<integer>0x10</integer>\n\
            \t\t<integer>0x0</integer>\n\
            \t</array>\n\
            </dict>\n");
        assert_eq!(show(&write_dict(&d)), show(&expected));
    }

    #[test]
    fn data_is_base64_on_one_line() {
        let v = Value::Data((0..=255u8).collect());
        let out = write(&v);
        let text = show(&out);
        let line = text.lines().nth(3).unwrap_or_default();
        assert!(line.starts_with("<data>AAECAwQF"));
        assert!(line.ends_with("+/w==</data>"));
        assert_eq!(text.lines().count(), 5);
    }

    #[test]
    fn non_dict_roots_and_deep_nesting() {
        assert_eq!(show(&write(&Value::Bool(true))), show(&doc("<true/>\n")));
        assert_eq!(show(&write(&Value::string(b"x"))), show(&doc("<string>x</string>\n")));
        // Deeper than any parse limit: the writer does not recurse, so this is fine.
        let mut v = Value::Array(vec![]);
        for _ in 0..2_000 {
            v = Value::Array(vec![v]);
        }
        let out = write(&v);
        assert!(out.ends_with(b"</array>\n</plist>\n"));
        // Dropping a value this deep recurses in the standard library's destructors; unwrap
        // it iteratively instead.
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap_or(Value::Bool(false));
        }
    }
}
