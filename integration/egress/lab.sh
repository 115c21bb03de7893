#!/bin/bash
# The egress lab (issue 16's proof): origins, their DNS and a client namespace, all on this
# machine. See integration/egress/README.md.
#
#   lab.sh up      build the lab (tearing down a previous one of the same suffix first) and print
#                  its KEY=VALUE environment on stdout (also in $WARD_LAB_DIR/env)
#   lab.sh down    remove everything `up` made; succeeds when nothing is there
#   lab.sh env     print the environment of the running lab
#
# WARD_LAB_SUFFIX (default `lab`, [a-z0-9], at most 10 characters) names the pieces:
# namespaces ward-origin-SFX and ward-client-SFX, host-side veths wlo-SFX and wlc-SFX, state in
# /run/ward-egress-lab/SFX. Only one lab can be up at a time (the addresses are fixed): `up`
# waits up to WARD_LAB_WAIT seconds (default 0) for another one to go.
#
# Nothing leaves the machine: the namespaces have routes only to each other's lab subnets, the
# DNS server has no upstream, and the host gets no route it did not have except the two connected
# lab subnets. Host changes, all undone by `down`: the two veths (with per-interface forwarding on
# them; the host-wide net.ipv4.ip_forward and net.ipv6.conf.all.forwarding are never touched),
# /etc/netns/ward-client-SFX/ (the client's resolv.conf), and, only when the host's iptables
# FORWARD policy is not ACCEPT (e.g. under dockerd), two ACCEPT rules matching only the lab veths.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SFX=${WARD_LAB_SUFFIX:-lab}
if ! [[ $SFX =~ ^[a-z0-9]{1,10}$ ]]; then
    echo "lab.sh: WARD_LAB_SUFFIX '$SFX' must be 1-10 characters of [a-z0-9]" >&2
    exit 2
fi
ONS=ward-origin-$SFX            # origin namespace
CNS=ward-client-$SFX            # client namespace (stands in for a container's)
HO=wlo-$SFX                     # host side of the origin link
HC=wlc-$SFX                     # host side of the client link
DIR=/run/ward-egress-lab/$SFX
NETNS_ETC=/etc/netns/$CNS
PY=${PYTHON:-python3}
TAG="ward-egress-lab-$SFX"      # iptables rule comment

# Addresses: documentation ranges (RFC 5737) and a ULA prefix (RFC 4193) chosen for the lab.
V4_O=198.51.100                 # origin link: host .1, origin .2, names .10+, DNS .53
V4_C=203.0.113                  # client link: host .1, client .2 (a /30: the rest of the
                                # range may be real here, e.g. a package mirror's address)
V6_O=fd77:6172:64:1             # origin link: host ::1, origin ::2, names ::10+, DNS ::53
V6_C=fd77:6172:64:2             # client link: host ::1, client ::2
# name  address suffix (v4 .N, v6 ::N) — every name gets its own address, all served by one origin
NAMES=(allowed.test upload.allowed.test other.test evil.test api.test)
SUFFIXES=(10 11 12 13 15)
HTTP_PORTS=(80 8080)
HTTPS_PORTS=(443 8443)

log() { echo "lab.sh[$SFX]: $*" >&2; }
die() { log "error: $*"; exit 1; }
nse() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
netns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
in_lab_ns() {
    local ns
    ns=$(ip netns identify "$1" 2>/dev/null || true)
    [ "$ns" = "$ONS" ] || [ "$ns" = "$CNS" ]
}
fwd_policy() { iptables -S FORWARD 2>/dev/null | awk '$1=="-P"{print $3}'; }

