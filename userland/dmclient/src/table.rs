//! Table lines in dmsetup's syntax, typed for the targets whose arguments the client knows.
//!
//! A line is `<start> <length> <type> <params>`; sizes are 512-byte sectors. Parsing follows
//! dmsetup's reader: leading and trailing white space is dropped, a line that is empty or starts
//! with `#` is skipped, and a `#` in the parameters starts a comment. The start and the length
//! must be decimal numbers; everything about the parameters is left to the driver, except that
//! lines of `linear`, `striped`, `zero` and `error` whose parameters have the right shape become
//! typed [`TargetSpec`] values.
//!
//! Printing and parsing round-trip: `line.to_string().parse() == Ok(line)` for every line in
//! canonical form, that is every line the parser or [`TargetSpec::from_parts`] produces (see
//! [`TargetSpec::Other`] and [`BlockDev::Path`] for what canonical means).

use std::fmt;
use std::str::FromStr;

use crate::types::DevNum;

/// dmsetup's white space (C `isspace`).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// A decimal number: digits only, no sign, fits the type.
fn decimal<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A lower device as a table line names it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum BlockDev {
    /// `major:minor`, both decimal.
    Number(DevNum),
    /// Anything else, e.g. `/dev/wd1a`. Canonical paths are non-empty, hold no white space and
    /// no `#`, and are not of the `major:minor` form (those parse as [`BlockDev::Number`]).
    Path(String),
}

impl BlockDev {
    /// Reads one argument the way the driver does: `major:minor` when both halves are decimal
    /// numbers, otherwise a path.
    pub fn parse(arg: &str) -> BlockDev {
        if let Some((major, minor)) = arg.split_once(':') {
            if let (Some(major), Some(minor)) = (decimal(major), decimal(minor)) {
                return BlockDev::Number(DevNum::new(major, minor));
            }
        }
        BlockDev::Path(arg.to_string())
    }
}

impl fmt::Display for BlockDev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockDev::Number(dev) => dev.fmt(f),
            BlockDev::Path(path) => f.write_str(path),
        }
    }
}

/// The target of one table line.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TargetSpec {
    /// `linear <dev> <offset>`
    Linear { dev: BlockDev, offset: u64 },
    /// `striped <#stripes> <chunk> (<dev> <offset>){#stripes}`
    Striped { chunk: u64, stripes: Vec<(BlockDev, u64)> },
    /// `zero` (no parameters)
    Zero,
    /// `error` (no parameters)
    Error,
    /// Any other target, or one of the above whose parameters do not have the expected shape
    /// (the driver then says what is wrong). Canonical values come from
    /// [`TargetSpec::from_parts`]: the type is non-empty without white space or `#`, the
    /// parameters hold no `#` or line break and do not start or end with white space, and the
    /// pair does not read as one of the typed variants.
    Other { target_type: String, params: String },
}

impl TargetSpec {
    /// Classifies a target type and its parameter string: the typed variant when the
    /// parameters fit it, [`TargetSpec::Other`] (with the parameters trimmed) otherwise.
    pub fn from_parts(target_type: &str, params: &str) -> TargetSpec {
        let args: Vec<&str> = params.split(is_space).filter(|a| !a.is_empty()).collect();
        let typed = match (target_type, args.as_slice()) {
            ("linear", [dev, offset]) => {
                decimal(offset).map(|offset| TargetSpec::Linear { dev: BlockDev::parse(dev), offset })
            }
            ("striped", [count, chunk, pairs @ ..]) => {
                let shape = decimal::<usize>(count)
                    .and_then(|count| count.checked_mul(2))
                    .filter(|&n| n == pairs.len())
                    .and(decimal::<u64>(chunk));
                shape.and_then(|chunk| {
                    let stripes: Option<Vec<(BlockDev, u64)>> = pairs
                        .chunks_exact(2)
                        .map(|pair| match pair {
                            [dev, offset] => decimal(offset).map(|o| (BlockDev::parse(dev), o)),
                            _ => None,
                        })
                        .collect();
                    stripes.map(|stripes| TargetSpec::Striped { chunk, stripes })
                })
            }
            ("zero", []) => Some(TargetSpec::Zero),
            ("error", []) => Some(TargetSpec::Error),
            _ => None,
        };
        typed.unwrap_or_else(|| TargetSpec::Other {
            target_type: target_type.to_string(),
            params: params.trim_matches(is_space).to_string(),
        })
    }

    /// The target type's name.
    pub fn target_type(&self) -> &str {
        match self {
            TargetSpec::Linear { .. } => "linear",
            TargetSpec::Striped { .. } => "striped",
            TargetSpec::Zero => "zero",
            TargetSpec::Error => "error",
            TargetSpec::Other { target_type, .. } => target_type,
        }
    }

    /// The parameter string sent to the driver.
    pub fn params(&self) -> String {
        match self {
            TargetSpec::Linear { dev, offset } => format!("{dev} {offset}"),
            TargetSpec::Striped { chunk, stripes } => {
                let mut s = format!("{} {chunk}", stripes.len());
                for (dev, offset) in stripes {
                    s.push_str(&format!(" {dev} {offset}"));
                }
                s
            }
            TargetSpec::Zero | TargetSpec::Error => String::new(),
            TargetSpec::Other { params, .. } => params.clone(),
        }
    }
}

