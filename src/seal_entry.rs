//! The ELF entry point of `ward` on x86_64 Linux: the CVE-2019-5736 re-exec before anything
//! else runs.
//!
//! `create`, `run` and `exec` must run from an unwritable copy of ward (see
//! `ward::container::selfclone`). Doing that from `main` means paying a whole start for
//! nothing: the static PIE relocates ~20,000 pointers (about a hundred copy-on-write page
//! faults), glibc and Rust initialise, and then all of it is thrown away by the execveat.
//! Measured on the development host (`perf stat -r 100`, static release binary): a command that
//! re-executes (`state run`) took 2.03 ms and 318 page faults against 1.18 ms and 184 for one
//! that does not (`state x1`); with this entry 1.27 ms and 185 against 1.36 ms and 186.
//!
//! This entry does the same re-exec as `selfclone::ensure` before all of that, with raw
//! system calls, and then jumps to glibc's `_start` as if the kernel had called it:
//! - if any argument after argv[0] is exactly `create`, `run` or `exec` (main's rule), and
//! - `/proc/self/exe` is not already sealed (a write-sealed memfd, or the root of a read-only
//!   mount: `selfclone::is_sealed`'s test, field for field),
//! - it clones a detached bind mount of `/proc/self/exe` (open_tree OPEN_TREE_CLONE), makes
//!   it read-only, nosuid and nodev (mount_setattr) and execveat()s it with the original argv
//!   and envp from the stack.
//!
//! Any failure (no CAP_SYS_ADMIN, kernel < 5.12, a seccomp filter of the caller's) falls
//! through to `_start` untouched: `main` then runs `selfclone::ensure`, which tries again,
//! falls back to a sealed memfd and reports errors with context. So this file only ever makes
//! the seal earlier, never decides less than `ensure` does; `ensure` stays the portable path
//! (other architectures, and the sandbox's conditions, which need more than argv).
//!
//! Constraints of code that runs before the static PIE is relocated: no absolute addresses
//! (every data reference is RIP-relative, into this file's own read-only strings), no call
//! into libc (its string functions are IFUNCs not resolved yet), no stack beyond the scratch
//! area it reserves and gives back. On entry the kernel (or, in a dynamic build, ld.so after
//! its own relocation) leaves `rsp` at argc and `rdx` at the exit function to register; both
//! are restored before `jmp _start`.
//!
//! Linked as the entry point by build.rs (`-e ward_seal_entry`), for x86_64 Linux only.

