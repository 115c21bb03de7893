#!/bin/bash
# End-to-end proof of egress by domain name (issue 16, "Proof"): real containers in the egress
# lab (integration/egress/README.md), real clients inside them, ward's proxy and kernel wall in
# between. See the "e2e" section of integration/egress/README.md.
#
# Columns (each a runtime setup; WARD_E2E_COLUMNS, default "none ward runc"):
#   none  ward, containers WITHOUT a policy: the baseline that proves every check can tell
#         (other.test answers 200 there, a raw connect() succeeds, dnsmasq sees the queries...)
#   ward  ward with the policies below (field and org.ward.interception annotation)
#   runc  runc 1.1.5 with the egress hook from hooks/ (a FAILURE line while hooks/ is missing)
# Containers: A joins the lab's client netns (field policy, proxyEnv), B joins it (annotation,
# wildcards, deny-wins), C has a NEW netns (lo only: the proxy dials from the host's netns),
# D (ward column) has IP rules only and must start no proxy; E has HTTP method/path rules.
#
# Prints `ok CASE [COL]: got` / `FAIL CASE [COL]: want W, got G` per check, then a table and
# `N passed, M failed`; exits non-zero when anything failed. Everything it made (containers,
# cgroups, lab, files) is removed on exit, also on failure or a signal.
#
# Env: WARD (default target/release/ward), RUNC (default runc on PATH), WARD_E2E_SUFFIX (lab
# suffix, default e2e<pid>), WARD_E2E_COLUMNS, WARD_E2E_KEEP=1 (keep $W for reading after).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WARD=${WARD:-$REPO/target/release/ward}
RUNC=${RUNC:-$(command -v runc || echo runc)}
SFX=${WARD_E2E_SUFFIX:-e2e$$}
SFX=${SFX:0:10}
COLUMNS_RUN=${WARD_E2E_COLUMNS:-none ward runc}
W=/tmp/ward-e2e-$SFX
CG=ward-e2e-$SFX                 # every container's cgroup is /$CG/<id>
WROOT=$W/ward-root                 # ward --root (violations.jsonl lives in $WROOT/<id>/)
RROOT=$W/runc-root
HROOT=$W/hook-root                 # --root given to `ward hook egress` in the runc column
T=60                               # seconds for one runtime command

[ "$(id -u)" = 0 ] || { echo "e2e.sh: must run as root (containers, network namespaces)" >&2; exit 1; }

