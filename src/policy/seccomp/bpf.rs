//! A tiny classic-BPF assembler with labels.
//!
//! Conditional jumps in classic BPF reach at most 255 instructions ahead. Instead of computing
//! trampolines, every conditional jump here only ever skips one instruction, and the far target
//! is reached by the unconditional `ja` it skips or falls into (32-bit offset). Programs stay
//! simple to read and always assemble.

use crate::error::{Error, Result};

pub const LD_W_ABS: u16 = 0x20;
pub const ALU_AND_K: u16 = 0x54;
pub const JEQ: u16 = 0x15;
pub const JGT: u16 = 0x25;
pub const JGE: u16 = 0x35;
const JA: u16 = 0x05;
const RET_K: u16 = 0x06;

/// The kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl SockFilter {
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&self.code.to_ne_bytes());
        b[2] = self.jt;
        b[3] = self.jf;
        b[4..8].copy_from_slice(&self.k.to_ne_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<SockFilter> {
        Some(SockFilter {
            code: u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?),
            jt: *b.get(2)?,
            jf: *b.get(3)?,
            k: u32::from_ne_bytes(b.get(4..8)?.try_into().ok()?),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(usize);

enum Item {
    Insn(SockFilter),
    Ja(Label),
    Bind(Label),
}

#[derive(Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: usize,
}

/// The kernel's limit on one filter (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

impl Asm {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    pub fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }

    pub fn load(&mut self, offset: u32) {
        self.stmt(LD_W_ABS, offset);
    }

    pub fn stmt(&mut self, code: u16, k: u32) {
        self.items.push(Item::Insn(SockFilter {
            code,
            jt: 0,
            jf: 0,
            k,
        }));
    }

    pub fn ret(&mut self, k: u32) {
        self.stmt(RET_K, k);
    }

    pub fn goto(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }

    /// if (A <op> k) goto l
    pub fn jump_if(&mut self, op: u16, k: u32, l: Label) {
        self.items.push(Item::Insn(SockFilter {
            code: op,
            jt: 0,
            jf: 1,
            k,
        }));
        self.goto(l);
    }

    /// if !(A <op> k) goto l
    pub fn jump_unless(&mut self, op: u16, k: u32, l: Label) {
        self.items.push(Item::Insn(SockFilter {
            code: op,
            jt: 1,
            jf: 0,
            k,
        }));
        self.goto(l);
    }

    pub fn assemble(self) -> Result<Vec<SockFilter>> {
        let mut pos = vec![usize::MAX; self.labels];
        let mut n = 0;
        for item in &self.items {
            match item {
                Item::Bind(l) => pos[l.0] = n,
                _ => n += 1,
            }
        }
        if n > MAX_INSNS {
            return Err(Error::spec(
                "linux.seccomp",
                format!(
                    "the filter needs {n} BPF instructions, more than the kernel's {MAX_INSNS}"
                ),
            ));
        }
        let mut out = Vec::with_capacity(n);
        for item in self.items {
            match item {
                Item::Bind(_) => {}
                Item::Insn(i) => out.push(i),
                Item::Ja(l) => {
                    let target = pos[l.0];
                    let here = out.len() + 1;
                    if target == usize::MAX || target < here {
                        return Err(Error::Init(
                            "seccomp: internal error: bad jump target".into(),
                        ));
                    }
                    out.push(SockFilter {
                        code: JA,
                        jt: 0,
                        jf: 0,
                        k: (target - here) as u32,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Runs a program on a `seccomp_data` (nr, arch, args) the way the kernel does; used by tests to
/// check the compiler's logic without loading anything.
#[cfg(test)]
pub(crate) fn emulate(prog: &[SockFilter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let mut a: u32 = 0;
    let mut pc = 0;
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => {
                let o = i.k as usize;
                a = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
            }
            ALU_AND_K => a &= i.k,
            JA => pc += i.k as usize,
            RET_K => return i.k,
            JEQ | JGT | JGE => {
                let t = match i.code {
                    JEQ => a == i.k,
                    JGT => a > i.k,
                    _ => a >= i.k,
                };
                pc += if t { i.jt } else { i.jf } as usize;
            }
            c => panic!("unknown opcode {c:#x}"),
        }
    }
}
