//! A pid 1 that is not the command (`ward sandbox`, the annotation `org.ward.init.reaper`):
//! pid 1 of a pid namespace ignores every signal it has no handler for, so a command run as
//! pid 1 would shrug off Ctrl-C and `kill`. Instead init forks at the very end — after every
//! wall is up, so both processes are behind all of them — the child execs the command and
//! init stays as a reaper: it passes on the signals sent to it, collects orphans, and exits
//! with the command's status (128+n when a signal n ended it).
//!
//! Signals the kernel itself sends (a terminal's Ctrl-C, SIGWINCH; `si_code` SI_KERNEL)
//! already reach the command, which is in the terminal's foreground process group: passing
//! them on would deliver them twice, so only sent ones (kill, `ward kill`) are passed on.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use crate::error::{Result, SysContext};

pub const ANNOTATION: &str = "org.ward.init.reaper";

pub fn wanted(spec: &oci_spec::runtime::Spec) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION))
        .is_some_and(|v| v == "true")
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    if code == libc::SI_KERNEL {
        return;
    }
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(child, sig) };
    }
}

/// Signals passed on (all but those that cannot be caught and those that are the reaper's
/// own business).
fn passed() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGCHLD,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGTSTP,
    ] {
        set.remove(s);
    }
    set
}

/// Forks. Returns in the child, which goes on to exec the command (with the signal mask
/// empty again and, with a terminal, its own foreground process group). Never returns in
/// init: it reaps until the command exits and exits with its status.
pub fn split(terminal: bool, drop_in_parent: impl FnOnce()) -> Result<()> {
    let set = passed();
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
        .sys("sigprocmask", "block before fork")?;
    // SAFETY: init is single-threaded here (the exec is next); the child only makes
    // async-signal-safe calls before execve.
    match unsafe { nix::unistd::fork() }.sys("fork", "reaper")? {
        ForkResult::Child => {
            if terminal {
                // A background group taking the terminal gets SIGTTOU: blocked meanwhile.
                let mut ttou = SigSet::empty();
                ttou.add(Signal::SIGTTOU);
                let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&ttou), None);
                let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
                // SAFETY: tcsetpgrp on stdin (the container's terminal); SIGTTOU is blocked.
                unsafe { libc::tcsetpgrp(0, libc::getpid()) };
            }
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None)
                .sys("sigprocmask", "restore in the command")?;
            Ok(())
        }
        ForkResult::Parent { child } => {
            drop_in_parent();
            // The sandbox lives as long as the ward that runs it (which holds its terminal and
            // reports its status): its death kills pid 1, and with it the whole pid namespace
            // (a ward killed before this line leaves it to the next sandbox's sweep).
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            CHILD.store(child.as_raw(), Ordering::SeqCst);
            let action = SigAction::new(
                SigHandler::SigAction(pass_on),
                SaFlags::SA_RESTART | SaFlags::SA_SIGINFO,
                SigSet::empty(),
            );
            for sig in set.iter() {
                // SAFETY: the handler only reads its siginfo and calls kill(2).
                let _ = unsafe { sigaction(sig, &action) };
            }
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            std::process::exit(reap(child))
        }
    }
}

fn reap(child: Pid) -> i32 {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(p, code)) if p == child => return code,
            Ok(WaitStatus::Signaled(p, sig, _)) if p == child => return 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            // No child left (cannot happen before the command exits): nothing to wait for.
            Err(_) => return 255,
        }
    }
}
