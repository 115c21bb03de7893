//! The seccomp compiler on generated profiles (`crate::fuzzkit`): random ones (real and unknown
//! syscall names, every action, argument conditions with every operator and edge values,
//! architectures, flags, listenerPath) and structure-aware mutations of them. Properties:
//! no panic; an error names a `linux.seccomp` field; a program is valid classic BPF as the
//! kernel checks it (at most 4096 instructions, only the opcodes the compiler emits, loads
//! inside `seccomp_data`, every jump forward and in range, no path that falls off the end), and
//! it decides every (arch, nr, args) as a plain reading of the profile does (a reference model
//! written from the runtime-spec and the compiler's documented semantics, not from its code).

use std::collections::HashMap;

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

use super::bpf::{emulate, SockFilter, ALU_AND_K, JEQ, JGE, JGT, LD_W_ABS, MAX_INSNS};
use super::compile::*;
use super::syscalls;
use crate::fuzzkit::{mutate_json, run, Rng};

const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
const ARCHS: &[&str] = &[
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_RISCV64",
];
const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];
/// Names the tables do not hold (ignored, as libseccomp ignores them), and edge spellings.
const UNKNOWN: &[&str] = &["no_such_syscall", "", "GETPID", "getpid ", "\0", "clone4"];

fn value(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => *rng.pick(&[0, 1, 2, 0xffff_ffff, 1 << 32, u64::MAX, 1 << 63]),
        1 => rng.below(8) as u64,
        2 => rng.next() & 0xffff_ffff,
        _ => rng.next(),
    }
}

fn name(rng: &mut Rng) -> &'static str {
    match rng.below(10) {
        0 => rng.pick::<&str>(UNKNOWN),
        1 => rng.pick(syscalls::X86).0,
        2 => rng.pick(syscalls::X32).0,
        // A few names often, so that several entries meet on one syscall.
        3 | 4 => rng.pick::<&str>(&["getpid", "personality", "clone3", "read", "socket"]),
        _ => rng.pick(syscalls::X86_64).0,
    }
}

/// A profile as a runtime-spec config writes it.
fn profile(rng: &mut Rng) -> Value {
    let mut p = json!({"defaultAction": rng.pick(ACTIONS)});
    if rng.one_in(2) {
        p["defaultErrnoRet"] = json!(value(rng) & 0x1_ffff);
    }
    if !rng.one_in(4) {
        let n = rng.below(4);
        p["architectures"] = json!((0..n).map(|_| *rng.pick(ARCHS)).collect::<Vec<_>>());
    }
    if rng.one_in(3) {
        let n = rng.below(3);
        p["flags"] = json!((0..n).map(|_| *rng.pick(FLAGS)).collect::<Vec<_>>());
    }
    if rng.one_in(8) {
        p["listenerPath"] = json!("/run/agent.sock");
    }
    // Mostly small; sometimes large enough to pass the kernel's 4096 instructions.
    let entries = if rng.one_in(40) {
        300 + rng.below(400)
    } else {
        rng.below(12)
    };
    let syscalls: Vec<Value> = (0..entries)
        .map(|_| {
            let names: Vec<&str> = (0..1 + rng.below(3)).map(|_| name(rng)).collect();
            let mut e = json!({"names": names, "action": rng.pick(ACTIONS)});
            if rng.one_in(3) {
                e["errnoRet"] = json!(value(rng) & 0x1_ffff);
            }
            if rng.one_in(2) {
                let args: Vec<Value> = (0..1 + rng.below(4))
                    .map(|_| {
                        // Index 6 and above: refused, naming the field.
                        let index = if rng.one_in(30) { 6 } else { rng.below(6) };
                        let mut a = json!({"index": index, "value": value(rng),
                                           "op": rng.pick(OPS)});
                        if rng.one_in(2) {
                            a["valueTwo"] = json!(value(rng));
                        }
                        a
                    })
                    .collect();
                e["args"] = json!(args);
            }
            e
        })
        .collect();
    p["syscalls"] = json!(syscalls);
    p
}

