//! The eBPF pieces ward's own programs share (the cgroup device filter, the egress programs):
//! the instruction format, the opcodes they use, and bpf(2) with its attr buffer. Programs are
//! built as instructions in Rust, so no clang or nightly toolchain is needed to build ward.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};

pub mod btf;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

pub const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

pub const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
pub const LDX_B: u8 = 0x71;
pub const LDX_DW: u8 = 0x79;
pub const STX_B: u8 = 0x73;
pub const ST_DW: u8 = 0x7a;
pub const LDX_H: u8 = 0x69;
pub const STX_W: u8 = 0x63;
pub const ST_W: u8 = 0x62;
pub const AND32_K: u8 = 0x54;
pub const RSH32_K: u8 = 0x74;
pub const RSH64_K: u8 = 0x77;
pub const MOV32_X: u8 = 0xbc;
pub const MOV64_X: u8 = 0xbf;
pub const MOV64_K: u8 = 0xb7;
pub const ADD64_K: u8 = 0x07;
pub const END_BE: u8 = 0xdc;
pub const LD_IMM64: u8 = 0x18;
pub const CALL: u8 = 0x85;
pub const EXIT: u8 = 0x95;
pub const JA: u8 = 0x05;
pub const JEQ_K: u8 = 0x15;
pub const JNE_K: u8 = 0x55;
pub const JLE_K: u8 = 0xb5;
pub const JGT_X: u8 = 0x2d;
pub const JLT_X: u8 = 0xad;
pub const STX_DW: u8 = 0x7b;
pub const MOV32_K: u8 = 0xb4;
pub const AND64_K: u8 = 0x57;
/// BPF_JMP32: compares the low 32 bits only, so an address fits the 32-bit immediate.
pub const JEQ32_K: u8 = 0x16;
pub const JNE32_K: u8 = 0x56;

/// bpf(2) with a zeroed, bpf_attr-sized buffer the caller filled.
pub fn bpf(cmd: i64, attr: &mut [u8; 128]) -> nix::Result<i64> {
    // SAFETY: `attr` is a bpf_attr-sized buffer we own for the call; any pointers stored in it
    // by the caller point at live data.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    nix::errno::Errno::result(rc)
}

pub fn owned(fd: i64) -> OwnedFd {
    // SAFETY: bpf(2) returned a new fd that nobody else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// BPF_PROG_LOAD of `prog` with its type and expected attach type.
pub fn load(prog: &[Insn], prog_type: u32, attach_type: u32, what: &str) -> Result<OwnedFd> {
    load_licensed(prog, prog_type, attach_type, what, c"Apache-2.0")
}

/// As `load`, with the program's license string. Calling kfuncs or reading kernel structs
/// needs a GPL-compatible one; ward's programs that do say so (see their modules).
/// A refused program is loaded again with the verifier's log, whose end goes in the error.
pub fn load_licensed(
    prog: &[Insn],
    prog_type: u32,
    attach_type: u32,
    what: &str,
    license: &std::ffi::CStr,
) -> Result<OwnedFd> {
    let attr_for = |log: Option<&mut Vec<u8>>| {
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&prog_type.to_ne_bytes());
        attr[4..8].copy_from_slice(&(prog.len() as u32).to_ne_bytes());
        attr[8..16].copy_from_slice(&(prog.as_ptr() as u64).to_ne_bytes());
        attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
        if let Some(log) = log {
            attr[24..28].copy_from_slice(&1u32.to_ne_bytes());
            attr[28..32].copy_from_slice(&(log.len() as u32).to_ne_bytes());
            attr[32..40].copy_from_slice(&(log.as_mut_ptr() as u64).to_ne_bytes());
        }
        attr[48..52].copy_from_slice(b"ward");
        attr[68..72].copy_from_slice(&attach_type.to_ne_bytes());
        attr
    };
    let errno = match bpf(5, &mut attr_for(None)) {
        Ok(fd) => return Ok(owned(fd)),
        Err(e) => e,
    };
    let mut log = vec![0u8; 1 << 20];
    let mut attr = attr_for(Some(&mut log));
    if let Ok(fd) = bpf(5, &mut attr) {
        return Ok(owned(fd)); // accepted the second time: nothing to report
    }
    let text =
        String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(0)]).into_owned();
    let tail: Vec<&str> = text.lines().rev().take(6).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let detail = if tail.is_empty() {
        String::new()
    } else {
        format!(" (verifier: {})", tail.join(" | "))
    };
    Err(Error::sys("bpf", format!("load {what}{detail}"), errno))
}

/// BPF_PROG_ATTACH of `prog` to the cgroup at `cgroup`.
pub fn attach(
    cgroup: BorrowedFd,
    prog: BorrowedFd,
    attach_type: u32,
    flags: u32,
    what: &str,
) -> Result<()> {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(cgroup.as_raw_fd() as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&attach_type.to_ne_bytes());
    attr[12..16].copy_from_slice(&flags.to_ne_bytes());
    bpf(8, &mut attr)
        .map(drop)
        .map_err(|e| Error::sys("bpf", format!("attach {what} to the cgroup"), e))
}

/// BPF_LINK_CREATE of `prog` on `target` (a netns fd for sk_lookup). Closing the returned
/// link fd (its last copy) detaches the program.
pub fn link_create(
    prog: BorrowedFd,
    target: BorrowedFd,
    attach_type: u32,
    what: &str,
) -> Result<OwnedFd> {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(target.as_raw_fd() as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&attach_type.to_ne_bytes());
    bpf(28, &mut attr)
        .map(owned)
        .map_err(|e| Error::sys("bpf", format!("link {what}"), e))
}

/// BPF_BTF_LOAD of a type blob (maps that must describe their key and value, as sk_storage).
pub fn load_btf(blob: &[u8], what: &str) -> Result<OwnedFd> {
    let mut attr = [0u8; 128];
    attr[0..8].copy_from_slice(&(blob.as_ptr() as u64).to_ne_bytes());
    attr[16..20].copy_from_slice(&(blob.len() as u32).to_ne_bytes());
    bpf(18, &mut attr)
        .map(owned)
        .map_err(|e| Error::sys("bpf", format!("load the type information of {what}"), e))
}

/// BPF_MAP_UPDATE_ELEM of one key and value.
pub fn update_elem(map: BorrowedFd, key: &[u8], value: &[u8], what: &str) -> Result<()> {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(map.as_raw_fd() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(key.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(value.as_ptr() as u64).to_ne_bytes());
    bpf(2, &mut attr)
        .map(drop)
        .map_err(|e| Error::sys("bpf", format!("fill {what}"), e))
}
