// The floor of an observed syscall's round trip through a seccomp user-notification
// supervisor: a child loops openat+close with openat sent to a listener; the parent answers
// each with RECV + SEND(CONTINUE) and nothing else (no poll, no memory read, no record).
// Prints the child's ns per openat+close without the filter, then with it. With "sync", the
// listener asks for the kernel's synchronous wake-up (6.6+), as ward's supervisor does.
// Usage: notify_floor [CALLS [sync]]
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double loop_ns(long calls) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < calls; i++) close(openat(AT_FDCWD, "/", O_RDONLY | O_CLOEXEC));
    clock_gettime(CLOCK_MONOTONIC, &b);
    return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / calls;
}

int main(int argc, char **argv) {
    long calls = argc > 1 ? atol(argv[1]) : 20000;
    int to_parent[2], to_child[2];
    if (pipe(to_parent) || pipe(to_child)) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        double plain = loop_ns(calls);
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof f / sizeof f[0], f};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        int fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        if (fd < 0) { perror("seccomp"); _exit(1); }
        if (write(to_parent[1], &fd, sizeof fd) != sizeof fd) _exit(1);
        char go;
        if (read(to_child[0], &go, 1) != 1) _exit(1);
        double observed = loop_ns(calls);
        printf("plain_ns=%.0f\nobserved_ns=%.0f\nadded_us=%.2f\n", plain, observed, (observed - plain) / 1000);
        fflush(stdout);
        _exit(0);
    }
    int child_fd;
    if (read(to_parent[0], &child_fd, sizeof child_fd) != sizeof child_fd) return 1;
    int pidfd = syscall(SYS_pidfd_open, pid, 0);
    int fd = syscall(SYS_pidfd_getfd, pidfd, child_fd, 0);
    if (fd < 0) { perror("pidfd_getfd"); return 1; }
    // Linux 6.6's uapi; older headers (Debian 12's) lack the names.
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
    if (argc > 2 && !strcmp(argv[2], "sync") &&
        ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)) {
        perror("SECCOMP_IOCTL_NOTIF_SET_FLAGS");
        return 1;
    }
    if (write(to_child[1], "g", 1) != 1) return 1;
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    for (;;) {
        memset(&req, 0, sizeof req);
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req)) break;  // ENOENT once the child is gone
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
