#!/bin/bash
# srt and `ward sandbox` side by side (issue 18): the same settings file, the same cases, run as
# the unprivileged user of setup.sh, one table: case | srt | ward | expected. Exits non-zero when
# a column disagrees with what is expected of it.
#
#   integration/sandbox/setup.sh              # once: bwrap, socat, srt (pinned), user ward-sb
#   integration/sandbox/sidebyside.sh         # root; WARD=path (default target/release/ward)
#
# COLUMNS_RUN="srt" (or "ward") runs one column. Network: an egress lab of its own
# (integration/egress/lab.sh, suffix sb<pid>, waiting up to 10 minutes for another lab to go);
# both proxies dial from the host's namespace and resolve through the host's /etc/hosts, so the
# lab's names are added there in a block tagged `ward-sandbox-sxs-<pid>`, removed on exit (also
# on failure or a signal) along with the lab and the work directory.
#
# Expected results are what ward must do. Where srt does otherwise on purpose of ward's (issue
# 18's list), the row says `differs` and carries each column's own expectation.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

WARD="${WARD:-$ROOT/target/release/ward}"
USER_SB="${SANDBOX_USER:-ward-sb}"
COLUMNS_RUN="${COLUMNS_RUN:-srt ward}"
TAG="ward-sandbox-sxs-$$"
export WARD_LAB_SUFFIX="sb$$"
WARD_LAB_SUFFIX="${WARD_LAB_SUFFIX:0:10}"
export WARD_LAB_WAIT="${WARD_LAB_WAIT:-600}"

[ "$(id -u)" = 0 ] || { echo "sidebyside: run as root (it starts the egress lab and runs the cases as $USER_SB)" >&2; exit 1; }
id "$USER_SB" >/dev/null 2>&1 || { echo "sidebyside: no user $USER_SB: run integration/sandbox/setup.sh" >&2; exit 1; }
command -v srt >/dev/null || { echo "sidebyside: srt missing: run integration/sandbox/setup.sh" >&2; exit 1; }

HOME_SB="$(getent passwd "$USER_SB" | cut -d: -f6)"
WORK="$(mktemp -d /tmp/ward-sandbox-sxs.XXXXXX)"
PROJ="$WORK/proj"
SETTINGS="$WORK/settings.json"
LAB_UP=0

remove_hosts_block() {
    # Rewritten in place (not renamed over): /etc/hosts may be a bind mount.
    if grep -q "$TAG" /etc/hosts 2>/dev/null; then
        grep -v "$TAG" /etc/hosts > "$WORK/hosts.clean" && cat "$WORK/hosts.clean" > /etc/hosts
    fi
}
cleanup() {
    remove_hosts_block
    [ "$LAB_UP" = 1 ] && integration/egress/lab.sh down >/dev/null 2>&1
    rm -rf "$WORK" "$HOME_SB/sxs-secret" "$HOME_SB/sxs-outside.txt"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "sidebyside: egress lab up (suffix $WARD_LAB_SUFFIX)"
if ! integration/egress/lab.sh up > "$WORK/lab.env" 2> "$WORK/lab.err"; then
    cat "$WORK/lab.err" >&2
    echo "sidebyside: the egress lab did not come up" >&2
    exit 1
fi
LAB_UP=1
set -a; . "$WORK/lab.env"; set +a
{
    for n in allowed.test other.test evil.test; do
        var="WARD_LAB_ADDR_$(echo "$n" | tr 'a-z.' 'A-Z_')"
        echo "${!var} $n # $TAG"
    done
} >> /etc/hosts

# The tree the cases run in, owned by the sandbox user.
mkdir -p "$PROJ/protected" "$HOME_SB/sxs-secret"
echo "the secret" > "$HOME_SB/sxs-secret/key"
cp "$WARD_LAB_CA" "$PROJ/ca.pem"
cat > "$SETTINGS" <<'JSON'
{
  "network": {
    "allowedDomains": ["allowed.test"],
    "deniedDomains": ["evil.test"],
    "allowLocalBinding": false
  },
  "filesystem": {
    "denyRead": ["~/sxs-secret"],
    "allowWrite": ["."],
    "denyWrite": ["./protected"]
  }
}
JSON
chown -R "$USER_SB:" "$WORK" "$HOME_SB/sxs-secret"
chmod 755 "$WORK"

# Each case: name ## how the result is read (out: the snippet's last line; rc: the tool's exit
# status) | expected (an extended regex; `srt=RE;ward=RE` where they differ on purpose) ## the
# shell snippet run inside the sandbox, in $PROJ (./ca.pem is the lab's CA).
CURL='curl -s -o /dev/null --max-time 10 -w %{http_code} --cacert ./ca.pem'
net() { echo "c=\$($CURL $1); r=\$?; if [ \"\$c\" = 000 ]; then echo fail-curl-\$r; else echo \$c; fi"; }
# The same, ignoring the proxy variables (a client that dials directly).
direct() { net "--noproxy '*' $1"; }
CASES=(
    "read-denied ## out ## ^denied$ ## cat ~/sxs-secret/key >/dev/null 2>&1 && echo readable || echo denied"
    "read-denied-child ## out ## ^denied$ ## sh -c 'exec cat ~/sxs-secret/key' >/dev/null 2>&1 && echo readable || echo denied"
    "read-allowed ## out ## ^ok$ ## cat /etc/hostname >/dev/null 2>&1 && echo ok || echo denied"
    "write-outside ## out ## ^denied$ ## (echo x > ~/sxs-outside.txt) 2>/dev/null && echo wrote || echo denied"
    "write-inside ## out ## ^wrote$ ## (echo x > ./inside.txt) 2>/dev/null && echo wrote || echo denied"
    "write-denyWrite ## out ## ^denied$ ## (echo x > ./protected/f) 2>/dev/null && echo wrote || echo denied"
    "write-etc ## out ## ^denied$ ## (echo x > /etc/ward-sxs) 2>/dev/null && echo wrote || echo denied"
    "write-tmp ## out ## srt=^denied$;ward=^(wrote|denied)$ ## (echo x > /tmp/ward-sxs-\$\$) 2>/dev/null && echo wrote || echo denied"
    "http-allowed ## out ## ^200$ ## $(net http://allowed.test/)"
    "https-allowed ## out ## ^200$ ## $(net https://allowed.test/)"
    "http-denied ## out ## ^(403|fail-.*)$ ## $(net http://evil.test/)"
    "https-denied ## out ## ^(403|fail-.*)$ ## $(net https://evil.test/)"
    "http-not-listed ## out ## ^(403|fail-.*)$ ## $(net http://other.test/)"
    "raw-ip ## out ## ^(403|fail-.*)$ ## $(net http://$WARD_LAB_ADDR_ALLOWED_TEST/)"
    "no-proxy-allowed ## out ## srt=^fail-.*$;ward=^200$ ## $(direct http://allowed.test/)"
    "no-proxy-denied ## out ## ^fail-.*$ ## $(direct http://other.test/)"
    "no-proxy-raw-ip ## out ## ^fail-.*$ ## $(direct http://$WARD_LAB_ADDR_OTHER_TEST/)"
    "unix-socket ## out ## ^denied$ ## /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind(\"./s.sock\")' 2>/dev/null && echo created || echo denied"
    "unix-socketpair ## out ## srt=^created$;ward=^(created|denied)$ ## /usr/bin/python3 -c 'import socket; socket.socketpair()' 2>/dev/null && echo created || echo denied"
    "local-bind ## out ## ^(bound|denied)$ ## /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen()' 2>/dev/null && echo bound || echo denied"
    "stdin ## out ## ^hello$ ## read l; echo \$l"
    "exit-7 ## rc ## ^7$ ## exit 7"
    "sigterm ## rc ## ^143$ ## kill -TERM \$\$"
    "sigkill ## rc ## ^137$ ## kill -KILL \$\$"
)

run_case() { # column snippet -> prints "<exit status> <last line of stdout>"
    local col=$1 snippet=$2 out rc
    case "$col" in
        srt) out=$(echo hello | runuser -u "$USER_SB" -- env -C "$PROJ" HOME="$HOME_SB" \
                   srt --settings "$SETTINGS" -c "$snippet" 2>/dev/null); rc=$? ;;
        ward) out=$(echo hello | runuser -u "$USER_SB" -- env -C "$PROJ" HOME="$HOME_SB" \
                   "$WARD" sandbox --settings "$SETTINGS" -- sh -c "$snippet" 2>/dev/null); rc=$? ;;
    esac
    printf '%s %s\n' "$rc" "$(printf '%s\n' "$out" | tail -n1)"
}

