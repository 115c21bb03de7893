//! linux.seccomp: actions, errno returns, argument operators, architectures, flags and the
//! default profile, observed through a static probe issuing raw syscalls in the container.
//! Where it makes sense the same bundle also runs under runc and must print the same.

use crate::harness::{base_config, runtime, runtime_is_runc, Env, Out};
use crate::seccomp_profile::podman_default;
use serde_json::{json, Value};
use std::path::PathBuf;

// x86_64 syscall numbers.
pub const GETPID: u32 = 39;
pub const GETPPID: u32 = 110;
const GETUID: u32 = 102;
const GETGID: u32 = 104;
const GETEUID: u32 = 107;
const GETEGID: u32 = 108;
const GETPGRP: u32 = 111;
const MUNLOCKALL: u32 = 152;
const PERSONALITY: u32 = 135;
const KCMP: u32 = 312;
const CLONE3: u32 = 435;
const FUTEX_WAITV: u32 = 449;
/// i386 getppid, issued through `int $0x80`.
const I386_GETPPID: u32 = 64;
/// x32 getppid: the x86_64 number with __X32_SYSCALL_BIT.
const X32_GETPPID: u32 = 0x4000_0000 | GETPPID;
const SIGSYS_EXIT: i32 = 128 + libc::SIGSYS;

/// The probe (conformance/probe.c), compiled statically once per test process.
fn probe_binary() -> PathBuf {
    crate::harness::static_binary("seccomp-probe", "probe.c")
}

/// An Env running `/probe <cmds>` (commands separated by " , ") under `seccomp`
/// (`Value::Null`: no linux.seccomp at all).
pub fn probe_env(binary: &str, seccomp: &Value, cmds: &str) -> Env {
    let mut env = Env::new();
    env.binary = binary.to_string();
    crate::harness::copy_executable(probe_binary(), env.rootfs().join("probe"));
    let mut args = vec!["/probe"];
    args.extend(cmds.split_whitespace());
    env.args(&args);
    if !seccomp.is_null() {
        env.config["linux"]["seccomp"] = seccomp.clone();
    }
    env
}

fn run_under(binary: &str, seccomp: &Value, cmds: &str) -> Out {
    let env = probe_env(binary, seccomp, cmds);
    env.run(&env.id())
}

/// Runs the probe under the runtime under test and, side by side, under runc: exit code and
/// output must be identical (the comparison is skipped when the runtime under test is runc).
fn probe(seccomp: &Value, cmds: &str) -> Out {
    let out = run_under(&runtime(), seccomp, cmds);
    if !runtime_is_runc() {
        let reference = run_under("runc", seccomp, cmds);
        assert_eq!(
            (out.code, &out.stdout),
            (reference.code, &reference.stdout),
            "differs from runc for {cmds:?}: tested={out:?} runc={reference:?}"
        );
    }
    out
}

/// The probe's `ret=R errno=E` line for a failed call.
pub fn err(errno: i32) -> String {
    format!("ret=-1 errno={errno}\n")
}

/// The probe's line for a call returning `ret`.
pub fn ok(ret: i64) -> String {
    format!("ret={ret} errno=0\n")
}

/// A profile allowing everything except `syscalls`.
fn allow_except(syscalls: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls})
}

/// The errno of each probe line (0 for success).
fn errnos(out: &Out) -> Vec<i32> {
    out.stdout
        .lines()
        .map(|l| {
            l.rsplit_once("errno=")
                .expect("probe line")
                .1
                .parse()
                .unwrap()
        })
        .collect()
}

/// The default profile converted for the harness's capability set.
fn default_profile() -> Value {
    let caps = base_config(&[])["process"]["capabilities"]["bounding"].clone();
    podman_default(&serde_json::from_value::<Vec<String>>(caps).unwrap())
}

