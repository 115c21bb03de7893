// The kernel floor of `list`: per container read state.json, /proc/<pid>/stat and the v1
// freezer state (the three files a live status needs), nothing parsed beyond the pid. In C, one
// thread: what any runtime pays. Usage: list_floor ROOT [FREEZER_MOUNT]
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static char buf[65536];
static int slurp(const char *p) { int fd = open(p, O_RDONLY|O_CLOEXEC); if (fd < 0) return -1; int n = read(fd, buf, sizeof buf - 1); close(fd); if (n >= 0) buf[n] = 0; return n; }
int main(int argc, char **argv) {
    DIR *d = opendir(argv[1]); struct dirent *e; char p[4096]; int n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s/state.json", argv[1], e->d_name);
        if (slurp(p) < 0) continue;
        char *pid = strstr(buf, "\"pid\":"); int v = pid ? atoi(pid + 6) : 0;
        snprintf(p, sizeof p, "/proc/%d/stat", v); slurp(p);
        snprintf(p, sizeof p, "%s/%s/freezer.state", argc > 2 ? argv[2] : "/nonexistent", e->d_name); slurp(p);
        n++;
    }
    printf("%d\n", n);
}
