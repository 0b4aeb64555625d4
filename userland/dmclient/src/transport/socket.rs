//! dmhost's control socket.
//!
//! A Unix stream; requests go one at a time, many over one connection. Per request the client
//! writes a `u32` big-endian N, then N bytes: the request text and one NUL. The server answers
//! with an `i32` BE transport errno (0 = accepted), an `i32` BE command errno (0 = the command
//! succeeded), a `u32` BE M and M bytes: the reply text and a NUL (M = 0 when the transport
//! errno is not 0), then a `u32` BE K and K bytes of UTF-8 detail (K = 0 when there is none).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;

use super::{RawReply, Transport};

/// The largest reply text accepted, so that a broken server cannot make the client allocate
/// without bound.
pub const MAX_REPLY: u32 = 64 << 20;
/// The largest detail string accepted.
pub const MAX_DETAIL: u32 = 1 << 16;

/// A connection to dmhost's control socket.
pub struct SocketTransport {
    stream: Mutex<UnixStream>,
}

impl SocketTransport {
    pub fn connect(path: &Path) -> io::Result<Self> {
        let stream =
            UnixStream::connect(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(Self::from_stream(stream))
    }

    pub fn from_stream(stream: UnixStream) -> Self {
        SocketTransport { stream: Mutex::new(stream) }
    }
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_i32(r: &mut impl Read) -> io::Result<i32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(i32::from_be_bytes(b))
}

fn read_bytes(r: &mut impl Read, len: u32, max: u32, what: &str) -> io::Result<Vec<u8>> {
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("dmhost sent a {what} of {len} bytes (at most {max} accepted)"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

impl Transport for SocketTransport {
    fn call(&self, request: &[u8]) -> io::Result<RawReply> {
        let len = u32::try_from(request.len() + 1)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "request too large for the socket protocol"))?;
        // One exchange at a time on the connection; a panic elsewhere cannot leave the stream
        // mid-message, so a poisoned lock is still usable.
        let mut stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        let mut message = Vec::with_capacity(request.len() + 5);
        message.extend_from_slice(&len.to_be_bytes());
        message.extend_from_slice(request);
        message.push(0);
        stream.write_all(&message)?;
        stream.flush()?;

        let transport_errno = read_i32(&mut *stream)?;
        let command_errno = read_i32(&mut *stream)?;
        let reply_len = read_u32(&mut *stream)?;
        let mut bytes = read_bytes(&mut *stream, reply_len, MAX_REPLY, "reply")?;
        let detail_len = read_u32(&mut *stream)?;
        let detail = read_bytes(&mut *stream, detail_len, MAX_DETAIL, "detail")?;
        // The text ends at its NUL.
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            bytes.truncate(nul);
        }
        let detail = (!detail.is_empty()).then(|| String::from_utf8_lossy(&detail).into_owned());
        Ok(RawReply { transport_errno, command_errno: (transport_errno == 0).then_some(command_errno), bytes, detail })
    }
}
