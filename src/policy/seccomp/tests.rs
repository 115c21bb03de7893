//! The compiler's logic, checked by emulating the BPF program as the kernel would. The real
//! kernel effects are proven by conformance/seccomp.rs.

use super::bpf::emulate;
use super::compile::*;
use oci_spec::runtime::LinuxSeccomp;

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

const X64: u32 = AUDIT_ARCH_X86_64;
const GETPID: u32 = 39;
const PERSONALITY: u32 = 135;
const ACCT: u32 = 163;
const CLONE3: u32 = 435;

fn run(p: &Program, nr: u32, args: [u64; 6]) -> u32 {
    emulate(&p.insns, nr, X64, args)
}

#[test]
fn allow_errno_and_default() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["getpid","clone3"],"action":"SCMP_ACT_ALLOW"},
                        {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#,
    ))
    .unwrap();
    assert_eq!(run(&p, GETPID, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p, PERSONALITY, [0; 6]), RET_ERRNO | 38);
    assert_eq!(
        run(&p, ACCT, [0; 6]),
        RET_ERRNO | 1,
        "old unlisted: default"
    );
    assert_eq!(
        run(&p, CLONE3 + 1, [0; 6]),
        RET_ERRNO | libc::ENOSYS as u32,
        "newer: ENOSYS"
    );
}

#[test]
fn bad_arch_is_killed() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"syscalls":[]}"#,
    ))
    .unwrap();
    assert_eq!(
        emulate(&p.insns, 20, AUDIT_ARCH_I386, [0; 6]),
        RET_KILL_PROCESS
    );
    assert_eq!(
        run(&p, X32_SYSCALL_BIT | 39, [0; 6]),
        RET_KILL_PROCESS,
        "x32 not listed"
    );
    assert_eq!(run(&p, GETPID, [0; 6]), RET_ALLOW);
    let all = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
            "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}]}"#,
    ))
    .unwrap();
    assert_eq!(
        emulate(&all.insns, 20, AUDIT_ARCH_I386, [0; 6]),
        RET_ERRNO | 1,
        "i386 getpid is 20"
    );
    assert_eq!(
        run(&all, X32_SYSCALL_BIT | 39, [0; 6]),
        RET_ERRNO | 1,
        "x32 getpid"
    );
}

fn op_profile(op: &str, value: u64, two: Option<u64>) -> Program {
    let two = two
        .map(|t| format!(r#","valueTwo":{t}"#))
        .unwrap_or_default();
    compile(&profile(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":7,
            "args":[{{"index":0,"value":{value},"op":"{op}"{two}}}]}}]}}"#
    )))
    .unwrap()
}

#[test]
fn all_operators_compare_64_bits() {
    let v = 0x1_0000_0005u64;
    let hit = RET_ERRNO | 7;
    let cases: &[(&str, u64, bool)] = &[
        ("SCMP_CMP_EQ", v, true),
        ("SCMP_CMP_EQ", 5, false),
        ("SCMP_CMP_NE", 5, true),
        ("SCMP_CMP_NE", v, false),
        ("SCMP_CMP_GT", v + 1, true),
        ("SCMP_CMP_GT", v, false),
        ("SCMP_CMP_GT", 0xffff_ffff, false),
        ("SCMP_CMP_GE", v, true),
        ("SCMP_CMP_GE", 6, false),
        ("SCMP_CMP_LT", 6, true),
        ("SCMP_CMP_LT", v, false),
        ("SCMP_CMP_LE", v, true),
        ("SCMP_CMP_LE", 0x2_0000_0000, false),
    ];
    for (op, arg, want) in cases {
        let p = op_profile(op, v, None);
        let got = run(&p, PERSONALITY, [*arg, 0, 0, 0, 0, 0]);
        assert_eq!(got == hit, *want, "{op} arg={arg:#x}");
    }
    let p = op_profile(
        "SCMP_CMP_MASKED_EQ",
        0xff00_0000_00ff,
        Some(0x1200_0000_0034),
    );
    assert_eq!(run(&p, PERSONALITY, [0x12ab_cdef_9934, 0, 0, 0, 0, 0]), hit);
    assert_eq!(
        run(&p, PERSONALITY, [0x13ab_cdef_9934, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
}

#[test]
fn same_index_conditions_are_ored_others_anded() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":3,
             "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]},
            {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":4,
             "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]}]}"#,
    ))
    .unwrap();
    assert_eq!(run(&p, PERSONALITY, [1, 0, 0, 0, 0, 0]), RET_ERRNO | 3);
    assert_eq!(run(&p, PERSONALITY, [2, 0, 0, 0, 0, 0]), RET_ERRNO | 3);
    assert_eq!(run(&p, PERSONALITY, [3, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(run(&p, GETPID, [1, 2, 0, 0, 0, 0]), RET_ERRNO | 4);
    assert_eq!(run(&p, GETPID, [1, 3, 0, 0, 0, 0]), RET_ALLOW);
}

#[test]
fn notify_sets_new_listener_and_flags_are_checked() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap();
    assert!(p.wants_listener());
    assert_eq!(p.flags & FLAG_TSYNC_ESRCH, FLAG_TSYNC_ESRCH);
    assert_eq!(run(&p, GETPID, [0; 6]), RET_USER_NOTIF);
    let bad = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],"syscalls":[]}"#,
    );
    assert!(compile(&bad)
        .unwrap_err()
        .to_string()
        .contains("WAIT_KILLABLE_RECV"));
}

#[test]
fn unknown_names_are_ignored_and_every_action_encodes() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[
            {"names":["no_such_syscall","getpid"],"action":"SCMP_ACT_TRAP"},
            {"names":["acct"],"action":"SCMP_ACT_LOG"},
            {"names":["personality"],"action":"SCMP_ACT_TRACE","errnoRet":9},
            {"names":["getppid"],"action":"SCMP_ACT_KILL"}]}"#,
    ))
    .unwrap();
    assert_eq!(run(&p, GETPID, [0; 6]), RET_TRAP);
    assert_eq!(run(&p, ACCT, [0; 6]), RET_LOG);
    assert_eq!(run(&p, PERSONALITY, [0; 6]), RET_TRACE | 9);
    assert_eq!(run(&p, 110, [0; 6]), RET_KILL_THREAD);
    assert_eq!(run(&p, 0, [0; 6]), RET_KILL_PROCESS, "read: default");
}