/// Probe commands for the default-profile test: getpid, kcmp on itself (denied without
/// CAP_SYS_PTRACE), futex_waitv (not listed), then personality values in an order that makes
/// every return value (the previous persona) known.
fn default_profile_cmds() -> String {
    let mut cmds = vec![format!("sys {GETPID}"), format!("sys {KCMP} pid pid 0 0 0")];
    cmds.push(format!("sys {FUTEX_WAITV}"));
    for p in ["0x400000", "8", "0x20000", "0x20008", "0xffffffff", "0"] {
        cmds.push(format!("sys {PERSONALITY} {p}"));
    }
    cmds.join(" , ")
}

/// Control: without linux.seccomp every probed call reaches the kernel, so the filtered
/// results asserted below cannot come from the kernel alone.
#[test]
fn without_seccomp_probed_calls_reach_the_kernel() {
    let env = probe_env(&runtime(), &Value::Null, &default_profile_cmds());
    let out = env.run(&env.id());
    out.ok();
    let want = [ok(1), ok(0), err(libc::EINVAL), ok(0), ok(0x400000), ok(8)];
    let want = want.concat() + &[ok(0x20000), ok(0x20008), ok(0x20008)].concat();
    assert_eq!(out.stdout, want);
}

#[test]
fn default_profile_allows_denies_and_filters_personality() {
    let out = probe(&default_profile(), &default_profile_cmds());
    out.ok();
    let want = [
        ok(1),             // getpid: allowed
        err(libc::EPERM),  // kcmp: errnoRet 1 without CAP_SYS_PTRACE
        err(libc::ENOSYS), // futex_waitv: defaultErrnoRet 38
        err(libc::ENOSYS), // personality(0x400000): no rule matches
        ok(0),             // personality(8) ...
        ok(8),             // personality(0x20000)
        ok(0x20000),       // personality(0x20008)
        ok(0x20008),       // personality(0xffffffff): a query
        ok(0x20008),       // personality(0)
    ];
    assert_eq!(out.stdout, want.concat());
}

/// A whitelist with defaultAction ERRNO(EPERM): an unlisted old syscall gets EPERM, while a
/// syscall numbered above every syscall the profile names gets ENOSYS (runc's ENOSYS stub,
/// so that newer glibc falls back instead of failing hard).
#[test]
fn whitelist_default_errno_and_enosys_for_newer_syscalls() {
    // What the probe and runc's init need once the filter is loaded; all numbered below 300.
    const NAMES: &str = "read write close fstat lseek mmap mprotect munmap brk rt_sigaction \
        rt_sigprocmask rt_sigreturn ioctl sched_yield madvise nanosleep getpid clone \
        exit fcntl readlink sigaltstack arch_prctl gettid futex set_tid_address \
        exit_group epoll_wait epoll_ctl tgkill openat newfstatat set_robust_list execve \
        fstatfs getdents64";
    let names: Vec<&str> = NAMES.split_whitespace().collect();
    let profile = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]});
    let cmds = format!("sys {GETPID} , sys {GETPPID} , sys {CLONE3} , sys {FUTEX_WAITV}");
    let out = probe(&profile, &cmds);
    out.ok();
    assert_eq!(
        errnos(&out),
        [0, libc::EPERM, libc::ENOSYS, libc::ENOSYS],
        "{out:?}"
    );
}

#[test]
fn kill_actions_end_the_process_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
    ] {
        let profile = allow_except(json!([{"names": ["getppid"], "action": action}]));
        let out = probe(
            &profile,
            &format!("sys {GETPID} , sys {GETPPID} , sys {GETPID}"),
        );
        assert_eq!(out.code, SIGSYS_EXIT, "{action}: {out:?}");
        assert_eq!(out.stdout, ok(1), "{action}: nothing runs after the call");
    }
}

