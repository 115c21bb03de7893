// The kernel floor of a container cycle (issue 20): what `run` + `delete` of /bin/true under the
// bundle of integration/bench.sh asks of the kernel, done by one small static C process with no
// parsing, no logging and no re-exec. The same work ward's `run` does for that config (strace
// of it, 2026-12-07): a state directory with one file; a cgroup in every hierarchy this process
// belongs to (v1: the cpuset's cpus and mems, the device rules), joined by the container; clone into new mount, uts, ipc, pid and net namespaces;
// the config's mounts (proc, /dev tmpfs with its six nodes and five links, devpts, shm, mqueue,
// sysfs, a read-only cgroup view: v1 binds of the container's cgroups, or cgroup2);
// pivot_root; the masked and read-only paths of `runc spec`; the read-only root; rlimit,
// bounding set, capabilities, no_new_privs; execve of /bin/true; wait; remove the cgroups and
// the state. `delete` then only finds the state gone, as ward's and runc's do after `run`.
// Whatever a runtime adds to this (its own start, twice: run and delete; the CVE-2019-5736
// re-exec; reading config.json; the state it records) is its own cost above the floor.
// `exec PID` is the floor of `exec /bin/true` into the running container whose init is PID:
// join its cgroups and its ipc, uts, net, pid and mount namespaces, fork (the pid namespace
// applies to children), drop to runc spec's capabilities, execve /bin/true, wait.
// Usage: cycle_floor run ROOTFS STATEDIR ID | cycle_floor delete STATEDIR ID |
//        cycle_floor exec PID
// Every failure names the call and the path, exits 1, and removes what it made.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CG 32
static char cg[MAX_CG][512];   /* the container's cgroup directories */
static char cg_name[MAX_CG][64]; /* their name under /sys/fs/cgroup in the container */
static int ncg, v2_only;
static char state[4096];

static void cleanup(void) {
    for (int i = ncg - 1; i >= 0; i--) rmdir(cg[i]);
    char f[4200];
    snprintf(f, sizeof f, "%s/state", state);
    unlink(f);
    rmdir(state);
}

static void die(const char *call, const char *path) {
    fprintf(stderr, "cycle_floor: %s %s: %s\n", call, path, strerror(errno));
    exit(1);
}

/* Parent side: a failure also removes the state and the cgroups. */
static void fail(const char *call, const char *path) {
    int e = errno;
    cleanup();
    errno = e;
    die(call, path);
}

static void write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) != 0)
        fail("write", path);
}

/* A v1 cpuset takes no process before its cpus and mems are set: the parent's. */
static void copy_parent(const char *dir, const char *name) {
    char path[600], text[256];
    snprintf(path, sizeof path, "%.511s/../%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof text - 1);
    if (n < 0) fail("read", path);
    close(fd);
    text[n] = 0;
    snprintf(path, sizeof path, "%.511s/%s", dir, name);
    write_file(path, text);
}

/* The v1 device rules ward and runc write for `runc spec`'s config: deny all, then the
 * default devices, one rule per write. */
static void device_rules(const char *dir) {
    static const char *allow[] = {"b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",
        "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 10:200 rwm", "c 136:* rwm"};
    char path[600];
    snprintf(path, sizeof path, "%.511s/devices.deny", dir);
    write_file(path, "a");
    snprintf(path, sizeof path, "%.511s/devices.allow", dir);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail("open", path);
    for (unsigned i = 0; i < sizeof allow / sizeof *allow; i++)
        if (write(fd, allow[i], strlen(allow[i])) < 0) fail("write", path);
    close(fd);
}

/* One line of /proc/<pid>/cgroup ("N:controllers:/path") as the directory of that cgroup in
 * its hierarchy; *name is the hierarchy's first controller ("" for cgroup2). 0: not a line. */
static int cgroup_dir(char *line, char *dir, size_t cap, const char **name) {
    static int unified = -1;
    if (unified < 0) unified = access("/sys/fs/cgroup/unified", F_OK) == 0;
    line[strcspn(line, "\n")] = 0;
    char *ctrls = strchr(line, ':'), *path;
    if (!ctrls || !(path = strchr(++ctrls, ':'))) return 0;
    *path++ = 0;
    if (!strncmp(ctrls, "name=", 5)) ctrls += 5;
    ctrls[strcspn(ctrls, ",")] = 0;
    *name = ctrls;
    if (!strcmp(path, "/")) path = "";
    if (*ctrls)
        snprintf(dir, cap, "/sys/fs/cgroup/%s%s", ctrls, path);
    else
        snprintf(dir, cap, "/sys/fs/cgroup%s%s", unified ? "/unified" : "", path);
    if (!*ctrls) v2_only = !unified;
    return 1;
}

/* One cgroup per hierarchy of /proc/self/cgroup, under this process's own, as ward's default
 * cgroupsPath puts it. */
static void make_cgroups(const char *id) {
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) fail("open", "/proc/self/cgroup");
    char line[1024], dir[sizeof cg[0] - 64];
    const char *name;
    while (ncg < MAX_CG && fgets(line, sizeof line, f)) {
        if (!cgroup_dir(line, dir, sizeof dir, &name)) continue;
        snprintf(cg[ncg], sizeof cg[ncg], "%s/%.60s", dir, id);
        snprintf(cg_name[ncg], sizeof cg_name[ncg], "%s", *name ? name : "unified");
        if (mkdir(cg[ncg], 0755) != 0) fail("mkdir", cg[ncg]);
        ncg++;
        if (!strcmp(name, "cpuset")) {
            copy_parent(cg[ncg - 1], "cpuset.cpus");
            copy_parent(cg[ncg - 1], "cpuset.mems");
        } else if (!strcmp(name, "devices")) {
            device_rules(cg[ncg - 1]);
        }
    }
    fclose(f);
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                     const char *data) {
    if (mount(src, dst, type, flags, data) != 0) die("mount", dst);
}

