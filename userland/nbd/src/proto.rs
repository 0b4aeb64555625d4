//! Wire format of the NBD protocol: magic numbers, flag and code values,
//! size limits, and the few fixed-layout messages this server reads or
//! writes.
//!
//! Every multi-byte field on the wire is big-endian. Parsing never panics:
//! variable-length payloads are read through [`Cursor`], whose accessors
//! return `None` when the input runs out.

use std::fmt;
use std::io;

// ---------------------------------------------------------------------------
// Magic numbers
// ---------------------------------------------------------------------------

/// First eight bytes the server sends: ASCII "NBDMAGIC".
pub const NBD_MAGIC: u64 = 0x4e42_444d_4147_4943;
/// Second eight bytes of the greeting, and the prefix of every option the
/// client sends: ASCII "IHAVEOPT".
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
/// Prefix of every option reply in the fixed newstyle handshake.
pub const OPTION_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// Prefix of every transmission request.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// Prefix of every simple reply.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

// ---------------------------------------------------------------------------
// Handshake flags (server, 16 bits) and client flags (32 bits)
// ---------------------------------------------------------------------------

/// Server handshake flag: fixed newstyle negotiation is supported.
pub const FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
/// Server handshake flag: the client may ask to omit the 124 zero bytes.
pub const FLAG_NO_ZEROES: u16 = 1 << 1;
/// Client flag: the client speaks fixed newstyle.
pub const FLAG_C_FIXED_NEWSTYLE: u32 = 1 << 0;
/// Client flag: do not send the 124 zero bytes after `NBD_OPT_EXPORT_NAME`.
pub const FLAG_C_NO_ZEROES: u32 = 1 << 1;
/// Every client flag this server understands; any other bit ends the
/// connection.
pub const KNOWN_CLIENT_FLAGS: u32 = FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES;

// ---------------------------------------------------------------------------
// Transmission flags (16 bits)
// ---------------------------------------------------------------------------

pub const TFLAG_HAS_FLAGS: u16 = 1 << 0;
pub const TFLAG_READ_ONLY: u16 = 1 << 1;
pub const TFLAG_SEND_FLUSH: u16 = 1 << 2;
pub const TFLAG_SEND_FUA: u16 = 1 << 3;
pub const TFLAG_ROTATIONAL: u16 = 1 << 4;
pub const TFLAG_SEND_TRIM: u16 = 1 << 5;
pub const TFLAG_SEND_WRITE_ZEROES: u16 = 1 << 6;
pub const TFLAG_SEND_DF: u16 = 1 << 7;
pub const TFLAG_CAN_MULTI_CONN: u16 = 1 << 8;

/// The transmission flags this server announces for an export.
pub fn transmission_flags(read_only: bool) -> u16 {
    let mut flags = TFLAG_HAS_FLAGS
        | TFLAG_SEND_FLUSH
        | TFLAG_SEND_FUA
        | TFLAG_SEND_TRIM
        | TFLAG_SEND_WRITE_ZEROES
        | TFLAG_CAN_MULTI_CONN;
    if read_only {
        flags |= TFLAG_READ_ONLY;
    }
    flags
}

// ---------------------------------------------------------------------------
// Options (client, during the handshake)
// ---------------------------------------------------------------------------

pub const OPT_EXPORT_NAME: u32 = 1;
pub const OPT_ABORT: u32 = 2;
pub const OPT_LIST: u32 = 3;
pub const OPT_STARTTLS: u32 = 5;
pub const OPT_INFO: u32 = 6;
pub const OPT_GO: u32 = 7;
pub const OPT_STRUCTURED_REPLY: u32 = 8;
pub const OPT_LIST_META_CONTEXT: u32 = 9;
pub const OPT_SET_META_CONTEXT: u32 = 10;
pub const OPT_EXTENDED_HEADERS: u32 = 11;

// ---------------------------------------------------------------------------
// Option reply types (server)
// ---------------------------------------------------------------------------

pub const REP_ACK: u32 = 1;
pub const REP_SERVER: u32 = 2;
pub const REP_INFO: u32 = 3;
const REP_ERR: u32 = 1 << 31;
pub const REP_ERR_UNSUP: u32 = REP_ERR | 1;
pub const REP_ERR_POLICY: u32 = REP_ERR | 2;
pub const REP_ERR_INVALID: u32 = REP_ERR | 3;
pub const REP_ERR_PLATFORM: u32 = REP_ERR | 4;
pub const REP_ERR_TLS_REQD: u32 = REP_ERR | 5;
pub const REP_ERR_UNKNOWN: u32 = REP_ERR | 6;
pub const REP_ERR_SHUTDOWN: u32 = REP_ERR | 7;
pub const REP_ERR_BLOCK_SIZE_REQD: u32 = REP_ERR | 8;
pub const REP_ERR_TOO_BIG: u32 = REP_ERR | 9;

