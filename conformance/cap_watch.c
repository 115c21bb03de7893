/* Watches the container's pid namespace for processes holding capabilities outside the
 * container's own bounding set (a process ward is still setting up with the host's
 * privileges). Runs for argv[1] seconds, polling /proc as fast as it can; prints
 * `seen=N privileged=M` and one line per privileged sighting. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long long capfield(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    char line[256];
    unsigned long long v = 0;
    size_t n = strlen(key);
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) == 0) {
            v = strtoull(line + n, NULL, 16);
            break;
        }
    }
    fclose(f);
    return v;
}

int main(int argc, char **argv) {
    int secs = argc > 1 ? atoi(argv[1]) : 5;
    unsigned long long bound = capfield("/proc/self/status", "CapBnd:");
    static char seen_pid[1 << 16], flagged[1 << 16];
    long seen = 0, privileged = 0;
    time_t end = time(NULL) + secs;
    while (time(NULL) < end) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        if (!d) return 2;
        while ((e = readdir(d))) {
            char path[64];
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid >= (1 << 16)) continue;
            snprintf(path, sizeof path, "/proc/%d/status", pid);
            unsigned long long eff = capfield(path, "CapEff:");
            if (!seen_pid[pid]) {
                seen_pid[pid] = 1;
                seen++;
            }
            if ((eff & ~bound) && !flagged[pid]) {
                flagged[pid] = 1;
                privileged++;
                printf("PRIVILEGED pid=%d CapEff=%016llx bound=%016llx\n", pid, eff, bound);
            }
        }
        closedir(d);
    }
    printf("seen=%ld privileged=%ld\n", seen, privileged);
    return 0;
}
