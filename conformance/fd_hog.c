/* Hostile workload (conformance/hostile.rs): takes every file descriptor it may, reports how far
 * it got and what stopped it (open, socket, pipe), then holds them all until killed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    int n = 0, e_open = 0, e_sock = 0, e_pipe = 0;
    for (;;) {
        if (open("/dev/null", O_RDONLY) < 0) { e_open = errno; break; }
        n++;
    }
    if (socket(AF_UNIX, SOCK_STREAM, 0) < 0) e_sock = errno;
    int p[2];
    if (pipe(p) < 0) e_pipe = errno;
    printf("held=%d open=%s socket=%s pipe=%s\n", n, strerror(e_open), strerror(e_sock),
           strerror(e_pipe));
    fflush(stdout);
    for (;;) pause();
}