// ---------------------------------------------------------------------------
// Information items of NBD_OPT_INFO / NBD_OPT_GO
// ---------------------------------------------------------------------------

pub const INFO_EXPORT: u16 = 0;
pub const INFO_NAME: u16 = 1;
pub const INFO_DESCRIPTION: u16 = 2;
pub const INFO_BLOCK_SIZE: u16 = 3;

// ---------------------------------------------------------------------------
// Commands and command flags (transmission)
// ---------------------------------------------------------------------------

pub const CMD_READ: u16 = 0;
pub const CMD_WRITE: u16 = 1;
pub const CMD_DISC: u16 = 2;
pub const CMD_FLUSH: u16 = 3;
pub const CMD_TRIM: u16 = 4;
pub const CMD_CACHE: u16 = 5;
pub const CMD_WRITE_ZEROES: u16 = 6;
pub const CMD_BLOCK_STATUS: u16 = 7;

pub const CMD_FLAG_FUA: u16 = 1 << 0;
pub const CMD_FLAG_NO_HOLE: u16 = 1 << 1;
/// Command flags accepted on any command; other bits are answered EINVAL.
/// (FUA must be accepted everywhere once SEND_FUA is announced; NO_HOLE
/// only means something to WRITE_ZEROES and is ignored elsewhere.)
pub const KNOWN_CMD_FLAGS: u16 = CMD_FLAG_FUA | CMD_FLAG_NO_HOLE;

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

/// Advertised minimum block size: offsets and lengths must be multiples.
pub const MIN_BLOCK_SIZE: u32 = 512;
/// Advertised preferred block size.
pub const PREFERRED_BLOCK_SIZE: u32 = 4096;
/// Advertised maximum payload (READ and WRITE length): 32 MiB.
pub const MAX_PAYLOAD: u32 = 32 << 20;
/// Longest export name accepted (the protocol's own upper bound for strings).
pub const MAX_NAME_LEN: usize = 4096;
/// Longest option payload read during the handshake: a maximal name plus
/// room for the fixed fields and information requests of INFO/GO. A longer
/// option ends the connection.
pub const MAX_OPTION_LEN: u32 = (MAX_NAME_LEN as u32) + 4096;
/// Options accepted on one connection before it is cut off.
pub const MAX_OPTIONS: usize = 64;
/// Bytes of zero padding after the NBD_OPT_EXPORT_NAME reply (unless the
/// client negotiated NO_ZEROES).
pub const EXPORT_NAME_PADDING: usize = 124;

/// Size of a transmission request header.
pub const REQUEST_LEN: usize = 28;
/// Size of a simple reply header.
pub const SIMPLE_REPLY_LEN: usize = 16;

// ---------------------------------------------------------------------------
// Error numbers on the wire
// ---------------------------------------------------------------------------

/// An error number as NBD puts it on the wire.
///
/// These are NBD's own values (they match Linux's errno numbers), not the
/// host's: an export running on NetBSD still answers `EINVAL` as 22.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Errno {
    /// Operation not permitted (writing a read-only export).
    Perm = 1,
    /// Input/output error.
    Io = 5,
    /// Out of memory.
    NoMem = 12,
    /// Invalid argument (misaligned, out of range, unknown command).
    Inval = 22,
    /// No space left on the device.
    NoSpc = 28,
    /// Value too large.
    Overflow = 75,
    /// Operation not supported.
    NotSup = 95,
    /// The server is shutting down.
    Shutdown = 108,
}

impl Errno {
    /// The number sent in the error field of a reply.
    pub fn wire(self) -> u32 {
        self as u32
    }

    /// Map a host I/O error to the closest NBD error number (EIO when
    /// nothing closer fits). Uses the portable [`io::ErrorKind`], so the
    /// result is the same on every OS.
    pub fn from_io(err: &io::Error) -> Errno {
        match err.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => Errno::Perm,
            io::ErrorKind::OutOfMemory => Errno::NoMem,
            io::ErrorKind::InvalidInput => Errno::Inval,
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Errno::NoSpc,
            io::ErrorKind::FileTooLarge => Errno::Overflow,
            io::ErrorKind::Unsupported => Errno::NotSup,
            _ => Errno::Io,
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Errno::Perm => "EPERM",
            Errno::Io => "EIO",
            Errno::NoMem => "ENOMEM",
            Errno::Inval => "EINVAL",
            Errno::NoSpc => "ENOSPC",
            Errno::Overflow => "EOVERFLOW",
            Errno::NotSup => "ENOTSUP",
            Errno::Shutdown => "ESHUTDOWN",
        };
        write!(f, "{name} ({})", self.wire())
    }
}

