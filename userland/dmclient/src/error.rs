//! The client's error: what was asked, and why it failed, with the errno and its meaning.
//!
//! NetBSD's kernel swallows command errors: the ioctl succeeds and only the reply tells
//! (reference §1.5, §21). [`crate::Client`] decodes those replies into the same typed error a
//! transport that reports the command's errno (dmhost's socket, the in-process core) gives.

use std::borrow::Cow;
use std::fmt;
use std::io;

use dmcore::Errno;

/// What the driver said about a device that a command did not find (EXISTS cleared).
pub const NO_SUCH_DEVICE: &str = "No such device";

/// A failed client operation.
#[derive(Debug)]
pub struct Error {
    /// The protocol command that failed (`"info"`, `"reload"`, ...).
    pub command: &'static str,
    /// What it was asked about: a device name, `uuid X`, `minor N`; `None` for commands that
    /// name no device.
    pub subject: Option<String>,
    pub kind: ErrorKind,
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The control device or socket could not be reached or broke down.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The driver refused the request before running it (the ioctl itself failed: request too
    /// large, unparsable, ...). Nothing changed.
    #[error("the driver refused the request: {}", errno_text(*.0, None))]
    Transport(Errno),
    /// The command ran and failed.
    #[error("{}{}", errno_text(*errno, Some(meaning)), detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Command {
        errno: Errno,
        /// strerror(3) of `errno`, or a more precise meaning decoded from the reply
        /// ([`NO_SUCH_DEVICE`]).
        meaning: Cow<'static, str>,
        /// What the driver said about it (for a refused table: the line and the target's
        /// message), or what the client inferred.
        detail: Option<String>,
    },
    /// The reply could not be understood.
    #[error("unexpected reply from the driver: {0}")]
    Reply(String),
}

/// `Invalid argument (EINVAL)`, or `Unknown error (errno 99)` for a number without a name.
pub(crate) fn errno_text(errno: Errno, meaning: Option<&str>) -> String {
    let meaning = meaning.unwrap_or(errno.description());
    match errno.name() {
        "E?" => format!("{meaning} (errno {})", errno.0),
        name => format!("{meaning} ({name})"),
    }
}

impl Error {
    pub(crate) fn new(command: &'static str, subject: Option<String>, kind: ErrorKind) -> Self {
        Error { command, subject, kind }
    }

    /// The errno of a failed command or of a refused request; `None` for I/O and reply errors.
    pub fn errno(&self) -> Option<Errno> {
        match &self.kind {
            ErrorKind::Command { errno, .. } | ErrorKind::Transport(errno) => Some(*errno),
            ErrorKind::Io(_) | ErrorKind::Reply(_) => None,
        }
    }

    /// The meaning of the errno as it should be shown (strerror, or [`NO_SUCH_DEVICE`]).
    pub fn meaning(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::Command { meaning, .. } => Some(meaning),
            ErrorKind::Transport(errno) => Some(errno.description()),
            ErrorKind::Io(_) | ErrorKind::Reply(_) => None,
        }
    }

    /// What the driver said about the failure, e.g. `line 0: linear: Invalid argument count`.
    pub fn detail(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::Command { detail, .. } => detail.as_deref(),
            _ => None,
        }
    }

    /// Whether the command failed because the device does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(&self.kind, ErrorKind::Command { errno, meaning, .. }
            if *errno == Errno::ENOENT && meaning == NO_SUCH_DEVICE)
    }
}

/// `reload of vg0-lv0 failed: Invalid argument (EINVAL): line 0: linear: Invalid argument count`
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Some(subject) => write!(f, "{} of {} failed: {}", self.command, subject, self.kind),
            None => write!(f, "{} failed: {}", self.command, self.kind),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}
