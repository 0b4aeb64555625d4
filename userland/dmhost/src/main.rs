//! dmhost: the device-mapper core in user space.
//!
//! Image files and block devices given on the command line are the lower devices; mapped
//! devices are managed through a control socket that speaks NetBSD's dm(4) protocol; every
//! mapped device with an active table is exported over NBD under its name. `dmhost --help`
//! describes the command line.
//!
//! # Control socket wire format
//!
//! A stream Unix socket (`--control PATH`, mode 0600). Every peer that can connect is the
//! socket's owner or root and is treated as privileged. A connection carries any number of
//! exchanges, one at a time: the client sends one request frame and reads one reply frame
//! before sending the next. All integers are big-endian.
//!
//! Request frame:
//!
//! | field | size | meaning |
//! |-------|------|---------|
//! | `N`   | u32  | length of what follows |
//! | text  | `N`  | the request dictionary (proplib XML) followed by one NUL byte, as NetBSD's `pref_len` counts it |
//!
//! `N` must satisfy `0 < N < 131072` ([`dmcore::control::MAX_REQUEST_LEN`]). For `N = 0` the
//! server answers a reply frame with transport errno `EINVAL` (22), for `N >= 131072` one with
//! `E2BIG` (7), and closes the connection without reading further, so it never reads an
//! unbounded amount. The text is parsed up to its first NUL.
//!
//! Reply frame:
//!
//! | field       | size | meaning |
//! |-------------|------|---------|
//! | transport   | i32  | 0 when the request was accepted; otherwise the errno an ioctl would have failed with (`EIO` 5 for text that does not parse or fails the version check, `E2BIG` 7, `EINVAL` 22) |
//! | command     | i32  | the command's own result ([`dmcore::Reply::command_result`]): 0 for success, otherwise its errno (NetBSD's driver swallows it; here it is reported). 0 when transport is not 0 |
//! | `M`         | u32  | length of the reply text; 0 when transport is not 0 |
//! | reply       | `M`  | the reply dictionary (proplib XML) followed by one NUL byte |
//! | `K`         | u32  | length of the detail; 0 when there is none |
//! | detail      | `K`  | UTF-8 text ([`dmcore::Reply::detail`]), e.g. `line 0: linear: Invalid argument count` |
//!
//! Errno values are the core's, which are NetBSD's numbers. A request with a bad `N`, a
//! connection closed in the middle of a frame, or a transport error of a well-framed request
//! affects only that connection (the last not even that: the connection stays usable).
//!
//! # Structure
//!
//! * [`platform`]: `HostPlatform`, the std implementation of the core's `Platform` trait.
//! * [`buffer`]: the range-locked request buffer that lets I/O threads fill one buffer at once.
//! * [`queue`]: the I/O pool, the worker pool and the timer.
//! * [`control`]: the control socket.
//! * [`modules`]: target modules (dmtarget.h shared objects), loaded, registered, autoloaded.
//! * [`export`]: the NBD exports (the NBD protocol itself is the `dm-nbd` crate).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod buffer;
mod cli;
mod control;
mod export;
mod logger;
mod modules;
mod platform;
mod queue;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::{Cmd, Config};
use crate::control::{bind_private, claim_socket_path, ControlServer};
use crate::modules::Modules;
use crate::platform::{DiskFile, HostPlatform, Threads};

fn main() -> ExitCode {
    let cmd = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cmd) => cmd,
        Err(msg) => {
            eprintln!("dmhost: {msg}\nTry 'dmhost --help'.");
            return ExitCode::from(2);
        }
    };
    let config = match cmd {
        Cmd::Help => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Cmd::Version => {
            println!("dmhost {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Cmd::Run(config) => config,
    };
    logger::init(config.verbosity);
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            log::error!("{msg}");
            ExitCode::from(1)
        }
    }
}

