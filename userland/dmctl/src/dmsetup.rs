//! dmsetup's front-end: `dmsetup <command> [options]` (also `dmctl setup <command> ...`).
//!
//! ```text
//! create NAME [FILE] [--table TABLE] [-u|--uuid UUID] [-r|--readonly] [--notable]
//! load|reload NAME [FILE] [--table TABLE]
//! resume NAME
//! suspend [--noflush] [--nolockfs] NAME
//! remove NAME
//! info [NAME]
//! ls
//! table [--inactive] [NAME]
//! status [--inactive] [NAME]
//! deps [NAME]
//! rename NAME NEW
//! clear NAME
//! message NAME SECTOR MESSAGE...
//! wait NAME [EVENT_NR]
//! remove_all
//! targets
//! version
//! ```
//!
//! `message` sends the words of MESSAGE, joined by spaces, to the table line that contains
//! SECTOR and prints the target's answer, if any, on a line of its own. `wait` blocks until the
//! device's event counter differs from EVENT_NR (default 0), then prints the `info` block, whose
//! "Event number" is the counter now. `remove_all` removes every device that is not open.
//!
//! Options may stand anywhere on the line, as with dmsetup. `--noudevsync`, `--noudevrules`
//! and `--noopencount` are accepted and change nothing (there is no udev here).
//!
//! The table comes from `--table` (lines separated by newlines), else FILE, else stdin, in
//! dmsetup's syntax (blank lines and `#` comments skipped). `create` with a table creates the
//! device, loads the table and resumes it, and removes the device again if the load or the
//! resume fails, as libdevmapper does.
//!
//! Output is dmsetup's, byte for byte, for the same state: the `info` block (the read-ahead
//! computed as Linux's block layer sets it: 256 sectors, or twice a striped table's optimal I/O
//! size when that is more), `ls` as `name<TAB>(major:minor)`, table and status lines
//! `<start> <length> <type> <params>` with the space after the type even for empty params,
//! `targets` as `%-16s v%d.%d.%d`, `deps` as `N dependencies<TAB>: (major, minor)...`. Commands
//! over every device list them sorted by name, as Linux's kernel does. Mapped devices' major
//! is [`Config::dm_major`]. Failures print libdevmapper's messages (`device-mapper: reload
//! ioctl on NAME  failed: Invalid argument`, `Device does not exist.`) followed by the driver's
//! detail and `Command failed.`, and exit 1; argument errors exit 2.

use std::io::Read;

use clap::{Arg, ArgAction, ArgMatches};
use dmclient::{parse_table, Client, DeviceRef, Error, ErrorKind, TableEntry, TableLine, TargetSpec, Transport};

use crate::{offending_line, read_text, Config, Output};

/// Linux's default read-ahead (`VM_READAHEAD_PAGES`, 128 KiB), in sectors.
const DEFAULT_READ_AHEAD: u64 = 256;

