//! Messages to standard error, with a level filter: dmhost's own, the core's (through
//! `Platform::log`) and the NBD server's all go through the `log` facade to here.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        // One write per message so that lines of different threads do not interleave.
        let line = format!("dmhost: {level}: {}\n", record.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// The filter for a verbosity: 0 errors and warnings, 1 (`-v`) also information, 2 (`-vv`) also
/// debugging, 3 and more also tracing; -1 (`-q`) errors only.
pub fn filter(verbosity: i32) -> LevelFilter {
    match verbosity {
        i32::MIN..=-1 => LevelFilter::Error,
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

pub fn init(verbosity: i32) {
    static LOGGER: Stderr = Stderr;
    // Fails only if a logger is already set, which then keeps working.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(filter(verbosity));
}
