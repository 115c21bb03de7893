/* conn_flood IP PORT N SECONDS: opens N TCP connections to IP:PORT (each connect waited for)
 * and holds them all open for SECONDS. Prints "open=<connected> failed=<failed>". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 5)
        return 2;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &to.sin_addr);
    int n = atoi(argv[3]), open = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof to) < 0) {
            failed++;
            if (s >= 0)
                close(s);
            continue;
        }
        open++;
    }
    printf("open=%d failed=%d\n", open, failed);
    fflush(stdout);
    sleep(atoi(argv[4]));
    return 0;
}
