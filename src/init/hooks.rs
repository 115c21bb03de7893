//! OCI lifecycle hooks (runtime-spec config.md, "POSIX-platform Hooks").
//!
//! Each hook is executed with its own argv/env, receives the container state
//! JSON on stdin, and has its stdout/stderr captured. No threads are used
//! (the caller may be a single-threaded process inside fresh namespaces):
//! the pipes and the child's pidfd are multiplexed with poll(2).

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{signal, SigHandler, Signal};
use oci_spec::runtime::Hook;

/// How much of a hook's stderr is kept for error messages.
const STDERR_TAIL: usize = 1024;
/// How much of a hook's stdout is kept for debug logging.
const STDOUT_TAIL: usize = 4096;
/// Poll tick used when pidfd_open(2) is unavailable and we must poll waitpid.
const FALLBACK_TICK: Duration = Duration::from_millis(20);

/// The lifecycle point a hook belongs to; Display gives the spec's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {}: timeout must be greater than zero, got {timeout}", path.display())]
    InvalidTimeout {
        kind: HookKind,
        path: PathBuf,
        timeout: i64,
    },
    #[error("{kind} hook {}: cannot execute: {source} (check the path is absolute, exists and is executable)", path.display())]
    Spawn {
        kind: HookKind,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{kind} hook {}: killed after exceeding its {timeout}s timeout; stderr: {stderr:?}", path.display())]
    Timeout {
        kind: HookKind,
        path: PathBuf,
        timeout: i64,
        stderr: String,
    },
    #[error("{kind} hook {}: exited with status {status}; stderr: {stderr:?}", path.display())]
    Failed {
        kind: HookKind,
        path: PathBuf,
        status: i32,
        stderr: String,
    },
    #[error("{kind} hook {}: killed by signal {signal}; stderr: {stderr:?}", path.display())]
    Signaled {
        kind: HookKind,
        path: PathBuf,
        signal: i32,
        stderr: String,
    },
    #[error("{kind} hook {}: {op} failed: {source}", path.display())]
    Io {
        kind: HookKind,
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Kept whole inside ward's `Error` (which cannot name this type: it sits below this module).
impl From<HookError> for crate::error::Error {
    fn from(e: HookError) -> Self {
        crate::error::Error::Hook(Box::new(e))
    }
}

/// Runs `hooks` in order, stopping at the first failure.
///
/// argv is `args` (args[0] is argv[0]) or just `[path]`; the environment is
/// exactly `env`, or without it ward's own (runc's rule for the hooks the runtime runs);
/// `state_json` is written to stdin which is then closed. A hook that does not read its stdin
/// is fine. With a timeout (seconds, must be > 0) the hook is SIGKILLed when it expires.
pub fn run_hooks(kind: HookKind, hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    run_hooks_in(kind, hooks, state_json, None)
}

/// As `run_hooks`, but a hook without `env` gets `default_env`: the hooks that run in the
/// container's init (createContainer, startContainer) get the container process's environment,
/// as under runc.
pub fn run_hooks_in(
    kind: HookKind,
    hooks: &[Hook],
    state_json: &[u8],
    default_env: Option<&[String]>,
) -> Result<(), HookError> {
    if hooks.is_empty() {
        return Ok(());
    }
    let _sigpipe = SigPipeIgnored::new();
    for hook in hooks {
        run_hook(kind, hook, state_json, default_env)?;
    }
    Ok(())
}

/// Ignores SIGPIPE while hooks run (restoring the old disposition on drop),
/// so a hook that closes stdin early yields EPIPE instead of killing us.
/// std's Command resets SIGPIPE to default in the child, so hooks are unaffected.
struct SigPipeIgnored(Option<SigHandler>);

impl SigPipeIgnored {
    fn new() -> Self {
        // SAFETY: installing SIG_IGN runs no handler code; the caller is single-threaded.
        let old = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.ok();
        SigPipeIgnored(old)
    }
}

impl Drop for SigPipeIgnored {
    fn drop(&mut self) {
        if let Some(old) = self.0 {
            // SAFETY: restores the disposition that was in place before new().
            let _ = unsafe { signal(Signal::SIGPIPE, old) };
        }
    }
}

fn build_command(hook: &Hook, default_env: Option<&[String]>) -> Command {
    let path = hook.path();
    let mut cmd = Command::new(path);
    match hook.args().as_deref() {
        Some([arg0, rest @ ..]) => {
            cmd.arg0(arg0).args(rest);
        }
        _ => {
            cmd.arg0(path);
        }
    }
    let env = hook.env().as_deref().or(default_env);
    if env.is_some() {
        cmd.env_clear();
    }
    for entry in env.into_iter().flatten() {
        match entry.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                cmd.env(k, v);
            }
            _ => {
                tracing::warn!(path = %path.display(), entry = %entry, "ignoring malformed hook env entry (want KEY=VALUE)")
            }
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run_hook(
    kind: HookKind,
    hook: &Hook,
    state: &[u8],
    default_env: Option<&[String]>,
) -> Result<(), HookError> {
    let path = hook.path().clone();
    let timeout = hook.timeout();
    if let Some(t) = timeout {
        if t <= 0 {
            return Err(HookError::InvalidTimeout {
                kind,
                path,
                timeout: t,
            });
        }
    }
    tracing::debug!(hook = %kind, path = %path.display(), args = ?hook.args(), timeout = ?timeout, "running hook");
    let io_err = |op: &'static str, source: io::Error| HookError::Io {
        kind,
        path: path.clone(),
        op,
        source,
    };

    let mut child =
        build_command(hook, default_env)
            .spawn()
            .map_err(|source| HookError::Spawn {
                kind,
                path: path.clone(),
                source,
            })?;
    let deadline = timeout.and_then(|t| Instant::now().checked_add(Duration::from_secs(t as u64)));

    let mut out = Capture::default();
    let result = supervise(&mut child, state, deadline, &mut out);
    let status = match result {
        Ok(Some(status)) => status,
        Ok(None) => {
            // Deadline passed: SIGKILL and reap so no zombie is left behind.
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout {
                kind,
                path,
                timeout: timeout.unwrap_or(0),
                stderr: out.stderr_tail(),
            });
        }
        Err((op, e)) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io_err(op, e));
        }
    };
    let stderr = out.stderr_tail();
    if let Some(code) = status.code() {
        if code != 0 {
            return Err(HookError::Failed {
                kind,
                path,
                status: code,
                stderr,
            });
        }
    } else {
        let signal = status.signal().unwrap_or(0);
        return Err(HookError::Signaled {
            kind,
            path,
            signal,
            stderr,
        });
    }
    tracing::debug!(hook = %kind, path = %path.display(), stdout = %String::from_utf8_lossy(&out.stdout).trim_end(),
        stderr = %stderr, "hook succeeded");
    Ok(())
}

