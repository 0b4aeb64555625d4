//! dmctl / dmsetup: chooses the transport from the environment (`DM_CONTROL`) and runs
//! [`dmctl::run`].

use std::io;
use std::process::ExitCode;

use dmclient::transport::{self, Transport, Unavailable};

fn main() -> ExitCode {
    let mut args = Vec::new();
    for arg in std::env::args_os() {
        match arg.into_string() {
            Ok(arg) => args.push(arg),
            Err(arg) => {
                eprintln!("dmctl: argument is not valid UTF-8: {}", arg.to_string_lossy());
                return ExitCode::from(2);
            }
        }
    }
    // A transport that cannot be opened is reported by the first command that needs it, so
    // that usage and help work without a driver.
    let transport: Box<dyn Transport> = match transport::from_env() {
        Ok(t) => t,
        Err(e) => Box::new(Unavailable::new(&e)),
    };
    let status =
        dmctl::run(&args, &*transport, &mut io::stdin().lock(), &mut io::stdout().lock(), &mut io::stderr().lock());
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}
