//! `linux.seccomp` -> a classic BPF program, written for ward rather than wrapped around
//! seccompiler: seccompiler has no NOTIFY action, compiles one architecture per filter, has no
//! ENOSYS stub for syscalls newer than the profile, and does not split several conditions on one
//! argument into OR'd rules as runc/libseccomp do. All four are the semantics engines rely on.
//!
//! Layout of the program:
//!
//!   load arch; x86_64 -> X64 ; i386 -> X86 ; else KILL_PROCESS (bad arch, like libseccomp)
//!   X64: load nr; nr >= 0x40000000 -> X32 (or KILL_PROCESS if x32 is not listed)
//!   each arch: a chain "nr == N -> its rules" over the syscalls the profile names; then
//!     nr > highest named -> ERRNO(ENOSYS) (so libc falls back from clone3 & co.), else default
//!   a syscall's rules: conditions AND'd, rules tried in profile order (conditional ones first),
//!     first match returns its action; none -> the default action.

use std::collections::{BTreeMap, HashMap};

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op,
};

use super::bpf::{Asm, Label, SockFilter, ALU_AND_K, JEQ, JGE, JGT};
use super::syscalls;
use crate::error::{Error, Result};

pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

pub const FLAG_TSYNC: u32 = 1;
pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;
pub const FLAG_NEW_LISTENER: u32 = 8;
pub const FLAG_TSYNC_ESRCH: u32 = 16;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// A compiled filter and how to load it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub insns: Vec<SockFilter>,
    /// SECCOMP_FILTER_FLAG_* for seccomp(2).
    pub flags: u32,
}

impl Program {
    pub fn wants_listener(&self) -> bool {
        self.flags & FLAG_NEW_LISTENER != 0
    }
}

const EPERM: u32 = libc::EPERM as u32;
const ENOSYS: u32 = libc::ENOSYS as u32;

fn action(a: Act, errno: Option<u32>) -> u32 {
    match a {
        Act::ScmpActKill | Act::ScmpActKillThread => RET_KILL_THREAD,
        Act::ScmpActKillProcess => RET_KILL_PROCESS,
        Act::ScmpActTrap => RET_TRAP,
        Act::ScmpActErrno => RET_ERRNO | (errno.unwrap_or(EPERM) & 0xffff),
        Act::ScmpActTrace => RET_TRACE | (errno.unwrap_or(EPERM) & 0xffff),
        Act::ScmpActLog => RET_LOG,
        Act::ScmpActAllow => RET_ALLOW,
        Act::ScmpActNotify => RET_USER_NOTIF,
    }
}

/// One rule: conditions that must all hold, and the action then taken.
#[derive(Debug, Clone)]
struct Rule {
    conds: Vec<LinuxSeccompArg>,
    action: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Abi {
    X86_64,
    X32,
    I386,
}

impl Abi {
    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => syscalls::X86_64,
            Abi::X32 => syscalls::X32,
            Abi::I386 => syscalls::X86,
        }
    }
    fn nr_bits(self) -> u32 {
        if self == Abi::X32 {
            X32_SYSCALL_BIT
        } else {
            0
        }
    }
}

/// The rules of every syscall the profile names, per ABI, keyed by syscall number.
fn rules_for(s: &LinuxSeccomp, abi: Abi) -> Result<BTreeMap<u32, Vec<Rule>>> {
    let table: HashMap<&str, u32> = abi.table().iter().copied().collect();
    let mut out: BTreeMap<u32, Vec<Rule>> = BTreeMap::new();
    for (i, entry) in s.syscalls().iter().flatten().enumerate() {
        let act = action(entry.action(), entry.errno_ret());
        let args = entry.args().clone().unwrap_or_default();
        for (j, a) in args.iter().enumerate() {
            if a.index() > 5 {
                return Err(Error::spec(
                    format!("linux.seccomp.syscalls[{i}].args[{j}].index"),
                    format!("{} is not an argument index (0-5)", a.index()),
                ));
            }
        }
        // runc's rule: several conditions on the same argument cannot all hold at once in
        // libseccomp, so each becomes its own rule (OR); otherwise they are AND'd in one rule.
        let mut seen = [false; 6];
        let repeats = args
            .iter()
            .any(|a| std::mem::replace(&mut seen[a.index()], true));
        let rules: Vec<Rule> = if repeats {
            args.iter()
                .map(|a| Rule {
                    conds: vec![*a],
                    action: act,
                })
                .collect()
        } else {
            vec![Rule {
                conds: args.clone(),
                action: act,
            }]
        };
        for name in entry.names() {
            match table.get(name.as_str()) {
                Some(nr) => out.entry(*nr).or_default().extend(rules.iter().cloned()),
                None => tracing::debug!("seccomp: syscall {name:?} is unknown on {abi:?}: ignored"),
            }
        }
    }
    // Conditional rules are tried before an unconditional one for the same syscall.
    for rules in out.values_mut() {
        rules.sort_by_key(|r| r.conds.is_empty());
    }
    Ok(out)
}