impl std::error::Error for Errno {}

impl From<io::Error> for Errno {
    fn from(err: io::Error) -> Errno {
        Errno::from_io(&err)
    }
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// The fixed 28-byte header of a transmission request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHeader {
    pub magic: u32,
    pub flags: u16,
    pub kind: u16,
    pub handle: u64,
    pub offset: u64,
    pub len: u32,
}

impl RequestHeader {
    pub fn parse(buf: &[u8; REQUEST_LEN]) -> RequestHeader {
        let [m0, m1, m2, m3, f0, f1, k0, k1, h0, h1, h2, h3, h4, h5, h6, h7, o0, o1, o2, o3, o4, o5, o6, o7, l0, l1, l2, l3] =
            *buf;
        RequestHeader {
            magic: u32::from_be_bytes([m0, m1, m2, m3]),
            flags: u16::from_be_bytes([f0, f1]),
            kind: u16::from_be_bytes([k0, k1]),
            handle: u64::from_be_bytes([h0, h1, h2, h3, h4, h5, h6, h7]),
            offset: u64::from_be_bytes([o0, o1, o2, o3, o4, o5, o6, o7]),
            len: u32::from_be_bytes([l0, l1, l2, l3]),
        }
    }

    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        let fields = self
            .magic
            .to_be_bytes()
            .into_iter()
            .chain(self.flags.to_be_bytes())
            .chain(self.kind.to_be_bytes())
            .chain(self.handle.to_be_bytes())
            .chain(self.offset.to_be_bytes())
            .chain(self.len.to_be_bytes());
        let mut buf = [0u8; REQUEST_LEN];
        for (dst, src) in buf.iter_mut().zip(fields) {
            *dst = src;
        }
        buf
    }
}

/// The 16-byte header of a simple reply.
pub fn simple_reply(error: u32, handle: u64) -> [u8; SIMPLE_REPLY_LEN] {
    let fields = SIMPLE_REPLY_MAGIC.to_be_bytes().into_iter().chain(error.to_be_bytes()).chain(handle.to_be_bytes());
    let mut buf = [0u8; SIMPLE_REPLY_LEN];
    for (dst, src) in buf.iter_mut().zip(fields) {
        *dst = src;
    }
    buf
}

/// One option reply: magic, option, reply type, length, payload.
pub fn option_reply(option: u32, reply: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + payload.len());
    out.extend_from_slice(&OPTION_REPLY_MAGIC.to_be_bytes());
    out.extend_from_slice(&option.to_be_bytes());
    out.extend_from_slice(&reply.to_be_bytes());
    // Payloads are built by this crate and bounded far below 4 GiB.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A bounds-checked big-endian reader over a received payload.
pub struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { rest: buf }
    }

    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    pub fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_be_bytes(b.try_into().ok()?))
    }

    pub fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }

    pub fn u64(&mut self) -> Option<u64> {
        let b = self.bytes(8)?;
        Some(u64::from_be_bytes(b.try_into().ok()?))
    }
}

/// The payload of NBD_OPT_INFO and NBD_OPT_GO.
#[derive(Debug, PartialEq, Eq)]
pub struct InfoRequest {
    pub name: String,
    pub items: Vec<u16>,
}

/// Why an INFO/GO payload was refused (answered `NBD_REP_ERR_INVALID`).
#[derive(Debug, PartialEq, Eq)]
pub enum InfoParseError {
    /// Lengths inside the payload disagree with its size.
    Malformed,
    /// The name is longer than [`MAX_NAME_LEN`], not UTF-8, or holds a NUL.
    BadName,
}

impl InfoRequest {
    pub fn parse(payload: &[u8]) -> Result<InfoRequest, InfoParseError> {
        let mut cur = Cursor::new(payload);
        let name_len = cur.u32().ok_or(InfoParseError::Malformed)?;
        let name_len = usize::try_from(name_len).map_err(|_| InfoParseError::Malformed)?;
        let name = cur.bytes(name_len).ok_or(InfoParseError::Malformed)?;
        let count = usize::from(cur.u16().ok_or(InfoParseError::Malformed)?);
        if cur.remaining() != count * 2 {
            return Err(InfoParseError::Malformed);
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(cur.u16().ok_or(InfoParseError::Malformed)?);
        }
        let name = parse_name(name).ok_or(InfoParseError::BadName)?;
        Ok(InfoRequest { name, items })
    }
}

