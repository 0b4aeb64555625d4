//! Splitting and reading target arguments the way Linux's device-mapper does.

use alloc::string::String;
use alloc::vec::Vec;

use super::TargetError;

/// Most arguments one table line may carry; far above what any target takes
/// (a striped line with 1024 stripes has 2050).
pub const MAX_ARGS: usize = 4096;

/// Splits a parameter string into arguments: runs of whitespace separate them, a backslash makes
/// the next character literal (whitespace or a backslash included), and a backslash at the very
/// end is kept.
pub fn split(params: &str) -> Result<Vec<String>, TargetError> {
    let mut args = Vec::new();
    let mut chars = params.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(args);
        }
        if args.len() == MAX_ARGS {
            return Err(TargetError::invalid("Too many arguments"));
        }
        let mut arg = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            if c == '\\' {
                match chars.next() {
                    Some(escaped) => arg.push(escaped),
                    None => arg.push('\\'),
                }
            } else {
                arg.push(c);
            }
        }
        args.push(arg);
    }
}

/// A decimal number of 64 bits: digits only, no sign, no trailing characters.
pub fn parse_u64(arg: &str) -> Option<u64> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    arg.parse().ok()
}

/// A decimal number of 32 bits: digits only, no sign, no trailing characters.
pub fn parse_u32(arg: &str) -> Option<u32> {
    parse_u64(arg).and_then(|v| u32::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn splits_on_whitespace_runs() {
        assert_eq!(split("  a \t b\nc  ").unwrap(), vec!["a", "b", "c"]);
        assert!(split("   ").unwrap().is_empty());
    }

    #[test]
    fn backslash_escapes_the_next_character() {
        assert_eq!(split(r"a\ b c\\d e\").unwrap(), vec!["a b", r"c\d", r"e\"]);
    }

    #[test]
    fn argument_count_is_bounded() {
        let many = "x ".repeat(MAX_ARGS + 1);
        assert!(split(&many).is_err());
        assert_eq!(split(&"x ".repeat(MAX_ARGS)).unwrap().len(), MAX_ARGS);
    }

    #[test]
    fn numbers_are_strict_decimal() {
        assert_eq!(parse_u64("384"), Some(384));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "+1", "-1", "0x10", "1 ", "1a", "18446744073709551616"] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
        assert_eq!(parse_u32("4294967296"), None);
    }
}