// SAFETY (of the assembly as a whole): it only reads the initial process stack the kernel laid
// out (argc, argv, envp), writes inside the 512-byte scratch area it reserves below `rsp`,
// makes the system calls listed above, and leaves `rsp`/`rdx` as it found them before
// transferring control to `_start`, which is what the ELF ABI's entry contract requires.
std::arch::global_asm!(
    r#"
    .pushsection .text.ward_seal_entry,"ax",@progbits
    .globl ward_seal_entry
    .type ward_seal_entry,@function
ward_seal_entry:
    mov r12, rsp                    // argc, then argv[], NULL, envp[], NULL
    mov r13, rdx                    // the exit function for _start
    mov rbx, qword ptr [r12]        // argc
    mov r14, 1                      // index of the argument being compared
.Lws_arg:
    cmp r14, rbx
    jae .Lws_start                  // no create/run/exec: main decides alone
    mov rdi, qword ptr [r12 + 8 + r14 * 8]
    lea rsi, [rip + .Lws_keywords]
.Lws_keyword:
    cmp byte ptr [rsi], 0
    je .Lws_next_arg                // end of the keyword list
    mov rcx, rdi
.Lws_compare:
    mov al, byte ptr [rcx]
    cmp al, byte ptr [rsi]
    jne .Lws_skip
    inc rcx
    inc rsi
    test al, al
    jnz .Lws_compare
    jmp .Lws_enters                 // equal up to and including the NUL
.Lws_skip:                          // move rsi past this keyword's NUL
    cmp byte ptr [rsi], 0
    lea rsi, [rsi + 1]
    jne .Lws_skip
    jmp .Lws_keyword
.Lws_next_arg:
    inc r14
    jmp .Lws_arg

.Lws_enters:
    sub rsp, 512                    // scratch: statx at 0, statfs at 256, mount_attr at 384
    and rsp, -16
    // exe = openat(AT_FDCWD, "/proc/self/exe", O_RDONLY | O_CLOEXEC)
    mov eax, 257
    mov edi, -100
    lea rsi, [rip + .Lws_exe]
    mov edx, 0x80000
    syscall
    test rax, rax
    js .Lws_start
    mov r15, rax
    // A memfd with F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE is sealed.
    mov eax, 72                     // fcntl(exe, F_GET_SEALS)
    mov rdi, r15
    mov esi, 1034
    syscall
    test rax, rax
    js .Lws_not_memfd
    and eax, 15
    cmp eax, 15
    je .Lws_close
.Lws_not_memfd:
    // So is the root of a read-only mount: statx's STATX_ATTR_MOUNT_ROOT and statfs's ST_RDONLY.
    mov eax, 332                    // statx(exe, "", AT_EMPTY_PATH, 0, scratch)
    mov rdi, r15
    lea rsi, [rip + .Lws_empty]
    mov edx, 0x1000
    xor r10d, r10d
    mov r8, rsp
    syscall
    test rax, rax
    jnz .Lws_unsealed
    mov rax, qword ptr [rsp + 56]   // stx_attributes_mask
    and rax, qword ptr [rsp + 8]    // stx_attributes
    test rax, 0x2000
    jz .Lws_unsealed
    mov eax, 138                    // fstatfs(exe, scratch + 256)
    mov rdi, r15
    lea rsi, [rsp + 256]
    syscall
    test rax, rax
    jnz .Lws_unsealed
    test qword ptr [rsp + 256 + 80], 1   // f_flags & ST_RDONLY
    jnz .Lws_close
.Lws_unsealed:
    mov eax, 3                      // close(exe)
    mov rdi, r15
    syscall
    // tree = open_tree(AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | O_CLOEXEC)
    mov eax, 428
    mov edi, -100
    lea rsi, [rip + .Lws_exe]
    mov edx, 0x80001
    syscall
    test rax, rax
    js .Lws_start
    mov r15, rax
    // mount_setattr(tree, "", AT_EMPTY_PATH, [RDONLY | NOSUID | NODEV, 0, 0, 0], 32)
    mov qword ptr [rsp + 384], 7
    mov qword ptr [rsp + 392], 0
    mov qword ptr [rsp + 400], 0
    mov qword ptr [rsp + 408], 0
    mov eax, 442
    mov rdi, r15
    lea rsi, [rip + .Lws_empty]
    mov edx, 0x1000
    lea r10, [rsp + 384]
    mov r8d, 32
    syscall
    test rax, rax
    jnz .Lws_close                  // refused: close the tree, main tries again
    // execveat(tree, "", argv, envp, AT_EMPTY_PATH): returns only on failure
    mov eax, 322
    mov rdi, r15
    lea rsi, [rip + .Lws_empty]
    lea rdx, [r12 + 8]
    lea r10, [r12 + 16 + rbx * 8]
    mov r8d, 0x1000
    syscall
.Lws_close:
    mov eax, 3                      // close(exe or tree)
    mov rdi, r15
    syscall
.Lws_start:
    mov rsp, r12
    mov rdx, r13
    xor eax, eax
    xor ebx, ebx
    xor ecx, ecx
    jmp _start
    .size ward_seal_entry, . - ward_seal_entry
    .popsection

    .pushsection .rodata.ward_seal_entry,"a",@progbits
.Lws_keywords:
    .asciz "create"
    .asciz "run"
    .asciz "exec"
    .byte 0
.Lws_exe:
    .asciz "/proc/self/exe"
.Lws_empty:
    .byte 0
    .popsection
"#
);
