//! `ward run`: create + start; in the foreground, forward signals to init, proxy its terminal,
//! wait for it and exit with its status (128+n when killed by signal n), then delete it unless
//! --keep.
//!
//! Signal forwarding and waiting are shared with macOS (`cli::darwin`); the rest is Linux's.

#[cfg(target_os = "linux")]
use std::os::fd::{AsFd, AsRawFd};
#[cfg(unix)]
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

#[cfg(unix)]
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
#[cfg(target_os = "linux")]
use nix::sys::wait::WaitPidFlag;
#[cfg(unix)]
use nix::sys::wait::{waitpid, WaitStatus};
#[cfg(unix)]
use nix::unistd::Pid;

use super::CreateFlags;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Return after starting; do not wait for the container.
    #[arg(short, long)]
    pub detach: bool,
    /// Do not delete the container after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Do not make ward a child subreaper (accepted for runc compatibility).
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

#[cfg(unix)]
static INIT_PID: AtomicI32 = AtomicI32::new(0);
#[cfg(unix)]
static WINCH: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn forward(sig: libc::c_int) {
    if sig == libc::SIGWINCH {
        WINCH.store(true, Ordering::SeqCst);
        return;
    }
    let pid = INIT_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// As `forward`, but only signals someone sent (`ward sandbox`): the kernel's own (a
/// terminal's Ctrl-C to the whole foreground group) reach the command directly.
#[cfg(target_os = "linux")]
extern "C" fn forward_sent(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
    if unsafe { (*info).si_code } == libc::SI_KERNEL && sig != libc::SIGWINCH {
        return;
    }
    forward(sig);
}

#[cfg(unix)]
pub fn install_forwarding(pid: i32) {
    install(pid, SigHandler::Handler(forward), SaFlags::SA_RESTART);
}

/// `install_forwarding` for `ward sandbox`: signals the kernel sends to the terminal's
/// foreground group are not passed on (the command got its own).
#[cfg(target_os = "linux")]
pub fn install_forwarding_sent_only(pid: i32) {
    install(
        pid,
        SigHandler::SigAction(forward_sent),
        SaFlags::SA_RESTART | SaFlags::SA_SIGINFO,
    );
}

#[cfg(unix)]
fn install(pid: i32, handler: SigHandler, flags: SaFlags) {
    INIT_PID.store(pid, Ordering::SeqCst);
    let action = SigAction::new(handler, flags, SigSet::empty());
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        // SAFETY: the handler only touches atomics and calls kill(2), both async-signal-safe.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

#[cfg(unix)]
fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

#[cfg(target_os = "linux")]
pub fn run(root: &std::path::Path, a: &Args, global: &super::Cli) -> ward::Result<i32> {
    let created = ward::container::create::create(&a.flags.opts(root, !a.detach, global)?)?;
    let id = &a.flags.id;
    if let Err(e) = ward::container::start::start(root, id) {
        let _ = ward::container::delete::delete(root, id, true);
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    let pid = created.stored.pid;
    install_forwarding(pid);
    let status = match &created.console_master {
        Some(master) => proxy_until_exit(master.as_fd(), pid)?,
        None => wait_blocking(pid)?,
    };
    if !a.keep {
        ward::container::delete::delete(root, id, true)?;
    }
    Ok(status)
}

#[cfg(unix)]
pub fn wait_blocking(pid: i32) -> ward::Result<i32> {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(s) => {
                if let Some(code) = exit_code(s) {
                    return Ok(code);
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(ward::Error::sys(
                    "waitpid",
                    format!("container init {pid}"),
                    e,
                ))
            }
        }
    }
}

#[cfg(target_os = "linux")]
pub fn proxy_until_exit(master: std::os::fd::BorrowedFd, pid: i32) -> ward::Result<i32> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut status = None;
    let mut should_stop = || {
        if WINCH.swap(false, Ordering::SeqCst) {
            let _ = ward::sys::console::resize_from(stdin.as_fd(), master);
        }
        if status.is_none() {
            if let Ok(s) = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                status = exit_code(s);
            }
        }
        status.is_some()
    };
    let input = (stdin.as_raw_fd() >= 0).then(|| stdin.as_fd());
    ward::sys::console::proxy(master, input, stdout.as_fd(), &mut should_stop)?;
    match status {
        Some(code) => Ok(code),
        None => wait_blocking(pid),
    }
}