fn command(name: &'static str) -> clap::Command {
    let device = || Arg::new("NAME").help("Device name").required(true);
    let all_or_device = || Arg::new("NAME").help("Device name (every device when absent)");
    let file = || Arg::new("FILE").help("Table file (stdin when absent and no --table)");
    let flag =
        |id: &'static str, help: &'static str| Arg::new(id).long(id).help(help).action(ArgAction::SetTrue).global(true);
    clap::Command::new(name)
        .bin_name(name)
        .about("dm(4) control, with dmsetup's commands and table syntax")
        .disable_version_flag(true)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(Arg::new("table").long("table").value_name("TABLE").help("The table, one line per target").global(true))
        .arg(Arg::new("uuid").short('u').long("uuid").value_name("UUID").help("UUID of a new device").global(true))
        .arg(flag("readonly", "Create a read-only device").short('r'))
        .arg(flag("notable", "Create the device without loading a table"))
        .arg(flag("inactive", "Show the inactive table"))
        .arg(flag("noflush", "Suspend without flushing queued I/O"))
        .arg(flag("nolockfs", "Accepted; there is no file system to freeze"))
        .arg(flag("noudevsync", "Accepted; there is no udev").hide(true))
        .arg(flag("noudevrules", "Accepted; there is no udev").hide(true))
        .arg(flag("noopencount", "Accepted; the open count is always read").hide(true))
        .subcommand(
            clap::Command::new("create")
                .about("Create a device, load its table and resume it")
                .arg(device())
                .arg(file()),
        )
        .subcommand(
            clap::Command::new("load")
                .visible_alias("reload")
                .about("Load a table into the inactive slot")
                .arg(device())
                .arg(file()),
        )
        .subcommand(clap::Command::new("resume").about("Make the loaded table live, end a suspension").arg(device()))
        .subcommand(clap::Command::new("suspend").about("Suspend I/O").arg(device()))
        .subcommand(clap::Command::new("remove").about("Remove a device").arg(device()))
        .subcommand(clap::Command::new("info").about("Show device state").arg(all_or_device()))
        .subcommand(clap::Command::new("ls").about("List devices"))
        .subcommand(clap::Command::new("table").about("Show table lines").arg(all_or_device()))
        .subcommand(clap::Command::new("status").about("Show status lines").arg(all_or_device()))
        .subcommand(clap::Command::new("deps").about("Show lower devices").arg(all_or_device()))
        .subcommand(
            clap::Command::new("rename")
                .about("Rename a device")
                .arg(device())
                .arg(Arg::new("NEW").help("New name").required(true)),
        )
        .subcommand(clap::Command::new("clear").about("Drop the inactive table").arg(device()))
        .subcommand(
            clap::Command::new("message")
                .about("Send a message to the target at a sector")
                .arg(device())
                .arg(Arg::new("SECTOR").help("A sector of the table line to send it to").required(true))
                .arg(
                    Arg::new("MESSAGE")
                        .help("The message's words")
                        .required(true)
                        .num_args(1..)
                        .allow_hyphen_values(true)
                        .trailing_var_arg(true),
                ),
        )
        .subcommand(
            clap::Command::new("wait")
                .about("Wait until the event number differs from EVENT_NR, then show the device")
                .arg(device())
                .arg(Arg::new("EVENT_NR").help("The last event number seen (default 0)")),
        )
        .subcommand(clap::Command::new("remove_all").about("Remove every device that is not open"))
        .subcommand(clap::Command::new("targets").about("List target types"))
        .subcommand(clap::Command::new("version").about("Show versions"))
}

/// Runs one dmsetup command; `args` follow the program name (`program`).
pub(crate) fn main<T: Transport>(
    config: &Config,
    client: &Client<T>,
    program: &'static str,
    args: &[String],
    stdin: &mut dyn Read,
    output: &mut Output,
) -> i32 {
    let argv = std::iter::once(program.to_string()).chain(args.iter().cloned());
    let matches = match command(program).try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let text = e.render().to_string();
            return if e.use_stderr() {
                output.err(&text);
                2
            } else {
                output.out(&text);
                0
            };
        }
    };
    let Some((sub, m)) = matches.subcommand() else {
        return 2;
    };
    let mut session = Session { config, client, output };
    let ok = match sub {
        "create" => session.create(m, stdin),
        "load" => session.load(m, stdin),
        "resume" => session.simple("resume", m, |c, d| c.resume(d)),
        "suspend" => {
            let noflush = flag(m, "noflush");
            session.simple("suspend", m, |c, d| c.suspend(d, noflush))
        }
        "remove" => session.simple("remove", m, |c, d| c.remove(d)),
        "clear" => session.simple("clear", m, |c, d| c.clear(d)),
        "rename" => {
            let new = opt(m, "NEW").unwrap_or_default();
            session.simple("rename", m, |c, d| c.rename(d, &new))
        }
        "info" => session.each_device(m, Session::info),
        "ls" => session.ls(),
        "table" => {
            let inactive = flag(m, "inactive");
            session.each_device(m, |s, name, prefix| s.lines(name, prefix, true, inactive))
        }
        "status" => {
            let inactive = flag(m, "inactive");
            session.each_device(m, |s, name, prefix| s.lines(name, prefix, false, inactive))
        }
        "deps" => session.each_device(m, Session::deps),
        "message" => session.message(m),
        "wait" => session.wait(m),
        "remove_all" => session.remove_all(),
        "targets" => session.targets(),
        "version" => session.version(),
        _ => return 2,
    };
    if ok {
        0
    } else {
        session.output.err("Command failed.\n");
        1
    }
}