#[test]
fn errno_log_and_trace_actions() {
    let profile = allow_except(json!([
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["getuid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95},
        {"names": ["getgid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["geteuid"], "action": "SCMP_ACT_LOG"},
        {"names": ["getegid"], "action": "SCMP_ACT_TRACE"}
    ]));
    let cmds = [GETPPID, GETUID, GETGID, GETEUID, GETEGID].map(|nr| format!("sys {nr}"));
    let out = probe(&profile, &cmds.join(" , "));
    out.ok();
    // ERRNO without errnoRet is EPERM; LOG allows; TRACE without a tracer fails with ENOSYS.
    assert_eq!(errnos(&out), [38, 95, libc::EPERM, 0, libc::ENOSYS]);
}

/// Each operator compares against a value whose high 32 bits matter: a filter comparing only
/// the low half (or truncating to int) gets at least one case wrong.
#[test]
fn argument_operators_compare_all_64_bits() {
    const V: u64 = 0x1_0000_0005;
    let cmp = |op: &str| json!({"index": 0, "value": V, "op": op});
    let masked =
        json!({"index": 0, "value": 0xff_0000_00ff_u64, "valueTwo": V, "op": "SCMP_CMP_MASKED_EQ"});
    // (syscall, condition, matching args, non-matching args)
    let cases: [(u32, Value, &[u64], &[u64]); 7] = [
        (GETPPID, cmp("SCMP_CMP_EQ"), &[V], &[5, 0x2_0000_0005]),
        (GETUID, cmp("SCMP_CMP_NE"), &[5, 0x2_0000_0005], &[V]),
        (
            GETGID,
            cmp("SCMP_CMP_LT"),
            &[5, 0x1_0000_0004],
            &[V, 0x2_0000_0004],
        ),
        (
            GETEUID,
            cmp("SCMP_CMP_LE"),
            &[V, 6],
            &[0x2_0000_0004, 0x1_0000_0006],
        ),
        (
            GETEGID,
            cmp("SCMP_CMP_GT"),
            &[0x2_0000_0004, 0x1_0000_0006],
            &[V, 6],
        ),
        (
            GETPGRP,
            cmp("SCMP_CMP_GE"),
            &[V, 0x2_0000_0004],
            &[6, 0x1_0000_0004],
        ),
        (MUNLOCKALL, masked, &[0x1_ffff_ff05], &[5, 0x2_0000_0005]),
    ];
    let mut rules = Vec::new();
    let (mut cmds, mut want) = (Vec::new(), Vec::new());
    for (i, (nr, cond, hits, misses)) in cases.iter().enumerate() {
        let errno = 100 + i as i32;
        rules.push(
            json!({"names": [syscall_name(*nr)], "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno, "args": [cond]}),
        );
        for (args, e) in [(*hits, errno), (*misses, 0)] {
            for a in args {
                cmds.push(format!("sys {nr} {a:#x}"));
                want.push((cond["op"].to_string(), *a, e));
            }
        }
    }
    let out = probe(&allow_except(json!(rules)), &cmds.join(" , "));
    out.ok();
    let got: Vec<_> = want
        .iter()
        .zip(errnos(&out))
        .map(|((op, a, _), e)| (op.clone(), *a, e))
        .collect();
    assert_eq!(got, want);
}

fn syscall_name(nr: u32) -> &'static str {
    match nr {
        GETPPID => "getppid",
        GETUID => "getuid",
        GETGID => "getgid",
        GETEUID => "geteuid",
        GETEGID => "getegid",
        GETPGRP => "getpgrp",
        MUNLOCKALL => "munlockall",
        _ => unreachable!("no name for syscall {nr}"),
    }
}

/// runc's rule for one syscall entry: conditions on distinct indexes are AND'd into one
/// rule; if any index repeats, every condition becomes a rule of its own (all OR'd).
#[test]
fn conditions_and_across_indexes_or_on_a_repeated_index() {
    let eq = |index: u32, value: u64| json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"});
    let profile = allow_except(json!([
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 101, "args": [eq(0, 1), eq(0, 2)]},
        {"names": ["getuid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 102, "args": [eq(0, 1), eq(1, 2)]},
        {"names": ["getgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 103, "args": [eq(0, 1), eq(0, 2), eq(1, 7)]}
    ]));
    let calls: [(u32, &str, i32); 10] = [
        (GETPPID, "1 0", 101),
        (GETPPID, "2 0", 101),
        (GETPPID, "3 0", 0),
        (GETUID, "1 2", 102),
        (GETUID, "1 0", 0),
        (GETUID, "0 2", 0),
        (GETGID, "1 0", 103),
        (GETGID, "2 0", 103),
        (GETGID, "3 7", 103), // index 1 alone suffices once index 0 repeats
        (GETGID, "3 0", 0),
    ];
    let cmds: Vec<String> = calls
        .iter()
        .map(|(nr, a, _)| format!("sys {nr} {a}"))
        .collect();
    let out = probe(&profile, &cmds.join(" , "));
    out.ok();
    assert_eq!(errnos(&out), calls.map(|c| c.2));
}

/// A syscall from an architecture missing from `architectures` hits libseccomp's bad-arch
/// action (kill); a listed architecture is governed by the rules, by its own syscall numbers.
#[test]
fn architectures_gate_i386_and_x32_syscalls() {
    let with = |arches: Value| {
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": arches,
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]})
    };
    let i386 = format!("sys {GETPPID} , i386 {I386_GETPPID} , sys {GETPID}");
    let x32 = format!("sys {GETPPID} , sys {X32_GETPPID} , sys {GETPID}");

    let native = probe(&with(json!(["SCMP_ARCH_X86_64"])), &i386);
    assert_eq!(
        (native.code, native.stdout.as_str()),
        (SIGSYS_EXIT, err(77).as_str())
    );
    let native = probe(&with(json!(["SCMP_ARCH_X86_64"])), &x32);
    assert_eq!(
        (native.code, native.stdout.as_str()),
        (SIGSYS_EXIT, err(77).as_str())
    );

    let out = probe(&with(json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])), &i386);
    assert_eq!((out.code, out.stdout), (0, err(77) + &err(77) + &ok(1)));
    let out = probe(&with(json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"])), &x32);
    assert_eq!((out.code, out.stdout), (0, err(77) + &err(77) + &ok(1)));
}

#[test]
fn unknown_syscall_names_are_ignored() {
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall", "getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]});
    let out = probe(&profile, &format!("sys {GETPPID} , sys {GETPID}"));
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, (err(77) + &ok(1)).as_str()),
        "{out:?}"
    );
}

