#!/bin/bash
# Self-test of the egress lab (integration/egress/lab.sh): brings it up (twice: `up` must be
# idempotent), proves from the client namespace that names resolve through the lab DNS (no
# --resolve), that every name answers HTTP 200 and HTTPS 200 (test CA) on every port, over IPv4
# and IPv6, that the echo endpoint reports request line, Host, SNI, headers and body, that the
# rebinding names resolve as configured, and that api.test's endpoints (issue 17: /v1/messages,
# /v1/files, /echo-auth, /sse streaming) and the request record work; then tears the lab down
# (twice: `down` must be idempotent) and proves nothing is left: namespaces, veths, processes,
# files, routes, firewall rules, sysctls. Prints `ok ...` / `FAIL ...` per check and exits non-zero if any check failed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
LAB=$HERE/lab.sh
export WARD_LAB_SUFFIX=${WARD_LAB_SUFFIX:-st$$}
SFX=$WARD_LAB_SUFFIX
PY=${PYTHON:-python3}
[ "$(id -u)" = 0 ] || { echo "selftest.sh: must run as root" >&2; exit 1; }
command -v curl >/dev/null || { echo "selftest.sh: missing curl (apt-get install curl)" >&2; exit 1; }

passed=0
failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
# check WHAT CMD...: ok when CMD succeeds, else FAIL with its output
check() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$what"; else fail "$what" "$(echo "$out" | tail -3 | tr '\n' ' ')"; fi
}
# expect WHAT WANT CMD...: ok when CMD prints exactly WANT
expect() {
    local what=$1 want=$2 got
    shift 2
    got=$("$@" 2>&1) || true
    if [ "$got" = "$want" ]; then ok "$what"; else fail "$what" "want '$want', got '$(echo "$got" | tr '\n' ' ')'"; fi
}

SYSCTLS=(net.ipv4.ip_forward net.ipv4.conf.all.forwarding net.ipv4.conf.default.forwarding
    net.ipv6.conf.all.forwarding net.ipv6.conf.default.forwarding
    net.ipv6.conf.all.force_forwarding net.ipv6.conf.default.force_forwarding
    net.ipv4.conf.all.rp_filter net.ipv6.conf.all.accept_ra)
sysctls() { for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s" 2>/dev/null || echo absent)"; done; }
# Everything of this lab that could be left on the host, one line each; empty when clean.
leftovers() {
    ip netns list | awk '{print $1}' | grep -x -e "ward-origin-$SFX" -e "ward-client-$SFX" | sed 's/^/netns /' || true
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -x -e "wlo-$SFX" -e "wlc-$SFX" | sed 's/^/link /' || true
    ip -o addr show | grep -E '198\.51\.100\.|203\.0\.113\.|fd77:6172:64:' | sed 's/^/address /' || true
    { ip route show; ip -6 route show; } | grep -E '198\.51\.100\.|203\.0\.113\.|fd77:6172:64:' | sed 's/^/route /' || true
    { iptables -S FORWARD 2>/dev/null; ip6tables -S FORWARD 2>/dev/null; } | grep "ward-egress-lab-$SFX" | sed 's/^/rule /' || true
    [ ! -e "/etc/netns/ward-client-$SFX" ] || echo "file /etc/netns/ward-client-$SFX"
    [ ! -e "/run/ward-egress-lab/$SFX" ] || echo "file /run/ward-egress-lab/$SFX"
}
# alive PID: exists and is not a zombie (a zombie holds nothing; its reaping is its parent's job)
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

torn_down=""
trap 'exit 130' INT TERM HUP   # so the EXIT trap (teardown) runs on a signal too
trap '[ -n "$torn_down" ] || "$LAB" down >/dev/null 2>&1 || true' EXIT

# ---------------------------------------------------------------- before
before_sysctls=$(sysctls)
pre=$(leftovers)
if [ -n "$pre" ]; then
    echo "selftest.sh: a lab with suffix $SFX is already there ($pre); pick another WARD_LAB_SUFFIX" >&2
    exit 1
fi

# ---------------------------------------------------------------- up, twice
ENVF=$(mktemp /tmp/ward-egress-selftest.XXXXXX)
trap '[ -n "$torn_down" ] || "$LAB" down >/dev/null 2>&1 || true; rm -f "$ENVF"' EXIT
if ! "$LAB" up >"$ENVF"; then
    fail "lab up" "lab.sh up failed"
    echo "0 passed, $failed failed"
    exit 1
