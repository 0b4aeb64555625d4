//! NetBSD dmctl's front-end: `dmctl <command> [device name] [argument]`.
//!
//! Commands and output as NetBSD's `sbin/dmctl` prints them:
//!
//! | command | prints |
//! | --- | --- |
//! | `version` | `Library protocol version 4:0:0` / `Kernel protocol version 4:16:0` |
//! | `targets` | `Target name: NAME` / `Target version A.B.C` / blank line, per target |
//! | `create NAME` | nothing |
//! | `ls` | `Device name: NAME, device minor: N ` (trailing space) per device |
//! | `info NAME` | `Printing Device info for:` then name, uuid, minor, target count, flags (decimal) |
//! | `rename NAME NEW`, `remove NAME`, `resume NAME`, `suspend NAME` | nothing |
//! | `deps NAME` | `Device NAME dependencies ` then `major: X minor: Y` per device |
//! | `table NAME`, `status NAME` | `Getting device table for device NAME` then `%10u %10u TYPE` per line |
//! | `load NAME [FILE]`, `reload NAME [FILE]` | nothing; the table from FILE or stdin |
//!
//! Differences from NetBSD's tool, all deliberate: a failed command prints what failed and
//! why (`dmctl: info of x failed: No such device (ENOENT)`) and exits 1, where NetBSD's prints
//! the echoed request as if it had worked; argument errors exit 2 (NetBSD: 1); `reload` also
//! takes a file (NetBSD's argument check refuses one), and table text is read with dmsetup's
//! rules (blank lines and `#` comments skipped); `deps` lists every device, where NetBSD's stops
//! at a device number 0; `info` prints the flags NetBSD's kernel reports for dmctl's request
//! (SUSPEND, ACTIVE_PRESENT, INACTIVE_PRESENT), whatever the transport.

use std::io::Read;

use dmclient::{parse_table, Client, DeviceRef, Transport};

use crate::{offending_line, read_text, Output};

/// How many arguments a command takes after its name (NetBSD checks the count strictly).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Args {
    None,
    Device,
    DeviceAndName,
    DeviceAndOptionalFile,
}

struct Entry {
    name: &'static str,
    help: &'static str,
    args: Args,
}

const COMMANDS: &[Entry] = &[
    Entry { name: "version", help: "Print driver and lib version.", args: Args::None },
    Entry { name: "targets", help: "List available kernel targets.", args: Args::None },
    Entry { name: "create", help: "Create device with [dm device name].", args: Args::Device },
    Entry { name: "ls", help: "List existing dm devices.", args: Args::None },
    Entry { name: "info", help: "Get info about device with [dm device name].", args: Args::Device },
    Entry {
        name: "rename",
        help: "Rename device with [dm device name] to  [dm device new name].",
        args: Args::DeviceAndName,
    },
    Entry { name: "remove", help: "Remove device with [dm device name].", args: Args::Device },
    Entry { name: "resume", help: "Resume IO on dm device [dm device name].", args: Args::Device },
    Entry { name: "suspend", help: "Suspend IO on dm device [dm device name].", args: Args::Device },
    Entry { name: "deps", help: "Print physical dependencies for dm device [dm device name].", args: Args::Device },
    Entry {
        name: "reload",
        help: "Switch active and passive tables for device with [dm device name].",
        args: Args::DeviceAndOptionalFile,
    },
    Entry {
        name: "load",
        help: "Load a table for device with [dm device name] from [file] or stdin.",
        args: Args::DeviceAndOptionalFile,
    },
    Entry { name: "status", help: "Print status for device with [dm device name].", args: Args::Device },
    Entry { name: "table", help: "Print active table for device with [dm device name].", args: Args::Device },
    Entry { name: "setup", help: "Run a dmsetup command (dmctl setup help).", args: Args::None },
];

/// NetBSD's usage text, to stderr.
fn usage(output: &mut Output) -> i32 {
    output.err("usage: dmctl command [dm device name]\nAvailable commands are:\n ");
    for entry in COMMANDS {
        output.err(&format!("\t{}\t{}\n", entry.name, entry.help));
    }
    2
}

