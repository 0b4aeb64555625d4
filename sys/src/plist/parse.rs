//! A bounded, non-recursive parser for proplib's externalized XML.
//!
//! Everything here runs on bytes user space controls, so it never panics, keeps its own explicit
//! stack (no recursion at all), and checks every limit before it allocates for the thing being
//! limited. See the module documentation in `mod.rs` for the accepted grammar and the decisions
//! taken where proplib's behaviour is unverified.

use alloc::vec::Vec;
use core::fmt;

use super::base64;
use super::value::{Dict, Number, Value};

/// Bounds applied while parsing. Every bound is checked before the bounded thing is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The document, counted with one terminating NUL, must be shorter than this
    /// (`len + 1 >= max_len` fails), as the kernel's copy-in compares `pref_len`.
    pub max_len: usize,
    /// The most containers (dictionaries and arrays, empty ones included) nested inside one
    /// another; the root container is at depth 1.
    pub max_depth: usize,
    /// The most elements in one array, or keys in one dictionary.
    pub max_entries: usize,
    /// The longest string (after entity decoding) or data object (after base64 decoding), in
    /// bytes.
    pub max_string: usize,
    /// The longest dictionary key (after entity decoding), in bytes.
    pub max_key: usize,
}

impl Limits {
    /// The limits dm applies to a control request (reference §1.4, §4.6):
    /// the modern kernel's 128 KiB copy-in limit, nesting 8 (dm needs 3: top dictionary →
    /// `cmd_data` array → table entry), 8192 entries per container, 64 KiB strings, and
    /// proplib's 128-byte key limit (`PDK_MAXKEY`).
    pub const DM: Limits =
        Limits { max_len: 131_072, max_depth: 8, max_entries: 8192, max_string: 65_536, max_key: 128 };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DM
    }
}

/// Why a document was refused. Every variant maps to `EIO` at copy-in (reference §1.4);
/// the distinction is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlistError {
    /// The text with its NUL is not shorter than `Limits::max_len`.
    TooLarge,
    /// Containers nested deeper than `Limits::max_depth`.
    TooDeep,
    /// A container with more than `Limits::max_entries` elements.
    TooManyEntries,
    /// A string or data object longer than `Limits::max_string`.
    StringTooLong,
    /// A dictionary key longer than `Limits::max_key`.
    KeyTooLong,
    /// The same key twice in one dictionary.
    DuplicateKey,
    /// `parse_dict`: the root object is not a dictionary.
    NotADict,
    /// An `<integer>` that is empty, malformed, or out of the 64-bit range.
    BadNumber,
    /// An `&...;` other than `&amp;` `&lt;` `&gt;` `&apos;` `&quot;`, or a bare `&`.
    BadEntity,
    /// A `<data>` object that is not valid base64.
    BadData,
    /// Anything else that is not the accepted grammar; `offset` is the byte where it was found.
    Syntax {
        /// Byte offset into the text.
        offset: usize,
    },
}

impl fmt::Display for PlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlistError::TooLarge => f.write_str("plist: document exceeds the size limit"),
            PlistError::TooDeep => f.write_str("plist: containers nested too deeply"),
            PlistError::TooManyEntries => f.write_str("plist: too many entries in one container"),
            PlistError::StringTooLong => f.write_str("plist: string or data object too long"),
            PlistError::KeyTooLong => f.write_str("plist: dictionary key too long"),
            PlistError::DuplicateKey => f.write_str("plist: duplicate key in a dictionary"),
            PlistError::NotADict => f.write_str("plist: root object is not a dictionary"),
            PlistError::BadNumber => f.write_str("plist: malformed or out-of-range integer"),
            PlistError::BadEntity => f.write_str("plist: unknown or malformed entity"),
            PlistError::BadData => f.write_str("plist: malformed base64 in data object"),
            PlistError::Syntax { offset } => {
                write!(f, "plist: syntax error at byte {offset}")
            }
        }
    }
}

impl core::error::Error for PlistError {}

/// Parses a document whose root object must be a dictionary (what copy-in accepts).
pub fn parse_dict(text: &[u8], limits: &Limits) -> Result<Dict, PlistError> {
    match parse(text, limits)? {
        Value::Dict(d) => Ok(d),
        _ => Err(PlistError::NotADict),
    }
}

/// Parses a document with any root object. The document ends at the first NUL, if any.
pub fn parse(text: &[u8], limits: &Limits) -> Result<Value, PlistError> {
    // Only the first max_len bytes can matter: without a NUL among them the text is too large
    // anyway, so a huge buffer is never scanned to its end.
    let window = text.get(..limits.max_len).unwrap_or(text);
    let doc = match find_byte(window, 0) {
        Some(nul) => window.get(..nul).unwrap_or_default(),
        None => window,
    };
    // The kernel compares pref_len, the length including the NUL, against its limit.
    if doc.len().saturating_add(1) >= limits.max_len {
        return Err(PlistError::TooLarge);
    }
    let mut cur = Cursor { text: doc, pos: 0 };
    prolog(&mut cur)?;
    let root = body(&mut cur, limits)?;
    match read_tag(&mut cur)? {
        (Tag::Close(Elem::Plist), _) => Ok(root), // anything after </plist> is ignored
        (_, at) => Err(syntax(at)),
    }
}

fn syntax(offset: usize) -> PlistError {
    PlistError::Syntax { offset }
}

/// XML whitespace plus what C's `isspace` adds (vertical tab, form feed).
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':')
}

struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn advance(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.text.len());
    }

    fn starts_with(&self, lit: &[u8]) -> bool {
        self.rest().starts_with(lit)
    }

    fn eat_byte(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.advance(1);
            true
        } else {
            false
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.starts_with(lit) {
            self.advance(lit.len());
            true
        } else {
            false
        }
    }

    /// Skips whitespace; returns how many bytes were skipped.
    fn skip_space(&mut self) -> usize {
        let n = self.rest().iter().take_while(|&&c| is_space(c)).count();
        self.advance(n);
        n
    }

    /// Moves past the next occurrence of `pat`; fails (at `start`) if there is none.
    fn skip_past(&mut self, pat: &[u8], start: usize) -> Result<(), PlistError> {
        match find(self.rest(), pat) {
            Some(i) => {
                self.advance(i.saturating_add(pat.len()));
                Ok(())
            }
            None => Err(syntax(start)),
        }
    }

    fn name(&mut self) -> &'a [u8] {
        let rest = self.rest();
        let n = rest.iter().take_while(|&&c| is_name_byte(c)).count();
        self.advance(n);
        rest.get(..n).unwrap_or_default()
    }

    /// The text up to (not including) the next `<`.
    fn text_to_lt(&mut self) -> Result<&'a [u8], PlistError> {
        let rest = self.rest();
        match find_byte(rest, b'<') {
            Some(n) => {
                self.advance(n);
                Ok(rest.get(..n).unwrap_or_default())
            }
            None => Err(syntax(self.text.len())),
        }
    }

    /// Skips a `<!-- ... -->` comment at the cursor, if there is one.
    fn skip_comment(&mut self) -> Result<bool, PlistError> {
        let start = self.pos;
        if self.rest().get(1) == Some(&b'!') && self.eat(b"<!--") {
            self.skip_past(b"-->", start)?;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// The index of the first `needle` in `hay`. Scans a word at a time: this search (for the NUL
/// that ends the document and for the `<` that ends every text) is the parser's hot loop.
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = LO.wrapping_mul(u64::from(needle));
    let mut chunks = hay.chunks_exact(8);
    let mut base: usize = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word) ^ pattern;
        // Non-zero exactly when some byte of x is zero, i.e. some byte equals `needle`.
        if x.wrapping_sub(LO) & !x & HI != 0 {
            return chunk.iter().position(|&c| c == needle).map(|i| base.saturating_add(i));
        }
        base = base.saturating_add(8);
    }
    chunks.remainder().iter().position(|&c| c == needle).map(|i| base.saturating_add(i))
}

fn find(hay: &[u8], pat: &[u8]) -> Option<usize> {
    if pat.is_empty() {
        return Some(0);
    }
    hay.windows(pat.len()).position(|w| w == pat)
}

/// Skips what may precede `<plist`, then consumes the `<plist ...>` start tag.
fn prolog(cur: &mut Cursor<'_>) -> Result<(), PlistError> {
    loop {
        cur.skip_space();
        let start = cur.pos;
        if cur.eat(b"<?xml") {
            cur.skip_past(b"?>", start)?;
        } else if cur.skip_comment()? {
        } else if cur.eat(b"<!DOCTYPE") {
            if cur.skip_space() == 0 || !cur.eat(b"plist") {
                return Err(syntax(start));
            }
            match cur.peek() {
                Some(c) if is_space(c) || c == b'>' => {}
                _ => return Err(syntax(start)),
            }
            cur.skip_past(b">", start)?;
        } else if cur.eat(b"<plist") {
            return plist_attributes(cur);
        } else {
            return Err(syntax(start));
        }
    }
}

