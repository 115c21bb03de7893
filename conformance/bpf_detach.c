/* bpf_detach CGROUP_DIR: with CAP_SYS_ADMIN, detaches every connect4/connect6/sendmsg4/
 * sendmsg6 program attached to CGROUP_DIR (found with BPF_PROG_QUERY, opened by id), the way
 * a container would lift its egress wall. Prints "detached=N" or "errno=E" for the first
 * failing bpf(2) call. */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long sys_bpf(int cmd, union bpf_attr *a) {
    return syscall(SYS_bpf, cmd, a, sizeof *a);
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    int cg = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (cg < 0) {
        printf("open errno=%d\n", errno);
        return 0;
    }
    int types[] = {BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT, BPF_CGROUP_UDP4_SENDMSG,
                   BPF_CGROUP_UDP6_SENDMSG};
    int detached = 0;
    for (unsigned t = 0; t < sizeof types / sizeof *types; t++) {
        __u32 ids[64];
        union bpf_attr q;
        memset(&q, 0, sizeof q);
        q.query.target_fd = cg;
        q.query.attach_type = types[t];
        q.query.prog_ids = (__u64)(unsigned long)ids;
        q.query.prog_cnt = 64;
        if (sys_bpf(BPF_PROG_QUERY, &q) < 0) {
            printf("errno=%d\n", errno);
            return 0;
        }
        for (__u32 i = 0; i < q.query.prog_cnt; i++) {
            union bpf_attr g;
            memset(&g, 0, sizeof g);
            g.prog_id = ids[i];
            int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &g);
            if (fd < 0) {
                printf("errno=%d\n", errno);
                return 0;
            }
            union bpf_attr d;
            memset(&d, 0, sizeof d);
            d.target_fd = cg;
            d.attach_bpf_fd = fd;
            d.attach_type = types[t];
            if (sys_bpf(BPF_PROG_DETACH, &d) < 0) {
                printf("errno=%d\n", errno);
                return 0;
            }
            detached++;
        }
    }
    printf("detached=%d\n", detached);
    return 0;
}