/// One table line.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TableLine {
    /// First sector of the line in the mapped device.
    pub start: u64,
    /// Length in sectors.
    pub length: u64,
    pub target: TargetSpec,
}

impl TableLine {
    pub fn new(start: u64, length: u64, target: TargetSpec) -> Self {
        TableLine { start, length, target }
    }

    pub fn target_type(&self) -> &str {
        self.target.target_type()
    }

    pub fn params(&self) -> String {
        self.target.params()
    }
}

/// `<start> <length> <type> <params>`, with the space after the type even for empty
/// parameters, as `dmsetup table` prints lines.
impl fmt::Display for TableLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {}", self.start, self.length, self.target.target_type(), self.target.params())
    }
}

/// Why a table line could not be read.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ParseReason {
    #[error("empty table line")]
    Empty,
    #[error("expected the start sector (a decimal number), found {0:?}")]
    BadStart(String),
    #[error("missing the length in sectors")]
    MissingLength,
    #[error("expected the length in sectors (a decimal number), found {0:?}")]
    BadLength(String),
    #[error("missing the target type")]
    MissingType,
    #[error("a table line cannot hold a line break")]
    LineBreak,
}

/// A table line that could not be read: where (1-based line and column, in characters) and
/// why.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("line {line}, column {column}: {reason}: {text:?}")]
pub struct TableParseError {
    pub line: usize,
    pub column: usize,
    pub reason: ParseReason,
    /// The line as given.
    pub text: String,
}

/// A cursor over one line that tracks the column in characters.
struct Cursor<'a> {
    rest: &'a str,
    column: usize,
}

impl<'a> Cursor<'a> {
    fn skip_space(&mut self) {
        let trimmed = self.rest.trim_start_matches(is_space);
        let skipped = self.rest.get(..self.rest.len().saturating_sub(trimmed.len())).unwrap_or_default();
        self.column += skipped.chars().count();
        self.rest = trimmed;
    }

    /// The next token (up to white space) and its 1-based column; `None` at the end.
    fn token(&mut self) -> Option<(&'a str, usize)> {
        self.skip_space();
        if self.rest.is_empty() {
            return None;
        }
        let end = self.rest.find(is_space).unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at(end);
        let column = self.column + 1;
        self.column += token.chars().count();
        self.rest = rest;
        Some((token, column))
    }
}

/// Reads one line of a table; `Ok(None)` for a blank or comment line. `number` is the line's
/// 1-based number, for errors.
pub fn parse_line(text: &str, number: usize) -> Result<Option<TableLine>, TableParseError> {
    let line = text.trim_end_matches(is_space);
    let mut cur = Cursor { rest: line, column: 0 };
    cur.skip_space();
    if cur.rest.is_empty() || cur.rest.starts_with('#') {
        return Ok(None);
    }
    let end_column = line.chars().count() + 1;
    let error = |column, reason| TableParseError { line: number, column, reason, text: text.to_string() };
    let (start, column) = cur.token().ok_or_else(|| error(end_column, ParseReason::Empty))?;
    let start = decimal(start).ok_or_else(|| error(column, ParseReason::BadStart(start.to_string())))?;
    let (length, column) = cur.token().ok_or_else(|| error(end_column, ParseReason::MissingLength))?;
    let length = decimal(length).ok_or_else(|| error(column, ParseReason::BadLength(length.to_string())))?;
    let (target_type, _) = cur.token().ok_or_else(|| error(end_column, ParseReason::MissingType))?;
    let (target_type, params) = match target_type.split_once('#') {
        // A comment starts inside the type: nothing after it counts.
        Some((target_type, _)) => (target_type, ""),
        None => {
            cur.skip_space();
            (target_type, cur.rest.split('#').next().unwrap_or(""))
        }
    };
    if target_type.is_empty() {
        return Err(error(end_column, ParseReason::MissingType));
    }
    Ok(Some(TableLine { start, length, target: TargetSpec::from_parts(target_type, params) }))
}

/// Reads a table of several lines (a file, stdin, `--table`), skipping blank and comment
/// lines. Line numbers in errors count from 1.
pub fn parse_table(text: &str) -> Result<Vec<TableLine>, TableParseError> {
    let mut lines = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if let Some(line) = parse_line(line, i + 1)? {
            lines.push(line);
        }
    }
    Ok(lines)
}

/// One line of dmsetup table syntax; a blank or comment line is an error here.
impl FromStr for TableLine {
    type Err = TableParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(pos) = s.trim_end_matches(is_space).find('\n') {
            let column = s.get(..pos).unwrap_or_default().chars().count() + 1;
            return Err(TableParseError { line: 1, column, reason: ParseReason::LineBreak, text: s.to_string() });
        }
        parse_line(s, 1)?.ok_or_else(|| TableParseError {
            line: 1,
            column: 1,
            reason: ParseReason::Empty,
            text: s.to_string(),
        })
    }
}
