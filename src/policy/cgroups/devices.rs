//! Device access rules: `linux.resources.devices` as v1 `devices.allow`/`devices.deny` lines,
//! or, on cgroup v2 (which has no devices files), as an eBPF BPF_PROG_TYPE_CGROUP_DEVICE
//! program attached to the container's cgroup.
//!
//! Semantics as runc: rules apply in order and a later rule overrides an earlier one, so the
//! program tests them last to first and the first match decides; no match denies.

use std::os::fd::{AsFd, BorrowedFd};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result};
use crate::sys::ebpf::{self, insn, Insn, AND32_K, EXIT, JNE_K, LDX_W, MOV32_X, MOV64_K, RSH32_K};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// 'a' (all), 'c' or 'b'.
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Subset of "rwm".
    pub access: String,
}

impl Rule {
    pub fn from_spec(i: usize, r: &LinuxDeviceCgroup) -> Result<Rule> {
        let kind = match r.typ() {
            None | Some(LinuxDeviceType::A) => 'a',
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
            Some(LinuxDeviceType::B) => 'b',
            Some(LinuxDeviceType::P) => {
                return Err(Error::spec(
                    format!("linux.resources.devices[{i}].type"),
                    "p is not a device cgroup type",
                ))
            }
        };
        let access = r.access().clone().unwrap_or_else(|| "rwm".into());
        if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(Error::spec(
                format!("linux.resources.devices[{i}].access"),
                format!("{access:?} is not a subset of rwm"),
            ));
        }
        Ok(Rule {
            allow: r.allow(),
            kind,
            major: r.major().filter(|m| *m >= 0),
            minor: r.minor().filter(|m| *m >= 0),
            access,
        })
    }

    /// The v1 line: `c 1:3 rwm` (`a` alone for everything).
    pub fn v1_line(&self) -> String {
        if self.kind == 'a' {
            return "a".into();
        }
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    fn access_bits(&self) -> i32 {
        self.access.chars().fold(0, |b, c| {
            b | match c {
                'm' => 1,
                'r' => 2,
                _ => 4,
            }
        })
    }
}

pub fn rules_from_spec(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| Rule::from_spec(i, r))
        .collect()
}

/// The program: r2 = type, r3 = access, r4 = major, r5 = minor (struct bpf_cgroup_dev_ctx).
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let mut block: Vec<Insn> = Vec::new();
        // Jumps are patched to the block's end once its length is known (off = -1 marker).
        if r.kind != 'a' {
            block.push(insn(JNE_K, 2, 0, -1, if r.kind == 'b' { 1 } else { 2 }));
        }
        if r.access_bits() != 7 {
            block.push(insn(MOV32_X, 1, 3, 0, 0));
            block.push(insn(AND32_K, 1, 0, 0, !r.access_bits() & 7));
            block.push(insn(JNE_K, 1, 0, -1, 0));
        }
        if let Some(m) = r.major {
            block.push(insn(JNE_K, 4, 0, -1, m as i32));
        }
        if let Some(m) = r.minor {
            block.push(insn(JNE_K, 5, 0, -1, m as i32));
        }
        block.push(insn(MOV64_K, 0, 0, 0, r.allow as i32));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.off == -1 {
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
        // A rule matching everything (`a *:* rwm`, typically the leading deny-all) ends the
        // program: the verifier rejects code that can never run.
        if len == 2 {
            return p;
        }
    }
    p.push(insn(MOV64_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// Loads the program and attaches it to the cgroup at `cgroup` (replacing ward's earlier one).
pub fn attach(cgroup: BorrowedFd, rules: &[Rule]) -> Result<()> {
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    let prog = program(rules);
    let fd = ebpf::load(
        &prog,
        BPF_PROG_TYPE_CGROUP_DEVICE,
        BPF_CGROUP_DEVICE,
        "the device cgroup program",
    )?;
    ebpf::attach(
        cgroup,
        fd.as_fd(),
        BPF_CGROUP_DEVICE,
        0,
        "the device program",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on a device access the way the kernel calls it.
    fn emulate(p: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> i64 {
        let ctx = [(access << 16) | kind, major, minor];
        let mut r = [0i64; 11];
        let mut pc = 0;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => r[dst] = ctx[(i.off / 4) as usize] as i64,
                AND32_K => r[dst] = (r[dst] as u32 & i.imm as u32) as i64,
                RSH32_K => r[dst] = (r[dst] as u32 >> i.imm) as i64,
                MOV32_X => r[dst] = r[src] as u32 as i64,
                MOV64_K => r[dst] = i.imm as i64,
                JNE_K => {
                    if r[dst] != i.imm as i64 {
                        pc += i.off as usize
                    }
                }
                EXIT => return r[0],
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    fn rule(allow: bool, kind: char, major: Option<i64>, minor: Option<i64>, access: &str) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    #[test]
    fn later_rules_win_and_access_must_be_covered() {
        let rules = vec![
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(136), None, "rw"),
        ];
        let p = program(&rules);
        const CHR: u32 = 2;
        const READ: u32 = 2;
        const MKNOD: u32 = 1;
        assert_eq!(emulate(&p, CHR, READ, 1, 3), 1, "/dev/null allowed");
        assert_eq!(emulate(&p, CHR, READ, 1, 5), 0, "/dev/zero denied");
        assert_eq!(emulate(&p, CHR, READ | 4, 136, 7), 1, "any pts rw");
        assert_eq!(emulate(&p, CHR, MKNOD, 136, 7), 0, "no mknod of pts");
        assert_eq!(emulate(&p, 1, READ, 1, 3), 0, "block 1:3 is not char 1:3");
        assert_eq!(rules[1].v1_line(), "c 1:3 rwm");
        assert_eq!(rules[2].v1_line(), "c 136:* rw");
        assert_eq!(rules[0].v1_line(), "a");
        // The leading deny-all is tested last and matches everything: nothing may follow it.
        assert_eq!(p.last().map(|i| i.code), Some(EXIT));
        assert_eq!(p[p.len() - 2].code, MOV64_K);
        assert_eq!(p[p.len() - 2].imm, 0);
        assert_eq!(
            p.len(),
            6 + 7 + 5 + 2,
            "no unreachable default after the catch-all"
        );
    }
}