static void exec_true(void);

/* Child side, in the new namespaces; the parent has put it in the cgroups. */
static void container(const char *rootfs) {
    if (sethostname("runc", 4) != 0) die("sethostname", "runc");
    do_mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL);
    do_mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL);
    if (chdir(rootfs) != 0) die("chdir", rootfs);
    do_mount("proc", "proc", "proc", 0, NULL);
    do_mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
    mkdir("dev/pts", 0755);
    do_mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5");
    mkdir("dev/shm", 0755);
    do_mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
    mkdir("dev/mqueue", 0755);
    do_mount("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    do_mount("sysfs", "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    if (v2_only) {
        do_mount("cgroup", "sys/fs/cgroup", "cgroup2", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 NULL);
    } else {
        do_mount("tmpfs", "sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755");
        char dst[sizeof cg_name[0] + 16];
        for (int i = 0; i < ncg; i++) {
            if (!strcmp(cg_name[i], "unified")) continue;
            snprintf(dst, sizeof dst, "sys/fs/cgroup/%.63s", cg_name[i]);
            mkdir(dst, 0755);
            do_mount(cg[i], dst, NULL, MS_BIND | MS_REC, NULL);
            do_mount(NULL, dst, NULL,
                     MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        }
    }
    static const struct { const char *name; unsigned maj, min; } nodes[] = {
        {"dev/null", 1, 3}, {"dev/zero", 1, 5}, {"dev/full", 1, 7},
        {"dev/random", 1, 8}, {"dev/urandom", 1, 9}, {"dev/tty", 5, 0}};
    for (unsigned i = 0; i < sizeof nodes / sizeof *nodes; i++)
        if (mknod(nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) != 0)
            die("mknod", nodes[i].name);
    static const char *links[][2] = {{"/proc/self/fd", "dev/fd"}, {"/proc/self/fd/0", "dev/stdin"},
        {"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"},
        {"pts/ptmx", "dev/ptmx"}};
    for (unsigned i = 0; i < sizeof links / sizeof *links; i++)
        if (symlink(links[i][0], links[i][1]) != 0) die("symlink", links[i][1]);
    if (syscall(SYS_pivot_root, ".", ".") != 0) die("pivot_root", rootfs);
    do_mount(NULL, ".", NULL, MS_REC | MS_SLAVE, NULL);
    if (umount2(".", MNT_DETACH) != 0) die("umount2", "the old root");
    static const char *readonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                     "/proc/sysrq-trigger"};
    for (unsigned i = 0; i < sizeof readonly / sizeof *readonly; i++) {
        if (access(readonly[i], F_OK) != 0) continue;
        do_mount(readonly[i], readonly[i], NULL, MS_BIND | MS_REC, NULL);
        do_mount(NULL, readonly[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
    }
    static const char *masked[] = {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/sys/firmware", "/proc/scsi"};
    for (unsigned i = 0; i < sizeof masked / sizeof *masked; i++) {
        struct stat st;
        if (stat(masked[i], &st) != 0) continue;
        if (S_ISDIR(st.st_mode))
            do_mount("tmpfs", masked[i], "tmpfs", MS_RDONLY, NULL);
        else
            do_mount("/dev/null", masked[i], NULL, MS_BIND, NULL);
    }
    do_mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
    struct rlimit nofile = {1024, 1024};
    if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) die("setrlimit", "RLIMIT_NOFILE");
    exec_true();
}

/* The process's own last steps: runc spec's capabilities, no_new_privs, execve. */
static void exec_true(void) {
    /* runc spec's set: AUDIT_WRITE, KILL, NET_BIND_SERVICE. */
    unsigned long long keep = 1ULL << CAP_AUDIT_WRITE | 1ULL << CAP_KILL |
                              1ULL << CAP_NET_BIND_SERVICE;
    for (int c = 0; c <= CAP_LAST_CAP; c++)
        if (!(keep >> c & 1) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) die("prctl", "bounding");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("prctl", "no_new_privs");
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{(unsigned)keep, (unsigned)keep, (unsigned)keep}};
    if (syscall(SYS_capset, &hdr, data) != 0) die("capset", "runc spec's set");
    char *argv[] = {"/bin/true", NULL}, *envp[] = {"PATH=/bin", "TERM=xterm", "HOME=/root", NULL};
    execve(argv[0], argv, envp);
    die("execve", argv[0]);
}

/* `exec PID`: the container's cgroups (from /proc/PID/cgroup), then its namespaces. */
static int exec_into(const char *pid) {
    char path[4200], line[1024], text[32];
    snprintf(path, sizeof path, "/proc/%s/cgroup", pid);
    FILE *f = fopen(path, "re");
    if (!f) die("open", path);
    snprintf(text, sizeof text, "%d", getpid());
    const char *name;
    char dir[4096];
    while (fgets(line, sizeof line, f)) {
        if (!cgroup_dir(line, dir, sizeof dir, &name)) continue;
        snprintf(path, sizeof path, "%s/cgroup.procs", dir);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, text, strlen(text)) < 0) die("write", path);
        close(fd);
    }
    fclose(f);
    static const char *ns[] = {"ipc", "uts", "net", "pid", "mnt"};
    for (unsigned i = 0; i < sizeof ns / sizeof *ns; i++) {
        snprintf(path, sizeof path, "/proc/%s/ns/%s", pid, ns[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, 0) != 0) die("setns", path);
        close(fd);
    }
    if (chdir("/") != 0) die("chdir", "/");
    pid_t child = fork();
    if (child < 0) die("fork", pid);
    if (child == 0) exec_true();
    int status;
    if (waitpid(child, &status, 0) != child) die("waitpid", pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "exec")) return exec_into(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "delete")) {
        snprintf(state, sizeof state, "%s/%s", argv[2], argv[3]);
        if (access(state, F_OK) == 0) {
            fprintf(stderr, "cycle_floor: %s: still there\n", state);
            return 1;
        }
        return 0; /* gone after run, as ward's and runc's `delete` find it */
    }
    if (argc != 5 || strcmp(argv[1], "run")) {
        fprintf(stderr, "usage: cycle_floor run ROOTFS STATEDIR ID | cycle_floor delete STATEDIR ID"
                        " | cycle_floor exec PID\n");
        return 2;
    }
    const char *rootfs = argv[2], *id = argv[4];
    snprintf(state, sizeof state, "%s/%s", argv[3], id);
    if (mkdir(state, 0700) != 0) die("mkdir", state);
    char file[4200];
    snprintf(file, sizeof file, "%s/state", state);
    write_file(file, "{\"status\":\"creating\"}");
    make_cgroups(id);
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) != 0) fail("pipe2", "sync");
    pid_t pid = syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID |
                                       CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid < 0) fail("clone", rootfs);
    if (pid == 0) {
        char c;
        close(sync[1]);
        if (read(sync[0], &c, 1) != 1) _exit(1); /* the parent failed: it cleans up */
        container(rootfs);
    }
    close(sync[0]);
    char text[32], procs[sizeof cg[0] + 16];
    snprintf(text, sizeof text, "%d", pid);
    for (int i = 0; i < ncg; i++) {
        snprintf(procs, sizeof procs, "%.511s/cgroup.procs", cg[i]);
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, text, strlen(text)) < 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail("write", procs);
        }
        close(fd);
    }
    write_file(file, "{\"status\":\"running\"}");
    if (write(sync[1], "", 1) != 1) fail("write", "sync");
    int status;
    if (waitpid(pid, &status, 0) != pid) fail("waitpid", rootfs);
    cleanup();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