# ---------------------------------------------------------------- down
down() {
    local pid ns victims="" left
    # 1. our processes: the recorded ones and anything else inside our namespaces. A pid is
    # signalled only while it is inside one of our namespaces, so a recorded pid reused by
    # something else after a crash is never hit.
    for f in "$DIR"/*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null || true)
        if [[ $pid =~ ^[0-9]+$ ]] && in_lab_ns "$pid"; then victims+=" $pid"; fi
    done
    for ns in "$ONS" "$CNS"; do
        if netns_exists "$ns"; then victims+=" $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"; fi
    done
    for pid in $victims; do kill "$pid" 2>/dev/null || true; done
    # wait until they are gone (a zombie counts as gone: it holds nothing), SIGKILL after 5 s
    for round in TERM KILL; do
        for _ in $(seq 50); do
            left=""
            for pid in $victims; do if alive "$pid"; then left+=" $pid"; fi; done
            [ -n "$left" ] || break
            sleep 0.1
        done
        [ -n "$left" ] || break
        if [ "$round" = TERM ]; then
            log "still running after SIGTERM:$left; SIGKILL"
            for pid in $left; do
                if in_lab_ns "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
            done
        else
            log "warning: processes$left did not exit"
        fi
    done
    # 2. firewall rules (only ever added when the FORWARD policy was not ACCEPT)
    if command -v iptables >/dev/null; then
        while iptables -D FORWARD -i "$HC" -o "$HO" -m comment --comment "$TAG" -j ACCEPT 2>/dev/null; do :; done
        while iptables -D FORWARD -i "$HO" -o "$HC" -m comment --comment "$TAG" -j ACCEPT 2>/dev/null; do :; done
    fi
    if command -v ip6tables >/dev/null; then
        while ip6tables -D FORWARD -i "$HC" -o "$HO" -m comment --comment "$TAG" -j ACCEPT 2>/dev/null; do :; done
        while ip6tables -D FORWARD -i "$HO" -o "$HC" -m comment --comment "$TAG" -j ACCEPT 2>/dev/null; do :; done
    fi
    # 3. links and namespaces (deleting a namespace also deletes its veth ends and their peers)
    for l in "$HO" "$HC"; do ip link del "$l" 2>/dev/null || true; done
    for ns in "$ONS" "$CNS"; do
        if netns_exists "$ns"; then ip netns del "$ns"; fi
    done
    # 4. files
    rm -rf "$NETNS_ETC"
    if [ -e "$DIR/made-etc-netns" ]; then rmdir /etc/netns 2>/dev/null || true; fi
    rm -rf "$DIR"
    rmdir /run/ward-egress-lab 2>/dev/null || true
}

# ---------------------------------------------------------------- up
certs() {
    local d=$DIR/pki name
    mkdir -p "$d"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$d/ca.key" -subj "/CN=ward egress lab CA ($SFX)" -days 2 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$DIR/ca.pem" 2>/dev/null
    for name in "${NAMES[@]}" wild.test; do
        local san="DNS:$name"
        [ "$name" != wild.test ] || san="DNS:wild.test,DNS:*.wild.test"
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$name.key" 2>/dev/null
        openssl req -new -key "$d/$name.key" -subj "/CN=$name" -out "$d/$name.csr" 2>/dev/null
        printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
            "$san" >"$d/$name.ext"
        openssl x509 -req -in "$d/$name.csr" -CA "$DIR/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
            -days 2 -extfile "$d/$name.ext" -out "$d/$name.pem" 2>/dev/null
        rm -f "$d/$name.csr" "$d/$name.ext"
    done
    rm -f "$d/ca.key" "$DIR/ca.srl"   # nothing else is ever signed by this CA
}

link_up() {
    # link_up HOSTIF NS V4NET V6NET [PREFIX]: a veth pair, host side .1/::1, namespace side
    # eth0 .2/::2, IPv4 prefix PREFIX (default 24)
    local hif=$1 ns=$2 v4=$3 v6=$4 p4=${5:-24}
    ip link add "$hif" type veth peer name eth0 netns "$ns"
    ip addr add "$v4.1/$p4" dev "$hif"
    ip addr add "$v6::1/64" dev "$hif" nodad
    # forwarding only for packets arriving on the lab's own interfaces
    echo 1 >"/proc/sys/net/ipv4/conf/$hif/forwarding"
    if [ -e "/proc/sys/net/ipv6/conf/$hif/force_forwarding" ]; then
        echo 1 >"/proc/sys/net/ipv6/conf/$hif/force_forwarding"
    fi
    ip link set "$hif" up
    nse "$ns" ip addr add "$v4.2/$p4" dev eth0
    nse "$ns" ip addr add "$v6::2/64" dev eth0 nodad
    nse "$ns" ip link set eth0 up
}

wait_for() {
    # wait_for DAEMON CMD...: up to 10 s for CMD to succeed while DAEMON ($DIR/DAEMON.pid) lives
    local daemon=$1; shift
    for _ in $(seq 100); do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$(cat "$DIR/$daemon.pid")" 2>/dev/null ||
            die "$daemon exited: $(tail -3 "$DIR/$daemon.log" | tr '\n' ' ')"
        sleep 0.1
    done
    die "$daemon did not come up in 10 s (see $DIR/$daemon.log)"
}

start_bg() {
    # start_bg NAME NS CMD...: a daemon in NS, its pid in $DIR/NAME.pid, output in $DIR/NAME.log
    local name=$1 ns=$2; shift 2
    ip netns exec "$ns" setsid "$@" >"$DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/$name.pid"
}

env_lines() {
    local i name up
    echo "WARD_LAB_SUFFIX=$SFX"
    echo "WARD_LAB_DIR=$DIR"
    echo "WARD_LAB_CA=$DIR/ca.pem"
    echo "WARD_LAB_RECORD=$DIR/requests.jsonl"
    echo "WARD_LAB_AWS_CREDS=$DIR/aws-credentials.json"
    echo "WARD_LAB_ORIGIN_NS=$ONS"
    echo "WARD_LAB_CLIENT_NS=$CNS"
    echo "WARD_LAB_DNS=$V4_O.53"
    echo "WARD_LAB_DNS6=$V6_O::53"
    echo "WARD_LAB_HOST_IF_ORIGIN=$HO"
    echo "WARD_LAB_HOST_IF_CLIENT=$HC"
    echo "WARD_LAB_ORIGIN_NET=$V4_O.0/24"
    echo "WARD_LAB_ORIGIN_NET6=$V6_O::/64"
    echo "WARD_LAB_CLIENT_ADDR=$V4_C.2"
    echo "WARD_LAB_CLIENT_ADDR6=$V6_C::2"
    # 1 when the client reaches the origin over IPv6 too (the kernel has per-interface
    # force_forwarding); the host reaches the origin over IPv6 in any case
    echo "WARD_LAB_CLIENT_IPV6=$([ -e /proc/sys/net/ipv6/conf/all/force_forwarding ] && echo 1 || echo 0)"
    echo "WARD_LAB_CLIENT_GW=$V4_C.1"
    echo "WARD_LAB_CLIENT_GW6=$V6_C::1"
    # lists are comma-separated, so every line is KEY=VALUE with no quoting (shell-sourceable)
    (IFS=,; echo "WARD_LAB_HTTP_PORTS=${HTTP_PORTS[*]}")
    (IFS=,; echo "WARD_LAB_HTTPS_PORTS=${HTTPS_PORTS[*]}")
    (IFS=,; echo "WARD_LAB_NAMES=${NAMES[*]}")
    for i in "${!NAMES[@]}"; do
        name=${NAMES[$i]}
        up=$(echo "$name" | tr 'a-z.' 'A-Z_')
        echo "WARD_LAB_ADDR_$up=$V4_O.${SUFFIXES[$i]}"
        echo "WARD_LAB_ADDR6_$up=$V6_O::${SUFFIXES[$i]}"
    done
    echo "WARD_LAB_REBIND_NAMES=rebind.test,metadata.test"
    echo "WARD_LAB_ADDR_REBIND_TEST=127.0.0.1"
    echo "WARD_LAB_ADDR6_REBIND_TEST=::1"
    echo "WARD_LAB_ADDR_METADATA_TEST=169.254.169.254"
    echo "WARD_LAB_ADDR6_METADATA_TEST=fd00:ec2::254"
    echo "WARD_LAB_WILDCARD_DOMAIN=wild.test"
    echo "WARD_LAB_ADDR_WILD_TEST=$V4_O.14"
}

# An `up` that stops half way leaves nothing: the EXIT trap tears down what was made.
up_failed() {
    local status=$?
    if [ "$status" != 0 ]; then log "up failed, tearing down"; down; fi
}

up() {
    local i name other
    [ "$(id -u)" = 0 ] || die "must run as root"
    for b in ip openssl dnsmasq setsid ss "$PY"; do
        command -v "$b" >/dev/null || die "missing $b (apt-get install iproute2 openssl dnsmasq-base util-linux python3)"
    done
    if [ ! -e /proc/sys/net/ipv6/conf/all/force_forwarding ]; then
        log "this kernel has no net.ipv6.conf.*.force_forwarding (Linux 6.17+): the client reaches the origin over IPv4 only (WARD_LAB_CLIENT_IPV6=0); the host-wide IPv6 forwarding is never changed"
    fi

    down   # idempotent: a previous lab of this suffix goes first
    # One lab per machine (fixed addresses): wait up to WARD_LAB_WAIT seconds for another one.
    local wait_s=${WARD_LAB_WAIT:-0}
    while :; do
        other=$(ip -o addr show | awk -v a="$V4_O.1/" 'index($4, a)==1 {print $2}')
        if [ -z "$other" ] || [ "$wait_s" -le 0 ]; then break; fi
        if [ $((wait_s % 30)) = 0 ]; then log "another egress lab is up ($V4_O.1 on $other); waiting ${wait_s}s more"; fi
        sleep 5; wait_s=$((wait_s - 5))
    done
    [ -z "$other" ] || die "$V4_O.1 is already on interface $other (another lab is up? WARD_LAB_SUFFIX=... lab.sh down)"

    trap up_failed EXIT
    trap 'exit 130' INT TERM HUP
    mkdir -p "$DIR"
    [ -d /etc/netns ] || { mkdir /etc/netns; touch "$DIR/made-etc-netns"; }

    certs

    ip netns add "$ONS"
    ip netns add "$CNS"
    nse "$ONS" ip link set lo up
    nse "$CNS" ip link set lo up
    link_up "$HO" "$ONS" "$V4_O" "$V6_O"
    link_up "$HC" "$CNS" "$V4_C" "$V6_C" 30
    # Routes only between the two lab subnets: nothing in the lab can reach anything else.
    nse "$ONS" ip route add "$V4_C.0/30" via "$V4_O.1"
    nse "$ONS" ip -6 route add "$V6_C::/64" via "$V6_O::1"
    nse "$CNS" ip route add "$V4_O.0/24" via "$V4_C.1"
    nse "$CNS" ip -6 route add "$V6_O::/64" via "$V6_C::1"
    # The origin's per-name addresses and the DNS server's.
    for i in "${!NAMES[@]}"; do
        nse "$ONS" ip addr add "$V4_O.${SUFFIXES[$i]}/24" dev eth0
        nse "$ONS" ip addr add "$V6_O::${SUFFIXES[$i]}/64" dev eth0 nodad
    done
    nse "$ONS" ip addr add "$V4_O.14/24" dev eth0
    nse "$ONS" ip addr add "$V4_O.53/24" dev eth0
    nse "$ONS" ip addr add "$V6_O::53/64" dev eth0 nodad

    if command -v iptables >/dev/null && [ "$(fwd_policy)" != ACCEPT ] && [ -n "$(fwd_policy)" ]; then
        log "iptables FORWARD policy is $(fwd_policy): adding ACCEPT rules for $HC <-> $HO only"
        iptables -I FORWARD -i "$HC" -o "$HO" -m comment --comment "$TAG" -j ACCEPT
        iptables -I FORWARD -i "$HO" -o "$HC" -m comment --comment "$TAG" -j ACCEPT
    fi
    if command -v ip6tables >/dev/null; then
        local p6
        p6=$(ip6tables -S FORWARD 2>/dev/null | awk '$1=="-P"{print $3}')
        if [ -n "$p6" ] && [ "$p6" != ACCEPT ]; then
            ip6tables -I FORWARD -i "$HC" -o "$HO" -m comment --comment "$TAG" -j ACCEPT
            ip6tables -I FORWARD -i "$HO" -o "$HC" -m comment --comment "$TAG" -j ACCEPT
        fi
    fi

    # DNS: authoritative for .test, no upstream at all (no-resolv, no server=).
    {
        echo "no-resolv"
        echo "no-hosts"
        echo "no-poll"
        echo "bind-interfaces"
        echo "listen-address=$V4_O.53"
        echo "listen-address=$V6_O::53"
        echo "local=/#/"      # every name is local: unknown names get NXDOMAIN, never a forward
        echo "log-queries"
        for i in "${!NAMES[@]}"; do
            echo "host-record=${NAMES[$i]},$V4_O.${SUFFIXES[$i]},$V6_O::${SUFFIXES[$i]}"
        done
        echo "host-record=rebind.test,127.0.0.1,::1"
        echo "host-record=metadata.test,169.254.169.254,fd00:ec2::254"
        echo "address=/wild.test/$V4_O.14"
    } >"$DIR/dnsmasq.conf"
    start_bg dnsmasq "$ONS" dnsmasq --keep-in-foreground --conf-file="$DIR/dnsmasq.conf" \
        --pid-file="$DIR/dnsmasq.pidfile" --log-facility=- --user=root --group=root
    # The client resolves through the lab DNS (ip netns exec bind-mounts this over resolv.conf).
    mkdir -p "$NETNS_ETC"
    printf 'nameserver %s\nnameserver %s\noptions timeout:1 attempts:2\n' "$V4_O.53" "$V6_O::53" \
        >"$NETNS_ETC/resolv.conf"

    # the real AWS pair its /aws endpoint verifies SigV4 with: written by the test (e2e_creds.sh)
    # into this file once the lab is up, read by the origin per request (never argv)
    local args=(--ready "$DIR/origin.ready" --record "$DIR/requests.jsonl" --aws-creds "$DIR/aws-credentials.json")
    for p in "${HTTP_PORTS[@]}"; do args+=(--http "$p"); done
    for p in "${HTTPS_PORTS[@]}"; do args+=(--https "$p"); done
    for name in "${NAMES[@]}" wild.test; do args+=(--cert "$name=$DIR/pki/$name.pem,$DIR/pki/$name.key"); done
    args+=(--cert "*.wild.test=$DIR/pki/wild.test.pem,$DIR/pki/wild.test.key")
    start_bg origin "$ONS" "$PY" -u "$HERE/origin.py" "${args[@]}"

    wait_for origin test -e "$DIR/origin.ready"
    wait_for dnsmasq sh -c "ip netns exec '$ONS' ss -Hlnu 'sport = :53' | grep -q '$V4_O.53'"
    for f in "$DIR"/*.pid; do
        kill -0 "$(cat "$f")" 2>/dev/null || die "$(basename "$f" .pid) exited (see $DIR/$(basename "$f" .pid).log)"
    done

    env_lines >"$DIR/env"
    trap - EXIT
    cat "$DIR/env"
    log "up"
}

case "${1:-}" in
up) up ;;
down)
    [ "$(id -u)" = 0 ] || die "must run as root"
    down
    log "down"
    ;;
env)
    [ -e "$DIR/env" ] || die "no lab is up with suffix $SFX"
    cat "$DIR/env"
    ;;
*)
    echo "usage: lab.sh up|down|env   (WARD_LAB_SUFFIX=... picks the lab; default 'lab')" >&2
    exit 2
    ;;
esac
