//! The seccomp filter comes after the runtime's own work (issue 14, item 1).
//!
//! An allow-list profile written for runc (default action ERRNO; it lists what busybox needs and
//! the calls a runtime makes after loading a filter: the privilege drop, the exec fifo, execve)
//! but neither `openat2` nor `close_range` must run the container, with noNewPrivileges true and
//! false, as root and as a non-root user, for `run` and for `exec`. A runtime that resolves
//! paths or closes fds with those calls after loading the filter fails here.

use crate::harness::Env;
use serde_json::{json, Value};

/// Syscalls busybox `sh -c` / `true` / `id` need, and what a runtime's init may still call once
/// the filter is loaded (runc's Go runtime included). Deliberately without openat2 and
/// close_range.
const ALLOWED: &[&str] = &[
    // the privilege drop
    "capget",
    "capset",
    "prctl",
    "setgroups",
    "setresgid",
    "setresuid",
    "setgid",
    "setuid",
    "setfsuid",
    "setfsgid",
    "chdir",
    "fchdir",
    "umask",
    // the exec fifo, the sync channel, fd cleanup the classic way, execve
    "openat",
    "open",
    "read",
    "write",
    "close",
    "fcntl",
    "getdents64",
    "fstat",
    "newfstatat",
    "statx",
    "stat",
    "lstat",
    "fstatfs",
    "statfs",
    "access",
    "faccessat",
    "faccessat2",
    "readlinkat",
    "execve",
    "execveat",
    "getppid",
    "getpid",
    "gettid",
    "sendmsg",
    "recvmsg",
    // a Go runtime (runc's init) and a libc
    "futex",
    "nanosleep",
    "clock_nanosleep",
    "sched_yield",
    "sched_getaffinity",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "mmap",
    "munmap",
    "mprotect",
    "madvise",
    "brk",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "tgkill",
    "exit",
    "exit_group",
    "clone",
    "clone3",
    "wait4",
    "getrandom",
    "prlimit64",
    "getrlimit",
    "uname",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_wait",
    "pipe2",
    "dup2",
    "dup3",
    "ioctl",
    "lseek",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getgroups",
    "getpgrp",
    "setpgid",
    "getcwd",
    "fork",
    "vfork",
    "mlock",
    "clock_gettime",
    "gettimeofday",
];

/// The profile: everything not listed fails with EPERM.
fn allow_list() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ALLOWED, "action": "SCMP_ACT_ALLOW"}]
    })
}

fn env_with(nnp: bool, uid: u32) -> Env {
    let mut env = Env::new();
    env.config["linux"]["seccomp"] = allow_list();
    env.config["process"]["noNewPrivileges"] = json!(nnp);
    env.config["process"]["user"] = json!({"uid": uid, "gid": uid});
    env
}

fn runs_under_allow_list(nnp: bool, uid: u32) {
    let mut env = env_with(nnp, uid);
    env.args(&["sh", "-c", "id -u; echo ok"]);
    let id = env.id();
    let out = env.run(&id);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, format!("{uid}\nok\n").as_str()),
        "nnp={nnp} uid={uid}: {out:?}"
    );
}

#[test]
fn allow_list_without_openat2_runs_as_root_without_nnp() {
    runs_under_allow_list(false, 0);
}

#[test]
fn allow_list_without_openat2_runs_as_root_with_nnp() {
    runs_under_allow_list(true, 0);
}

#[test]
fn allow_list_without_openat2_runs_as_user_without_nnp() {
    runs_under_allow_list(false, 1000);
}

#[test]
fn allow_list_without_openat2_runs_as_user_with_nnp() {
    runs_under_allow_list(true, 1000);
}

/// The same filter must still deny what it does not list: the container's `unshare` fails.
#[test]
fn allow_list_still_denies_the_unlisted() {
    let mut env = env_with(false, 0);
    env.args(&["sh", "-c", "unshare -U true; echo rc=$?"]);
    let out = env.run(&env.id());
    out.ok();
    assert!(out.stdout.contains("rc=1"), "{out:?}");
}

fn exec_under_allow_list(nnp: bool, user: &str) {
    let mut env = env_with(nnp, 0);
    let id = env.run_sleeping();
    let out = env.rt(&["exec", "--user", user, &id, "sh", "-c", "id -u; echo ok"]);
    let uid = user.split(':').next().unwrap();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, format!("{uid}\nok\n").as_str()),
        "exec nnp={nnp} user={user}: {out:?}"
    );
    env.kill(&id, "KILL");
}

#[test]
fn exec_under_allow_list_without_nnp() {
    exec_under_allow_list(false, "0:0");
    exec_under_allow_list(false, "1000:1000");
}

#[test]
fn exec_under_allow_list_with_nnp() {
    exec_under_allow_list(true, "0:0");
    exec_under_allow_list(true, "1000:1000");
}
