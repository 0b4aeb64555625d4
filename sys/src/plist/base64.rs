//! Standard base64 (RFC 4648 alphabet, `=` padding) for `<data>` objects.
//!
//! The encoder writes one unbroken line. The decoder ignores ASCII whitespace between symbols
//! (hand-written plists often wrap data) and otherwise requires canonical structure: a symbol
//! count that is a multiple of four, and at most two `=` only at the very end. Unused low bits of
//! the last symbol are ignored.

use alloc::vec::Vec;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends the base64 form of `data` to `out`.
pub(crate) fn encode_into(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len().div_ceil(3).saturating_mul(4));
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        if let [a, b, d] = *c {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(d);
            push_sym(out, n >> 18);
            push_sym(out, n >> 12);
            push_sym(out, n >> 6);
            push_sym(out, n);
        }
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            push_sym(out, n >> 18);
            push_sym(out, n >> 12);
            out.extend_from_slice(b"==");
        }
        [a, b] => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            push_sym(out, n >> 18);
            push_sym(out, n >> 12);
            push_sym(out, n >> 6);
            out.push(b'=');
        }
        _ => {}
    }
}

fn push_sym(out: &mut Vec<u8>, six: u32) {
    // The mask keeps the index below 64, so the lookup always succeeds.
    let idx = (six & 0x3f) as usize;
    out.push(ALPHABET.get(idx).copied().unwrap_or(b'='));
}

fn sym_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c.wrapping_sub(b'A'),
        b'a'..=b'z' => c.wrapping_sub(b'a').wrapping_add(26),
        b'0'..=b'9' => c.wrapping_sub(b'0').wrapping_add(52),
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Checks `text` and returns the number of bytes it decodes to, without allocating.
/// `None` when it is not valid base64.
pub(crate) fn decoded_len(text: &[u8]) -> Option<usize> {
    let mut symbols: usize = 0;
    let mut pad: usize = 0;
    for &c in text {
        if is_space(c) {
            continue;
        }
        if c == b'=' {
            pad = pad.checked_add(1)?;
            if pad > 2 {
                return None;
            }
        } else {
            // A symbol after padding is not canonical.
            if pad != 0 || sym_value(c).is_none() {
                return None;
            }
            symbols = symbols.checked_add(1)?;
        }
    }
    let total = symbols.checked_add(pad)?;
    if total % 4 != 0 {
        return None;
    }
    // Padding only completes the last quantum: "x===" and "====" are not valid.
    let last_quantum_symbols = symbols % 4;
    match (last_quantum_symbols, pad) {
        (0, 0) | (2, 2) | (3, 1) => {}
        _ => return None,
    }
    let full = (symbols / 4).checked_mul(3)?;
    let extra = match last_quantum_symbols {
        2 => 1,
        3 => 2,
        _ => 0,
    };
    full.checked_add(extra)
}

/// Decodes `text`, which [`decoded_len`] has accepted, appending to `out`.
/// Returns `None` if it is not valid after all.
pub(crate) fn decode_into(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut acc: u32 = 0;
    let mut n: u32 = 0;
    for &c in text {
        if is_space(c) || c == b'=' {
            continue;
        }
        acc = (acc << 6) | sym_value(c)?;
        n = n.saturating_add(1);
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        0 => {}
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn enc(d: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_into(d, &mut v);
        v
    }

    fn dec(t: &[u8]) -> Option<Vec<u8>> {
        let n = decoded_len(t)?;
        let mut v = Vec::with_capacity(n);
        decode_into(t, &mut v)?;
        assert_eq!(v.len(), n);
        Some(v)
    }

    #[test]
    fn rfc4648_vectors() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"fooba", b"Zm9vYmE="),
            (b"foobar", b"Zm9vYmFy"),
        ];
        for (plain, coded) in cases {
            assert_eq!(enc(plain), coded);
            assert_eq!(dec(coded).as_deref(), Some(plain));
        }
    }

    #[test]
    fn all_bytes_round_trip() {
        let data: Vec<u8> = (0..=255u8).collect();
        let e = enc(&data);
        assert!(e.iter().all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(c)));
        assert_eq!(dec(&e), Some(data));
    }

    #[test]
    fn whitespace_is_ignored() {
        assert_eq!(dec(b" Zm9v\n\tYmFy \r\n"), Some(b"foobar".to_vec()));
    }

    #[test]
    fn malformed_is_rejected() {
        for bad in [&b"Zm9"[..], b"Zm9vY", b"Zg=", b"Z===", b"====", b"Zg==Zg==", b"Zm9*", b"Zm=v", b"Zg==="] {
            assert_eq!(dec(bad), None, "{:?}", core::str::from_utf8(bad));
        }
        assert_eq!(vec![0u8; 0], dec(b"").unwrap_or_default());
    }
}
