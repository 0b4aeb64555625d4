//! dmctl: dm(4)'s command-line tool, with two front-ends over one client ([`dmclient`]).
//!
//! * NetBSD dmctl's commands and output (`dmctl info NAME`, `dmctl load NAME [FILE]`, ...):
//!   see [`netbsd`].
//! * dmsetup's subcommands, options, table syntax and output, chosen when the program runs as
//!   `dmsetup` (the base name of `argv[0]`) or as `dmctl setup ...`: see [`dmsetup`].
//!
//! The whole program is [`run`], which takes its arguments, a transport and its three streams,
//! so that tests drive it without a daemon; `main` only chooses the transport.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod dmsetup;
pub mod netbsd;

use std::io::{Read, Write};

use dmclient::{Client, TableLine, Transport};

/// The environment variable with the block major of mapped devices.
pub const MAJOR_ENV: &str = "DM_MAJOR";

/// NetBSD's block major of dm (`sys/conf/majors`).
pub const DEFAULT_MAJOR: u32 = 169;

/// Settings taken from the environment.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Config {
    /// The block major of mapped devices, printed by dmsetup's `info` and `ls`.
    pub dm_major: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { dm_major: DEFAULT_MAJOR }
    }
}

impl Config {
    /// `DM_MAJOR` (decimal), or [`DEFAULT_MAJOR`] when it is unset or not a number.
    pub fn from_env() -> Self {
        let dm_major = std::env::var(MAJOR_ENV).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_MAJOR);
        Config { dm_major }
    }
}

/// What a command printed, collected and written out at the end.
#[derive(Default)]
pub(crate) struct Output {
    pub out: String,
    pub err: String,
}

impl Output {
    pub fn out(&mut self, s: &str) {
        self.out.push_str(s);
    }

    pub fn err(&mut self, s: &str) {
        self.err.push_str(s);
    }
}

/// Runs the program with the settings of the environment. `args[0]` is the program name.
/// Returns the exit status.
pub fn run(
    args: &[String],
    transport: &dyn Transport,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    run_with(&Config::from_env(), args, transport, stdin, stdout, stderr)
}

/// Runs the program with explicit settings.
pub fn run_with(
    config: &Config,
    args: &[String],
    transport: &dyn Transport,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let client = Client::new(transport);
    let mut output = Output::default();
    let program = args.first().map(|a| base_name(a)).unwrap_or("dmctl");
    let status = if program == "dmsetup" {
        dmsetup::main(config, &client, "dmsetup", args.get(1..).unwrap_or_default(), stdin, &mut output)
    } else if args.get(1).map(String::as_str) == Some("setup") {
        dmsetup::main(config, &client, "dmctl setup", args.get(2..).unwrap_or_default(), stdin, &mut output)
    } else {
        netbsd::main(&client, args.get(1..).unwrap_or_default(), stdin, &mut output)
    };
    let written = stdout.write_all(output.out.as_bytes()).and_then(|()| stdout.flush());
    let _ = stderr.write_all(output.err.as_bytes()).and_then(|()| stderr.flush());
    match written {
        Ok(()) => status,
        Err(_) if status != 0 => status,
        Err(_) => 1,
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Reads all of `input` as text.
pub(crate) fn read_text(input: &mut dyn Read) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The table line a driver's detail (`line N: ...`, N counting from 0) points at.
pub(crate) fn offending_line<'a>(detail: Option<&str>, lines: &'a [TableLine]) -> Option<(usize, &'a TableLine)> {
    let rest = detail?.strip_prefix("line ")?;
    let (index, _) = rest.split_once(':')?;
    let index: usize = index.parse().ok()?;
    lines.get(index).map(|line| (index, line))
}
