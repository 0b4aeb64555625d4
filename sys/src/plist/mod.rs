//! proplib's externalized property lists (XML): the object model, a bounded parser, a writer.
//!
//! Every control request reaches the core as the text of one dictionary and every reply leaves
//! it the same way (reference `netbsd-protocol.md` §1.4, §4). The writer reproduces libprop's
//! bytes exactly; the parser accepts what libprop's internalizer accepts, within limits.
//!
//! # Writer (§4.1)
//!
//! Three header lines, the root object at depth 0, `</plist>\n`; no NUL. Each object on its own
//! line, indented with one TAB per depth; dictionary keys in ascending bytewise order; empty
//! forms `<dict/>`, `<array/>`, `<string/>`, `<data/>`; unsigned numbers as `0x` + lower-case
//! hex, signed numbers in decimal; `<true/>`/`<false/>`; data as one line of padded base64;
//! only `<`, `>` and `&` escaped in keys and strings.
//!
//! # Parser (§4.2)
//!
//! * The document ends at the first NUL. It is refused with [`PlistError::TooLarge`] when its
//!   length plus one (the NUL `pref_len` counts) reaches [`Limits::max_len`].
//! * Before `<plist`: whitespace, `<?xml ... ?>`, `<!DOCTYPE plist ...>` and comments, in any
//!   order. `<plist>` takes at most one attribute, `version`; `<plist/>` fails. Exactly one
//!   object, then `</plist>`; what follows `</plist>` is ignored. JSON is not accepted
//!   (§4.5 allows refusing it): it fails like any unparsable text.
//! * Elements: `dict`, `key`, `array`, `string`, `integer`, `true`, `false`, `data`; no
//!   attributes; whitespace is allowed before `>`/`/>` of a tag. Whitespace and comments are
//!   skipped between elements, but not inside the text of `<key>`, `<string>`, `<integer>` or
//!   `<data>`, which runs to the next `<`; that `<` must open the matching end tag (so no
//!   CDATA, no comments inside text).
//! * Text: `&amp;` `&lt;` `&gt;` `&apos;` `&quot;` are decoded, any other `&` is
//!   [`PlistError::BadEntity`]; every other byte is kept as is, whitespace included (strings
//!   are bytes, UTF-8 not required).
//! * `<integer>`: base-0 `strtoll`/`strtoull` rules (leading `-` → signed; `0x` → unsigned
//!   hex; otherwise signed, or unsigned when above `i64::MAX`; leading `0` is octal). Empty
//!   text, whitespace, trailing junk and out-of-range values fail with
//!   [`PlistError::BadNumber`]. The 2016 kernel does not detect `ERANGE`; we do.
//! * `<true/>`, `<false/>` only in their empty form. `<dict></dict>`, `<array></array>`,
//!   `<string></string>`, `<data></data>` and `<key></key>` are read like the empty forms.
//! * `<data>`: standard base64; ASCII whitespace inside is ignored; bad symbols, bad padding or
//!   a length that is not a multiple of four fail with [`PlistError::BadData`].
//! * Dictionaries: strictly key, value, key, value. A key without a value or a value without a
//!   key fails. **[decision]** A key repeated in one dictionary fails with
//!   [`PlistError::DuplicateKey`] (proplib's behaviour is unverified, §4.2; no client sends one).
//! * Limits ([`Limits::DM`] for requests), each checked before allocating: text size, container
//!   nesting (the root container is depth 1), entries per container, decoded string and data
//!   length, decoded key length (`PDK_MAXKEY`, 128).
//! * No recursion (explicit stack), no panics, no unsafe code.
//!
//! All parse errors become `EIO` at copy-in (§1.4, §13); the variants are for logs and tests.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
        clippy::arithmetic_side_effects
    )
)]
#![forbid(unsafe_code)]

mod base64;
pub mod parse;
pub mod value;
pub mod write;

pub use parse::{parse, parse_dict, Limits, PlistError};
pub use value::*;
pub use write::{write, write_dict};
