//! ward's CVE-2019-5736 re-exec (a read-only bind of its own file, executed before `create`,
//! `run` or `exec` do any work) comes before ward's own start: the first process does nothing
//! but the seal. Traced with ptrace from the host's execve to the execveat of the copy.
//!
//! ward only: runc re-executes itself from its Go runtime (a started program by then), so this
//! is a property of ward's entry point (src/seal_entry.rs), not of the runc contract.

use crate::harness::{runtime_is_runc, Env};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The system calls (numbers, at entry) `binary args` makes from the kernel's execve of it
/// up to and including the next execve/execveat, which must happen (the process is killed
/// there).
fn syscalls_until_next_exec(binary: &str, args: &[&str]) -> Vec<i64> {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: PTRACE_TRACEME in the forked child before its execve: one async-signal-safe
    // system call, no allocation.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn the runtime under ptrace");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let wait = |status: &mut libc::c_int| {
        // SAFETY: waitpid on our own child with a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, status, libc::__WALL) };
        assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
    };
    wait(&mut status);
    assert!(
        libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGTRAP,
        "the traced runtime did not stop at its execve: status {status:#x}"
    );
    let options = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_TRACEEXEC | libc::PTRACE_O_EXITKILL;
    // SAFETY: ptrace requests on our stopped tracee; the data argument is a flag set.
    assert_eq!(
        unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, options as libc::c_long) },
        0
    );
    let mut calls = Vec::new();
    let mut entering = true;
    let mut reexec = false;
    loop {
        // SAFETY: resume our stopped tracee until its next system call boundary.
        assert_eq!(unsafe { libc::ptrace(libc::PTRACE_SYSCALL, pid, 0, 0) }, 0);
        wait(&mut status);
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            break;
        }
        if status >> 8 == (libc::SIGTRAP | (libc::PTRACE_EVENT_EXEC << 8)) {
            reexec = true;
            break;
        }
        if libc::WSTOPSIG(status) == libc::SIGTRAP | 0x80 {
            if entering {
                // SAFETY: a zeroed user_regs_struct is a valid out-buffer for PTRACE_GETREGS.
                let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
                // SAFETY: our tracee is in a syscall-stop; `regs` is ours.
                let rc = unsafe { libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs as *mut _) };
                assert_eq!(rc, 0, "PTRACE_GETREGS");
                calls.push(regs.orig_rax as i64);
            }
            entering = !entering;
        }
    }
    // Killed where it stopped, and reaped.
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        reexec,
        "the runtime never executed its read-only copy; its system calls: {calls:?}"
    );
    calls
}

/// `create`, `run` and `exec` execute ward's read-only copy of itself before ward starts:
/// between the host's execve and the execveat of the copy there is no rt_sigaction and no
/// sigaltstack, the first things a started Rust program does (std's SIGPIPE disposition and
/// its stack-overflow handler, before main). The first process is the kernel's execve plus a
/// few system calls, instead of a whole start thrown away.
#[test]
fn the_read_only_copy_runs_before_the_runtime_starts() {
    if runtime_is_runc() {
        return;
    }
    let env = Env::new();
    let root = env.root.to_str().unwrap();
    // Each of main's three words (seal_entry.rs keeps its own copy of the list). `state run`:
    // any argument spelling one re-executes; the commands then fail on a container or bundle
    // that does not exist.
    for args in [
        ["--root", root, "state", "run"],
        ["--root", root, "exec", "nosuch"],
        ["--root", root, "create", "nosuch"],
    ] {
        let calls = syscalls_until_next_exec(&env.binary, &args);
        assert_eq!(
            calls.last(),
            Some(&libc::SYS_execveat),
            "{args:?}: not re-executed through execveat: {calls:?}"
        );
        for (nr, name) in [
            (libc::SYS_rt_sigaction, "rt_sigaction"),
            (libc::SYS_sigaltstack, "sigaltstack"),
        ] {
            assert!(
                !calls.contains(&nr),
                "{args:?}: ward started ({name}) before it executed its read-only copy: {calls:?}"
            );
        }
        // The seal itself is what it was: the bind mount made read-only.
        for (nr, name) in [
            (libc::SYS_open_tree, "open_tree"),
            (libc::SYS_mount_setattr, "mount_setattr"),
        ] {
            assert!(calls.contains(&nr), "{args:?}: no {name}: {calls:?}");
        }
    }
}