/// The kernel's checks of a classic BPF seccomp program (`seccomp_check_filter`,
/// `bpf_check_classic`), for the opcodes the compiler emits.
fn check_program(insns: &[SockFilter]) -> Result<(), String> {
    const JA: u16 = 0x05;
    const RET_K: u16 = 0x06;
    if insns.is_empty() || insns.len() > MAX_INSNS {
        return Err(format!("{} instructions", insns.len()));
    }
    for (pc, i) in insns.iter().enumerate() {
        let next = pc + 1;
        let ok = match i.code {
            // seccomp_data is 64 bytes: nr, arch, ip, args[6]; 4-byte aligned loads.
            LD_W_ABS => i.k % 4 == 0 && i.k <= 60,
            ALU_AND_K => true,
            RET_K => true,
            JA => next + (i.k as usize) < insns.len(),
            JEQ | JGT | JGE => next + usize::from(i.jt.max(i.jf)) < insns.len(),
            _ => false,
        };
        if !ok {
            return Err(format!("instruction {pc} {i:?} of {}", insns.len()));
        }
    }
    // Every path ends in a return: the last instruction is one (jumps only go forward).
    match insns.last() {
        Some(i) if i.code == RET_K => Ok(()),
        other => Err(format!("the program ends in {other:?}")),
    }
}

/// What the profile says the kernel must return for (arch, nr, args).
fn expected(s: &LinuxSeccomp, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    use oci_spec::runtime::{Arch, LinuxSeccompAction as Act, LinuxSeccompOperator as Op};
    let ret = |a: Act, errno: Option<u32>| match a {
        Act::ScmpActKill | Act::ScmpActKillThread => RET_KILL_THREAD,
        Act::ScmpActKillProcess => RET_KILL_PROCESS,
        Act::ScmpActTrap => RET_TRAP,
        Act::ScmpActErrno => RET_ERRNO | (errno.unwrap_or(1) & 0xffff),
        Act::ScmpActTrace => RET_TRACE | (errno.unwrap_or(1) & 0xffff),
        Act::ScmpActLog => RET_LOG,
        Act::ScmpActAllow => RET_ALLOW,
        Act::ScmpActNotify => RET_USER_NOTIF,
    };
    let mut archs = s.architectures().clone().unwrap_or_default();
    if archs.is_empty() || archs.contains(&Arch::ScmpArchNative) {
        archs.push(Arch::ScmpArchX86_64);
    }
    let has = |a: Arch| archs.contains(&a);
    // The ABI the call is made in: its table and whether arguments are 64 bits.
    let (table, bit, wide) = match arch {
        AUDIT_ARCH_X86_64 if nr & X32_SYSCALL_BIT != 0 && has(Arch::ScmpArchX32) => {
            (syscalls::X32, X32_SYSCALL_BIT, true)
        }
        AUDIT_ARCH_X86_64 if nr & X32_SYSCALL_BIT == 0 && has(Arch::ScmpArchX86_64) => {
            (syscalls::X86_64, 0, true)
        }
        AUDIT_ARCH_I386 if has(Arch::ScmpArchX86) => (syscalls::X86, 0, false),
        _ => return RET_KILL_PROCESS,
    };
    let numbers: HashMap<&str, u32> = table.iter().copied().collect();
    let holds = |c: &oci_spec::runtime::LinuxSeccompArg| {
        let (arg, v, two) = if wide {
            (args[c.index()], c.value(), c.value_two().unwrap_or(0))
        } else {
            let lo = |x: u64| x & 0xffff_ffff;
            (
                lo(args[c.index()]),
                lo(c.value()),
                lo(c.value_two().unwrap_or(0)),
            )
        };
        match c.op() {
            Op::ScmpCmpEq => arg == v,
            Op::ScmpCmpNe => arg != v,
            Op::ScmpCmpGt => arg > v,
            Op::ScmpCmpGe => arg >= v,
            Op::ScmpCmpLt => arg < v,
            Op::ScmpCmpLe => arg <= v,
            Op::ScmpCmpMaskedEq => arg & v == two,
        }
    };
    // (conditions, return) of every rule for this nr, conditional rules first, else in order.
    let mut rules: Vec<(Vec<oci_spec::runtime::LinuxSeccompArg>, u32)> = Vec::new();
    let mut named = false;
    let mut highest = None;
    for e in s.syscalls().iter().flatten() {
        let args = e.args().clone().unwrap_or_default();
        let mut indices: Vec<usize> = args.iter().map(|a| a.index()).collect();
        indices.sort_unstable();
        let repeats = indices.windows(2).any(|w| w[0] == w[1]);
        for n in e.names() {
            let Some(&num) = numbers.get(n.as_str()) else {
                continue;
            };
            highest = highest.max(Some(num | bit));
            if num | bit != nr {
                continue;
            }
            named = true;
            let r = ret(e.action(), e.errno_ret());
            if repeats {
                rules.extend(args.iter().map(|a| (vec![*a], r)));
            } else {
                rules.push((args.clone(), r));
            }
        }
    }
    let default = ret(s.default_action(), s.default_errno_ret());
    if !named {
        let stub = !matches!(s.default_action(), Act::ScmpActAllow | Act::ScmpActLog);
        return match highest {
            Some(h) if stub && nr > h => RET_ERRNO | libc::ENOSYS as u32,
            _ => default,
        };
    }
    rules.sort_by_key(|(conds, _)| conds.is_empty());
    rules
        .iter()
        .find(|(conds, _)| conds.iter().all(holds))
        .map_or(default, |(_, r)| *r)
}

