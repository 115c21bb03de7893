/* udp_mark PORT FILE: binds 0.0.0.0:PORT (UDP) and creates FILE for every datagram received,
 * writing the datagram into it: proof that a sender reached this socket. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0)
        return 1;
    char buf[512];
    for (;;) {
        ssize_t n = recv(s, buf, sizeof buf, 0);
        if (n < 0)
            return 1;
        int f = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (f >= 0) {
            (void)!write(f, buf, n);
            close(f);
        }
    }
}