ward_ok=1
if [[ " $COLUMNS_RUN " == *" ward "* ]]; then
    if [ ! -x "$WARD" ]; then
        echo "sidebyside: $WARD missing (make build): the ward column is skipped" >&2; ward_ok=0
    elif ! "$WARD" sandbox --help >/dev/null 2>&1; then
        echo "sidebyside: $WARD has no 'sandbox' command yet: the ward column fails every case" >&2
    fi
fi

fail=0
printf '%-18s | %-16s | %-16s | %s\n' case srt ward expected
printf '%s\n' "-------------------+------------------+------------------+---------------------------"
for c in "${CASES[@]}"; do
    name="${c%% ## *}"; rest="${c#* ## }"
    how="${rest%% ## *}"; rest="${rest#* ## }"
    want="${rest%% ## *}"; snippet="${rest#* ## }"
    if [[ "$want" == srt=* ]]; then
        want_srt="${want#srt=}"; want_srt="${want_srt%%;ward=*}"; want_ward="${want#*;ward=}"; differs=" (differs)"
    else
        want_srt="$want"; want_ward="$want"; differs=""
    fi
    cells=()
    for col in srt ward; do
        if [[ " $COLUMNS_RUN " != *" $col "* ]] || { [ "$col" = ward ] && [ "$ward_ok" = 0 ]; }; then
            cells+=("-"); continue
        fi
        [ "$col" = srt ] && re="$want_srt" || re="$want_ward"
        # A mismatch is run once more (a loaded machine: a proxy slow to accept), and says so.
        for try in 1 2; do
            read -r rc line < <(run_case "$col" "$snippet")
            got=$([ "$how" = rc ] && echo "$rc" || echo "$line")
            [[ "$got" =~ $re ]] && break
        done
        matched=0; [[ "$got" =~ $re ]] && matched=1
        [ -n "$got" ] || got="(no output)"
        [ "$try" = 2 ] && got="$got (2nd try)"
        if [ "$matched" = 1 ]; then
            cells+=("$got")
        else
            cells+=("$got MISMATCH"); fail=1
        fi
        rm -f "$PROJ/inside.txt" "$PROJ/s.sock" "$HOME_SB/sxs-outside.txt"
    done
    [ "$want_srt" = "$want_ward" ] && shown="$want_srt" || shown="srt $want_srt, ward $want_ward"
    printf '%-18s | %-16s | %-16s | %s%s\n' "$name" "${cells[0]}" "${cells[1]}" "$shown" "$differs"
done
[ -e /etc/ward-sxs ] && { echo "sidebyside: /etc/ward-sxs was written!" >&2; rm -f /etc/ward-sxs; fail=1; }
if [ "$fail" = 0 ]; then echo "sidebyside: every column as expected"; else echo "sidebyside: MISMATCH (see above)"; fi
exit "$fail"