#[test]
fn fuzz_seccomp_compile() {
    let words: Vec<&str> = ACTIONS
        .iter()
        .chain(OPS)
        .chain(ARCHS)
        .chain(FLAGS)
        .copied()
        .chain([
            "getpid", "names", "args", "index", "value", "valueTwo", "op",
        ])
        .chain(["action", "errnoRet", "syscalls", "listenerPath"])
        .collect();
    let stats = run("seccomp", |c| {
        let mut p = profile(&mut c.rng);
        if c.rng.one_in(3) {
            for _ in 0..1 + c.rng.below(3) {
                mutate_json(&mut c.rng, &mut p, &words);
            }
        }
        let s: LinuxSeccomp = match crate::spec::from_value(&p, "linux.seccomp") {
            Ok(s) => s,
            Err(e) => {
                crate::spec::fuzz::assert_names_field(&e, &["linux.seccomp"]);
                return "not a profile";
            }
        };
        let program = match c.call(|| compile(&s)) {
            Ok(program) => program,
            Err(e) => {
                crate::spec::fuzz::assert_names_field(&e, &["linux.seccomp"]);
                return "refused";
            }
        };
        if let Err(why) = check_program(&program.insns) {
            panic!("invalid program: {why}\n{p}");
        }
        // The listener flag exactly when some action is NOTIFY.
        let notify = p.to_string().contains("SCMP_ACT_NOTIFY");
        assert!(!program.wants_listener() || notify, "{p}");
        // Every decision as the profile reads: named syscalls, neighbours, the edges.
        let mut named: Vec<u32> = Vec::new();
        for e in s.syscalls().iter().flatten() {
            for n in e.names() {
                for t in [syscalls::X86_64, syscalls::X86, syscalls::X32] {
                    named.extend(t.iter().filter(|(x, _)| x == n).map(|(_, nr)| *nr));
                }
            }
        }
        for _ in 0..16 {
            let arch = match c.rng.below(8) {
                0 => AUDIT_ARCH_I386,
                1 => c.rng.next() as u32,
                _ => AUDIT_ARCH_X86_64,
            };
            let mut nr = match c.rng.below(4) {
                0 if !named.is_empty() => *c.rng.pick(&named),
                1 => c.rng.below(600) as u32,
                2 => *c
                    .rng
                    .pick(&[0, 39, 435, 1000, u32::MAX, X32_SYSCALL_BIT - 1]),
                _ => named.first().map_or(39, |n| n + c.rng.below(3) as u32),
            };
            if c.rng.one_in(4) {
                nr |= X32_SYSCALL_BIT;
            }
            let mut args = [0u64; 6];
            for a in &mut args {
                *a = value(&mut c.rng);
            }
            let got = emulate(&program.insns, nr, arch, args);
            let want = expected(&s, arch, nr, args);
            assert_eq!(
                got, want,
                "arch {arch:#x} nr {nr:#x} args {args:x?}: got {got:#x}, want {want:#x}\n{p}"
            );
        }
        "compiled"
    });
    stats.assert_reaches(&["compiled", "refused", "not a profile"]);
}