/// Bounded tails of a hook's output.
#[derive(Default)]
struct Capture {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Capture {
    fn stderr_tail(&self) -> String {
        let start = self.stderr.len().saturating_sub(STDERR_TAIL);
        String::from_utf8_lossy(&self.stderr[start..])
            .trim_end()
            .to_string()
    }
}

fn push_tail(buf: &mut Vec<u8>, data: &[u8], keep: usize) {
    buf.extend_from_slice(data);
    if buf.len() > 2 * keep {
        let cut = buf.len() - keep;
        buf.drain(..cut);
    }
}

fn set_nonblocking(fd: &impl AsFd) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd.as_fd().as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(
        fd.as_fd().as_raw_fd(),
        FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

/// pidfd_open(2): a pollable fd that becomes readable when the child exits.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; a non-negative result is a new fd we own.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if ret < 0 {
        return None;
    }
    // SAFETY: ret is a freshly opened fd that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// Reads everything currently available from a non-blocking stream.
/// Returns Ok(false) at EOF.
fn drain(r: &mut impl Read, buf: &mut Vec<u8>, keep: usize) -> io::Result<bool> {
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => push_tail(buf, &chunk[..n], keep),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

type OpError = (&'static str, io::Error);

/// Feeds stdin, collects stdout/stderr and waits for the child.
/// Returns Ok(None) when the deadline passed before the child exited.
fn supervise(
    child: &mut Child,
    state: &[u8],
    deadline: Option<Instant>,
    out: &mut Capture,
) -> Result<Option<std::process::ExitStatus>, OpError> {
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    for fd in [
        stdin.as_ref().map(|f| f.as_fd()),
        stdout.as_ref().map(|f| f.as_fd()),
        stderr.as_ref().map(|f| f.as_fd()),
    ]
    .into_iter()
    .flatten()
    {
        set_nonblocking(&fd).map_err(|e| ("fcntl(O_NONBLOCK) on hook pipe", e))?;
    }
    let pidfd = pidfd_open(child.id());
    let mut written = 0usize;
    if state.is_empty() {
        stdin = None;
    }

    loop {
        if let Some(status) = child.try_wait().map_err(|e| ("waitpid", e))? {
            // The hook exited: collect whatever it left in the pipes, without
            // waiting for EOF (a background grandchild may hold them open).
            if let Some(s) = stdout.as_mut() {
                let _ = drain(s, &mut out.stdout, STDOUT_TAIL);
            }
            if let Some(s) = stderr.as_mut() {
                let _ = drain(s, &mut out.stderr, STDERR_TAIL);
            }
            return Ok(Some(status));
        }
        let mut wait = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Ok(None),
            },
            None => None,
        };
        if pidfd.is_none() {
            wait = Some(wait.map_or(FALLBACK_TICK, |w| w.min(FALLBACK_TICK)));
        }
        let timeout = match wait {
            // Round up so we do not spin on sub-millisecond remainders.
            Some(w) => {
                PollTimeout::try_from(w.as_millis().saturating_add(1).min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };

        // Slot order: stdin, stdout, stderr, pidfd (absent ones are skipped).
        let mut fds = Vec::with_capacity(4);
        let mut slots = [None; 4];
        let sources = [
            (stdin.as_ref().map(|f| f.as_fd()), PollFlags::POLLOUT),
            (stdout.as_ref().map(|f| f.as_fd()), PollFlags::POLLIN),
            (stderr.as_ref().map(|f| f.as_fd()), PollFlags::POLLIN),
            (pidfd.as_ref().map(|f| f.as_fd()), PollFlags::POLLIN),
        ];
        for (i, (fd, ev)) in sources.into_iter().enumerate() {
            if let Some(fd) = fd {
                slots[i] = Some(fds.len());
                fds.push(PollFd::new(fd, ev));
            }
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(("poll on hook pipes", e.into())),
        }
        let ready: Vec<bool> = slots
            .iter()
            .map(|s| {
                s.and_then(|i| fds[i].revents())
                    .is_some_and(|r| !r.is_empty())
            })
            .collect();
        drop(fds);

        if ready[0] {
            if let Some(w) = stdin.as_mut() {
                match w.write(&state[written..]) {
                    Ok(n) => written += n,
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock
                            || e.kind() == io::ErrorKind::Interrupted => {}
                    // The hook closed its stdin without reading it all: that's allowed.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => written = state.len(),
                    Err(e) => return Err(("write state to hook stdin", e)),
                }
                if written >= state.len() {
                    stdin = None; // close: the hook sees EOF
                }
            }
        }
        if ready[1] {
            if let Some(s) = stdout.as_mut() {
                if !drain(s, &mut out.stdout, STDOUT_TAIL).map_err(|e| ("read hook stdout", e))? {
                    stdout = None;
                }
            }
        }
        if ready[2] {
            if let Some(s) = stderr.as_mut() {
                if !drain(s, &mut out.stderr, STDERR_TAIL).map_err(|e| ("read hook stderr", e))? {
                    stderr = None;
                }
            }
        }
        // A readable pidfd needs no action: try_wait at the loop top reaps it.
    }
}

#[cfg(test)]
mod tests;
