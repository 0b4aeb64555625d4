//! The in-memory object model of an externalized property list.
//!
//! Only the object kinds dm's protocol can carry exist here: dictionaries, arrays, byte strings,
//! 64-bit numbers (signed or unsigned), booleans and opaque data. Dates and reals are not part
//! of the format the kernel speaks and are not represented.
//!
//! Typed getters follow proplib's coercion rules (reference §4.3): an unsigned getter accepts an
//! unsigned number or a non-negative signed one, a signed getter accepts a signed number or an
//! unsigned one that fits; any value outside the requested width, and any other object kind,
//! reads as `None`. Callers keep their own default when a getter returns `None`, as the NetBSD
//! kernel does with its pre-initialised locals.

use alloc::collections::btree_map::{self, BTreeMap};
use alloc::vec::Vec;

/// An integer as proplib stores it. Signedness is a property of the stored number, not of its
/// value: `Unsigned(0)` and `Signed(0)` are different objects and are externalized differently
/// (`0x0` and `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    /// Written in decimal, e.g. `-1`, `384`.
    Signed(i64),
    /// Written in lower-case hexadecimal with a `0x` prefix, e.g. `0x5000`.
    Unsigned(u64),
}

impl Number {
    /// The value as `u64`: an unsigned number, or a signed number that is not negative.
    pub fn as_u64(self) -> Option<u64> {
        match self {
            Number::Unsigned(u) => Some(u),
            Number::Signed(s) => u64::try_from(s).ok(),
        }
    }

    /// The value as `u32`: an unsigned number, or a non-negative signed one, that fits.
    pub fn as_u32(self) -> Option<u32> {
        self.as_u64().and_then(|u| u32::try_from(u).ok())
    }

    /// The value as `i64`: a signed number, or an unsigned one not above `i64::MAX`.
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Number::Signed(s) => Some(s),
            Number::Unsigned(u) => i64::try_from(u).ok(),
        }
    }

    /// The value as `i32`: a signed number that fits, or an unsigned one not above `i32::MAX`.
    pub fn as_i32(self) -> Option<i32> {
        self.as_i64().and_then(|s| i32::try_from(s).ok())
    }
}

/// One property-list object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `<dict>`: keys are unique byte strings, kept in ascending bytewise order.
    Dict(Dict),
    /// `<array>`: elements in index order.
    Array(Vec<Value>),
    /// `<string>`: a byte string. UTF-8 is not required; it never contains NUL when parsed.
    String(Vec<u8>),
    /// `<integer>`.
    Number(Number),
    /// `<true/>` or `<false/>`.
    Bool(bool),
    /// `<data>`: opaque bytes, externalized as base64.
    Data(Vec<u8>),
}

impl Value {
    /// See [`Number::as_u32`]; `None` for anything that is not a number.
    pub fn as_u32(&self) -> Option<u32> {
        self.as_number().and_then(Number::as_u32)
    }

    /// See [`Number::as_u64`]; `None` for anything that is not a number.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }

    /// See [`Number::as_i32`]; `None` for anything that is not a number.
    pub fn as_i32(&self) -> Option<i32> {
        self.as_number().and_then(Number::as_i32)
    }

    /// See [`Number::as_i64`]; `None` for anything that is not a number.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// The stored number, with its signedness.
    pub fn as_number(&self) -> Option<Number> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The bytes of a string object.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::String(s) => Some(s.as_slice()),
            _ => None,
        }
    }

    /// The text of a string object, when it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| core::str::from_utf8(b).ok())
    }

    /// The elements of an array object.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a.as_slice()),
            _ => None,
        }
    }

    /// The elements of an array object, mutable.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A dictionary object.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A dictionary object, mutable.
    pub fn as_dict_mut(&mut self) -> Option<&mut Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A boolean object.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The bytes of a data object.
    pub fn as_data(&self) -> Option<&[u8]> {
        match self {
            Value::Data(d) => Some(d.as_slice()),
            _ => None,
        }
    }

    /// A string object holding a copy of `s`.
    pub fn string(s: &[u8]) -> Value {
        Value::String(s.to_vec())
    }

    /// An unsigned number object (written in hex).
    pub fn unsigned(u: u64) -> Value {
        Value::Number(Number::Unsigned(u))
    }

    /// A signed number object (written in decimal).
    pub fn signed(s: i64) -> Value {
        Value::Number(Number::Signed(s))
    }
}

