/* dns_flood SERVER N: against a DNS server (IPv4, port 53), in order:
 *   - malformed UDP queries (a compression loop in the name, a truncated header, 1400 bytes of
 *     junk), then a TCP query whose length prefix promises 65535 bytes and sends 12;
 *   - N A queries over UDP for distinct names n<i>.wild.example, counting answers by rcode;
 *   - one A query for allowed.example.
 * Prints "noerror=X servfail=Y other=Z timeout=T" then "final=<rcode or timeout>". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int build(unsigned char *p, unsigned short id, const char *name) {
    memset(p, 0, 12);
    p[0] = id >> 8, p[1] = id & 0xff, p[2] = 1, p[5] = 1;
    int n = 12;
    const char *s = name;
    while (*s) {
        const char *dot = strchr(s, '.');
        int len = dot ? dot - s : (int)strlen(s);
        p[n++] = len;
        memcpy(p + n, s, len);
        n += len;
        s += len + (dot ? 1 : 0);
    }
    p[n++] = 0;
    p[n++] = 0, p[n++] = 1, p[n++] = 0, p[n++] = 1;
    return n;
}

/* The rcode of the answer to `id`, or -1 on timeout. */
static int ask(int s, struct sockaddr_in *to, unsigned short id, const char *name) {
    unsigned char q[300], a[1500];
    int n = build(q, id, name);
    sendto(s, q, n, 0, (struct sockaddr *)to, sizeof *to);
    for (;;) {
        ssize_t r = recv(s, a, sizeof a, 0);
        if (r < 0)
            return -1;
        if (r >= 12 && a[0] == (id >> 8) && a[1] == (id & 0xff))
            return a[3] & 0xf;
    }
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, argv[1], &to.sin_addr);
    int n = atoi(argv[2]);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    unsigned char bad[1400];
    memset(bad, 0, 12);
    bad[1] = 7, bad[2] = 1, bad[5] = 1, bad[12] = 0xc0, bad[13] = 12;
    sendto(s, bad, 18, 0, (struct sockaddr *)&to, sizeof to);
    sendto(s, bad, 5, 0, (struct sockaddr *)&to, sizeof to);
    memset(bad, 0x3f, sizeof bad);
    sendto(s, bad, sizeof bad, 0, (struct sockaddr *)&to, sizeof to);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    if (t >= 0 && connect(t, (struct sockaddr *)&to, sizeof to) == 0) {
        unsigned char lie[14] = {0xff, 0xff};
        write(t, lie, sizeof lie);
        close(t);
    }
    int noerror = 0, servfail = 0, other = 0, timeout = 0;
    char name[64];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "n%d.wild.example", i);
        int rc = ask(s, &to, (unsigned short)(i + 100), name);
        if (rc == 0) noerror++;
        else if (rc == 2) servfail++;
        else if (rc < 0) timeout++;
        else other++;
    }
    printf("noerror=%d servfail=%d other=%d timeout=%d\n", noerror, servfail, other, timeout);
    int rc = ask(s, &to, 7, "allowed.example");
    if (rc < 0) printf("final=timeout\n");
    else printf("final=%d\n", rc);
    return 0;
}
