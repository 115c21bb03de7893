//! Which sockets a container may create: a seccomp filter on socket()/socketpair()'s domain and
//! type arguments (registers, so race-free). Families not listed fail with EAFNOSUPPORT; under
//! a deny policy raw sockets fail with EPERM too; the 32-bit `socketcall` (its arguments are in
//! memory, which seccomp cannot read) is denied outright. So is bpf(2): with CAP_SYS_ADMIN (or
//! CAP_BPF and CAP_NET_ADMIN) it could find the walls' programs on the container's own cgroup
//! and detach them, or attach one after them that rewrites an address they allowed. And
//! io_uring_setup(2): IORING_OP_SOCKET makes sockets (packet, raw) without socket(2), out of
//! this filter's sight.

use crate::error::Result;
use crate::policy::seccomp::bpf::{Asm, JEQ};
use crate::policy::seccomp::compile::{
    Program, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, RET_ALLOW, RET_ERRNO, X32_SYSCALL_BIT,
};
use crate::spec::interception::{numbers, Network, Verdict};

/// The filter, loaded beside the container's own seccomp profile (the kernel applies the most
/// restrictive answer of all filters).
pub fn filter(n: &Network) -> Result<Program> {
    const SOCKET: u32 = 41;
    const SOCKETPAIR: u32 = 53;
    const I386_SOCKETCALL: u32 = 102;
    const I386_SOCKET: u32 = 359;
    const I386_SOCKETPAIR: u32 = 360;
    const BPF: u32 = 321;
    const I386_BPF: u32 = 357;
    const IO_URING_SETUP: u32 = 425; // the same number on x86_64, x32 and i386
    let fams = numbers(n)?;
    let mut asm = Asm::default();
    let allow = asm.label();
    let check = asm.label();
    let i386 = asm.label();
    let eafnosupport = asm.label();
    let eperm = asm.label();
    asm.load(4);
    asm.jump_unless(JEQ, AUDIT_ARCH_X86_64, i386);
    asm.load(0);
    asm.jump_if(JEQ, BPF, eperm);
    asm.jump_if(JEQ, BPF | X32_SYSCALL_BIT, eperm);
    asm.jump_if(JEQ, IO_URING_SETUP, eperm);
    asm.jump_if(JEQ, IO_URING_SETUP | X32_SYSCALL_BIT, eperm);
    for nr in [
        SOCKET,
        SOCKETPAIR,
        SOCKET | X32_SYSCALL_BIT,
        SOCKETPAIR | X32_SYSCALL_BIT,
    ] {
        asm.jump_if(JEQ, nr, check);
    }
    asm.goto(allow);
    asm.bind(i386);
    asm.load(4);
    asm.jump_unless(JEQ, AUDIT_ARCH_I386, allow);
    asm.load(0);
    asm.jump_if(JEQ, I386_SOCKETCALL, eperm);
    asm.jump_if(JEQ, I386_BPF, eperm);
    asm.jump_if(JEQ, IO_URING_SETUP, eperm);
    asm.jump_if(JEQ, I386_SOCKET, check);
    asm.jump_if(JEQ, I386_SOCKETPAIR, check);
    asm.goto(allow);
    asm.bind(check);
    asm.load(16); // domain (low half)
    let family_ok = asm.label();
    for f in &fams {
        asm.jump_if(JEQ, *f, family_ok);
    }
    asm.goto(eafnosupport);
    asm.bind(family_ok);
    if n.default == Verdict::Deny {
        asm.load(24); // type (low half): SOCK_RAW is 3 in its low 4 bits
        asm.stmt(crate::policy::seccomp::bpf::ALU_AND_K, 0xf);
        asm.jump_if(JEQ, 3, eperm);
    }
    asm.goto(allow);
    asm.bind(eafnosupport);
    asm.ret(RET_ERRNO | libc::EAFNOSUPPORT as u32);
    asm.bind(eperm);
    asm.ret(RET_ERRNO | libc::EPERM as u32);
    asm.bind(allow);
    asm.ret(RET_ALLOW);
    Ok(Program {
        insns: asm.assemble()?,
        flags: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::seccomp::bpf::emulate;

    #[test]
    fn families_and_raw_sockets() {
        let n = Network {
            default: Verdict::Deny,
            ..Default::default()
        };
        let p = filter(&n).unwrap();
        let sock =
            |dom: u64, ty: u64| emulate(&p.insns, 41, AUDIT_ARCH_X86_64, [dom, ty, 0, 0, 0, 0]);
        assert_eq!(sock(2, 1), RET_ALLOW, "inet stream");
        assert_eq!(sock(17, 3), RET_ERRNO | libc::EAFNOSUPPORT as u32, "packet");
        assert_eq!(sock(40, 1), RET_ERRNO | libc::EAFNOSUPPORT as u32, "vsock");
        assert_eq!(
            sock(2, 3 | 0o2000000),
            RET_ERRNO | libc::EPERM as u32,
            "raw, with SOCK_CLOEXEC"
        );
        assert_eq!(
            emulate(&p.insns, 102, AUDIT_ARCH_I386, [0; 6]),
            RET_ERRNO | libc::EPERM as u32,
            "socketcall"
        );
        for (nr, arch) in [
            (321, AUDIT_ARCH_X86_64),
            (321 | X32_SYSCALL_BIT, AUDIT_ARCH_X86_64),
            (357, AUDIT_ARCH_I386),
            (425, AUDIT_ARCH_X86_64),
            (425 | X32_SYSCALL_BIT, AUDIT_ARCH_X86_64),
            (425, AUDIT_ARCH_I386),
        ] {
            assert_eq!(
                emulate(&p.insns, nr, arch, [0; 6]),
                RET_ERRNO | libc::EPERM as u32,
                "bpf or io_uring_setup {nr:#x}"
            );
        }
        assert_eq!(
            emulate(&p.insns, 39, AUDIT_ARCH_X86_64, [0; 6]),
            RET_ALLOW,
            "getpid"
        );
    }
}