fi
ok "lab up"
first_pids=$(cat /run/ward-egress-lab/"$SFX"/*.pid)
if "$LAB" up >"$ENVF"; then ok "lab up again (idempotent)"; else fail "lab up again" "lab.sh up failed"; fi
set -a
# shellcheck disable=SC1090
. "$ENVF" || { fail "lab env" "$ENVF does not source"; exit 1; }
set +a
still=""
for p in $first_pids; do if alive "$p"; then still+=" $p"; fi; done
if [ -z "$still" ]; then ok "first up's processes gone after the second up"; else fail "first up's processes gone after the second up" "alive:$still"; fi
expect "origin namespace runs exactly dnsmasq and the origin" 2 sh -c "ip netns pids $WARD_LAB_ORIGIN_NS | wc -l"
expect "client namespace runs nothing" 0 sh -c "ip netns pids $WARD_LAB_CLIENT_NS | wc -l"

C=(ip netns exec "$WARD_LAB_CLIENT_NS")
FAMS="4 6"
if [ "$WARD_LAB_CLIENT_IPV6" != 1 ]; then
    FAMS=4
    echo "skipped: the client's IPv6 checks (this kernel has no per-interface IPv6 force_forwarding, Linux 6.17+)"
fi
CA=$WARD_LAB_CA
TMP=$(mktemp -d /tmp/ward-egress-selftest.XXXXXX)
trap '[ -n "$torn_down" ] || "$LAB" down >/dev/null 2>&1 || true; rm -rf "$ENVF" "$TMP"' EXIT

# resolve NAME FAMILY(4|6): the sorted addresses the client's resolver (glibc, resolv.conf) gives
resolve() {
    "${C[@]}" "$PY" -c '
import socket, sys
fam = socket.AF_INET if sys.argv[2] == "4" else socket.AF_INET6
try:
    addrs = {a[4][0] for a in socket.getaddrinfo(sys.argv[1], None, fam, socket.SOCK_STREAM)}
except socket.gaierror as e:
    print("gaierror", e.errno == socket.EAI_NONAME and "NONAME" or e.errno)
    sys.exit(0)
print(" ".join(sorted(addrs)))' "$1" "$2"
}

# ---------------------------------------------------------------- the client's view
expect "client: no route out of the lab" "unreachable" \
    sh -c "${C[*]} ip route get 192.0.2.1 >/dev/null 2>&1 && echo routed || echo unreachable"
expect "origin: no route out of the lab" "unreachable" \
    sh -c "ip netns exec $WARD_LAB_ORIGIN_NS ip route get 192.0.2.1 >/dev/null 2>&1 && echo routed || echo unreachable"
expect "client: resolv.conf names the lab DNS" "$WARD_LAB_DNS" \
    sh -c "${C[*]} awk '/^nameserver/{print \$2; exit}' /etc/resolv.conf"

for name in ${WARD_LAB_NAMES//,/ }; do
    up=$(echo "$name" | tr 'a-z.' 'A-Z_')
    v4var=WARD_LAB_ADDR_$up
    v6var=WARD_LAB_ADDR6_$up
    expect "resolve $name A" "${!v4var}" resolve "$name" 4
    expect "resolve $name AAAA" "${!v6var}" resolve "$name" 6
    check "lab DNS saw the client's query for $name" \
        grep -q "query\[A\] $name from $WARD_LAB_CLIENT_ADDR" "$WARD_LAB_DIR/dnsmasq.log"
    for fam in $FAMS; do
        for port in ${WARD_LAB_HTTP_PORTS//,/ }; do
            expect "http://$name:$port/ over IPv$fam" "200 hello from $name" \
                sh -c "${C[*]} curl -$fam -sS -m 10 -o $TMP/body -w '%{http_code} ' http://$name:$port/ && cat $TMP/body"
        done
        for port in ${WARD_LAB_HTTPS_PORTS//,/ }; do
            expect "https://$name:$port/ over IPv$fam (test CA)" "200 hello from $name" \
                sh -c "${C[*]} curl -$fam -sS -m 10 --cacert $CA -o $TMP/body -w '%{http_code} ' https://$name:$port/ && cat $TMP/body"
        done
    done
done
expect "https without the test CA is refused by curl (exit 60)" 60 \
    sh -c "${C[*]} curl -sS -m 10 -o /dev/null https://allowed.test/ 2>/dev/null; echo \$?"

# echo: request line, Host, SNI, headers in order, body
jget() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$@"; }
"${C[@]}" curl -4 -sS -m 10 --cacert "$CA" -H 'Authorization: Bearer lab-token' -H 'X-Lab-Probe: 1' \
    -o "$TMP/echo.json" 'https://allowed.test/echo/some/path?q=1' || true
expect "echo: request line" "GET /echo/some/path?q=1 HTTP/1.1" jget "$TMP/echo.json" 'd["request_line"]'
expect "echo: scheme, SNI, Host" "https allowed.test allowed.test" jget "$TMP/echo.json" 'd["scheme"]+" "+d["sni"]+" "+d["host"]'
expect "echo: injected headers as sent" "['Bearer lab-token', '1']" \
    jget "$TMP/echo.json" '[v for k, v in d["headers"] if k.lower() in ("authorization", "x-lab-probe")]'
expect "echo: the origin sees the client's own address (routed, no NAT)" "$WARD_LAB_CLIENT_ADDR" \
    jget "$TMP/echo.json" 'd["peer"].rsplit(":", 1)[0]'
expect "echo: the origin answered on the name's own address" "$WARD_LAB_ADDR_ALLOWED_TEST:443" jget "$TMP/echo.json" 'd["local"]'
"${C[@]}" curl -sS -m 10 -H 'Host: other.test' -o "$TMP/echo-http.json" "http://allowed.test:8080/echo" || true
expect "echo over http: scheme, no SNI, Host as sent" "http None other.test" \
    jget "$TMP/echo-http.json" 'd["scheme"]+" "+str(d["sni"])+" "+d["host"]'
"${C[@]}" curl -sS -m 10 --cacert "$CA" -H 'Host: other.test' -o "$TMP/echo-front.json" "https://allowed.test/echo" || true
expect "echo: a fronted request shows SNI and Host apart" "allowed.test other.test" \
    jget "$TMP/echo-front.json" 'd["sni"]+" "+d["host"]'
head -c 300000 /dev/urandom >"$TMP/upload"
sha=$(sha256sum "$TMP/upload" | cut -d' ' -f1)
"${C[@]}" curl "-${FAMS##* }" -sS -m 10 --cacert "$CA" --data-binary "@$TMP/upload" -o "$TMP/echo-post.json" \
    https://upload.allowed.test:8443/echo/up || true
expect "echo: POST body length and sha256 (IPv${FAMS##* })" "POST 300000 $sha" \
    jget "$TMP/echo-post.json" 'd["method"]+" "+str(d["body_len"])+" "+d["body_sha256"]'
expect "/bytes/N sends N bytes" 1048576 \
    sh -c "${C[*]} curl -sS -m 10 --cacert $CA https://other.test/bytes/1048576 | wc -c"

# issue 17's API-like endpoints on api.test, and the request record
expect "api.test: POST /v1/messages" '200 messages' \
    sh -c "${C[*]} curl -sS -m 10 --cacert $CA -X POST -d '{}' -o $TMP/api.json -w '%{http_code} ' https://api.test/v1/messages && $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"endpoint\"])' $TMP/api.json"
expect "api.test: POST /v1/files reaches the origin (what a path rule must stop)" '200 True' \
    sh -c "${C[*]} curl -sS -m 10 --cacert $CA -X POST -d x -o $TMP/api.json -w '%{http_code} ' https://api.test/v1/files && $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"uploaded\"])' $TMP/api.json"
"${C[@]}" curl -sS -m 10 --cacert "$CA" -H 'Authorization: Bearer echo-me' -D "$TMP/ea.h" -o "$TMP/ea.json" \
    'https://api.test/echo-auth?key=k-1' || true
expect "api.test: /echo-auth echoes Authorization and key in the body" "Bearer echo-me k-1" \
    jget "$TMP/ea.json" 'd["authorization"]+" "+d["key"]'
expect "api.test: /echo-auth echoes them in headers" "x-echo-authorization: Bearer echo-me|x-echo-key: k-1" \
    sh -c "grep -i '^x-echo-' $TMP/ea.h | tr -d '\r' | tr 'A-Z' 'a-z' | sed 's/bearer echo-me/Bearer echo-me/' | paste -sd'|'"
# /sse: event 1 is read before event 2 is sent (the origin stamps each event when it writes it)
expect "api.test: /sse streams (event 1 read >= 0.5 s before event 2 is sent)" "yes" "${C[@]}" "$PY" - "$CA" <<'PY'
import json, socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[1])
s = ctx.wrap_socket(socket.create_connection(("api.test", 443), timeout=10), server_hostname="api.test")
s.sendall(b"GET /sse?delay=1 HTTP/1.1\r\nHost: api.test\r\n\r\n")
buf, first, second = b"", None, None
while second is None:
    d = s.recv(65536)
    if not d:
        break
    now = time.time()
    buf += d
    for line in buf.split(b"\n"):
        if line.startswith(b"data: "):
            ev = json.loads(line[6:])
            if ev["n"] == 1 and first is None:
                first = now
            if ev["n"] == 2:
                second = ev["sent"]
print("yes" if first is not None and second is not None and second - first >= 0.5 else f"no: {first} {second}")
PY
expect "api.test: the request record has the echo-auth request with its Authorization" "GET /echo-auth?key=k-1 Bearer echo-me" \
    sh -c "grep '\"/echo-auth\"' $WARD_LAB_RECORD | tail -1 | $PY -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d[\"method\"], d[\"target\"], d[\"authorization\"])'"

# DNS answers for the refusal tests, the wildcard zone, unknown names
expect "resolve rebind.test A" "127.0.0.1" resolve rebind.test 4
expect "resolve rebind.test AAAA" "::1" resolve rebind.test 6
expect "resolve metadata.test A" "169.254.169.254" resolve metadata.test 4
expect "resolve metadata.test AAAA" "fd00:ec2::254" resolve metadata.test 6
expect "resolve wild.test A" "$WARD_LAB_ADDR_WILD_TEST" resolve wild.test 4
expect "resolve a.b.wild.test A" "$WARD_LAB_ADDR_WILD_TEST" resolve a.b.wild.test 4
expect "https://x.wild.test/ (wildcard certificate)" "200 hello from x.wild.test" \
    sh -c "${C[*]} curl -sS -m 10 --cacert $CA -o $TMP/body -w '%{http_code} ' https://x.wild.test/ && cat $TMP/body"
expect "https://wild.test:8443/" "200 hello from wild.test" \
    sh -c "${C[*]} curl -sS -m 10 --cacert $CA -o $TMP/body -w '%{http_code} ' https://wild.test:8443/ && cat $TMP/body"
expect "nosuch.test is NXDOMAIN" "gaierror NONAME" resolve nosuch.test 4
expect "example.com is NXDOMAIN (the lab DNS has no upstream)" "gaierror NONAME" resolve example.com 4
check "the lab DNS never forwarded a query" sh -c "! grep -E 'forwarded|reply .* from [0-9]' '$WARD_LAB_DIR/dnsmasq.log'"

expect "client: the lab DNS answers over TCP too" "$WARD_LAB_ADDR_OTHER_TEST" \
    "${C[@]}" "$PY" -c '
import socket, struct, sys
q = struct.pack(">HHHHHH", 0x4321, 0x0100, 1, 0, 0, 0) + b"\x05other\x04test\x00" + struct.pack(">HH", 1, 1)
s = socket.create_connection((sys.argv[1], 53), timeout=3)
s.sendall(struct.pack(">H", len(q)) + q)
n = struct.unpack(">H", s.recv(2))[0]; r = b""
while len(r) < n: r += s.recv(n - len(r))
print(socket.inet_ntop(socket.AF_INET, r[-4:]))' "$WARD_LAB_DNS"

# the host (where ward's upstream sockets leave from without a container route) reaches the origins
expect "host: https://allowed.test/ on its address" "200 hello from allowed.test" \
    sh -c "curl -sS -m 10 --cacert $CA --resolve allowed.test:443:$WARD_LAB_ADDR_ALLOWED_TEST -o $TMP/body -w '%{http_code} ' https://allowed.test/ && cat $TMP/body"
expect "host: the lab DNS answers on $WARD_LAB_DNS6" "$WARD_LAB_ADDR6_OTHER_TEST" \
    "$PY" -c '
import socket, struct, sys
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x05other\x04test\x00" + struct.pack(">HH", 28, 1)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(q, (sys.argv[1], 53)); r = s.recv(512)
print(socket.inet_ntop(socket.AF_INET6, r[-16:]))' "$WARD_LAB_DNS6"

# ---------------------------------------------------------------- down, twice, and nothing left
lab_pids=$({ cat "$WARD_LAB_DIR"/*.pid; ip netns pids "$WARD_LAB_ORIGIN_NS"; ip netns pids "$WARD_LAB_CLIENT_NS"; } | sort -u)
check "lab down" "$LAB" down
torn_down=1
check "lab down again (idempotent)" "$LAB" down
for _ in $(seq 50); do
    still=""
    for p in $lab_pids; do if alive "$p"; then still+=" $p"; fi; done
    [ -z "$still" ] && break
    sleep 0.1
done
if [ -z "$still" ]; then ok "no lab process left ($(echo "$lab_pids" | wc -l) checked)"; else fail "no lab process left" "alive:$still"; fi
expect "nothing of the lab left on the host" "" leftovers
expect "sysctls as before" "$before_sysctls" sysctls

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