struct Session<'a, T: Transport> {
    config: &'a Config,
    client: &'a Client<T>,
    output: &'a mut Output,
}

/// An option's or argument's value (clap's `get_one` would panic on an id a subcommand lacks).
fn opt(m: &ArgMatches, id: &str) -> Option<String> {
    m.try_get_one::<String>(id).ok().flatten().cloned()
}

fn flag(m: &ArgMatches, id: &str) -> bool {
    m.try_get_one::<bool>(id).ok().flatten().copied().unwrap_or(false)
}

fn name_of(m: &ArgMatches) -> String {
    opt(m, "NAME").unwrap_or_default()
}

impl<T: Transport> Session<'_, T> {
    /// libdevmapper's message for a failed ioctl, then what the driver said.
    fn ioctl_error(
        &mut self,
        command: &str,
        name: &str,
        uuid: &str,
        minor: Option<u32>,
        e: &Error,
        lines: &[TableLine],
    ) {
        let dev = minor.map(|m| format!("({}:{m})", self.config.dm_major)).unwrap_or_default();
        match &e.kind {
            ErrorKind::Io(io) => {
                self.output.err(&format!("{io}\nFailure to communicate with kernel device-mapper driver.\n"));
            }
            ErrorKind::Reply(why) => {
                self.output.err(&format!("device-mapper: {command} ioctl on {name} {uuid}{dev} failed: {why}\n"));
            }
            ErrorKind::Command { .. } | ErrorKind::Transport(_) => {
                let meaning = e.meaning().unwrap_or_default();
                self.output.err(&format!("device-mapper: {command} ioctl on {name} {uuid}{dev} failed: {meaning}\n"));
                if let Some(detail) = e.detail() {
                    self.output.err(&format!("device-mapper: {command}: {detail}\n"));
                }
                if let Some((index, line)) = offending_line(e.detail(), lines) {
                    self.output.err(&format!("device-mapper: {command}: table line {index}: {line}\n"));
                }
            }
        }
    }

    /// A command with no output: resume, suspend, remove, clear, rename.
    fn simple(
        &mut self,
        command: &str,
        m: &ArgMatches,
        f: impl FnOnce(&Client<T>, &DeviceRef) -> dmclient::Result<()>,
    ) -> bool {
        let name = name_of(m);
        match f(self.client, &DeviceRef::Name(name.clone())) {
            Ok(()) => true,
            Err(e) => {
                self.ioctl_error(command, &name, "", None, &e, &[]);
                false
            }
        }
    }

    /// The table of `create` and `load`: `--table`, FILE, or stdin.
    fn table_lines(&mut self, m: &ArgMatches, stdin: &mut dyn Read) -> Option<Vec<TableLine>> {
        let (source, text) = if let Some(table) = opt(m, "table") {
            ("given with --table".to_string(), Ok(table))
        } else if let Some(file) = opt(m, "FILE") {
            let text = std::fs::read_to_string(&file);
            if let Err(e) = &text {
                self.output.err(&format!("Couldn't open '{file}' for reading: {e}.\n"));
                return None;
            }
            (format!("'{file}'"), text)
        } else {
            ("on stdin".to_string(), read_text(stdin))
        };
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                self.output.err(&format!("Couldn't read the table {source}: {e}.\n"));
                return None;
            }
        };
        match parse_table(&text) {
            Ok(lines) => Some(lines),
            Err(e) => {
                self.output.err(&format!(
                    "Invalid format on line {} of table {source}, column {}: {}: {:?}\n",
                    e.line, e.column, e.reason, e.text
                ));
                None
            }
        }
    }

    fn create(&mut self, m: &ArgMatches, stdin: &mut dyn Read) -> bool {
        let name = name_of(m);
        let uuid = opt(m, "uuid");
        let lines = if flag(m, "notable") {
            Vec::new()
        } else {
            match self.table_lines(m, stdin) {
                Some(lines) => lines,
                None => return false,
            }
        };
        let uuid_text = uuid.clone().unwrap_or_default();
        let created = match self.client.create(&name, uuid.as_deref(), flag(m, "readonly")) {
            Ok(created) => created,
            Err(e) => {
                self.ioctl_error("create", &name, &uuid_text, None, &e, &[]);
                return false;
            }
        };
        if lines.is_empty() {
            return true;
        }
        let device = DeviceRef::Name(name.clone());
        let step = match self.client.reload(&device, &lines) {
            Ok(()) => self.client.resume(&device).map_err(|e| ("resume", e)),
            Err(e) => Err(("reload", e)),
        };
        match step {
            Ok(()) => true,
            Err((command, e)) => {
                self.ioctl_error(command, &name, &uuid_text, Some(created.minor), &e, &lines);
                // libdevmapper removes the device it could not load or resume.
                let _ = self.client.remove(&device);
                false
            }
        }
    }

    fn load(&mut self, m: &ArgMatches, stdin: &mut dyn Read) -> bool {
        let name = name_of(m);
        let Some(lines) = self.table_lines(m, stdin) else {
            return false;
        };
        match self.client.reload(&DeviceRef::Name(name.clone()), &lines) {
            Ok(()) => true,
            Err(e) => {
                self.ioctl_error("reload", &name, "", None, &e, &lines);
                false
            }
        }
    }

    /// Every device's name, sorted as Linux's kernel lists them.
    fn sorted_names(&mut self) -> Option<Vec<String>> {
        match self.client.names() {
            Ok(names) => {
                let mut names: Vec<String> = names.into_iter().map(|d| d.name).collect();
                names.sort();
                Some(names)
            }
            Err(e) => {
                self.ioctl_error("names", "", "", None, &e, &[]);
                None
            }
        }
    }

    /// Runs `f` for the named device, or for every device with its name as prefix.
    fn each_device(&mut self, m: &ArgMatches, f: impl Fn(&mut Self, &str, bool) -> bool) -> bool {
        if let Some(name) = opt(m, "NAME") {
            return f(self, &name, false);
        }
        let Some(names) = self.sorted_names() else {
            return false;
        };
        if names.is_empty() {
            self.output.out("No devices found\n");
            return true;
        }
        let mut ok = true;
        for name in names {
            ok &= f(self, &name, true);
        }
        ok
    }

    /// Reports a failed query: `Device does not exist.` for a missing device.
    fn query_error(&mut self, command: &str, name: &str, e: &Error) {
        if e.is_not_found() {
            self.output.err("Device does not exist.\n");
        } else {
            self.ioctl_error(command, name, "", None, e, &[]);
        }
    }

    fn info(&mut self, name: &str, _multiple: bool) -> bool {
        let device = DeviceRef::Name(name.to_string());
        let info = match self.client.info(&device) {
            Ok(info) => info,
            Err(e) => {
                self.query_error("info", name, &e);
                return false;
            }
        };
        self.print_info(name, &info);
        true
    }

    /// `message NAME SECTOR MESSAGE...`: the answer, if any, on a line of its own.
    fn message(&mut self, m: &ArgMatches) -> bool {
        let name = name_of(m);
        let sector_text = opt(m, "SECTOR").unwrap_or_default();
        let Some(sector) = parse_decimal(&sector_text) else {
            self.output.err(&format!("Invalid sector: {sector_text}\n"));
            return false;
        };
        let words: Vec<String> =
            m.try_get_many::<String>("MESSAGE").ok().flatten().map(|w| w.cloned().collect()).unwrap_or_default();
        match self.client.message(&DeviceRef::Name(name.clone()), sector, &words.join(" ")) {
            Ok(Some(answer)) if !answer.is_empty() => {
                self.output.out(&answer);
                if !answer.ends_with('\n') {
                    self.output.out("\n");
                }
                true
            }
            Ok(_) => true,
            Err(e) => {
                self.ioctl_error("message", &name, "", None, &e, &[]);
                false
            }
        }
    }

    /// `wait NAME [EVENT_NR]`: blocks in the driver, then prints the `info` block.
    fn wait(&mut self, m: &ArgMatches) -> bool {
        let name = name_of(m);
        let event_nr = match opt(m, "EVENT_NR") {
            None => 0,
            Some(text) => match parse_decimal(&text).and_then(|n| u32::try_from(n).ok()) {
                Some(n) => n,
                None => {
                    self.output.err(&format!("Invalid event number: {text}\n"));
                    return false;
                }
            },
        };
        match self.client.wait_event(&DeviceRef::Name(name.clone()), event_nr) {
            Ok(info) => {
                self.print_info(&name, &info);
                true
            }
            Err(e) => {
                self.query_error("waitevent", &name, &e);
                false
            }
        }
    }

    /// `remove_all`: no output; devices still open stay.
    fn remove_all(&mut self) -> bool {
        match self.client.remove_all() {
            Ok(()) => true,
            Err(e) => {
                self.ioctl_error("remove_all", "", "", None, &e, &[]);
                false
            }
        }
    }

    /// The `info` block of a device.
    fn print_info(&mut self, name: &str, info: &dmclient::DeviceInfo) {
        let device = DeviceRef::Name(name.to_string());
        let read_ahead = if info.live_table {
            self.client.table(&device, false).ok().map(|t| read_ahead(&t))
        } else {
            Some(DEFAULT_READ_AHEAD)
        };
        let mut s = format!("Name:              {name}\n");
        let state = if info.suspended { "SUSPENDED" } else { "ACTIVE" };
        let ro = if info.read_only { " (READ-ONLY)" } else { "" };
        s.push_str(&format!("State:             {state}{ro}\n"));
        if let Some(ra) = read_ahead {
            s.push_str(&format!("Read Ahead:        {ra}\n"));
        }
        let tables = match (info.live_table, info.inactive_table) {
            (false, false) => "None",
            (true, false) => "LIVE",
            (false, true) => "INACTIVE",
            (true, true) => "LIVE & INACTIVE",
        };
        s.push_str(&format!("Tables present:    {tables}\n"));
        s.push_str(&format!("Open count:        {}\n", info.open_count));
        s.push_str(&format!("Event number:      {}\n", info.event_nr));
        s.push_str(&format!("Major, minor:      {}, {}\n", self.config.dm_major, info.minor));
        s.push_str(&format!("Number of targets: {}\n", info.target_count));
        if !info.uuid.is_empty() {
            s.push_str(&format!("UUID: {}\n", info.uuid));
        }
        s.push('\n');
        self.output.out(&s);
    }

    fn lines(&mut self, name: &str, prefix: bool, table: bool, inactive: bool) -> bool {
        let device = DeviceRef::Name(name.to_string());
        let (command, result) = if table {
            ("table", self.client.table(&device, inactive))
        } else {
            ("status", self.client.status(&device, inactive))
        };
        let entries = match result {
            Ok(entries) => entries,
            Err(e) => {
                self.query_error(command, name, &e);
                return false;
            }
        };
        let prefix = if prefix { format!("{name}: ") } else { String::new() };
        if entries.is_empty() {
            self.output.out(&format!("{prefix}\n"));
        }
        for entry in entries {
            self.output.out(&format!("{prefix}{entry}\n"));
        }
        true
    }

    fn deps(&mut self, name: &str, prefix: bool) -> bool {
        let deps = match self.client.deps(&DeviceRef::Name(name.to_string())) {
            Ok(deps) => deps,
            // dmsetup prints this one on stdout and succeeds.
            Err(e) if e.is_not_found() => {
                self.output.out("Device does not exist.\n");
                return true;
            }
            Err(e) => {
                self.ioctl_error("deps", name, "", None, &e, &[]);
                return false;
            }
        };
        let mut s = if prefix { format!("{name}: ") } else { String::new() };
        s.push_str(&format!("{} dependencies\t:", deps.len()));
        for d in deps {
            s.push_str(&format!(" ({}, {})", d.major, d.minor));
        }
        s.push('\n');
        self.output.out(&s);
        true
    }

    fn ls(&mut self) -> bool {
        let Some(names) = self.client.names().map_err(|e| self.ioctl_error("names", "", "", None, &e, &[])).ok() else {
            return false;
        };
        let mut names = names;
        names.sort_by(|a, b| a.name.cmp(&b.name));
        if names.is_empty() {
            self.output.out("No devices found\n");
        }
        for d in names {
            self.output.out(&format!("{}\t({}:{})\n", d.name, self.config.dm_major, d.minor));
        }
        true
    }

    fn targets(&mut self) -> bool {
        match self.client.targets() {
            Ok(targets) => {
                for t in targets {
                    let [a, b, c] = t.version;
                    self.output.out(&format!("{:<16} v{a}.{b}.{c}\n", t.name));
                }
                true
            }
            Err(e) => {
                self.ioctl_error("versions", "", "", None, &e, &[]);
                false
            }
        }
    }

    fn version(&mut self) -> bool {
        self.output.out(&format!("Library version:   {} (dmctl)\n", env!("CARGO_PKG_VERSION")));
        match self.client.version() {
            Ok([a, b, c]) => {
                self.output.out(&format!("Driver version:    {a}.{b}.{c}\n"));
                true
            }
            Err(e) => {
                self.ioctl_error("version", "", "", None, &e, &[]);
                false
            }
        }
    }
}