fn context(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> String {
    move |e| format!("{what}: {e}")
}

fn run(config: &Config) -> Result<(), String> {
    let numbered = cli::assign_numbers(&config.disks)?;
    let tcp = config.nbd_tcp.as_deref().map(|spec| cli::tcp_addrs(spec, config.nbd_tcp_any)).transpose()?;
    let mut disks = Vec::with_capacity(numbered.len());
    for (path, dev) in numbered {
        let disk = DiskFile::open(&path, dev).map_err(context(format_args!("--disk {path}")))?;
        log::info!(
            "disk {} = {dev}: {} sectors{}",
            disk.path,
            disk.sectors,
            if disk.read_only { ", read-only" } else { "" }
        );
        if disk.read_only {
            log::warn!("{path} is not writable: using it read-only");
        }
        disks.push(disk);
    }
    claim_socket_path(&config.control).map_err(|e| e.to_string())?;
    if let Some(path) = &config.nbd_socket {
        claim_socket_path(path).map_err(|e| e.to_string())?;
    }
    // Installed before anything listens, so that a signal after the ready line always leads to
    // a clean shutdown.
    let mut signals = Signals::new([SIGTERM, SIGINT]).map_err(context("cannot install signal handlers"))?;

    let threads = Threads { io: config.io_threads, workers: config.workers };
    let (core, platform) = HostPlatform::new_core(disks, threads).map_err(context("cannot start threads"))?;
    for name in &config.without_targets {
        core.targets().unregister(name).map_err(|e| format!("--without-target {name}: {e}"))?;
        log::info!("built-in target {name} unregistered");
    }
    let modules = Modules::new(&core, config.module_dir.clone());
    for path in &config.target_modules {
        modules.load(path).map_err(|(_, why)| format!("--target-module: {why}"))?;
    }
    let autoload = Arc::downgrade(&modules);
    platform.set_autoload(Box::new(move |name| autoload.upgrade().is_some_and(|m| m.autoload(name))));
    let mut control = ControlServer::start(&config.control, Arc::clone(&core), Arc::clone(&modules))
        .map_err(context(format_args!("--control {}", config.control.display())))?;

    let mut ready = format!("dmhost ready control={}", config.control.display());
    let nbd = if config.nbd_socket.is_some() || tcp.is_some() {
        let server = dm_nbd::Server::new(export::DmExports::new(Arc::clone(&core)));
        if let Some(path) = &config.nbd_socket {
            bind_private(path, || server.listen_unix(path))
                .map_err(context(format_args!("--nbd-socket {}", path.display())))?;
            ready.push_str(&format!(" nbd-unix={}", path.display()));
        }
        if let Some(addrs) = &tcp {
            let bound = server.listen_tcp(addrs.as_slice()).map_err(context("--nbd-tcp"))?;
            ready.push_str(&format!(" nbd-tcp={bound}"));
        }
        Some(server)
    } else {
        log::warn!("no --nbd-socket or --nbd-tcp: mapped devices are not exported");
        None
    };
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{ready}");
        let _ = out.flush();
    }
    log::info!("{ready}");

    let signal = signals.forever().next();
    log::info!("signal {}: shutting down", signal.unwrap_or(0));
    shutdown(&mut control, &platform, nbd, config.nbd_socket.as_deref());
    modules.unload_all();
    drop(core);
    Ok(())
}

/// Stops accepting, fails requests parked on suspended devices, lets the NBD requests in flight
/// finish, makes every lower file durable and removes the sockets.
fn shutdown(
    control: &mut ControlServer,
    platform: &HostPlatform,
    nbd: Option<dm_nbd::Server>,
    nbd_socket: Option<&Path>,
) {
    control.stop();
    platform.stop();
    if let Some(server) = nbd {
        server.shutdown();
    }
    platform.sync_all();
    if let Some(path) = nbd_socket {
        // The NBD server removes its socket when its acceptor ends; make sure.
        let _ = std::fs::remove_file(path);
    }
    log::info!("stopped");
}
