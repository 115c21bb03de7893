//! The error type every part of ward returns.
//!
//! Each variant says *what step* failed and carries the context a user needs (field, path,
//! syscall). The CLI turns these into runc's wording and exit codes; engines match some of the
//! words (containerd classifies kill errors by "container not running", "does not exist").

use std::path::PathBuf;

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The typed error of a module above this one (hooks, console, platform), kept whole: its
/// message and its source chain. Boxed so that `error` imports nothing from the layers that
/// use it; each of those modules converts with `From` (so `?` works as before).
pub type Boxed = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, Error)]
pub enum Error {
    /// config.json (or a process.json) is malformed or asks for something invalid.
    /// Starts with runc's `invalid configuration`, which tools match, then names the field.
    #[error("invalid configuration: {field}: {msg}")]
    Spec { field: String, msg: String },

    /// A system call failed; `what` says on which object.
    #[cfg(unix)]
    #[error("{syscall} {what}: {source}")]
    Sys {
        syscall: &'static str,
        what: String,
        #[source]
        source: nix::Error,
    },

    /// A file operation failed on `path`.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid container id {0:?}: {1}")]
    InvalidId(String, &'static str),

    #[error("container {0} does not exist")]
    NotExist(String),

    #[error("container with id {0} exists")]
    Exists(String),

    /// An operation that is illegal in the container's current status.
    #[error("{0}")]
    BadState(String),

    /// A hook failed (`init::hooks::HookError`).
    #[cfg(target_os = "linux")]
    #[error("hook: {0}")]
    Hook(#[source] Boxed),

    /// A pty or console socket step failed (`sys::console::ConsoleError`).
    #[cfg(target_os = "linux")]
    #[error("console: {0}")]
    Console(#[source] Boxed),

    /// The container's init reported a failure during setup.
    #[error("{0}")]
    Init(String),

    /// systemd (the `--systemd-cgroup` driver) unreachable or refusing a call.
    #[error("systemd: {0}")]
    Systemd(String),

    #[error("{0} is not supported yet")]
    Unsupported(String),

    /// A command or flag this OS's executor does not implement (macOS, Windows).
    #[error("{0} is not supported on {1}")]
    NotOnThisOs(String, &'static str),

    /// The macOS or Windows translator refused the spec, or their executor failed
    /// (`platform::PlatformError`).
    #[error("{0}")]
    Platform(#[source] Boxed),

    /// Something the config asks for that this host's kernel cannot do.
    #[error("{0}")]
    Host(String),
}

impl Error {
    pub fn spec(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Spec {
            field: field.into(),
            msg: msg.into(),
        }
    }

    #[cfg(unix)]
    pub fn sys(syscall: &'static str, what: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys {
            syscall,
            what: what.into(),
            source,
        }
    }

    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Longest echo of user input in an error (`excerpt`): a 1 MB hostname is not printed back.
pub const ECHO_MAX: usize = 256;

/// `s` as echoed in an error: itself if short, else its first `ECHO_MAX` bytes (cut at a
/// character boundary) and how long it was.
pub fn excerpt(s: &str) -> String {
    clip(s, ECHO_MAX)
}

/// `s` cut to at most `max` bytes at a character boundary, saying how much was left out.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &s[..end], s.len())
}

/// `result.sys("mount", "/proc")?` — attach a syscall name and object to a nix error.
#[cfg(unix)]
pub trait SysContext<T> {
    fn sys(self, syscall: &'static str, what: impl Into<String>) -> Result<T>;
}

#[cfg(unix)]
impl<T> SysContext<T> for nix::Result<T> {
    fn sys(self, syscall: &'static str, what: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::sys(syscall, what, e))
    }
}

/// `result.io("open", &path)?` — attach an operation and path to an io error.
pub trait IoContext<T> {
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_input_and_cuts_long_input() {
        assert_eq!(excerpt("web-1"), "web-1");
        let long = "é".repeat(ECHO_MAX);
        let cut = excerpt(&long);
        assert!(cut.len() < ECHO_MAX + 40, "{cut}");
        assert!(
            cut.ends_with(&format!("... ({} bytes in all)", long.len())),
            "{cut}"
        );
    }

    #[test]
    fn spec_errors_start_with_invalid_configuration() {
        let e = Error::spec("process.cwd", "must be absolute").to_string();
        assert_eq!(e, "invalid configuration: process.cwd: must be absolute");
    }
}