/// An export name as received: at most [`MAX_NAME_LEN`] bytes of UTF-8
/// without NUL.
pub fn parse_name(raw: &[u8]) -> Option<String> {
    if raw.len() > MAX_NAME_LEN || raw.contains(&0) {
        return None;
    }
    String::from_utf8(raw.to_vec()).ok()
}

/// `NBD_REP_INFO` payload carrying `NBD_INFO_EXPORT`.
pub fn info_export(size: u64, flags: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&INFO_EXPORT.to_be_bytes());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out
}

/// `NBD_REP_INFO` payload carrying a string item (`NBD_INFO_NAME` or
/// `NBD_INFO_DESCRIPTION`).
pub fn info_string(kind: u16, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + text.len());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

/// `NBD_REP_INFO` payload carrying `NBD_INFO_BLOCK_SIZE`.
pub fn info_block_size() -> Vec<u8> {
    let mut out = Vec::with_capacity(14);
    out.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
    out.extend_from_slice(&MIN_BLOCK_SIZE.to_be_bytes());
    out.extend_from_slice(&PREFERRED_BLOCK_SIZE.to_be_bytes());
    out.extend_from_slice(&MAX_PAYLOAD.to_be_bytes());
    out
}

/// `NBD_REP_SERVER` payload: the name's length, then the name.
pub fn server_entry(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + name.len());
    out.extend_from_slice(&(name.len() as u32).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_spell_their_ascii_names() {
        assert_eq!(&NBD_MAGIC.to_be_bytes(), b"NBDMAGIC");
        assert_eq!(&IHAVEOPT.to_be_bytes(), b"IHAVEOPT");
    }

    #[test]
    fn errno_wire_values() {
        let table = [
            (Errno::Perm, 1),
            (Errno::Io, 5),
            (Errno::NoMem, 12),
            (Errno::Inval, 22),
            (Errno::NoSpc, 28),
            (Errno::Overflow, 75),
            (Errno::NotSup, 95),
            (Errno::Shutdown, 108),
        ];
        for (e, n) in table {
            assert_eq!(e.wire(), n, "{e}");
        }
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(Errno::from_io(&denied), Errno::Perm);
        assert_eq!(Errno::from(io::Error::other("x")), Errno::Io);
    }

    #[test]
    fn request_header_round_trip() {
        let h = RequestHeader {
            magic: REQUEST_MAGIC,
            flags: CMD_FLAG_FUA,
            kind: CMD_WRITE,
            handle: 0x0102_0304_0506_0708,
            offset: 0x1000,
            len: 512,
        };
        let bytes = h.encode();
        assert_eq!(&bytes[..4], &[0x25, 0x60, 0x95, 0x13]);
        assert_eq!(&bytes[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(RequestHeader::parse(&bytes), h);
    }

    #[test]
    fn simple_reply_layout() {
        let r = simple_reply(22, 7);
        assert_eq!(r, [0x67, 0x44, 0x66, 0x98, 0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 7]);
    }

    #[test]
    fn info_request_parsing() {
        let mut p = Vec::new();
        p.extend_from_slice(&4u32.to_be_bytes());
        p.extend_from_slice(b"disk");
        p.extend_from_slice(&2u16.to_be_bytes());
        p.extend_from_slice(&INFO_NAME.to_be_bytes());
        p.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
        let r = InfoRequest::parse(&p).unwrap();
        assert_eq!(r.name, "disk");
        assert_eq!(r.items, vec![INFO_NAME, INFO_BLOCK_SIZE]);

        // Truncated, over-long name length, trailing garbage, odd count.
        for cut in 0..p.len() {
            assert!(InfoRequest::parse(&p[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = p.clone();
        long[3] = 200;
        assert_eq!(InfoRequest::parse(&long), Err(InfoParseError::Malformed));
        let mut extra = p.clone();
        extra.push(0);
        assert_eq!(InfoRequest::parse(&extra), Err(InfoParseError::Malformed));

        let mut nul = p.clone();
        nul[5] = 0;
        assert_eq!(InfoRequest::parse(&nul), Err(InfoParseError::BadName));
    }

    #[test]
    fn transmission_flag_values() {
        assert_eq!(transmission_flags(false), 0x0001 | 0x0004 | 0x0008 | 0x0020 | 0x0040 | 0x0100);
        assert_eq!(transmission_flags(true) & 0x0002, 0x0002);
    }
}