# ---------------------------------------------------------------- bookkeeping
PASSED=0; FAILED=0
declare -A CELL                    # CELL[case|col] = ok | FAIL
ROWS=()
COL=none                           # the column the checks below belong to
record() { # record CASE ok|FAIL
    [ -n "${CELL[$1|_seen]+x}" ] || { ROWS+=("$1"); CELL[$1|_seen]=1; }
    if [ "${CELL[$1|$COL]:-}" != FAIL ]; then CELL[$1|$COL]=$2; fi
    if [ "$2" = ok ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}
pass() { echo "ok $1 [$COL]: $2"; record "$1" ok; }
fail() { echo "FAIL $1 [$COL]: $2"; record "$1" FAIL; }
# expect CASE WANT GOT: WANT is a bash pattern (glob); the line shows both
expect() {
    local c=$1 want=$2 got=$3
    # shellcheck disable=SC2053
    if [[ $got == $want ]]; then pass "$c" "$got"; else fail "$c" "want '$want', got '$got'"; fi
}
one_line() { tr '\n\r\t' '   ' | sed 's/  */ /g; s/ $//' | cut -c1-"${1:-200}"; }
last_json() { grep '^{' | tail -1; }

# ---------------------------------------------------------------- teardown
CREATED=()                         # "rt id" of every container ever started
SEEN_PROXIES=()                    # "pid starttime" of every proxy seen listening
start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }
LAB_UP=""
teardown() {
    set +e
    local e rt id
    for e in "${CREATED[@]}"; do
        read -r rt id <<<"$e"
        rtc "$rt" delete -f "$id" >/dev/null 2>&1
    done
    local m
    for m in $(findmnt -rn -t cgroup,cgroup2 -o TARGET 2>/dev/null); do
        [ -d "$m/$CG" ] || continue
        find "$m/$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    # proxies a broken delete left behind (only the very processes seen: pid + start time)
    local ps pid st
    for ps in "${SEEN_PROXIES[@]}"; do
        read -r pid st <<<"$ps"
        [ "$(start_time "$pid")" = "$st" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] &&
            kill -KILL "$pid" 2>/dev/null && echo "# killed leftover proxy $pid"
    done
    [ -n "$LAB_UP" ] && WARD_LAB_SUFFIX=$SFX "$HERE/lab.sh" down >/dev/null 2>&1
    if [ -z "${WARD_E2E_KEEP:-}" ]; then rm -rf "$W"; else echo "# kept $W"; fi
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------- runtimes
RESOLVER_FLAG=()
rtc() { # rtc RT ARGS...: the runtime's command line with our root
    local rt=$1; shift
    if [ "$rt" = runc ]; then timeout -k 5 "$T" "$RUNC" --root "$RROOT" "$@"
    else timeout -k 5 "$T" "$WARD" --root "$WROOT" "${RESOLVER_FLAG[@]}" "$@"; fi
}
vlog_of() { # the violation log of container $2 under runtime $1
    if [ "$1" = runc ]; then
        local f
        for f in "$HROOT/@egress-hook/$2/violations.jsonl" "$HROOT/$2/violations.jsonl" "$RROOT/$2/violations.jsonl"; do
            [ -e "$f" ] && { echo "$f"; return; }
        done
        echo "$HROOT/@egress-hook/$2/violations.jsonl"
    else echo "$WROOT/$2/violations.jsonl"; fi
}

# ---------------------------------------------------------------- prerequisites
missing=""
for b in curl python3 openssl ip ss jq findmnt nsenter dnsmasq; do command -v "$b" >/dev/null || missing+=" $b"; done
[ -x "$WARD" ] || missing+=" ward($WARD: build it, or set WARD=)"
if [ -n "$missing" ]; then
    COL=none; fail prerequisites "missing:$missing (apt-get install curl python3 openssl iproute2 jq util-linux dnsmasq-base)"
    echo "0 passed, 1 failed"; exit 1
fi
rm -rf "$W"; mkdir -p "$W/logs" "$W/b" "$WROOT" "$RROOT" "$HROOT"
echo "# ward: $WARD ($("$WARD" --version 2>&1 | head -1))  runc: $RUNC ($("$RUNC" --version 2>&1 | head -1))"

# ---------------------------------------------------------------- lab
# One lab per machine (fixed addresses): wait a while for another one (a helper's, a selftest)
if ! WARD_LAB_WAIT=${WARD_E2E_LAB_WAIT:-180} WARD_LAB_SUFFIX=$SFX "$HERE/lab.sh" up >"$W/lab.env" 2>"$W/logs/lab.log"; then
    COL=none; fail lab-up "lab.sh up failed (one lab per machine: is another one up? ip -o addr | grep 198.51.100.1): $(tail -3 "$W/logs/lab.log" | one_line 400)"
    WARD_LAB_SUFFIX=$SFX "$HERE/lab.sh" down >/dev/null 2>&1
    echo "$PASSED passed, $FAILED failed"; exit 1
fi
LAB_UP=1
set -a; . "$W/lab.env"; set +a
CNS=$WARD_LAB_CLIENT_NS
DNSLOG=$WARD_LAB_DIR/dnsmasq.log

# ---------------------------------------------------------------- rootfs (host /usr read-only)
R=$W/rootfs
mkdir -p "$R"/{proc,dev,sys,tmp,usr,root,e2e,etc/ssl,run,var/tmp}
ln -s usr/bin "$R/bin"; ln -s usr/sbin "$R/sbin"; ln -s usr/lib "$R/lib"
[ -e /lib64 ] && ln -s usr/lib64 "$R/lib64"
: >"$R/etc/lab-ca.pem"
printf 'nameserver %s\noptions timeout:2 attempts:2\n' "$WARD_LAB_DNS" >"$R/etc/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$R/etc/hosts"
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"
echo 'hosts: files dns' >"$R/etc/nsswitch.conf"
HELPERS=$W/helpers
mkdir -p "$HELPERS"; cp "$HERE/e2e_client.py" "$HELPERS/"
cp "$WARD_LAB_CA" "$W/ca.pem"

# policies (process.interception objects)
cat >"$W/policy-A.json" <<'EOF'
{"network": {"default": "deny",
  "allowedDomains": ["allowed.test", "rebind.test", "metadata.test"],
  "deniedDomains": ["evil.test"],
  "deniedDomainReasons": {"evil.test": "evil.test is off limits in this lab: use allowed.test"},
  "proxyEnv": true}}
EOF
cat >"$W/policy-B.json" <<'EOF'
{"network": {"default": "deny",
  "allowedDomains": ["*.allowed.test", "*.wild.test"],
  "deniedDomains": ["deny.wild.test", "upload.allowed.test:8080"]}}
EOF
cat >"$W/policy-C.json" <<'EOF'
{"network": {"default": "deny", "allowedDomains": ["allowed.test"]}}
EOF
cat >"$W/policy-E.json" <<'EOF'
{"network": {"default": "deny",
  "allowedDomains": ["allowed.test", "upload.allowed.test"],
  "http": [{"host": "allowed.test",
    "allow": [{"methods": ["POST"], "paths": ["/echo/v1/messages", "/echo/v1/messages/*"]},
              {"methods": ["GET"], "paths": ["/*"]}],
    "deny": [{"paths": ["/echo/v1/files", "/echo/v1/files/*"]}]}]}}
EOF
cat >"$W/policy-D.json" <<EOF
{"network": {"default": "allow", "deny": ["$WARD_LAB_ADDR_EVIL_TEST/32"]}}
EOF

# ---------------------------------------------------------------- containers
RT=ward; ID=""; UP=""; START_ERR=""; HOOK_JSON=""
# start_ctr RT ID NETNS(path|new) POLICY(file|"") VIA(field|annotation)
start_ctr() {
    RT=$1; ID=$2; UP=""; START_ERR=""
    local b=$W/b/$ID args=()
    mkdir -p "$b"
    [ -n "$4" ] && args+=(--policy "$4" --via "$5")
    [ "$RT" = runc ] && [ -n "$HOOK_JSON" ] && args+=(--hook-json "$HOOK_JSON" --ward "$WARD"
        --hook-global=--root --hook-global="$HROOT" --hook-global=--egress-resolver --hook-global="$WARD_LAB_DNS:53")
    python3 "$HERE/e2e_bundle.py" "$b" --rootfs "$R" --netns "$3" --cgroup "/$CG/$ID" \
        --ca "$W/ca.pem" --helpers "$HELPERS" "${args[@]}" || { START_ERR="bundle generation failed"; return 1; }
    CREATED+=("$RT $ID")
    if rtc "$RT" run -d --bundle "$b" "$ID" </dev/null >"$W/logs/$ID.log" 2>&1; then
        UP=1
    else
        START_ERR="$RT run -d failed: $(tail -3 "$W/logs/$ID.log" | one_line 400)"
        rtc "$RT" delete -f "$ID" >/dev/null 2>&1
        return 1
    fi
}
# not_up CASE...: the container did not start: every one of its cases fails with the reason
not_up() {
    local c
    if [ -z "${NOTED[$COL|$ID]:-}" ]; then NOTED[$COL|$ID]=1; echo "# container $ID [$COL] not started: $START_ERR"; fi
    for c in "$@"; do fail "$c" "container $ID not started (reason above)"; done
}
declare -A NOTED
X() { rtc "$RT" exec "$ID" "$@" 2>&1; }
# inside [VAR=VAL...] -- CMD ARGS: e2e_client.py in the container with a clean env (no proxy
# variables unless given), its JSON line on stdout
inside() {
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    local out j
    out=$(X /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root "${envs[@]}" /usr/bin/python3 /e2e/e2e_client.py "$@")
    j=$(last_json <<<"$out")
    if [ -n "$j" ]; then echo "$j"; else jq -cn --arg e "$(one_line 300 <<<"$out")" '{exec_error: $e}'; fi
}
# exec_failed JSON: prints "exec failed: ..." and succeeds when the helper never ran
exec_failed() { jq -er '.exec_error // empty | "exec failed: " + .' <<<"$1" 2>/dev/null; }
# conn: the result of `inside -- connect`
conn() { local j; j=$(cat); exec_failed "$j" || jq -r .result <<<"$j"; }
CURL_CA=(--cacert /etc/lab-ca.pem)
# curl summary: "rc=N code=C [X-Ward-Denied] body=FIRST-120-CHARS"
csum() {
    local j; j=$(cat)
    exec_failed "$j" && return
    local rc code den body err
    rc=$(jq -r .rc <<<"$j"); code=$(jq -r .code <<<"$j"); den=$(jq -r '.denied // ""' <<<"$j")
    body=$(jq -r .body <<<"$j" | one_line 120); err=$(jq -r .err <<<"$j" | one_line 120)
    local s="rc=$rc code=$code"
    [ -n "$den" ] && s+=" X-Ward-Denied"
    if [ "$rc" = 0 ]; then s+=" body=$body"; else s+=" err=$err"; fi
    echo "$s"
}
# psum: the Python clients' summary "code=C [addr=A|reserved] body=... [err=...]"
psum() {
    local j; j=$(cat)
    exec_failed "$j" && return
    local s a err
    s="code=$(jq -r .code <<<"$j")"
    a=$(jq -r 'if has("addr") then (.addr // "none") else "" end' <<<"$j")
    in_reserved "$a" && a=reserved
    [ -n "$a" ] && s+=" addr=$a"
    s+=" body=$(jq -r .body <<<"$j" | one_line 120)"
    err=$(jq -r .err <<<"$j" | one_line 160)
    [ -n "$err" ] && s+=" err=$err"
    echo "$s"
}
# ccsum: csum plus the CONNECT response code
ccsum() { local j; j=$(cat); echo "connect=$(jq -r .connect <<<"$j" 2>/dev/null) $(csum <<<"$j")"; }
in_reserved() { [[ $1 =~ ^198\.(18|19)\. ]]; }
# dns summary: "rcode=R answers=A,B" (an address of 198.18.0.0/15 shows as "reserved")
dsum() {
    local j; j=$(cat)
    exec_failed "$j" && return
    local err; err=$(jq -r .err <<<"$j")
    [ -z "$err" ] || { echo "error=$err"; return; }
    local a out=()
    for a in $(jq -r '.answers[]' <<<"$j"); do if in_reserved "$a"; then out+=(reserved); else out+=("$a"); fi; done
    echo "rcode=$(jq -r .rcode <<<"$j") answers=$(IFS=,; echo "${out[*]}")"
}
# records CASE-independent: the egress records of the current container naming $1, one per line
vrecs() { local f; f=$(vlog_of "$RT" "$ID"); [ -f "$f" ] && jq -c --arg n "$1" 'select(.type == "egress" and .name == $n)' "$f" 2>/dev/null; }
FIELDS='has("time") and has("type") and has("id") and has("pid") and has("source") and has("name") and has("port") and has("destination") and has("rule") and has("decision")'
# rsum NAME DECISION-PREFIX [SOURCE [PORT]]: the first record of NAME whose decision starts so
# (from SOURCE, for PORT), summarised
rsum() {
    local r; r=$(vrecs "$1" | jq -c --arg d "$2" --arg s "${3:-}" --arg p "${4:-}" \
        'select((.decision | startswith($d)) and ($s == "" or .source == $s) and ($p == "" or (.port | tostring) == $p))' 2>/dev/null | head -1)
    if [ -z "$r" ]; then echo "no record (of $(vrecs "$1" | wc -l) for $1: $(vrecs "$1" | head -2 | one_line 300))"; return; fi
    jq -r --arg id "$ID" "\"source=\(.source) port=\(.port) destination=\(.destination) decision=\(.decision) id-ok=\(.id == \$id) fields-ok=\($FIELDS) rule=\(.rule)\"" <<<"$r"
}
egress_count() { local f; f=$(vlog_of "$RT" "$ID"); [ -f "$f" ] && jq -c 'select(.type == "egress")' "$f" 2>/dev/null | wc -l || echo 0; }
dnslog_count() { grep -c -F "$1" "$DNSLOG" 2>/dev/null || true; }
# proxy listeners (pid list) in the 198.18.0.0/15 range of a netns: "ns NAME" or "pid PID"
listeners() {
    local out
    if [ "$1" = ns ]; then out=$(ip netns exec "$2" ss -Htlnup 2>/dev/null)
    else out=$(nsenter -t "$2" -n ss -Htlnup 2>/dev/null); fi
    grep -E ' 198\.1[89]\.[0-9]+\.[0-9]+:' <<<"$out"
}
listener_pids() { listeners "$@" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | tr '\n' ' '; }
procs_mentioning() { # processes whose command line contains $1 (paths unique to this run)
    local p n=0
    for p in /proc/[0-9]*; do { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$1" && n=$((n + 1)); done
    echo $n
}
cgroup_left() { local m; for m in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do [ -d "$m/$CG/$1" ] && echo "$m/$CG/$1"; done; }
P() { [ "$COL" != none ]; }        # policy columns

# ---------------------------------------------------------------- set A: allowed/denied/bypass
# Container A joins the client netns; policy A (field): allowed.test, rebind.test, metadata.test;
# evil.test denied with a reason; proxyEnv.
set_main() {
    local ok200='rc=0 code=200 body=hello from allowed.test' g
    local cases=(A-https-name A-http-name A-https-port-8443 A-body-intact-https A-body-intact-http A-urllib-https A-raw-client
        A-allowed-logged A-denied-nxdomain A-denied-logged A-raw-connect-denied-ip
        A-raw-connect-allowed-ip A-raw-connect-v6 A-dns-udp-diverted A-dns-tcp-diverted
        A-dns-v6-server-diverted A-dns-v6-sendto-refused A-dns-source-restored A-dns-not-at-dnsmasq A-dns-denied-nxdomain A-dns-aaaa-nodata
        A-host-mismatch-http A-sni-mismatch-tls A-mismatch-logged A-proxyenv-set
        A-https-proxy-connect A-http-proxy-absolute A-socks5h A-explicit-denied-reason
        A-explicit-connect-denied A-transparent-denied-evil A-rebind-refused A-rebind-logged
        A-metadata-refused A-metadata-logged A-connection-bound A-serves-after-flood)
    [ -n "$UP" ] || { not_up "${cases[@]}"; return; }

    # transparent: no proxy variables anywhere
    expect A-https-name "$ok200" "$(inside -- curl "${CURL_CA[@]}" https://allowed.test/ | csum)"
    expect A-http-name "$ok200" "$(inside -- curl http://allowed.test/ | csum)"
    expect A-https-port-8443 "$ok200" "$(inside -- curl "${CURL_CA[@]}" https://allowed.test:8443/ | csum)"
    # bodies intact both ways through the splice: 8 MiB down, python3's binary (~6.6 MiB) up
    for g in https http; do
        local extra=(); [ $g = https ] && extra=("${CURL_CA[@]}")
        local j; j=$(inside -- intact $g://allowed.test 8388608 /usr/bin/python3 "${extra[@]}")
        expect A-body-intact-$g 'down=ok up=ok' "$(exec_failed "$j" || jq -r '"down=\(.down) up=\(.up)"' <<<"$j")"
    done
    g=$(inside -- urllib https://allowed.test/ /etc/lab-ca.pem)
    expect A-urllib-https 'code=200 body=hello from allowed.test' "$(psum <<<"$g")"
    # a client that ignores proxy variables (they point nowhere): must work, through ward's answer
    g=$(inside HTTP_PROXY=http://203.0.113.1:9 http_proxy=http://203.0.113.1:9 ALL_PROXY=socks5h://203.0.113.1:9 -- raw allowed.test 80 /)
    if P; then expect A-raw-client 'code=200 addr=reserved body=hello from allowed.test' "$(psum <<<"$g")"
    else expect A-raw-client "code=200 addr=$WARD_LAB_ADDR_ALLOWED_TEST body=hello from allowed.test" "$(psum <<<"$g")"; fi
    if P; then expect A-allowed-logged "source=transparent port=443 destination=$WARD_LAB_ADDR_ALLOWED_TEST:443 decision=allowed id-ok=true fields-ok=true rule=*allowed.test*" "$(rsum allowed.test allowed transparent 443)"
    else expect A-allowed-logged 'egress-records=0' "egress-records=$(egress_count)"; fi

    # a denied name: NXDOMAIN from ward, logged
    if P; then expect A-denied-nxdomain 'rc=6 *' "$(inside -- curl "${CURL_CA[@]}" https://other.test/ | csum)"
        expect A-denied-logged 'source=dns * decision=denied* id-ok=true fields-ok=true *' "$(rsum other.test denied dns)"
    else expect A-denied-nxdomain 'rc=0 code=200 body=hello from other.test' "$(inside -- curl "${CURL_CA[@]}" https://other.test/ | csum)"
        expect A-denied-logged 'egress-records=0' "egress-records=$(egress_count)"; fi

    # bypass: raw connect() to an origin's address (the route exists: only the wall can stop it)
    local want=ok; P && want=EPERM
    expect A-raw-connect-denied-ip "$want" "$(inside -- connect "$WARD_LAB_ADDR_OTHER_TEST" 443 | conn)"
    expect A-raw-connect-allowed-ip "$want" "$(inside -- connect "$WARD_LAB_ADDR_ALLOWED_TEST" 443 | conn)"
    if [ "${WARD_LAB_CLIENT_IPV6:-0}" = 1 ]; then
        expect A-raw-connect-v6 "$want" "$(inside -- connect "$WARD_LAB_ADDR6_OTHER_TEST" 443 | conn)"
    else pass A-raw-connect-v6 "lab has no client IPv6 (WARD_LAB_CLIENT_IPV6=0): nothing to bypass over"; fi

    # bypass: DNS straight to the lab's server is answered by ward (UDP, TCP, over IPv6 too)
    local dwant="rcode=0 answers=$WARD_LAB_ADDR_ALLOWED_TEST"; P && dwant='rcode=0 answers=reserved'
    local ju jt j6 src na0 na1 nq=2
    na0=$(dnslog_count 'query[A] allowed.test')
    ju=$(inside -- dns "$WARD_LAB_DNS" allowed.test A); jt=$(inside -- dns "$WARD_LAB_DNS" allowed.test A tcp)
    expect A-dns-udp-diverted "$dwant" "$(dsum <<<"$ju")"
    expect A-dns-tcp-diverted "$dwant" "$(dsum <<<"$jt")"
    # the client sees the server it asked (recvmsg/getpeername restore it): glibc and musl drop
    # a UDP answer from any other source
    src="udp=$(jq -r '.from // .err' <<<"$ju" 2>/dev/null) tcp=$(jq -r '.from // .err' <<<"$jt" 2>/dev/null)"
    local swant="udp=$WARD_LAB_DNS tcp=$WARD_LAB_DNS"
    if [ "${WARD_LAB_CLIENT_IPV6:-0}" = 1 ]; then
        # an IPv6 server: connected UDP (glibc) and TCP go to ward (connect6 -> v4-mapped proxy);
        # unconnected UDP (musl's sendto) cannot be rewritten to a v4-mapped address by the
        # kernel (udpv6_sendmsg), so ward refuses it (EPERM, redirect.rs): never the server
        local j6 j6t j6u
        j6=$(inside -- dns "$WARD_LAB_DNS6" allowed.test A udpc); j6t=$(inside -- dns "$WARD_LAB_DNS6" allowed.test A tcp)
        j6u=$(inside -- dns "$WARD_LAB_DNS6" allowed.test A udp)
        expect A-dns-v6-server-diverted "udpc=$dwant tcp=$dwant" "udpc=$(dsum <<<"$j6") tcp=$(dsum <<<"$j6t")"
        if P; then expect A-dns-v6-sendto-refused 'error=EPERM' "$(dsum <<<"$j6u")"
        else expect A-dns-v6-sendto-refused "$dwant" "$(dsum <<<"$j6u")"; fi
        nq=5
        src+=" udpc6=$(jq -r '.from // .err' <<<"$j6" 2>/dev/null) tcp6=$(jq -r '.from // .err' <<<"$j6t" 2>/dev/null)"
        swant+=" udpc6=$WARD_LAB_DNS6 tcp6=$WARD_LAB_DNS6"
    else pass A-dns-v6-server-diverted "lab has no client IPv6"; pass A-dns-v6-sendto-refused "lab has no client IPv6"; fi
    sleep 0.3; na1=$(dnslog_count 'query[A] allowed.test')
    expect A-dns-source-restored "$swant" "$src"
    # none of those A queries reached dnsmasq (ward answers from its table; it resolves upstream
    # only when a connection is made); nor does a TXT for an allowed name, which ward answers
    # itself (NODATA) and never forwards. Without ward dnsmasq logs each of them.
    local n0 n1; n0=$(dnslog_count 'query[TXT] allowed.test')
    g=$(inside -- dns "$WARD_LAB_DNS" allowed.test TXT | dsum)
    sleep 0.3; n1=$(dnslog_count 'query[TXT] allowed.test')
    if P; then expect A-dns-not-at-dnsmasq 'dnsmasq-saw-A=0 dnsmasq-saw-TXT=0 rcode=0 answers=' "dnsmasq-saw-A=$((na1 - na0)) dnsmasq-saw-TXT=$((n1 - n0)) $g"
    else expect A-dns-not-at-dnsmasq "dnsmasq-saw-A=$nq dnsmasq-saw-TXT=1 rcode=0 answers=" "dnsmasq-saw-A=$((na1 - na0)) dnsmasq-saw-TXT=$((n1 - n0)) $g"; fi
    if P; then expect A-dns-denied-nxdomain 'rcode=3 answers=' "$(inside -- dns "$WARD_LAB_DNS" other.test A | dsum)"
        expect A-dns-aaaa-nodata 'rcode=0 answers=' "$(inside -- dns "$WARD_LAB_DNS" allowed.test AAAA | dsum)"
    else expect A-dns-denied-nxdomain "rcode=0 answers=$WARD_LAB_ADDR_OTHER_TEST" "$(inside -- dns "$WARD_LAB_DNS" other.test A | dsum)"
        expect A-dns-aaaa-nodata "rcode=0 answers=$WARD_LAB_ADDR6_ALLOWED_TEST" "$(inside -- dns "$WARD_LAB_DNS" allowed.test AAAA | dsum)"; fi

    # fronting: Host / SNI naming another name than the one resolved and dialled
    g=$(inside -- curl -H 'Host: other.test' http://allowed.test/echo | csum)
    if P; then expect A-host-mismatch-http 'rc=0 code=403 X-Ward-Denied *' "$g"
    else expect A-host-mismatch-http 'rc=0 code=200 body=*"host": "other.test"*' "$g"; fi
    g=$(inside -- curl "${CURL_CA[@]}" --connect-to other.test:443:allowed.test:443 https://other.test/ | csum)
    if P; then expect A-sni-mismatch-tls 'rc=[1-9]* code=000 *' "$g"
    else expect A-sni-mismatch-tls 'rc=0 code=200 body=hello from other.test' "$g"; fi
    # one record each for the Host and the SNI mismatch, under the name the client resolved
    if P; then expect A-mismatch-logged 'denied-transparent-records=2 *' "denied-transparent-records=$(vrecs allowed.test | jq -c 'select(.source == "transparent" and (.decision | startswith("denied")))' | wc -l) $(vrecs allowed.test | jq -r 'select(.decision | startswith("denied")) | .rule' | one_line 200)"
    else expect A-mismatch-logged 'egress-records=0' "egress-records=$(egress_count)"; fi

    # explicit mode: proxyEnv puts the variables in the container's env (init's, /proc/1/environ)
    g=$(inside -- environ)
    local envs; envs=$(jq -r 'to_entries[] | select(.key | ascii_downcase != "no_proxy") | "\(.key)=\(.value)"' <<<"$g" 2>/dev/null |
        sed -E 's#198\.1[89]\.[0-9]+\.[0-9]+#<proxy>#' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
    exec_failed "$g" >/dev/null && envs=$(exec_failed "$g")
    local hp='' sp=''
    hp=$(jq -r '.HTTP_PROXY // ""' <<<"$g" 2>/dev/null); sp=$(jq -r '.ALL_PROXY // ""' <<<"$g" 2>/dev/null)
    if P; then
        expect A-proxyenv-set 'ALL_PROXY=socks5h://<proxy>:3128 HTTPS_PROXY=http://<proxy>:3128 HTTP_PROXY=http://<proxy>:3128 all_proxy=socks5h://<proxy>:3128 http_proxy=http://<proxy>:3128 https_proxy=http://<proxy>:3128' "$envs"
        if [ -z "$hp" ] || [ -z "$sp" ]; then
            # no variables (proxyenv-set fails): the explicit listener is still tested, found by
            # its address in the netns
            local ea; ea=$(listeners ns "$CNS" | grep -oE '198\.1[89]\.[0-9]+\.[0-9]+:3128' | head -1)
            if [ -n "$ea" ]; then
                hp="http://$ea"; sp="socks5h://$ea"
                echo "# [$COL] no proxy variables in init's env: explicit-mode cases use the listener $ea found with ss"
            fi
        fi
        if [ -z "$hp" ] || [ -z "$sp" ]; then
            local why="no HTTP_PROXY/ALL_PROXY in the container's env (proxyenv-set) and no explicit listener on :3128"
            fail A-https-proxy-connect "$why"; fail A-http-proxy-absolute "$why"; fail A-socks5h "$why"
            fail A-explicit-denied-reason "$why"; fail A-explicit-connect-denied "$why"
        else
            expect A-https-proxy-connect "connect=200 $ok200" "$(inside HTTPS_PROXY="$hp" -- curl "${CURL_CA[@]}" https://allowed.test/ | ccsum)"
            expect A-http-proxy-absolute "$ok200" "$(inside http_proxy="$hp" -- curl http://allowed.test/ | csum)"
            expect A-socks5h "$ok200" "$(inside ALL_PROXY="$sp" -- curl "${CURL_CA[@]}" https://allowed.test/ | csum)"
            expect A-explicit-denied-reason 'rc=0 code=403 X-Ward-Denied body=ward: evil.test:80 denied by *evil.test*: evil.test is off limits in this lab: use allowed.test' \
                "$(inside http_proxy="$hp" -- curl http://evil.test/ | csum)"
            expect A-explicit-connect-denied 'connect=403 rc=[1-9]* *' "$(inside HTTPS_PROXY="$hp" -- curl "${CURL_CA[@]}" https://evil.test/ | ccsum)"
        fi
        expect A-transparent-denied-evil 'rc=6 *' "$(inside -- curl "${CURL_CA[@]}" https://evil.test/ | csum)"
    else
        expect A-proxyenv-set '' "$envs"
        for g in https-proxy-connect http-proxy-absolute socks5h explicit-denied-reason explicit-connect-denied; do
            pass A-$g "n/a without a policy (no proxy to name)"; done
        expect A-transparent-denied-evil 'rc=0 code=200 body=hello from evil.test' "$(inside -- curl "${CURL_CA[@]}" https://evil.test/ | csum)"
    fi

    # rebinding: allowed by name, but what they resolve to is refused upstream
    local n
    for n in rebind metadata; do
        g=$(inside -- curl --max-time 8 http://$n.test/ | csum)
        if [[ $g == 'rc=0 code=200 '* ]]; then g="reached: $g"; else g="refused: $g"; fi
        expect A-$n-refused 'refused: *' "$g"
        if P; then expect A-$n-logged "* decision=denied* rule=*" "$(rsum $n.test denied)"
        else expect A-$n-logged 'egress-records=0' "egress-records=$(egress_count)"; fi
    done
    flood_check
}

# bounds: more idle connections than the proxy serves at once (1024) are accepted and closed,
# recorded (once a second), and the proxy still serves once they are gone
flood_check() {
    if ! P; then pass A-connection-bound "n/a without a policy (no proxy)"; pass A-serves-after-flood "n/a"; return; fi
    local g; g=$(inside -- flood allowed.test 80 1100)
    local closed; closed=$(jq -r '.closed_by_peer // 0' <<<"$g" 2>/dev/null)
    local rec; rec=$(vrecs "" | jq -r 'select(.rule == "connection bound") | .decision' | head -1)
    expect A-connection-bound 'opened=1100 closed-by-proxy>=76 record=denied*' \
        "opened=$(jq -r '.opened // .exec_error' <<<"$g") closed-by-proxy$([ "${closed:-0}" -ge 76 ] && echo '>=76' || echo "=$closed") record=${rec:-none}"
    expect A-serves-after-flood 'rc=0 code=200 body=hello from allowed.test' "$(inside -- curl http://allowed.test/ | csum)"
}

# ---------------------------------------------------------------- set B: wildcards, deny wins
# Container B joins the client netns; policy B by ANNOTATION: *.allowed.test and *.wild.test;
# deny.wild.test and upload.allowed.test:8080 denied.
set_wild() {
    local g
    local cases=(B-wild-sub-https B-wild-apex-denied B-wild-any-https B-wild-deep-http
        B-deny-wins-name B-deny-wins-port B-allowed-other-port)
    [ -n "$UP" ] || { not_up "${cases[@]}"; return; }
    expect B-wild-sub-https 'rc=0 code=200 body=hello from upload.allowed.test' "$(inside -- curl "${CURL_CA[@]}" https://upload.allowed.test/ | csum)"
    if P; then expect B-wild-apex-denied 'rc=6 *' "$(inside -- curl "${CURL_CA[@]}" https://allowed.test/ | csum)"
    else expect B-wild-apex-denied 'rc=0 code=200 body=hello from allowed.test' "$(inside -- curl "${CURL_CA[@]}" https://allowed.test/ | csum)"; fi
    expect B-wild-any-https 'rc=0 code=200 body=hello from x.wild.test' "$(inside -- curl "${CURL_CA[@]}" https://x.wild.test/ | csum)"
    expect B-wild-deep-http 'rc=0 code=200 body=hello from a.b.wild.test' "$(inside -- curl http://a.b.wild.test/ | csum)"
    if P; then expect B-deny-wins-name 'rc=6 *' "$(inside -- curl "${CURL_CA[@]}" https://deny.wild.test/ | csum)"
        expect B-deny-wins-port 'rc=0 code=403 X-Ward-Denied *' "$(inside -- curl http://upload.allowed.test:8080/ | csum)"
    else expect B-deny-wins-name 'rc=0 code=200 body=hello from deny.wild.test' "$(inside -- curl "${CURL_CA[@]}" https://deny.wild.test/ | csum)"
        expect B-deny-wins-port 'rc=0 code=200 body=hello from upload.allowed.test' "$(inside -- curl http://upload.allowed.test:8080/ | csum)"; fi
    expect B-allowed-other-port 'rc=0 code=200 body=hello from upload.allowed.test' "$(inside -- curl http://upload.allowed.test/ | csum)"
}

# ---------------------------------------------------------------- set C: a new netns (lo only)
set_newns() {
    local g
    local cases=(C-https-name C-http-name C-denied-nxdomain C-raw-connect C-dns-diverted)
    [ -n "$UP" ] || { not_up "${cases[@]}"; return; }
    if P; then
        expect C-https-name 'rc=0 code=200 body=hello from allowed.test' "$(inside -- curl "${CURL_CA[@]}" https://allowed.test/ | csum)"
        expect C-http-name 'rc=0 code=200 body=hello from allowed.test' "$(inside -- curl http://allowed.test/ | csum)"
        expect C-raw-connect EPERM "$(inside -- connect "$WARD_LAB_ADDR_ALLOWED_TEST" 443 | conn)"
        expect C-dns-diverted 'rcode=0 answers=reserved' "$(inside -- dns "$WARD_LAB_DNS" allowed.test A | dsum)"
    else # nothing reachable: the proxy is what gives this container its names
        expect C-https-name 'rc=6 *' "$(inside -- curl "${CURL_CA[@]}" https://allowed.test/ | csum)"
        expect C-http-name 'rc=6 *' "$(inside -- curl http://allowed.test/ | csum)"
        expect C-raw-connect ENETUNREACH "$(inside -- connect "$WARD_LAB_ADDR_ALLOWED_TEST" 443 | conn)"
        expect C-dns-diverted 'error=ENETUNREACH' "$(inside -- dns "$WARD_LAB_DNS" allowed.test A | dsum)"
    fi
    expect C-denied-nxdomain 'rc=6 *' "$(inside -- curl "${CURL_CA[@]}" https://other.test/ | csum)"
}

# ---------------------------------------------------------------- set D: IP rules only, no proxy
set_ip_only() {
    local cases=(D-no-proxy D-name-via-real-dns D-ip-wall)
    [ -n "$UP" ] || { not_up "${cases[@]}"; return; }
    local n0 n1; n0=$(dnslog_count 'query[A] allowed.test')
    expect D-name-via-real-dns 'rc=0 code=200 body=hello from allowed.test' "$(inside -- curl "${CURL_CA[@]}" https://allowed.test/ | csum)"
    n1=$(dnslog_count 'query[A] allowed.test')
    local lo; lo=$(ip -n "$CNS" -o addr show dev lo | grep -c ' 198\.18\.0\.1/' || true)
    expect D-no-proxy 'listeners=0 lo-198.18.0.1=0 dnsmasq-saw-query=yes' \
        "listeners=$(listeners ns "$CNS" | wc -l) lo-198.18.0.1=$lo dnsmasq-saw-query=$([ "$n1" -gt "$n0" ] && echo yes || echo no)"
    expect D-ip-wall EPERM "$(inside -- connect "$WARD_LAB_ADDR_EVIL_TEST" 443 | conn)"
}

# ---------------------------------------------------------------- set E: HTTP method/path rules
# Container E joins the client netns; policy E (issue 17): allowed.test takes POST to
# /echo/v1/messages(/*) and GET anywhere, /echo/v1/files(/*) denied; upload.allowed.test has no
# rules. Plain HTTP is judged request by request on the normalised path; TLS to allowed.test is
# terminated by ward (issue 17) and judged the same way; under runc's hook it is still expected
# refused (the hook cannot give the container ward's CA).
set_http() {
    local g p
    local cases=(E-post-allowed E-post-denied E-path-tricks-denied E-get-other-rule E-put-not-allowed
        E-denied-logged E-tls-logged E-no-rules-host-tls)
    if [ "$COL" = ward ]; then cases+=(E-tls-terminated E-tls-post-denied); else cases+=(E-tls-refused); fi
    [ -n "$UP" ] || { not_up "${cases[@]}"; return; }
    expect E-post-allowed 'rc=0 code=200 body=*"request_line": "POST /echo/v1/messages HTTP/1.1"*' \
        "$(inside -- curl -X POST -d x http://allowed.test/echo/v1/messages | csum)"
    g=$(inside -- curl -X POST -d x http://allowed.test/echo/v1/files | csum)
    if P; then expect E-post-denied 'rc=0 code=403 X-Ward-Denied *POST /echo/v1/files denied by http[[]0].deny[[]0]*' "$g"
    else expect E-post-denied 'rc=0 code=200 *' "$g"; fi
    local tricks=""
    for p in /echo/v1/./files /echo/v1//files /echo/v1/%66iles /echo/v1/messages/%2e%2e/files /echo/V1/Files; do
        g=$(inside -- curl --path-as-is -X POST -d x "http://allowed.test$p" | csum)
        tricks+="${g%% body=*} "
    done
    if P; then expect E-path-tricks-denied '*code=403 X-Ward-Denied *code=403 X-Ward-Denied *code=403 X-Ward-Denied *code=403 X-Ward-Denied *code=403 X-Ward-Denied ' "$tricks"
    else expect E-path-tricks-denied '*code=200 *code=200 *code=200 *code=200 *code=200 ' "$tricks"; fi
    expect E-get-other-rule 'rc=0 code=200 body=*"request_line": "GET /echo/anything HTTP/1.1"*' "$(inside -- curl http://allowed.test/echo/anything | csum)"
    g=$(inside -- curl -X PUT -d x http://allowed.test/echo/v1/messages | csum)
    if P; then expect E-put-not-allowed 'rc=0 code=403 X-Ward-Denied *' "$g"
    else expect E-put-not-allowed 'rc=0 code=200 *' "$g"; fi
    if P; then expect E-denied-logged 'method=POST path=/echo/v1/files rule=http[[]0].deny[[]0] decision=denied*' \
        "$(vrecs allowed.test | jq -r 'select(.path == "/echo/v1/files") | "method=\(.method) path=\(.path) rule=\(.rule) decision=\(.decision)"' | head -1)"
    else expect E-denied-logged 'egress-records=0' "egress-records=$(egress_count)"; fi
    if [ "$COL" = ward ]; then
        local n0=0
        nfiles() { vrecs allowed.test | jq -c 'select(.path == "/echo/v1/files" and (.decision | startswith("denied")))' | wc -l; }
        # issue 17: ward terminates TLS to a host with http rules (its CA, which the container
        # trusts through SSL_CERT_FILE) and judges each request like plain HTTP; verified
        # upstream against the lab's CA (--egress-ca)
        local ca; ca=$(X /usr/bin/python3 -c 'import sys; e = dict(l.split("=", 1) for l in open("/proc/1/environ").read().split("\0") if "=" in l); print(e.get("SSL_CERT_FILE", ""))' | tail -1)
        if [ -z "$ca" ]; then
            fail E-tls-terminated "no SSL_CERT_FILE in the env of init (ward's CA bundle, issue 17)"
            fail E-tls-post-denied "no SSL_CERT_FILE in the env of init"
            fail E-tls-logged "no SSL_CERT_FILE in the env of init"
        else
            expect E-tls-terminated 'rc=0 code=200 body=*"scheme": "https"*"request_line": "GET /echo HTTP/1.1"*' \
                "$(inside -- curl --cacert "$ca" https://allowed.test/echo | csum)"
            n0=$(nfiles)
            expect E-tls-post-denied 'rc=0 code=403 X-Ward-Denied *POST /echo/v1/files denied by http[[]0].deny[[]0]*' \
                "$(inside -- curl --cacert "$ca" -X POST -d x https://allowed.test/echo/v1/files | csum)"
            expect E-tls-logged 'new-denied-/echo/v1/files-records=1' "new-denied-/echo/v1/files-records=$(($(nfiles) - n0))"
        fi
    else
        g=$(inside -- curl "${CURL_CA[@]}" https://allowed.test/echo | csum)
        if P; then expect E-tls-refused 'rc=[1-9]* code=000 *' "$g"
            expect E-tls-logged '*decision=denied: host has http rules; no CA to terminate TLS here*' "$(rsum allowed.test 'denied: host has http rules')"
        else expect E-tls-refused 'rc=0 code=200 *' "$g"; expect E-tls-logged 'egress-records=0' "egress-records=$(egress_count)"; fi
    fi
    expect E-no-rules-host-tls 'rc=0 code=200 body=hello from upload.allowed.test' "$(inside -- curl "${CURL_CA[@]}" https://upload.allowed.test/ | csum)"
}

# ---------------------------------------------------------------- lifecycle: proxy up, then gone
# proxy_check PFX NSKIND(ns|pid) NSARG: before delete (policy columns): a proxy listens in the
# container's netns, outside the container's cgroup. Then delete and count what is left.
PIDS_BEFORE=""
proxy_check() {
    local c=$1 kind=$2 arg=$3 pids p incg=0 want=${4:-}
    [ "$kind" = pid ] && arg=$(rtc "$RT" state "$ID" 2>/dev/null | jq -r .pid)
    pids=$(listener_pids "$kind" "$arg")
    for p in $pids; do SEEN_PROXIES+=("$p $(start_time "$p")"); done
    if P && [ "$want" != none ]; then
        for p in $pids; do grep -q "/$CG/$ID" "/proc/$p/cgroup" 2>/dev/null && incg=1; done
        expect ${c}proxy-running 'proxy=yes in-container-cgroup=0' "proxy=$([ -n "$pids" ] && echo yes || echo no) in-container-cgroup=$incg"
    else
        expect ${c}proxy-running 'proxy=no' "proxy=$([ -n "$pids" ] && echo yes || echo no)"
    fi
    PIDS_BEFORE=$pids
}
# init_kill_check PFX: SIGKILL the container's init; its proxy must exit on its own (pidfd)
init_kill_check() {
    local c=$1 pid p left
    pid=$(rtc "$RT" state "$ID" 2>/dev/null | jq -r .pid)
    [[ $pid =~ ^[0-9]+$ ]] && [ "$pid" != 0 ] || { fail ${c}proxy-exits-with-init "no init pid in $RT state $ID"; return; }
    kill -KILL "$pid"
    for _ in $(seq 50); do
        left=""
        for p in $PIDS_BEFORE; do [ -d "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] && left+=" $p"; done
        [ -z "$left" ] && break
        sleep 0.1
    done
    if [ -z "$PIDS_BEFORE" ]; then
        if P; then fail ${c}proxy-exits-with-init "no proxy was running"; else pass ${c}proxy-exits-with-init "no proxy (no policy)"; fi
    else expect ${c}proxy-exits-with-init 'proxy-alive=none *' "proxy-alive=${left:-none} (5 s after SIGKILL of init $pid)"; fi
}
delete_check() {
    local c=$1 kind=$2 out alive=0 p
    out=$(rtc "$RT" delete -f "$ID" 2>&1) || { fail ${c}delete "$RT delete -f: $(one_line 300 <<<"$out")"; }
    sleep 0.5
    for p in $PIDS_BEFORE; do [ -d "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] && alive=$((alive + 1)); done
    local lis=n/a
    [ "$kind" = ns ] && lis=$(listeners ns "$CNS" | wc -l)
    local st=gone; [ -e "$WROOT/$ID" ] || [ -e "$RROOT/$ID" ] || [ -e "$HROOT/$ID" ] || [ -e "$HROOT/@egress-hook/$ID" ] && st=left
    local cg=gone; [ -n "$(cgroup_left "$ID")" ] && cg="left:$(cgroup_left "$ID" | one_line)"
    local want_lis=0; [ "$kind" = ns ] || want_lis=n/a
    expect ${c}delete-leaves-nothing "proxy-alive=0 listeners=$want_lis state=gone cgroup=gone run-procs=0" \
        "proxy-alive=$alive listeners=$lis state=$st cgroup=$cg run-procs=$(procs_mentioning "$W/")"
    # a joined netns outlives the container: the range ward put on its lo must go with the last
    # proxy (listeners.rs remove_range); a netns of the container's own goes whole
    [ "$kind" = ns ] && expect ${c}lo-range-removed 'lo-198.18.0.1=0' "lo-198.18.0.1=$(ip -n "$CNS" -o addr show dev lo | grep -c ' 198\.18\.0\.1/')"
}

# ---------------------------------------------------------------- columns
harness_checks() { # rootfs sanity, in the baseline column
    local py; py=$(readlink -f /usr/bin/python3)
    expect harness-python3-real 'ELF *' "$(head -c4 "$py" 2>/dev/null | tail -c3) ($py)"
}
col_none() {
    COL=none; RT=ward
    harness_checks
    start_ctr ward n-join "/run/netns/$CNS" "" field
    if [ -n "$UP" ]; then
        expect harness-exec-python 'python3 /usr/bin/python3' "$(X /usr/bin/python3 -c 'import sys; print("python3", sys.executable)' | one_line)"
        expect harness-resolv-conf "nameserver $WARD_LAB_DNS options timeout:2 attempts:2" "$(X cat /etc/resolv.conf | one_line)"
    else not_up harness-exec-python harness-resolv-conf; fi
    set_main; set_wild
    [ -n "$UP" ] && { proxy_check A- ns "$CNS"; delete_check A- ns; }
    start_ctr ward n-http "/run/netns/$CNS" "" field
    set_http
    [ -n "$UP" ] && rtc ward delete -f "$ID" >/dev/null 2>&1
    start_ctr ward n-new new "" field
    set_newns
    [ -n "$UP" ] && { proxy_check C- pid ""; init_kill_check C-; delete_check C- pid; }
}
col_policy() { # col_policy RT
    local rt=$1 via=field
    COL=$rt; RT=$rt
    [ "$rt" = runc ] && via=annotation   # runc knows no process.interception: the hook reads the annotation
    if [ "$rt" = ward ]; then
        start_ctr ward w-ipo "/run/netns/$CNS" "$W/policy-D.json" field
        set_ip_only
        [ -n "$UP" ] && { proxy_check D- ns "$CNS" none; delete_check D- ns; }
    fi
    start_ctr "$rt" "${rt:0:1}-a" "/run/netns/$CNS" "$W/policy-A.json" "$via"
    local a_up=$UP a_id=$ID
    set_main
    if [ -n "$a_up" ]; then proxy_check A- ns "$CNS"; else not_up A-proxy-running; fi
    # B joins the same netns while A still runs (a pod): its own slot, its own proxy and policy
    start_ctr "$rt" "${rt:0:1}-b" "/run/netns/$CNS" "$W/policy-B.json" annotation
    set_wild
    if [ -n "$UP" ]; then
        local pa; pa=$(listeners ns "$CNS" | grep -oE ' 198\.1[89]\.[0-9]+\.[0-9]+:53 ' | sort -u | one_line)
        if [ -n "$a_up" ]; then expect B-own-slot-beside-A 'proxies=2 *' "proxies=$(wc -w <<<"$pa") $pa"
        else expect B-own-slot-beside-A 'proxies=1 *' "proxies=$(wc -w <<<"$pa") $pa (A not running)"; fi
        rtc "$RT" delete -f "$ID" >/dev/null 2>&1
    else not_up B-own-slot-beside-A; fi
    ID=$a_id; UP=$a_up
    if [ -n "$a_up" ]; then delete_check A- ns; else not_up A-delete-leaves-nothing A-lo-range-removed; fi
    start_ctr "$rt" "${rt:0:1}-e" "/run/netns/$CNS" "$W/policy-E.json" "$via"
    set_http
    if [ -n "$UP" ]; then proxy_check E- ns "$CNS"; delete_check E- ns
    else not_up E-proxy-running E-delete-leaves-nothing E-lo-range-removed; fi
    start_ctr "$rt" "${rt:0:1}-c" new "$W/policy-C.json" "$via"
    set_newns
    if [ -n "$UP" ]; then proxy_check C- pid ""; init_kill_check C-; delete_check C- pid
    else not_up C-proxy-running C-proxy-exits-with-init C-delete-leaves-nothing; fi
}
col_ward() {
    COL=ward
    if rtc ward --egress-resolver "$WARD_LAB_DNS:53" list >/dev/null 2>&1; then
        RESOLVER_FLAG=(--egress-resolver "$WARD_LAB_DNS:53")
        pass ward-egress-resolver-flag "ward accepts --egress-resolver $WARD_LAB_DNS:53"
        # issue 17: the proxy verifies terminated upstreams against the host's roots plus these
        if rtc ward --egress-ca "$WARD_LAB_CA" list >/dev/null 2>&1; then
            RESOLVER_FLAG+=(--egress-ca "$WARD_LAB_CA")
            pass ward-egress-ca-flag "ward accepts --egress-ca $WARD_LAB_CA"
        else
            fail ward-egress-ca-flag "ward refuses the global flag --egress-ca (issue 17): $(rtc ward --egress-ca "$WARD_LAB_CA" list 2>&1 | one_line 200)"
        fi
    else
        fail ward-egress-resolver-flag "ward refuses the global flag --egress-resolver: $(rtc ward --egress-resolver "$WARD_LAB_DNS:53" list 2>&1 | one_line 200) (the proxy cannot resolve the lab's names without it)"
    fi
    col_policy ward
    RESOLVER_FLAG=()
}
col_runc() {
    COL=runc
    local hj=""
    [ -d "$REPO/hooks" ] && hj=$(ls "$REPO"/hooks/*.json 2>/dev/null | head -1)
    if [ -z "$hj" ] || ! "$WARD" hook egress --help >/dev/null 2>&1; then
        fail runc-hook "hook not built yet: $([ -d "$REPO/hooks" ] || echo "no $REPO/hooks/; ")$([ -n "$hj" ] || echo "no hooks.d JSON in hooks/; ")$("$WARD" hook egress --help >/dev/null 2>&1 || echo "\`ward hook egress\` unknown to $WARD")"
        return
    fi
    pass runc-hook "hooks.d file $hj"
    HOOK_JSON=$hj
    col_policy runc
}

for col in $COLUMNS_RUN; do
    case $col in
        none) col_none ;;
        ward) col_ward ;;
        runc) col_runc ;;
        *) echo "e2e.sh: unknown column $col" >&2 ;;
    esac
done

# ---------------------------------------------------------------- summary
echo
printf '%-34s' case; for col in $COLUMNS_RUN; do printf ' %-6s' "$col"; done; echo
for r in "${ROWS[@]}"; do
    printf '%-34s' "$r"
    for col in $COLUMNS_RUN; do printf ' %-6s' "${CELL[$r|$col]:--}"; done
    echo
done
echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