fn flags_of(s: &LinuxSeccomp, listener: bool) -> Result<u32> {
    let mut flags = if listener { FLAG_NEW_LISTENER } else { 0 };
    for f in s.flags().iter().flatten() {
        flags |= match f {
            Flag::SeccompFilterFlagLog => FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagTsync => FLAG_TSYNC,
            Flag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }
    if flags & FLAG_WAIT_KILLABLE_RECV != 0 && !listener {
        return Err(Error::spec(
            "linux.seccomp.flags",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a SCMP_ACT_NOTIFY rule (a listener)",
        ));
    }
    // seccomp(2): TSYNC together with NEW_LISTENER is only allowed with TSYNC_ESRCH.
    if flags & FLAG_TSYNC != 0 && listener {
        flags |= FLAG_TSYNC_ESRCH;
    }
    Ok(flags)
}

pub fn compile(s: &LinuxSeccomp) -> Result<Program> {
    let mut archs: Vec<Arch> = s.architectures().clone().unwrap_or_default();
    if archs.is_empty() || archs.contains(&Arch::ScmpArchNative) {
        archs.push(Arch::ScmpArchX86_64);
    }
    for a in &archs {
        if !matches!(
            a,
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 | Arch::ScmpArchX86 | Arch::ScmpArchX32
        ) {
            tracing::debug!("seccomp: architecture {a:?} cannot run here: ignored");
        }
    }
    let has = |a: Arch| archs.contains(&a);
    let default = action(s.default_action(), s.default_errno_ret());
    let listener = s.default_action() == Act::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|e| e.action() == Act::ScmpActNotify);
    let flags = flags_of(s, listener)?;
    // Newer-than-profile syscalls get ENOSYS unless the profile allows by default anyway.
    let enosys_stub = !matches!(s.default_action(), Act::ScmpActAllow | Act::ScmpActLog);

    let mut asm = Asm::default();
    let mut rets: BTreeMap<u32, Label> = BTreeMap::new();
    // BPF only jumps forward: every `ret` lives in one block at the end, shared by all.
    let bad_arch = asm.label();
    rets.insert(RET_KILL_PROCESS, bad_arch);
    let l_x64 = asm.label();
    let l_x32 = asm.label();
    let l_i386 = asm.label();
    asm.load(4);
    if has(Arch::ScmpArchX86_64) || has(Arch::ScmpArchX32) {
        asm.jump_if(JEQ, AUDIT_ARCH_X86_64, l_x64);
    }
    if has(Arch::ScmpArchX86) {
        asm.jump_if(JEQ, AUDIT_ARCH_I386, l_i386);
    }
    asm.goto(bad_arch);

    asm.bind(l_x64);
    asm.load(0);
    asm.jump_if(
        JGE,
        X32_SYSCALL_BIT,
        if has(Arch::ScmpArchX32) {
            l_x32
        } else {
            bad_arch
        },
    );
    if has(Arch::ScmpArchX86_64) {
        body(
            &mut asm,
            &mut rets,
            &rules_for(s, Abi::X86_64)?,
            Abi::X86_64,
            default,
            enosys_stub,
        );
    } else {
        asm.goto(bad_arch);
    }
    if has(Arch::ScmpArchX32) {
        asm.bind(l_x32);
        body(
            &mut asm,
            &mut rets,
            &rules_for(s, Abi::X32)?,
            Abi::X32,
            default,
            enosys_stub,
        );
    }
    if has(Arch::ScmpArchX86) {
        asm.bind(l_i386);
        asm.load(0);
        body(
            &mut asm,
            &mut rets,
            &rules_for(s, Abi::I386)?,
            Abi::I386,
            default,
            enosys_stub,
        );
    }
    for (k, l) in rets {
        asm.bind(l);
        asm.ret(k);
    }
    Ok(Program {
        insns: asm.assemble()?,
        flags,
    })
}