impl From<Dict> for Value {
    fn from(d: Dict) -> Value {
        Value::Dict(d)
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}

/// A dictionary: unique byte-string keys in ascending bytewise order (the order `strcmp` gives
/// for keys without NUL, which is how proplib keeps and externalizes them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dict {
    map: BTreeMap<Vec<u8>, Value>,
}

impl Dict {
    /// An empty dictionary.
    pub fn new() -> Self {
        Dict { map: BTreeMap::new() }
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key.as_bytes())
    }

    /// The value stored under `key`, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.map.get_mut(key.as_bytes())
    }

    /// The value stored under a key given as raw bytes (keys need not be UTF-8).
    pub fn get_raw(&self, key: &[u8]) -> Option<&Value> {
        self.map.get(key)
    }

    /// Stores `v` under `key`, replacing any earlier value.
    pub fn insert(&mut self, key: &str, v: Value) {
        self.map.insert(key.as_bytes().to_vec(), v);
    }

    /// Stores `v` under a key given as raw bytes, returning the value it replaces.
    pub fn insert_raw(&mut self, key: Vec<u8>, v: Value) -> Option<Value> {
        self.map.insert(key, v)
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key.as_bytes())
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key.as_bytes())
    }

    /// Whether a key given as raw bytes is present.
    pub fn contains_raw(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the dictionary has no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Keys and values in ascending bytewise key order (the externalized order).
    pub fn iter(&self) -> DictIter<'_> {
        DictIter { inner: self.map.iter() }
    }

    /// See [`Number::as_u32`].
    pub fn get_u32(&self, key: &str) -> Option<u32> {
        self.get(key).and_then(Value::as_u32)
    }

    /// See [`Number::as_u64`].
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    /// See [`Number::as_i32`].
    pub fn get_i32(&self, key: &str) -> Option<i32> {
        self.get(key).and_then(Value::as_i32)
    }

    /// See [`Number::as_i64`].
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    /// The bytes of a string value.
    pub fn get_bytes(&self, key: &str) -> Option<&[u8]> {
        self.get(key).and_then(Value::as_bytes)
    }

    /// The text of a string value that is valid UTF-8.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The elements of an array value.
    pub fn get_array(&self, key: &str) -> Option<&[Value]> {
        self.get(key).and_then(Value::as_array)
    }

    /// A dictionary value.
    pub fn get_dict(&self, key: &str) -> Option<&Dict> {
        self.get(key).and_then(Value::as_dict)
    }

    /// A boolean value.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// The bytes of a data value.
    pub fn get_data(&self, key: &str) -> Option<&[u8]> {
        self.get(key).and_then(Value::as_data)
    }

    /// Stores an unsigned number (externalized in hex).
    pub fn set_u32(&mut self, key: &str, v: u32) {
        self.insert(key, Value::unsigned(u64::from(v)));
    }

    /// Stores an unsigned number (externalized in hex).
    pub fn set_u64(&mut self, key: &str, v: u64) {
        self.insert(key, Value::unsigned(v));
    }

    /// Stores a signed number (externalized in decimal).
    pub fn set_i32(&mut self, key: &str, v: i32) {
        self.insert(key, Value::signed(i64::from(v)));
    }

    /// Stores a signed number (externalized in decimal).
    pub fn set_i64(&mut self, key: &str, v: i64) {
        self.insert(key, Value::signed(v));
    }

    /// Stores a string.
    pub fn set_string(&mut self, key: &str, v: &[u8]) {
        self.insert(key, Value::string(v));
    }
}

/// Iterator over a [`Dict`]'s entries in key order, yielding keys as byte slices.
#[derive(Debug, Clone)]
pub struct DictIter<'a> {
    inner: btree_map::Iter<'a, Vec<u8>, Value>,
}

