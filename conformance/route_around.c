/* route_around: over an rtnetlink socket of type SOCK_DGRAM (the families filter refuses only
 * SOCK_RAW, which iproute2 and busybox use), deletes 198.18.0.1/15 from lo and adds a route
 * 198.18.0.5/32 via 192.0.2.80. Prints "deladdr=<errno>" and "newroute=<errno>" (0: done). */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct req {
    struct nlmsghdr nh;
    union {
        struct ifaddrmsg ifa;
        struct rtmsg rt;
    };
    char attrs[64];
};

static void attr(struct req *r, int type, const void *data, int len) {
    struct rtattr *a = (struct rtattr *)((char *)r + NLMSG_ALIGN(r->nh.nlmsg_len));
    a->rta_type = type;
    a->rta_len = RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int talk(int s, struct req *r) {
    if (send(s, r, r->nh.nlmsg_len, 0) < 0)
        return errno;
    char buf[4096];
    ssize_t n = recv(s, buf, sizeof buf, 0);
    if (n < 0)
        return errno;
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    if (h->nlmsg_type == NLMSG_ERROR)
        return -((struct nlmsgerr *)NLMSG_DATA(h))->error;
    return 0;
}

int main(void) {
    int s = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE);
    if (s < 0) {
        printf("socket=%d\n", errno);
        return 0;
    }
    struct in_addr lo_addr, dst, gw;
    inet_pton(AF_INET, "198.18.0.1", &lo_addr);
    inet_pton(AF_INET, "198.18.0.5", &dst);
    inet_pton(AF_INET, "192.0.2.80", &gw);
    struct req r;
    memset(&r, 0, sizeof r);
    r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    r.nh.nlmsg_type = RTM_DELADDR;
    r.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    r.ifa.ifa_family = AF_INET;
    r.ifa.ifa_prefixlen = 15;
    r.ifa.ifa_index = 1;
    attr(&r, IFA_LOCAL, &lo_addr, 4);
    attr(&r, IFA_ADDRESS, &lo_addr, 4);
    printf("deladdr=%d\n", talk(s, &r));
    memset(&r, 0, sizeof r);
    r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    r.nh.nlmsg_type = RTM_NEWROUTE;
    r.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    r.rt.rtm_family = AF_INET;
    r.rt.rtm_dst_len = 32;
    r.rt.rtm_table = RT_TABLE_MAIN;
    r.rt.rtm_protocol = RTPROT_BOOT;
    r.rt.rtm_scope = RT_SCOPE_UNIVERSE;
    r.rt.rtm_type = RTN_UNICAST;
    attr(&r, RTA_DST, &dst, 4);
    attr(&r, RTA_GATEWAY, &gw, 4);
    printf("newroute=%d\n", talk(s, &r));
    return 0;
}
