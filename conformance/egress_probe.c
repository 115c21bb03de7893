/* Egress probe: each command prints "ok" or "errno=N" on its own line.
 *   tcp IP PORT            connect(2) over TCP (IPv4 or IPv6 literal)
 *   sendto IP PORT         UDP sendto(2) on an unconnected socket
 *   sendmsg IP PORT        UDP sendmsg(2) on an unconnected socket
 *   sendmmsg IP PORT       UDP sendmmsg(2) (one message) on an unconnected socket
 *   socket DOMAIN TYPE     socket(2) with raw numbers
 *   connect-loop IP PORT N   N TCP connects (to a closed port), prints ns per connect
 *   open-loop N            N openat("/dev/null") + close, prints ns per pair
 *   getpid-loop N          N raw getpid syscalls, prints ns per call
 *   unix-listen ADDR       bind + listen a unix stream socket (kept open); ADDR /path or @name
 *   unix-bind ADDR         bind a unix datagram socket (kept open)
 *   unix-connect ADDR      connect(2) a unix stream socket (address length: just the name)
 *   unix-connect-pad ADDR  the same with the whole sockaddr_un as length, junk after the NUL
 *   unix-sendto ADDR       sendto(2) on an unconnected unix datagram socket
 *   hold SECONDS           sleep, keeping every socket made so far open
 * Commands are separated by ",". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int addr(const char *ip, const char *port, struct sockaddr_storage *ss, socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET; a4->sin_port = htons(atoi(port)); *len = sizeof *a4; return AF_INET;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6; a6->sin6_port = htons(atoi(port)); *len = sizeof *a6; return AF_INET6;
    }
    return -1;
}

static socklen_t unix_addr(const char *a, struct sockaddr_un *u, int pad) {
    memset(u, pad ? 'Z' : 0, sizeof *u);
    u->sun_family = AF_UNIX;
    size_t n = strlen(a);
    if (n > sizeof u->sun_path) n = sizeof u->sun_path;
    if (a[0] == '@') { u->sun_path[0] = 0; memcpy(u->sun_path + 1, a + 1, n - 1); }
    else { memcpy(u->sun_path, a, n); if (n < sizeof u->sun_path) u->sun_path[n] = 0; }
    if (pad) return sizeof *u;
    return offsetof(struct sockaddr_un, sun_path) + n + (a[0] == '@' ? 0 : 1);
}

static void report(int rc) { if (rc < 0) printf("errno=%d\n", errno); else printf("ok\n"); }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], ",")) continue;
        const char *cmd = argv[i];
        if (!strcmp(cmd, "open-loop") && i + 1 < argc) {
            long n = atol(argv[++i]); double t0 = now_ns();
            for (long k = 0; k < n; k++) close(openat(AT_FDCWD, "/dev/null", O_RDONLY));
            printf("ns_per_call=%.1f\n", (now_ns() - t0) / n); continue;
        }
        if (!strcmp(cmd, "getpid-loop") && i + 1 < argc) {
            long n = atol(argv[++i]); double t0 = now_ns();
            for (long k = 0; k < n; k++) syscall(SYS_getpid);
            printf("ns_per_call=%.1f\n", (now_ns() - t0) / n); continue;
        }
        if (!strcmp(cmd, "connect-loop") && i + 3 < argc) {
            struct sockaddr_storage ss; socklen_t len;
            int fam = addr(argv[i + 1], argv[i + 2], &ss, &len);
            long n = atol(argv[i + 3]); i += 3;
            double t0 = now_ns();
            for (long k = 0; k < n; k++) {
                int fd = socket(fam, SOCK_STREAM, 0);
                connect(fd, (struct sockaddr *)&ss, len);
                close(fd);
            }
            printf("ns_per_call=%.1f\n", (now_ns() - t0) / n); continue;
        }
        if (!strcmp(cmd, "socket") && i + 2 < argc) {
            int fd = socket(atoi(argv[i + 1]), atoi(argv[i + 2]), 0);
            report(fd); if (fd >= 0) close(fd); i += 2; continue;
        }
        if (!strcmp(cmd, "hold") && i + 1 < argc) { sleep(atoi(argv[++i])); continue; }
        if (!strncmp(cmd, "unix-", 5) && i + 1 < argc) {
            struct sockaddr_un u;
            const char *a = argv[++i];
            socklen_t len = unix_addr(a, &u, !strcmp(cmd, "unix-connect-pad"));
            if (!strcmp(cmd, "unix-listen")) {
                int fd = socket(AF_UNIX, SOCK_STREAM, 0);
                int rc = bind(fd, (struct sockaddr *)&u, len);
                report(rc < 0 ? rc : listen(fd, 8));
            } else if (!strcmp(cmd, "unix-bind")) {
                int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
                report(bind(fd, (struct sockaddr *)&u, len));
            } else if (!strncmp(cmd, "unix-connect", 12)) {
                int fd = socket(AF_UNIX, SOCK_STREAM, 0);
                report(connect(fd, (struct sockaddr *)&u, len)); close(fd);
            } else if (!strcmp(cmd, "unix-sendto")) {
                int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
                char byte = 'x';
                report(sendto(fd, &byte, 1, 0, (struct sockaddr *)&u, len)); close(fd);
            } else { fprintf(stderr, "unknown command %s\n", cmd); return 2; }
            continue;
        }
        if (i + 2 >= argc) { fprintf(stderr, "usage\n"); return 2; }
        struct sockaddr_storage ss; socklen_t len;
        int fam = addr(argv[i + 1], argv[i + 2], &ss, &len);
        i += 2;
        if (fam < 0) { fprintf(stderr, "bad address\n"); return 2; }
        char byte = 'x';
        if (!strcmp(cmd, "tcp")) {
            int fd = socket(fam, SOCK_STREAM, 0);
            report(connect(fd, (struct sockaddr *)&ss, len)); close(fd);
        } else {
            int fd = socket(fam, SOCK_DGRAM, 0);
            struct iovec iov = { &byte, 1 };
            struct msghdr msg = { .msg_name = &ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1 };
            if (!strcmp(cmd, "sendto")) report(sendto(fd, &byte, 1, 0, (struct sockaddr *)&ss, len));
            else if (!strcmp(cmd, "sendmsg")) report(sendmsg(fd, &msg, 0));
            else if (!strcmp(cmd, "sendmmsg")) {
                struct mmsghdr m = { .msg_hdr = msg };
                int n = sendmmsg(fd, &m, 1, 0);
                report(n == 1 ? 0 : -1);
            } else { fprintf(stderr, "unknown command %s\n", cmd); return 2; }
            close(fd);
        }
    }
    return 0;
}