/// Profiles that cannot be loaded fail `create` and leave nothing behind.
#[test]
fn invalid_profiles_fail_create_cleanly() {
    let bad = [
        json!({"defaultAction": "SCMP_ACT_BOGUS"}),
        allow_except(json!([{"names": ["getppid"], "action": "SCMP_ACT_BOGUS"}])),
        allow_except(json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}])),
        allow_except(json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}])),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_BOGUS"]}),
    ];
    for profile in bad {
        let env = probe_env(&runtime(), &profile, &format!("sys {GETPID}"));
        let before = env.root_entries();
        let id = env.id();
        let out = env.create(&id);
        assert_ne!(out.code, 0, "accepted {profile}: {out:?}");
        env.assert_nothing_left(&id, &before);
    }
}

/// The compiled filter is cached under the state root by content: the second run of the same
/// profile reuses the file (not rewritten), a changed profile gets a new filter, never the old
/// one. ward-only (runc has no cache).
#[test]
fn compiled_filters_are_cached_by_content() {
    if runtime_is_runc() {
        eprintln!("skipped: runc has no filter cache");
        return;
    }
    let cache_files = |env: &Env| -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
        let dir = env.root.join("@cache/seccomp");
        let mut v: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| (e.path(), e.metadata().unwrap().modified().unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let deny = |errno: u32| {
        allow_except(json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]))
    };
    let mut env = probe_env(&runtime(), &deny(77), &format!("sys {GETPPID}"));
    let first = env.run(&env.id());
    assert_eq!(first.stdout, err(77), "{first:?}");
    let cached = cache_files(&env);
    assert_eq!(cached.len(), 1, "one filter cached");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = env.run(&env.id());
    assert_eq!(second.stdout, err(77));
    assert_eq!(
        cache_files(&env),
        cached,
        "same profile: the cached file is reused, not rewritten"
    );
    env.config["linux"]["seccomp"] = deny(78);
    let changed = env.run(&env.id());
    assert_eq!(
        changed.stdout,
        err(78),
        "a changed profile never runs the old filter"
    );
    assert_eq!(cache_files(&env).len(), 2);
}
