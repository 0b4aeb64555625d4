//! dm(4)'s control node on NetBSD (and FreeBSD, with the project's kernel glue): one ioctl,
//! `NETBSD_DM_IOCTL`, carrying a `struct plistref` (reference §1.1–§1.3, §1.6).
//!
//! This file compiles only on those systems and cannot run on the machines the project is
//! tested on; it is kept small so that it can be checked by reading. What it does, as libprop's
//! `prop_dictionary_sendrecv_ioctl`:
//! 1. point `pref_plist` at the request text with its NUL, `pref_len` = length with the NUL;
//! 2. `ioctl(fd, NETBSD_DM_IOCTL, &pref)`; -1 is a transport error, there is no reply;
//! 3. on 0 the kernel has replaced `pref` with a new anonymous mapping in this process holding
//!    the reply text (and its NUL): copy it out, then `munmap(pref_plist, pref_len)`.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::{RawReply, Transport};

/// `struct plistref` of `<prop/plistref.h>`.
#[repr(C)]
struct PlistRef {
    pref_plist: *mut libc::c_void,
    pref_len: libc::size_t,
}

/// `_IOC` direction bits for in+out (`IOC_INOUT`).
const IOC_INOUT: libc::c_ulong = 0xc000_0000;
/// `IOCPARM_MASK`: the parameter length field is 13 bits.
const IOCPARM_MASK: libc::c_ulong = 0x1fff;
/// `DM_IOCTL` (group) and `DM_IOCTL_CMD` (number).
const DM_IOCTL: libc::c_ulong = 0xfd;
const DM_IOCTL_CMD: libc::c_ulong = 0;

/// `_IOWR(DM_IOCTL, DM_IOCTL_CMD, struct plistref)`: `0xC010FD00` on LP64, `0xC008FD00` on
/// ILP32.
pub const NETBSD_DM_IOCTL: libc::c_ulong = IOC_INOUT
    | (((std::mem::size_of::<PlistRef>() as libc::c_ulong) & IOCPARM_MASK) << 16)
    | (DM_IOCTL << 8)
    | DM_IOCTL_CMD;

#[cfg(target_pointer_width = "64")]
const _: () = assert!(NETBSD_DM_IOCTL == 0xC010_FD00);

/// An open dm(4) control node.
pub struct IoctlTransport {
    file: File,
}

impl IoctlTransport {
    /// Opens the node read-write, as libdm and lvm2 do.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(IoctlTransport { file })
    }
}

impl Transport for IoctlTransport {
    fn call(&self, request: &[u8]) -> io::Result<RawReply> {
        let mut text = Vec::with_capacity(request.len() + 1);
        text.extend_from_slice(request);
        text.push(0);
        let sent = text.as_mut_ptr().cast::<libc::c_void>();
        let mut pref = PlistRef { pref_plist: sent, pref_len: text.len() };

        // SAFETY: `pref` points at `text`, which outlives the call and is `pref_len` bytes
        // long; the kernel reads that many bytes and writes only `pref` itself.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), NETBSD_DM_IOCTL, &mut pref as *mut PlistRef) };
        if rc == -1 {
            let err = io::Error::last_os_error();
            return Ok(RawReply { transport_errno: err.raw_os_error().unwrap_or(libc::EIO), ..RawReply::default() });
        }
        // A successful call always maps a new reply; anything else is treated as libprop
        // treats an empty reply (EIO). Never unmap our own buffer.
        if pref.pref_plist.is_null() || pref.pref_plist == sent || pref.pref_len == 0 {
            return Ok(RawReply { transport_errno: libc::EIO, ..RawReply::default() });
        }
        // SAFETY: the kernel mapped `pref_len` readable bytes at `pref_plist` into this process
        // for this call; nothing else refers to the mapping, and it is unmapped only here,
        // after the copy.
        let mut bytes = unsafe { std::slice::from_raw_parts(pref.pref_plist.cast::<u8>(), pref.pref_len) }.to_vec();
        // SAFETY: as above; the mapping is not used after this.
        unsafe { libc::munmap(pref.pref_plist, pref.pref_len) };
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            bytes.truncate(nul);
        }
        Ok(RawReply { transport_errno: 0, command_errno: None, bytes, detail: None })
    }
}
