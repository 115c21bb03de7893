/* Syscall probe for the seccomp conformance tests, built with `cc -static -O2`.
 * Runs commands separated by "," and prints one line per command:
 *   sys NR [A0..A5]   raw x86_64 syscall(NR, ...) (NR | 0x40000000 is an x32 call)
 *                     -> "ret=R errno=E"; an argument "pid" means getpid()
 *   i386 NR [A0..A2]  i386 syscall through `int $0x80` -> "ret=R errno=E"
 *   getpid-loop N     N raw getpid syscalls -> "ns_per_call=X"
 * Numbers take C syntax (0x..). Lines are written unbuffered, so a kill loses nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long number(const char *s) {
    return strcmp(s, "pid") == 0 ? (long)syscall(SYS_getpid) : (long)strtoull(s, NULL, 0);
}

static void report(long ret) {
    /* Raw kernel convention: -4095..-1 is -errno. */
    if (ret < 0 && ret > -4096)
        dprintf(1, "ret=-1 errno=%ld\n", -ret);
    else
        dprintf(1, "ret=%ld errno=0\n", ret);
}

static long raw_syscall(long nr, const long *a) {
    long ret;
    register long r10 __asm__("r10") = a[3];
    register long r8 __asm__("r8") = a[4];
    register long r9 __asm__("r9") = a[5];
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static long i386_syscall(long nr, const long *a) {
    long ret;
    __asm__ volatile("int $0x80"
                     : "=a"(ret)
                     : "a"(nr), "b"(a[0]), "c"(a[1]), "d"(a[2])
                     : "r8", "r9", "r10", "r11", "memory");
    /* The result is a 32-bit value. */
    return (long)(int)ret;
}

static void getpid_loop(long n) {
    struct timespec t0, t1;
    long none[6] = {0};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++)
        raw_syscall(SYS_getpid, none);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    dprintf(1, "ns_per_call=%.2f\n", ns / (n > 0 ? n : 1));
}

/* Runs argv[0..argc), one command; returns 0, or 2 on a usage error. */
static int command(int argc, char **argv) {
    long a[6] = {0};
    if (argc >= 2 && (strcmp(argv[0], "sys") == 0 || strcmp(argv[0], "i386") == 0)) {
        int max = argv[0][0] == 's' ? 6 : 3;
        if (argc - 2 > max)
            return 2;
        for (int i = 2; i < argc; i++)
            a[i - 2] = number(argv[i]);
        long nr = number(argv[1]);
        report(argv[0][0] == 's' ? raw_syscall(nr, a) : i386_syscall(nr, a));
        return 0;
    }
    if (argc == 2 && strcmp(argv[0], "getpid-loop") == 0) {
        getpid_loop(number(argv[1]));
        return 0;
    }
    return 2;
}

int main(int argc, char **argv) {
    int start = 1;
    for (int i = 1; i <= argc; i++) {
        if (i < argc && strcmp(argv[i], ",") != 0)
            continue;
        if (command(i - start, argv + start) != 0) {
            dprintf(2, "usage: probe sys NR [ARGS] | i386 NR [ARGS] | getpid-loop N [, ...]\n");
            return 2;
        }
        start = i + 1;
    }
    return 0;
}
