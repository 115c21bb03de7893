/* Tiny abstract-unix-socket client for the Landlock tests (busybox has none): prints
   `connect: ok` or the error. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
int main(int argc, char **argv) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(argv[1]);
    memcpy(a.sun_path + 1, argv[1], n);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + n) == 0)
        puts("connect: ok");
    else
        printf("connect: %s\n", strerror(errno));
    return 0;
}