impl<'a> Iterator for DictIter<'a> {
    type Item = (&'a [u8], &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, v)| (k.as_slice(), v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for DictIter<'_> {}

impl<'a> IntoIterator for &'a Dict {
    type Item = (&'a [u8], &'a Value);
    type IntoIter = DictIter<'a>;

    fn into_iter(self) -> DictIter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn unsigned_getters_accept_unsigned_and_nonnegative_signed() {
        let mut d = Dict::new();
        d.insert("u", Value::unsigned(7));
        d.insert("s", Value::signed(7));
        d.insert("neg", Value::signed(-1));
        d.insert("big", Value::unsigned(u64::from(u32::MAX) + 1));
        d.insert("bigs", Value::signed(i64::from(u32::MAX) + 1));
        d.insert("str", Value::string(b"7"));
        assert_eq!(d.get_u32("u"), Some(7));
        assert_eq!(d.get_u32("s"), Some(7));
        assert_eq!(d.get_u32("neg"), None);
        assert_eq!(d.get_u64("neg"), None);
        assert_eq!(d.get_u32("big"), None);
        assert_eq!(d.get_u32("bigs"), None);
        assert_eq!(d.get_u64("big"), Some(u64::from(u32::MAX) + 1));
        assert_eq!(d.get_u64("bigs"), Some(u64::from(u32::MAX) + 1));
        assert_eq!(d.get_u32("str"), None);
        assert_eq!(d.get_u32("absent"), None);
    }

    #[test]
    fn signed_getters_accept_signed_and_small_unsigned() {
        let mut d = Dict::new();
        d.insert("neg", Value::signed(-5));
        d.insert("umax", Value::unsigned(i32::MAX as u64));
        d.insert("uover", Value::unsigned(i32::MAX as u64 + 1));
        d.insert("smin", Value::signed(i64::from(i32::MIN)));
        d.insert("sunder", Value::signed(i64::from(i32::MIN) - 1));
        assert_eq!(d.get_i32("neg"), Some(-5));
        assert_eq!(d.get_i32("umax"), Some(i32::MAX));
        assert_eq!(d.get_i32("uover"), None);
        assert_eq!(d.get_i32("smin"), Some(i32::MIN));
        assert_eq!(d.get_i32("sunder"), None);
        assert_eq!(d.get_i64("uover"), Some(i64::from(i32::MAX) + 1));
        d.insert("huge", Value::unsigned(u64::MAX));
        assert_eq!(d.get_i64("huge"), None);
    }

    #[test]
    fn setters_choose_signedness() {
        let mut d = Dict::new();
        d.set_u32("a", 1);
        d.set_u64("b", 2);
        d.set_i32("c", -3);
        d.set_string("d", b"x\xff");
        assert_eq!(d.get("a"), Some(&Value::Number(Number::Unsigned(1))));
        assert_eq!(d.get("b"), Some(&Value::Number(Number::Unsigned(2))));
        assert_eq!(d.get("c"), Some(&Value::Number(Number::Signed(-3))));
        assert_eq!(d.get_bytes("d"), Some(&b"x\xff"[..]));
        assert_eq!(d.get_str("d"), None);
        d.set_string("e", b"ok");
        assert_eq!(d.get_str("e"), Some("ok"));
    }

    #[test]
    fn keys_iterate_in_bytewise_order_and_insert_replaces() {
        let mut d = Dict::new();
        for k in ["version", "cmd_data", "flags", "Z", "command", "a"] {
            d.set_u32(k, 1);
        }
        d.set_u32("flags", 9);
        let keys: Vec<&[u8]> = d.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![&b"Z"[..], b"a", b"cmd_data", b"command", b"flags", b"version"]);
        assert_eq!(d.len(), 6);
        assert_eq!(d.get_u32("flags"), Some(9));
        assert_eq!(d.remove("flags"), Some(Value::unsigned(9)));
        assert!(!d.contains("flags"));
        assert_eq!(d.len(), 5);
        assert!(!d.is_empty());
        assert!(Dict::new().is_empty());
    }

    #[test]
    fn container_getters() {
        let mut inner = Dict::new();
        inner.set_u32("x", 1);
        let mut d = Dict::new();
        d.insert("arr", Value::Array(vec![Value::signed(1)]));
        d.insert("dict", Value::Dict(inner.clone()));
        d.insert("flag", Value::Bool(true));
        d.insert("blob", Value::Data(vec![0, 1]));
        assert_eq!(d.get_array("arr"), Some(&[Value::signed(1)][..]));
        assert_eq!(d.get_dict("dict"), Some(&inner));
        assert_eq!(d.get_array("dict"), None);
        assert_eq!(d.get_dict("arr"), None);
        assert_eq!(d.get_bool("flag"), Some(true));
        assert_eq!(d.get_data("blob"), Some(&[0u8, 1][..]));
        assert_eq!(d.get_bytes("blob"), None);
        if let Some(v) = d.get_mut("arr").and_then(Value::as_array_mut) {
            v.push(Value::unsigned(2));
        }
        assert_eq!(d.get_array("arr").map(<[Value]>::len), Some(2));
    }
}