/// After `<plist`: at most one `version` attribute, then `>`. `<plist/>` fails.
fn plist_attributes(cur: &mut Cursor<'_>) -> Result<(), PlistError> {
    let mut seen_version = false;
    loop {
        let spaced = cur.skip_space() > 0;
        let at = cur.pos;
        if cur.eat_byte(b'>') {
            return Ok(());
        }
        if !spaced || seen_version || cur.name() != b"version" {
            return Err(syntax(at));
        }
        cur.skip_space();
        if !cur.eat_byte(b'=') {
            return Err(syntax(cur.pos));
        }
        cur.skip_space();
        let quote = match cur.peek() {
            Some(q @ (b'"' | b'\'')) => q,
            _ => return Err(syntax(cur.pos)),
        };
        cur.advance(1);
        let value_start = cur.pos;
        let len = match cur.rest().iter().position(|&c| c == quote || c == b'<') {
            Some(n) if cur.rest().get(n) == Some(&quote) => n,
            _ => return Err(syntax(value_start)),
        };
        cur.advance(len.saturating_add(1));
        seen_version = true;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    Plist,
    Dict,
    Key,
    Array,
    String,
    Integer,
    True,
    False,
    Data,
}

impl Elem {
    fn from_name(name: &[u8]) -> Option<Elem> {
        Some(match name {
            b"plist" => Elem::Plist,
            b"dict" => Elem::Dict,
            b"key" => Elem::Key,
            b"array" => Elem::Array,
            b"string" => Elem::String,
            b"integer" => Elem::Integer,
            b"true" => Elem::True,
            b"false" => Elem::False,
            b"data" => Elem::Data,
            _ => return None,
        })
    }

    fn name(self) -> &'static [u8] {
        match self {
            Elem::Plist => b"plist",
            Elem::Dict => b"dict",
            Elem::Key => b"key",
            Elem::Array => b"array",
            Elem::String => b"string",
            Elem::Integer => b"integer",
            Elem::True => b"true",
            Elem::False => b"false",
            Elem::Data => b"data",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Tag {
    Open { elem: Elem, empty: bool },
    Close(Elem),
}

/// Skips whitespace and comments, then reads one start, empty-element or end tag, and returns it
/// with the offset of its `<`. Only the known element names are accepted, and no attributes
/// (`<plist>` is handled by [`prolog`]).
fn read_tag(cur: &mut Cursor<'_>) -> Result<(Tag, usize), PlistError> {
    loop {
        cur.skip_space();
        if !cur.skip_comment()? {
            break;
        }
    }
    let start = cur.pos;
    if !cur.eat_byte(b'<') {
        return Err(syntax(start));
    }
    let closing = cur.eat_byte(b'/');
    let elem = Elem::from_name(cur.name()).ok_or(syntax(start))?;
    cur.skip_space();
    if closing {
        if cur.eat_byte(b'>') {
            return Ok((Tag::Close(elem), start));
        }
    } else if cur.eat_byte(b'>') {
        return Ok((Tag::Open { elem, empty: false }, start));
    } else if cur.rest().get(1) == Some(&b'>') && cur.eat_byte(b'/') {
        cur.advance(1);
        return Ok((Tag::Open { elem, empty: true }, start));
    }
    Err(syntax(cur.pos))
}

/// Requires `</name>` (optionally with whitespace before `>`) exactly at the cursor.
fn expect_close(cur: &mut Cursor<'_>, elem: Elem) -> Result<(), PlistError> {
    let start = cur.pos;
    if cur.eat_byte(b'<') && cur.eat_byte(b'/') && cur.name() == elem.name() {
        cur.skip_space();
        if cur.eat_byte(b'>') {
            return Ok(());
        }
    }
    Err(syntax(start))
}

/// Decodes the five predefined entities in `raw`. The decoded length is computed, and checked
/// against `limit`, before anything is allocated.
fn decode_text(raw: &[u8], limit: usize, too_long: PlistError) -> Result<Vec<u8>, PlistError> {
    let mut len: usize = 0;
    let mut i: usize = 0;
    while let Some(rest) = raw.get(i..) {
        let Some(amp) = find_byte(rest, b'&') else {
            len = len.saturating_add(rest.len());
            break;
        };
        let (_, consumed) = entity(rest.get(amp..).unwrap_or_default())?;
        len = len.saturating_add(amp).saturating_add(1);
        i = i.saturating_add(amp).saturating_add(consumed);
    }
    if len > limit {
        return Err(too_long);
    }
    let mut out = Vec::with_capacity(len);
    let mut i: usize = 0;
    while let Some(rest) = raw.get(i..) {
        let Some(amp) = find_byte(rest, b'&') else {
            out.extend_from_slice(rest);
            break;
        };
        out.extend_from_slice(rest.get(..amp).unwrap_or_default());
        let (byte, consumed) = entity(rest.get(amp..).unwrap_or_default())?;
        out.push(byte);
        i = i.saturating_add(amp).saturating_add(consumed);
    }
    Ok(out)
}

/// The entity at the start of `s` (which begins with `&`): its byte and its length.
fn entity(s: &[u8]) -> Result<(u8, usize), PlistError> {
    const ENTITIES: [(&[u8], u8); 5] =
        [(b"&amp;", b'&'), (b"&lt;", b'<'), (b"&gt;", b'>'), (b"&apos;", b'\''), (b"&quot;", b'"')];
    ENTITIES
        .iter()
        .find(|(name, _)| s.starts_with(name))
        .map(|&(name, byte)| (byte, name.len()))
        .ok_or(PlistError::BadEntity)
}

/// `<integer>` text with the rules of C's base-0 `strtoll`/`strtoull` as proplib applies them
/// (reference §4.2): a leading `-` makes a signed number; a leading `0x` an unsigned one (hex);
/// anything else is signed, or unsigned if it does not fit `i64`. After the optional sign, `0x`
/// or `0X` selects hex and a leading `0` octal. Empty text, trailing bytes (whitespace included)
/// and values out of range fail. The 2016 kernel does not detect `ERANGE` (it would clamp);
/// we reject out-of-range values as userland proplib does.
pub(crate) fn parse_integer(t: &[u8]) -> Result<Number, PlistError> {
    match t {
        [b'-', digits @ ..] => {
            let mag = magnitude(digits)?;
            // -(2^63) is the only magnitude above i64::MAX that fits.
            match i64::try_from(mag) {
                Ok(v) => Ok(Number::Signed(v.wrapping_neg())),
                Err(_) if mag == i64::MIN.unsigned_abs() => Ok(Number::Signed(i64::MIN)),
                Err(_) => Err(PlistError::BadNumber),
            }
        }
        [b'0', b'x', hex @ ..] => Ok(Number::Unsigned(digits_in_base(hex, 16)?)),
        _ => {
            let digits = t.strip_prefix(b"+").unwrap_or(t);
            let mag = magnitude(digits)?;
            Ok(match i64::try_from(mag) {
                Ok(v) => Number::Signed(v),
                Err(_) => Number::Unsigned(mag),
            })
        }
    }
}

/// An unsigned magnitude with base-0 prefix detection.
fn magnitude(t: &[u8]) -> Result<u64, PlistError> {
    match t {
        [b'0', b'x' | b'X', hex @ ..] => digits_in_base(hex, 16),
        [b'0', ..] => digits_in_base(t, 8),
        _ => digits_in_base(t, 10),
    }
}

fn digits_in_base(t: &[u8], base: u32) -> Result<u64, PlistError> {
    if t.is_empty() {
        return Err(PlistError::BadNumber);
    }
    t.iter().try_fold(0u64, |acc, &c| {
        let d = char::from(c).to_digit(base).ok_or(PlistError::BadNumber)?;
        acc.checked_mul(u64::from(base)).and_then(|v| v.checked_add(u64::from(d))).ok_or(PlistError::BadNumber)
    })
}

/// A container being filled.
enum Frame {
    Dict { dict: Dict, key: Option<Vec<u8>> },
    Array(Vec<Value>),
}

/// What the parser expects next, from the innermost open container.
#[derive(Clone, Copy)]
enum Expect {
    Root,
    KeyOrDictEnd,
    DictValue,
    ArrayValueOrEnd,
}

/// Parses exactly one object, with an explicit stack bounded by `limits.max_depth`.
fn body(cur: &mut Cursor<'_>, limits: &Limits) -> Result<Value, PlistError> {
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        let expect = match stack.last() {
            None => Expect::Root,
            Some(Frame::Dict { key: None, .. }) => Expect::KeyOrDictEnd,
            Some(Frame::Dict { key: Some(_), .. }) => Expect::DictValue,
            Some(Frame::Array(_)) => Expect::ArrayValueOrEnd,
        };
        let (tag, at) = read_tag(cur)?;
        let value = match (expect, tag) {
            (Expect::KeyOrDictEnd, Tag::Open { elem: Elem::Key, empty }) => {
                read_key(cur, &mut stack, empty, limits)?;
                continue;
            }
            (Expect::KeyOrDictEnd, Tag::Close(Elem::Dict)) => match stack.pop() {
                Some(Frame::Dict { dict, .. }) => Value::Dict(dict),
                _ => return Err(syntax(at)),
            },
            (Expect::ArrayValueOrEnd, Tag::Close(Elem::Array)) => match stack.pop() {
                Some(Frame::Array(items)) => Value::Array(items),
                _ => return Err(syntax(at)),
            },
            (Expect::Root | Expect::DictValue | Expect::ArrayValueOrEnd, Tag::Open { elem, empty }) => {
                if let Some(Frame::Array(items)) = stack.last() {
                    if items.len() >= limits.max_entries {
                        return Err(PlistError::TooManyEntries);
                    }
                }
                match start_value(cur, elem, empty, stack.len(), limits, at)? {
                    Started::Done(v) => v,
                    Started::Open(frame) => {
                        stack.push(frame);
                        continue;
                    }
                }
            }
            // A key without a value, a value without a key, a misplaced or mismatched end tag.
            _ => return Err(syntax(at)),
        };
        match stack.last_mut() {
            None => return Ok(value),
            Some(Frame::Dict { dict, key }) => match key.take() {
                Some(k) => {
                    dict.insert_raw(k, value);
                }
                None => return Err(syntax(at)),
            },
            Some(Frame::Array(items)) => items.push(value),
        }
    }
}

/// Reads a `<key>` (its start tag already consumed) into the innermost dictionary frame.
fn read_key(cur: &mut Cursor<'_>, stack: &mut [Frame], empty: bool, limits: &Limits) -> Result<(), PlistError> {
    let Some(Frame::Dict { dict, key }) = stack.last_mut() else {
        return Err(syntax(cur.pos));
    };
    if dict.len() >= limits.max_entries {
        return Err(PlistError::TooManyEntries);
    }
    let k = if empty {
        Vec::new()
    } else {
        let raw = cur.text_to_lt()?;
        let k = decode_text(raw, limits.max_key, PlistError::KeyTooLong)?;
        expect_close(cur, Elem::Key)?;
        k
    };
    // [decision] proplib's handling of a repeated key is unverified (reference §4.2);
    // dm never sends one, so it is refused rather than silently resolved.
    if dict.contains_raw(&k) {
        return Err(PlistError::DuplicateKey);
    }
    *key = Some(k);
    Ok(())
}

enum Started {
    Done(Value),
    Open(Frame),
}

/// Handles the start tag of a value (already consumed). Scalars and empty containers are read
/// completely; a non-empty container becomes a new frame. `open` is the number of containers
/// already open around it.
fn start_value(
    cur: &mut Cursor<'_>,
    elem: Elem,
    empty: bool,
    open: usize,
    limits: &Limits,
    at: usize,
) -> Result<Started, PlistError> {
    let container = matches!(elem, Elem::Dict | Elem::Array);
    if container && open >= limits.max_depth {
        return Err(PlistError::TooDeep);
    }
    let v = match (elem, empty) {
        (Elem::Dict, true) => Value::Dict(Dict::new()),
        (Elem::Dict, false) => return Ok(Started::Open(Frame::Dict { dict: Dict::new(), key: None })),
        (Elem::Array, true) => Value::Array(Vec::new()),
        (Elem::Array, false) => return Ok(Started::Open(Frame::Array(Vec::new()))),
        (Elem::String, true) => Value::String(Vec::new()),
        (Elem::String, false) => {
            let raw = cur.text_to_lt()?;
            let s = decode_text(raw, limits.max_string, PlistError::StringTooLong)?;
            expect_close(cur, Elem::String)?;
            Value::String(s)
        }
        (Elem::Integer, true) => return Err(PlistError::BadNumber),
        (Elem::Integer, false) => {
            let raw = cur.text_to_lt()?;
            let n = parse_integer(raw)?;
            expect_close(cur, Elem::Integer)?;
            Value::Number(n)
        }
        (Elem::True, true) => Value::Bool(true),
        (Elem::False, true) => Value::Bool(false),
        (Elem::Data, true) => Value::Data(Vec::new()),
        (Elem::Data, false) => {
            let raw = cur.text_to_lt()?;
            let len = base64::decoded_len(raw).ok_or(PlistError::BadData)?;
            if len > limits.max_string {
                return Err(PlistError::StringTooLong);
            }
            let mut d = Vec::with_capacity(len);
            base64::decode_into(raw, &mut d).ok_or(PlistError::BadData)?;
            expect_close(cur, Elem::Data)?;
            Value::Data(d)
        }
        // <true>...</true> and <false>...</false> (only the empty forms are accepted),
        // <key> outside a dictionary's key position, <plist> inside the document.
        _ => return Err(syntax(at)),
    };
    Ok(Started::Done(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plist::write::{write, write_dict};
    use alloc::format;
    use alloc::string::{String, ToString};
    use alloc::vec;

    const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
        <!DOCTYPE plist PUBLIC \"-//Apple Computer//DTD PLIST 1.0//EN\" \
        \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n";

    fn wrap(body: &str) -> Vec<u8> {
        format!("{HEAD}{body}</plist>\n").into_bytes()
    }

    fn p(body: &str) -> Result<Value, PlistError> {
        parse(&wrap(body), &Limits::DM)
    }

    fn pl(body: &str, limits: &Limits) -> Result<Value, PlistError> {
        parse(&wrap(body), limits)
    }

    fn int(text: &str) -> Result<Number, PlistError> {
        match p(&format!("<integer>{text}</integer>"))? {
            Value::Number(n) => Ok(n),
            other => panic!("not a number: {other:?}"),
        }
    }

    fn string(body: &str) -> Result<Vec<u8>, PlistError> {
        match p(body)? {
            Value::String(s) => Ok(s),
            other => panic!("not a string: {other:?}"),
        }
    }

    fn is_syntax(r: Result<Value, PlistError>) -> bool {
        matches!(r, Err(PlistError::Syntax { .. }))
    }

    fn nested(open: &str, close: &str, inner: &str, levels: usize) -> String {
        let mut s = String::new();
        for _ in 0..levels {
            s.push_str(open);
        }
        s.push_str(inner);
        for _ in 0..levels {
            s.push_str(close);
        }
        s
    }

    const VERSION_REQUEST: &str = "<dict>\n\t<key>command</key>\n\t<string>version</string>\n\
        \t<key>flags</key>\n\t<integer>0x0</integer>\n\t<key>version</key>\n\t<array>\n\
        \t\t<integer>4</integer>\n\t\t<integer>16</integer>\n\t\t<integer>0</integer>\n\
        \t</array>\n</dict>\n";

    #[test]
    fn parses_a_request() {
        let d = parse_dict(&wrap(VERSION_REQUEST), &Limits::DM);
        let Ok(d) = d else { panic!("{d:?}") };
        assert_eq!(d.get_str("command"), Some("version"));
        assert_eq!(d.get("flags"), Some(&Value::unsigned(0)));
        let v: Vec<Option<u32>> = d.get_array("version").unwrap_or_default().iter().map(Value::as_u32).collect();
        assert_eq!(v, vec![Some(4), Some(16), Some(0)]);
        assert_eq!(d.get_array("version").and_then(|a| a.first()), Some(&Value::signed(4)));
        assert_eq!(write_dict(&d), wrap(VERSION_REQUEST));
    }

    #[test]
    fn integers_decimal_hex_signed_unsigned() {
        use Number::{Signed as S, Unsigned as U};
        assert_eq!(int("0"), Ok(S(0)));
        assert_eq!(int("384"), Ok(S(384)));
        assert_eq!(int("-1"), Ok(S(-1)));
        assert_eq!(int("-0"), Ok(S(0)));
        assert_eq!(int("+5"), Ok(S(5)));
        assert_eq!(int("0x0"), Ok(U(0)));
        assert_eq!(int("0x5000"), Ok(U(0x5000)));
        assert_eq!(int("0xABCdef"), Ok(U(0xabcdef)));
        // Only a lower-case "0x" at the very start selects the unsigned path; otherwise
        // strtoll's base-0 prefix detection applies and the number stays signed.
        assert_eq!(int("0X10"), Ok(S(16)));
        assert_eq!(int("+0x10"), Ok(S(16)));
        assert_eq!(int("-0x10"), Ok(S(-16)));
    }

    #[test]
    fn integers_octal() {
        use Number::{Signed as S, Unsigned as U};
        assert_eq!(int("010"), Ok(S(8)));
        assert_eq!(int("0777"), Ok(S(511)));
        assert_eq!(int("-010"), Ok(S(-8)));
        assert_eq!(int("00"), Ok(S(0)));
        assert_eq!(int("01777777777777777777777"), Ok(U(u64::MAX)));
        assert_eq!(int("02000000000000000000000"), Err(PlistError::BadNumber));
        assert_eq!(int("08"), Err(PlistError::BadNumber));
        assert_eq!(int("019"), Err(PlistError::BadNumber));
    }

    #[test]
    fn integers_range() {
        use Number::{Signed as S, Unsigned as U};
        assert_eq!(int("9223372036854775807"), Ok(S(i64::MAX)));
        // Overflows strtoll, so it is read again as unsigned.
        assert_eq!(int("9223372036854775808"), Ok(U(1 << 63)));
        assert_eq!(int("18446744073709551615"), Ok(U(u64::MAX)));
        assert_eq!(int("0xffffffffffffffff"), Ok(U(u64::MAX)));
        assert_eq!(int("-9223372036854775808"), Ok(S(i64::MIN)));
        // Out of range: the 2016 kernel would clamp (no ERANGE check); we refuse.
        assert_eq!(int("18446744073709551616"), Err(PlistError::BadNumber));
        assert_eq!(int("0x10000000000000000"), Err(PlistError::BadNumber));
        assert_eq!(int("-9223372036854775809"), Err(PlistError::BadNumber));
        assert_eq!(int("-18446744073709551615"), Err(PlistError::BadNumber));
        assert_eq!(int("99999999999999999999999999"), Err(PlistError::BadNumber));
    }

    #[test]
    fn integers_malformed() {
        for bad in [
            "", "-", "+", "--1", "+-1", "-+1", "0x", "0xg", "0x-1", "12a", "1.5", " 1", "1 ", "\n1", "1\n", "&amp;",
            "x10", "0b1", "1e3",
        ] {
            assert_eq!(int(bad), Err(PlistError::BadNumber), "{bad:?}");
        }
        assert_eq!(p("<integer/>"), Err(PlistError::BadNumber));
        assert_eq!(p("<integer />"), Err(PlistError::BadNumber));
    }

    #[test]
    fn entities() {
        assert_eq!(string("<string>&lt;a&gt; &amp; &apos;&quot;</string>"), Ok(b"<a> & '\"".to_vec()));
        assert_eq!(string("<string>&amp;lt;</string>"), Ok(b"&lt;".to_vec()));
        assert_eq!(string("<string>a>b\"c'</string>"), Ok(b"a>b\"c'".to_vec()));
        for bad in ["&nbsp;", "&#60;", "&#x3c;", "&", "a & b", "&amp", "&LT;", "&lt", "&;", "&apos"] {
            assert_eq!(p(&format!("<string>{bad}</string>")), Err(PlistError::BadEntity), "{bad:?}");
        }
        let d = p("<dict><key>a&amp;b&lt;</key><true/></dict>");
        let Ok(Value::Dict(d)) = d else { panic!("{d:?}") };
        assert_eq!(d.get("a&b<"), Some(&Value::Bool(true)));
        assert_eq!(p("<dict><key>a&b</key><true/></dict>"), Err(PlistError::BadEntity));
    }

    #[test]
    fn comments_where_tags_are_expected() {
        let body = "<!-- before root --><dict><!--c--><key>a</key><!-- between\n key and value -->\
            <array><!-- in array --><true/><!----></array><!-- before end --></dict><!-- after -->";
        let r = p(body);
        let Ok(Value::Dict(d)) = r else { panic!("{r:?}") };
        assert_eq!(d.get_array("a"), Some(&[Value::Bool(true)][..]));
        let text = "<!-- first -->\n<?xml version=\"1.0\"?>\n<!-- second -->\n\
            <!DOCTYPE plist SYSTEM \"x\">\n<!-- third --><plist><dict/></plist>";
        assert_eq!(parse(text.as_bytes(), &Limits::DM), Ok(Value::Dict(Dict::new())));
        // Not inside text, and a comment must be closed.
        assert!(is_syntax(p("<string>a<!-- c --></string>")));
        assert!(is_syntax(p("<string>a<!-- c -->b</string>")));
        assert!(is_syntax(p("<!-- open <dict/>")));
        assert!(is_syntax(parse(b"<!-- x <plist><dict/></plist>", &Limits::DM)));
    }

    #[test]
    fn prolog_variants() {
        let ok = |t: &str| parse(t.as_bytes(), &Limits::DM);
        let empty = Ok(Value::Dict(Dict::new()));
        assert_eq!(ok("<plist><dict/></plist>"), empty);
        assert_eq!(ok(" \r\n\t<plist version=\"1.0\"><dict/></plist>"), empty);
        assert_eq!(ok("<plist version='1.0' ><dict/></plist>"), empty);
        assert_eq!(ok("<plist version = \"anything\"\n><dict/></plist>"), empty);
        assert_eq!(ok("<?xml version=\"1.0\"?><plist><dict/></plist>"), empty);
        assert_eq!(ok("<!DOCTYPE plist PUBLIC \"a\" \"b\"><plist><dict/></plist>"), empty);
        assert_eq!(ok("<plist><dict/></plist >"), empty);
        // What follows </plist> is ignored.
        assert_eq!(ok("<plist><dict/></plist>garbage <<<&"), empty);
        for bad in [
            "<plist/>",
            "<plist />",
            "<plist version=\"1.0\"/>",
            "<plist foo=\"1\"><dict/></plist>",
            "<plist version=\"1.0\" foo=\"1\"><dict/></plist>",
            "<plist version=\"1\" version=\"2\"><dict/></plist>",
            "<plist version><dict/></plist>",
            "<plist version=1.0><dict/></plist>",
            "<plist version=\"1.0><dict/></plist>",
            "<plistx><dict/></plist>",
            "<plist><dict/>",
            "<plist><dict/></plistx>",
            "<plist><dict/></dict>",
            "<!DOCTYPE html><plist><dict/></plist>",
            "<!DOCTYPE plistx><plist><dict/></plist>",
            "<?xml version=\"1.0\"<plist><dict/></plist>",
            "<dict/>",
            "",
            "   ",
            "{\"command\": \"version\"}",
            "x<plist><dict/></plist>",
        ] {
            assert!(is_syntax(ok(bad)), "{bad:?}: {:?}", ok(bad));
        }
    }

    #[test]
    fn crlf_and_space_indentation() {
        let golden = wrap(VERSION_REQUEST);
        let expected = parse_dict(&golden, &Limits::DM);
        assert!(expected.is_ok());
        let text = String::from_utf8_lossy(&golden).into_owned();
        let crlf = text.replace('\n', "\r\n");
        let spaces = text.replace('\t', "    ");
        let flat = text.replace(['\t', '\n'], "");
        let mixed = text.replace('\t', " \t \r\n ");
        for variant in [crlf, spaces, flat, mixed] {
            assert_eq!(parse_dict(variant.as_bytes(), &Limits::DM), expected, "{variant}");
        }
    }

    #[test]
    fn empty_forms() {
        assert_eq!(p("<dict/>"), Ok(Value::Dict(Dict::new())));
        assert_eq!(p("<dict></dict>"), Ok(Value::Dict(Dict::new())));
        assert_eq!(p("<dict>\n</dict>"), Ok(Value::Dict(Dict::new())));
        assert_eq!(p("<array/>"), Ok(Value::Array(vec![])));
        assert_eq!(p("<array></array>"), Ok(Value::Array(vec![])));
        assert_eq!(p("<string/>"), Ok(Value::String(vec![])));
        assert_eq!(p("<string></string>"), Ok(Value::String(vec![])));
        assert_eq!(p("<data/>"), Ok(Value::Data(vec![])));
        assert_eq!(p("<data></data>"), Ok(Value::Data(vec![])));
        assert_eq!(p("<true/>"), Ok(Value::Bool(true)));
        assert_eq!(p("<false />"), Ok(Value::Bool(false)));
        let mut d = Dict::new();
        d.insert("", Value::Bool(true));
        assert_eq!(p("<dict><key/><true/></dict>"), Ok(Value::Dict(d.clone())));
        assert_eq!(p("<dict><key></key><true/></dict>"), Ok(Value::Dict(d)));
        assert!(is_syntax(p("<true></true>")));
        assert!(is_syntax(p("<false>x</false>")));
    }

    #[test]
    fn strings_keep_whitespace_and_bytes() {
        assert_eq!(string("<string>  a b\n\t</string>"), Ok(b"  a b\n\t".to_vec()));
        assert_eq!(string("<string>\r\n</string>"), Ok(b"\r\n".to_vec()));
        let mut raw = wrap("<string>\u{1}X</string>");
        // Replace X with a byte that is not UTF-8.
        if let Some(x) = raw.iter_mut().find(|c| **c == b'X') {
            *x = 0xff;
        }
        assert_eq!(parse(&raw, &Limits::DM), Ok(Value::String(b"\x01\xff".to_vec())));
        assert!(is_syntax(p("<string><![CDATA[x]]></string>")));
        assert!(is_syntax(p("<string>abc")));
        assert!(is_syntax(p("<string>abc</key>")));
        assert!(is_syntax(p("<string>abc</string")));
        assert_eq!(string("<string>x</string >"), Ok(b"x".to_vec()));
    }

    #[test]
    fn key_length_limit() {
        let k128 = "k".repeat(128);
        let k129 = "k".repeat(129);
        let r = p(&format!("<dict><key>{k128}</key><true/></dict>"));
        let Ok(Value::Dict(d)) = r else { panic!("{r:?}") };
        assert!(d.contains(&k128));
        assert_eq!(p(&format!("<dict><key>{k129}</key><true/></dict>")), Err(PlistError::KeyTooLong));
        // Counted after decoding: 128 "&amp;" is a 128-byte key.
        let amp128 = "&amp;".repeat(128);
        let amp129 = "&amp;".repeat(129);
        assert!(p(&format!("<dict><key>{amp128}</key><true/></dict>")).is_ok());
        assert_eq!(p(&format!("<dict><key>{amp129}</key><true/></dict>")), Err(PlistError::KeyTooLong));
    }

    #[test]
    fn depth_limit() {
        let a = |n| nested("<array>", "</array>", "<true/>", n);
        let d = |n| nested("<dict><key>k</key>", "</dict>", "<true/>", n);
        assert!(p(&a(8)).is_ok());
        assert_eq!(p(&a(9)), Err(PlistError::TooDeep));
        assert!(p(&d(8)).is_ok());
        assert_eq!(p(&d(9)), Err(PlistError::TooDeep));
        // An empty container counts as a level too.
        assert!(p(&nested("<array>", "</array>", "<array/>", 7)).is_ok());
        assert_eq!(p(&nested("<array>", "</array>", "<array/>", 8)), Err(PlistError::TooDeep));
        assert_eq!(p(&nested("<array>", "</array>", "<dict/>", 8)), Err(PlistError::TooDeep));
        // Far beyond the limit: refused without recursion or unbounded allocation.
        assert_eq!(p(&a(5_000)), Err(PlistError::TooDeep));
        let roomy = Limits { max_len: usize::MAX, ..Limits::DM };
        assert_eq!(pl(&a(200_000), &roomy), Err(PlistError::TooDeep));
        let shallow = Limits { max_depth: 1, ..Limits::DM };
        assert!(pl("<array><true/></array>", &shallow).is_ok());
        assert_eq!(pl("<array><array/></array>", &shallow), Err(PlistError::TooDeep));
        let none = Limits { max_depth: 0, ..Limits::DM };
        assert_eq!(pl("<dict/>", &none), Err(PlistError::TooDeep));
        assert!(pl("<true/>", &none).is_ok());
    }

    #[test]
    fn entry_limit() {
        let small = Limits { max_entries: 3, ..Limits::DM };
        assert!(pl("<array><true/><true/><true/></array>", &small).is_ok());
        assert_eq!(pl("<array><true/><true/><true/><true/></array>", &small), Err(PlistError::TooManyEntries));
        let keys = |n: usize| {
            let mut s = String::from("<dict>");
            for i in 0..n {
                s.push_str(&format!("<key>k{i}</key><true/>"));
            }
            s.push_str("</dict>");
            s
        };
        assert!(pl(&keys(3), &small).is_ok());
        assert_eq!(pl(&keys(4), &small), Err(PlistError::TooManyEntries));
        // The DM limit itself: 8192 elements pass, 8193 do not.
        let arr = |n: usize| format!("<array>{}</array>", "<true/>".repeat(n));
        assert!(p(&arr(8192)).is_ok());
        assert_eq!(p(&arr(8193)), Err(PlistError::TooManyEntries));
        // 8193 distinct keys do not fit in 128 KiB; lift the size limit to reach the entry limit.
        let roomy = Limits { max_len: usize::MAX, ..Limits::DM };
        assert!(pl(&keys(8192), &roomy).is_ok());
        assert_eq!(pl(&keys(8193), &roomy), Err(PlistError::TooManyEntries));
    }

    /// A valid document of exactly `len` bytes (padded with a comment).
    fn doc_of_len(len: usize) -> Vec<u8> {
        let base = wrap("<dict/>\n");
        let pad = len.saturating_sub(base.len()).saturating_sub(7);
        let mut v = Vec::from(&b"<!--"[..]);
        v.extend(core::iter::repeat_n(b'.', pad));
        v.extend_from_slice(b"-->");
        v.extend_from_slice(&base);
        assert_eq!(v.len(), len);
        v
    }

    #[test]
    fn size_limit_boundary() {
        let max = Limits::DM.max_len;
        // pref_len = len + 1 must stay below 131072.
        let at_limit = doc_of_len(max - 1);
        let below = doc_of_len(max - 2);
        assert_eq!(parse_dict(&at_limit, &Limits::DM), Err(PlistError::TooLarge));
        assert_eq!(parse_dict(&below, &Limits::DM), Ok(Dict::new()));
        // The same with the NUL the transport appends, and junk after it.
        let mut with_nul = below.clone();
        with_nul.push(0);
        with_nul.extend_from_slice(b"junk after the NUL");
        assert_eq!(parse_dict(&with_nul, &Limits::DM), Ok(Dict::new()));
        let mut at_with_nul = at_limit.clone();
        at_with_nul.push(0);
        assert_eq!(parse_dict(&at_with_nul, &Limits::DM), Err(PlistError::TooLarge));
        // A small limit, to see both sides precisely.
        let n = below.len().min(400);
        let tiny = doc_of_len(n);
        let lim = Limits { max_len: n + 1, ..Limits::DM };
        assert_eq!(parse_dict(&tiny, &lim), Err(PlistError::TooLarge));
        let lim = Limits { max_len: n + 2, ..Limits::DM };
        assert_eq!(parse_dict(&tiny, &lim), Ok(Dict::new()));
    }

    #[test]
    fn huge_buffers_are_refused_without_scanning_them() {
        let lim = Limits { max_len: 64, ..Limits::DM };
        let mut t = vec![b' '; 1 << 20];
        assert_eq!(parse(&t, &lim), Err(PlistError::TooLarge));
        // A NUL past the limit does not help; one before it does.
        if let Some(b) = t.get_mut(100) {
            *b = 0;
        }
        assert_eq!(parse(&t, &lim), Err(PlistError::TooLarge));
        let mut small = b"<plist><true/></plist>".to_vec();
        small.push(0);
        small.extend(core::iter::repeat_n(b'x', 1 << 20));
        assert_eq!(parse(&small, &lim), Ok(Value::Bool(true)));
    }

    #[test]
    fn nul_ends_the_document() {
        let mut t = wrap("<dict/>");
        t.push(0);
        t.extend_from_slice(b"\xff\xfe<<<");
        assert_eq!(parse_dict(&t, &Limits::DM), Ok(Dict::new()));
        let mut cut = wrap("<string>ab</string>");
        if let Some(a) = cut.iter_mut().find(|c| **c == b'a') {
            *a = 0;
        }
        assert!(is_syntax(parse(&cut, &Limits::DM)));
        assert!(is_syntax(parse(b"\0<plist><dict/></plist>", &Limits::DM)));
    }

    #[test]
    fn parse_dict_needs_a_dict_root() {
        for body in ["<array/>", "<string>x</string>", "<integer>1</integer>", "<true/>", "<data/>"] {
            assert!(p(body).is_ok());
            assert_eq!(parse_dict(&wrap(body), &Limits::DM), Err(PlistError::NotADict));
        }
    }

    #[test]
    fn unknown_elements_and_attributes_fail() {
        for body in [
            "<real>1.0</real>",
            "<date>2016-01-01T00:00:00Z</date>",
            "<dict><key>a</key><foo/></dict>",
            "<array><uid>1</uid></array>",
            "<Dict/>",
            "<dict a=\"b\"/>",
            "<string a=\"b\">x</string>",
            "<integer base=\"10\">1</integer>",
            "< dict/>",
            "<dict/ >",
            "<plist><dict/></plist>",
            "<key>a</key>",
        ] {
            assert!(is_syntax(p(body)), "{body:?}: {:?}", p(body));
        }
        // Whitespace before the end of a tag is fine.
        assert_eq!(p("<dict ></dict >"), Ok(Value::Dict(Dict::new())));
    }

    #[test]
    fn dict_structure() {
        // A key without a value, a value without a key, a key outside a dict.
        assert!(is_syntax(p("<dict><key>a</key></dict>")));
        assert!(is_syntax(p("<dict><key>a</key><key>b</key><true/></dict>")));
        assert!(is_syntax(p("<dict><string>x</string></dict>")));
        assert!(is_syntax(p("<dict><key>a</key><true/><true/></dict>")));
        assert!(is_syntax(p("<array><key>a</key><true/></array>")));
        // Mismatched or missing end tags, two roots.
        assert!(is_syntax(p("<dict></array>")));
        assert!(is_syntax(p("<array></dict>")));
        assert!(is_syntax(p("<array><true/>")));
        assert!(is_syntax(p("<true/><true/>")));
        assert!(is_syntax(p("")));
        assert_eq!(p("<dict><key>a</key><true/><key>a</key><false/></dict>"), Err(PlistError::DuplicateKey));
        assert_eq!(
            p("<dict><key>a</key><dict><key>a</key><true/></dict><key>b</key><true/></dict>")
                .map(|v| v.as_dict().map(Dict::len)),
            Ok(Some(2))
        );
    }

    #[test]
    fn syntax_offsets_point_at_the_problem() {
        let text = b"<plist><dict><foo/></dict></plist>";
        assert_eq!(parse(text, &Limits::DM), Err(PlistError::Syntax { offset: 13 }));
        assert_eq!(
            parse(b"<plist><dict><key>a</key></dict></plist>", &Limits::DM),
            Err(PlistError::Syntax { offset: 25 })
        );
        assert_eq!(parse(b"junk", &Limits::DM), Err(PlistError::Syntax { offset: 0 }));
    }

    #[test]
    fn string_and_data_limits() {
        let lim = Limits { max_string: 4, ..Limits::DM };
        assert!(pl("<string>abcd</string>", &lim).is_ok());
        assert_eq!(pl("<string>abcde</string>", &lim), Err(PlistError::StringTooLong));
        // Decoded length counts: four entities are four bytes.
        assert!(pl("<string>&lt;&lt;&lt;&lt;</string>", &lim).is_ok());
        assert_eq!(pl("<string>&lt;&lt;&lt;&lt;&lt;</string>", &lim), Err(PlistError::StringTooLong));
        assert!(pl("<data>AAECAw==</data>", &lim).is_ok()); // 4 bytes
        assert_eq!(
            pl("<data>AAECAwQ=</data>", &lim), // 5 bytes
            Err(PlistError::StringTooLong)
        );
        let big = "x".repeat(65_536);
        assert!(p(&format!("<string>{big}</string>")).is_ok());
        assert_eq!(p(&format!("<string>{big}y</string>")), Err(PlistError::StringTooLong));
    }

    #[test]
    fn data_objects() {
        assert_eq!(p("<data>AAECAw==</data>"), Ok(Value::Data(vec![0, 1, 2, 3])));
        assert_eq!(p("<data>\n\tAAEC\n\tAw==\n</data>"), Ok(Value::Data(vec![0, 1, 2, 3])));
        for bad in ["AAECAw=", "AAEC*w==", "A", "AA=A", "&amp;&amp;"] {
            assert_eq!(p(&format!("<data>{bad}</data>")), Err(PlistError::BadData), "{bad:?}");
        }
        let blob: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let v = Value::Data(blob);
        assert_eq!(parse(&write(&v), &Limits::DM), Ok(v));
    }

    #[test]
    fn round_trip_mixed_value() {
        let mut inner = Dict::new();
        inner.set_string("params", b"/dev/wd1a 384 <&> \"'");
        inner.set_u64("start", 0);
        inner.set_u64("length", u64::MAX);
        inner.set_i32("status", -7);
        inner.insert("b", Value::Bool(false));
        inner.insert("d", Value::Data(vec![0xff, 0, 0x3c]));
        inner.insert("e", Value::Dict(Dict::new()));
        let mut d = Dict::new();
        d.insert("cmd_data", Value::Array(vec![Value::Dict(inner), Value::Array(vec![]), Value::string(b"")]));
        d.insert_raw(b"\xff<key>&".to_vec(), Value::signed(i64::MIN));
        d.insert("x", Value::string(b" lead and trail \n"));
        let text = write_dict(&d);
        assert_eq!(parse_dict(&text, &Limits::DM), Ok(d.clone()));
        assert_eq!(parse(&text, &Limits::DM), Ok(Value::Dict(d)));
    }

    #[test]
    fn find_byte_matches_a_plain_scan() {
        let mut hay: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) | 1).collect();
        for needle in [0u8, 1, b'<', 0x80, 0xff] {
            for len in 0..hay.len() {
                for at in 0..=len {
                    let saved = hay.get(at).copied();
                    if let Some(b) = hay.get_mut(at) {
                        *b = needle;
                    }
                    let slice = hay.get(..len).unwrap_or_default();
                    let plain = slice.iter().position(|&c| c == needle);
                    assert_eq!(find_byte(slice, needle), plain, "{needle} {len} {at}");
                    if let (Some(b), Some(s)) = (hay.get_mut(at), saved) {
                        *b = s;
                    }
                }
            }
        }
    }

    #[test]
    fn errors_display() {
        let all = [
            PlistError::TooLarge,
            PlistError::TooDeep,
            PlistError::TooManyEntries,
            PlistError::StringTooLong,
            PlistError::KeyTooLong,
            PlistError::DuplicateKey,
            PlistError::NotADict,
            PlistError::BadNumber,
            PlistError::BadEntity,
            PlistError::BadData,
            PlistError::Syntax { offset: 42 },
        ];
        let texts: Vec<String> = all.iter().map(ToString::to_string).collect();
        for (i, t) in texts.iter().enumerate() {
            assert!(t.starts_with("plist: "), "{t}");
            assert!(texts.iter().skip(i + 1).all(|u| u != t));
        }
        assert_eq!(texts.last().map(String::as_str), Some("plist: syntax error at byte 42"));
    }
}
