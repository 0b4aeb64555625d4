//! The fixed newstyle handshake: greeting, client flags, then option
//! haggling until the client picks an export (GO or EXPORT_NAME), aborts,
//! or breaks a rule and is disconnected.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::proto::*;
use crate::{Export, Exports};

/// An export opened for one connection. Dropping it calls
/// [`Exports::close`], so every successful `open` is closed exactly once,
/// whichever way the connection ends.
pub(crate) struct Opened {
    pub name: String,
    pub export: Arc<dyn Export>,
    exports: Arc<dyn Exports>,
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.exports.close(&self.name);
    }
}

/// How the handshake ended without an error.
pub(crate) enum Outcome {
    /// Enter transmission with this export.
    Transmit(Opened),
    /// The client sent NBD_OPT_ABORT.
    Aborted,
}

fn violation(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Run the handshake. An `Err` means the connection must be dropped: the
/// socket failed, or the client broke the protocol (unknown client flags,
/// bad magic, oversized option, too many options, unknown export with
/// EXPORT_NAME).
pub(crate) fn negotiate<R: Read, W: Write>(
    rd: &mut R,
    wr: &mut W,
    exports: &Arc<dyn Exports>,
    stopping: &AtomicBool,
) -> io::Result<Outcome> {
    let mut greeting = Vec::with_capacity(18);
    greeting.extend_from_slice(&NBD_MAGIC.to_be_bytes());
    greeting.extend_from_slice(&IHAVEOPT.to_be_bytes());
    greeting.extend_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    wr.write_all(&greeting)?;
    wr.flush()?;

    let client_flags = read_u32(rd)?;
    if client_flags & !KNOWN_CLIENT_FLAGS != 0 {
        return Err(violation("unknown client flags"));
    }
    let no_zeroes = client_flags & FLAG_C_NO_ZEROES != 0;

    for _ in 0..MAX_OPTIONS {
        let magic = read_u64(rd)?;
        if magic != IHAVEOPT {
            return Err(violation("bad option magic"));
        }
        let option = read_u32(rd)?;
        let len = read_u32(rd)?;
        if len > MAX_OPTION_LEN {
            return Err(violation("option payload too long"));
        }
        let mut payload = vec![0u8; len as usize];
        rd.read_exact(&mut payload)?;

        if stopping.load(Ordering::SeqCst) && option != OPT_ABORT {
            if option == OPT_EXPORT_NAME {
                return Err(violation("server shutting down"));
            }
            send(wr, option, REP_ERR_SHUTDOWN, &[])?;
            continue;
        }

        match option {
            OPT_EXPORT_NAME => {
                let name = parse_name(&payload).ok_or_else(|| violation("bad export name"))?;
                let opened = open(exports, &name).ok_or_else(|| violation("unknown export"))?;
                let mut reply = Vec::with_capacity(10 + EXPORT_NAME_PADDING);
                reply.extend_from_slice(&opened.export.size().to_be_bytes());
                reply.extend_from_slice(&transmission_flags(opened.export.read_only()).to_be_bytes());
                if !no_zeroes {
                    reply.resize(reply.len() + EXPORT_NAME_PADDING, 0);
                }
                wr.write_all(&reply)?;
                wr.flush()?;
                return Ok(Outcome::Transmit(opened));
            }
            OPT_ABORT => {
                // The client may already have closed its end; a failed
                // acknowledgement changes nothing.
                let _ = send(wr, option, REP_ACK, &[]);
                return Ok(Outcome::Aborted);
            }
            OPT_LIST => {
                if !payload.is_empty() {
                    send(wr, option, REP_ERR_INVALID, &[])?;
                    continue;
                }
                let mut replies = Vec::new();
                for name in exports.list() {
                    replies.extend(option_reply(option, REP_SERVER, &server_entry(&name)));
                }
                replies.extend(option_reply(option, REP_ACK, &[]));
                wr.write_all(&replies)?;
                wr.flush()?;
            }
            OPT_INFO | OPT_GO => {
                if let Some(opened) = info_or_go(wr, exports, option, &payload)? {
                    return Ok(Outcome::Transmit(opened));
                }
            }
            _ => send(wr, option, REP_ERR_UNSUP, &[])?,
        }
    }
    Err(violation("too many options"))
}

/// Answer NBD_OPT_INFO or NBD_OPT_GO. Returns the opened export when a GO
/// succeeded (transmission starts), `None` when haggling goes on.
fn info_or_go<W: Write>(
    wr: &mut W,
    exports: &Arc<dyn Exports>,
    option: u32,
    payload: &[u8],
) -> io::Result<Option<Opened>> {
    let req = match InfoRequest::parse(payload) {
        Ok(req) => req,
        Err(_) => {
            send(wr, option, REP_ERR_INVALID, &[])?;
            return Ok(None);
        }
    };
    let Some(name) = resolve(exports, &req.name) else {
        send(wr, option, REP_ERR_UNKNOWN, &[])?;
        return Ok(None);
    };

    let (size, read_only, opened) = if option == OPT_GO {
        match open(exports, &name) {
            Some(opened) => (opened.export.size(), opened.export.read_only(), Some(opened)),
            None => {
                send(wr, option, REP_ERR_UNKNOWN, &[])?;
                return Ok(None);
            }
        }
    } else {
        match exports.info(&name) {
            Some((size, read_only)) => (size, read_only, None),
            None => {
                send(wr, option, REP_ERR_UNKNOWN, &[])?;
                return Ok(None);
            }
        }
    };

    let mut replies = option_reply(option, REP_INFO, &info_export(size, transmission_flags(read_only)));
    if req.items.contains(&INFO_NAME) {
        replies.extend(option_reply(option, REP_INFO, &info_string(INFO_NAME, &name)));
    }
    if req.items.contains(&INFO_DESCRIPTION) {
        if let Some(text) = exports.description(&name) {
            replies.extend(option_reply(option, REP_INFO, &info_string(INFO_DESCRIPTION, &text)));
        }
    }
    // Sent whether or not it was asked for: the server enforces a 512-byte
    // minimum, which is stricter than the protocol's default of 1.
    replies.extend(option_reply(option, REP_INFO, &info_block_size()));
    replies.extend(option_reply(option, REP_ACK, &[]));
    // If this write fails, `opened` is dropped and the export closed.
    wr.write_all(&replies)?;
    wr.flush()?;
    Ok(opened)
}

/// The canonical name for what the client asked: the empty name stands for
/// the default export, if there is one.
fn resolve(exports: &Arc<dyn Exports>, name: &str) -> Option<String> {
    if name.is_empty() {
        exports.default_export()
    } else {
        Some(name.to_string())
    }
}

fn open(exports: &Arc<dyn Exports>, requested: &str) -> Option<Opened> {
    let name = resolve(exports, requested)?;
    let export = exports.open(&name)?;
    Some(Opened { name, export, exports: Arc::clone(exports) })
}

fn send<W: Write>(wr: &mut W, option: u32, reply: u32, payload: &[u8]) -> io::Result<()> {
    wr.write_all(&option_reply(option, reply, payload))?;
    wr.flush()
}

fn read_u32<R: Read>(rd: &mut R) -> io::Result<u32> {
    let mut b = [0u8; 4];
    rd.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64<R: Read>(rd: &mut R) -> io::Result<u64> {
    let mut b = [0u8; 8];
    rd.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}