/// The read-ahead Linux gives a mapped device, in sectors: twice its optimal I/O size
/// (`io_opt`, the least common multiple over the table's targets; a striped target's is its
/// chunk times its stripes), in whole pages, and at least 256 (`disk_update_readahead`).
pub fn read_ahead(table: &[TableEntry]) -> u64 {
    let mut io_opt: u64 = 0;
    for entry in table {
        if let TargetSpec::Striped { chunk, stripes } = entry.to_line().target {
            let width = chunk.saturating_mul(stripes.len() as u64);
            io_opt = lcm_not_zero(io_opt, width);
        }
    }
    // ra_pages = io_opt * 2 / PAGE_SIZE; shown in 512-byte sectors.
    let pages = io_opt.saturating_mul(512).saturating_mul(2) / 4096;
    pages.saturating_mul(8).max(DEFAULT_READ_AHEAD)
}

/// A decimal number as dmsetup reads a sector or an event number: digits only.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn lcm_not_zero(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => (a / gcd(a, b)).saturating_mul(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(lines: &[&str]) -> Vec<TableEntry> {
        lines
            .iter()
            .map(|l| {
                let line: TableLine = l.parse().unwrap();
                TableEntry {
                    start: line.start,
                    length: line.length,
                    target_type: line.target_type().to_string(),
                    params: line.params(),
                }
            })
            .collect()
    }

    /// The values of the Linux transcripts (02-striped: st2 512, st3 384, st3b 256).
    #[test]
    fn read_ahead_follows_linux() {
        assert_eq!(read_ahead(&[]), 256);
        assert_eq!(read_ahead(&table(&["0 8 linear 254:0 0", "8 8 zero"])), 256);
        assert_eq!(read_ahead(&table(&["0 16384 striped 2 128 254:0 0 254:16 0"])), 512);
        assert_eq!(read_ahead(&table(&["0 12288 striped 3 64 254:0 0 254:16 2048 254:32 4096"])), 384);
        assert_eq!(read_ahead(&table(&["0 24 striped 3 8 254:0 8192 254:16 8192 254:32 8192"])), 256);
        // Two striped lines: the least common multiple of their widths (256 and 192 -> 768).
        let two =
            table(&["0 16384 striped 2 128 254:0 0 254:16 0", "16384 12288 striped 3 64 254:0 0 254:16 0 254:32 0"]);
        assert_eq!(read_ahead(&two), 1536);
        // Widths that are not whole pages are rounded down to pages.
        assert_eq!(read_ahead(&table(&["0 300 striped 3 100 254:0 0 254:16 0 254:32 0"])), 600);
        assert_eq!(read_ahead(&table(&["0 303 striped 3 101 254:0 0 254:16 0 254:32 0"])), 600);
        // Absurd sizes saturate instead of overflowing.
        assert!(read_ahead(&table(&["0 18446744073709551615 striped 1 18446744073709551615 254:0 0"])) > 256);
    }
}