/// The syscall chain of one ABI (A holds nr on entry) and the rule blocks it jumps to.
fn body(
    asm: &mut Asm,
    rets: &mut BTreeMap<u32, Label>,
    rules: &BTreeMap<u32, Vec<Rule>>,
    abi: Abi,
    default: u32,
    enosys_stub: bool,
) {
    let mut blocks = Vec::new();
    for (nr, rs) in rules {
        let nr = nr | abi.nr_bits();
        if rs.len() == 1 && rs[0].conds.is_empty() {
            let l = *rets.entry(rs[0].action).or_insert_with(|| asm.label());
            asm.jump_if(JEQ, nr, l);
        } else {
            let l = asm.label();
            asm.jump_if(JEQ, nr, l);
            blocks.push((l, rs));
        }
    }
    if enosys_stub {
        if let Some(max) = rules.keys().next_back() {
            let l = *rets
                .entry(RET_ERRNO | ENOSYS)
                .or_insert_with(|| asm.label());
            asm.jump_if(JGT, max | abi.nr_bits(), l);
        }
    }
    asm.ret(default);
    let wide = abi != Abi::I386;
    for (l, rs) in blocks {
        asm.bind(l);
        for r in rs {
            let next = asm.label();
            for c in &r.conds {
                condition(asm, c, wide, next);
            }
            asm.ret(r.action);
            asm.bind(next);
        }
        asm.ret(default);
    }
}

/// Falls through when `c` holds for the syscall's argument, jumps to `fail` otherwise. 64-bit
/// arguments are compared on both halves (high first); i386 arguments are 32 bits.
fn condition(asm: &mut Asm, c: &LinuxSeccompArg, wide: bool, fail: Label) {
    let lo_off = 16 + 8 * c.index() as u32;
    let hi_off = lo_off + 4;
    let (v_lo, v_hi) = (c.value() as u32, (c.value() >> 32) as u32);
    let ok = asm.label();
    match c.op() {
        Op::ScmpCmpEq | Op::ScmpCmpNe => {
            let eq = c.op() == Op::ScmpCmpEq;
            if wide {
                asm.load(hi_off);
                asm.jump_unless(JEQ, v_hi, if eq { fail } else { ok });
            }
            asm.load(lo_off);
            if eq {
                asm.jump_unless(JEQ, v_lo, fail);
            } else {
                asm.jump_if(JEQ, v_lo, fail);
            }
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe | Op::ScmpCmpLt | Op::ScmpCmpLe => {
            // GT/GE directly; LT = !GE, LE = !GT.
            let (lo_op, negate) = match c.op() {
                Op::ScmpCmpGt => (JGT, false),
                Op::ScmpCmpGe => (JGE, false),
                Op::ScmpCmpLt => (JGE, true),
                _ => (JGT, true),
            };
            if wide {
                asm.load(hi_off);
                asm.jump_if(JGT, v_hi, if negate { fail } else { ok });
                asm.jump_unless(JEQ, v_hi, if negate { ok } else { fail });
            }
            asm.load(lo_off);
            if negate {
                asm.jump_if(lo_op, v_lo, fail);
            } else {
                asm.jump_unless(lo_op, v_lo, fail);
            }
        }
        Op::ScmpCmpMaskedEq => {
            let t = c.value_two().unwrap_or(0);
            let (m_lo, m_hi, t_lo, t_hi) = (v_lo, v_hi, t as u32, (t >> 32) as u32);
            if wide {
                asm.load(hi_off);
                asm.stmt(ALU_AND_K, m_hi);
                asm.jump_unless(JEQ, t_hi, fail);
            }
            asm.load(lo_off);
            asm.stmt(ALU_AND_K, m_lo);
            asm.jump_unless(JEQ, t_lo, fail);
        }
    }
    asm.bind(ok);
}