/// Runs one dmctl command; `args` follow the program name.
pub(crate) fn main<T: Transport>(
    client: &Client<T>,
    args: &[String],
    stdin: &mut dyn Read,
    output: &mut Output,
) -> i32 {
    let Some((command, rest)) = args.split_first() else {
        return usage(output);
    };
    let Some(entry) = COMMANDS.iter().find(|e| e.name == command) else {
        output.err(&format!("dmctl: unknown command: {command}\n"));
        return usage(output);
    };
    let count_ok = match entry.args {
        Args::None => rest.is_empty(),
        Args::Device => rest.len() == 1,
        Args::DeviceAndName => rest.len() == 2,
        Args::DeviceAndOptionalFile => matches!(rest.len(), 1 | 2),
    };
    if !count_ok {
        output.err(&format!("Insufficient number of arguments for command: {} specified\n", entry.name));
        return usage(output);
    }
    let name = rest.first().map(String::as_str).unwrap_or_default();
    let device = DeviceRef::Name(name.to_string());
    let result = match entry.name {
        "version" => {
            // NetBSD's prints the library's version before it asks the kernel.
            output.out("Library protocol version 4:0:0\n");
            client.version().map(|[a, b, c]| {
                output.out(&format!("Kernel protocol version {a}:{b}:{c}\n"));
            })
        }
        "targets" => client.targets().map(|targets| {
            for t in targets {
                let [a, b, c] = t.version;
                output.out(&format!("Target name: {}\nTarget version {a}.{b}.{c}\n\n", t.name));
            }
        }),
        "create" => client.create(name, None, false).map(drop),
        "ls" => client.names().map(|names| {
            for d in names {
                output.out(&format!("Device name: {}, device minor: {} \n", d.name, d.minor));
            }
        }),
        "info" => client.info(&device).map(|info| {
            // The flags NetBSD's kernel returns for dmctl's request, which carries none.
            let flags =
                u32::from(info.suspended) << 1 | u32::from(info.live_table) << 5 | u32::from(info.inactive_table) << 6;
            output.out("Printing Device info for:\n");
            output.out(&format!("Device name: \t\t{name}\n"));
            output.out(&format!("Device uuid: \t\t{}\n", info.uuid));
            output.out(&format!("Device minor: \t\t{}\n", info.minor));
            output.out(&format!("Device target number: \t{}\n", info.target_count));
            output.out(&format!("Device flags: \t\t{flags}\n"));
        }),
        "rename" => client.rename(&device, rest.get(1).map(String::as_str).unwrap_or_default()),
        "remove" => client.remove(&device),
        "resume" => client.resume(&device),
        "suspend" => client.suspend(&device, false),
        "deps" => client.deps(&device).map(|deps| {
            output.out(&format!("Device {name} dependencies \n"));
            for d in deps {
                output.out(&format!("major: {} minor: {}\n", d.major, d.minor));
            }
        }),
        "reload" | "load" => return load(client, &device, rest.get(1), stdin, output),
        "status" | "table" => client.table(&device, false).map(|lines| {
            output.out(&format!("Getting device table for device {name}\n"));
            for l in lines {
                output.out(&format!("{:>10} {:>10} {}\n", l.start, l.length, l.target_type));
            }
        }),
        "setup" => {
            output.err("dmctl: setup needs a dmsetup command (dmctl setup help)\n");
            return 2;
        }
        _ => return usage(output),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            output.err(&format!("dmctl: {e}\n"));
            1
        }
    }
}

/// `load NAME [FILE]`: reads the table and sends it.
fn load<T: Transport>(
    client: &Client<T>,
    device: &DeviceRef,
    file: Option<&String>,
    stdin: &mut dyn Read,
    output: &mut Output,
) -> i32 {
    let (source, text) = match file {
        Some(path) => (path.as_str(), std::fs::read_to_string(path)),
        None => ("stdin", read_text(stdin)),
    };
    let text = match text {
        Ok(text) => text,
        Err(e) => {
            output.err(&format!("dmctl: cannot read table from {source}: {e}\n"));
            return 1;
        }
    };
    let lines = match parse_table(&text) {
        Ok(lines) => lines,
        Err(e) => {
            output.err(&format!("dmctl: table from {source}: {e}\n"));
            return 1;
        }
    };
    match client.reload(device, &lines) {
        Ok(()) => 0,
        Err(e) => {
            output.err(&format!("dmctl: {e}\n"));
            if let Some((index, line)) = offending_line(e.detail(), &lines) {
                output.err(&format!("dmctl: table line {index}: {line}\n"));
            }
            1
        }
    }
}
