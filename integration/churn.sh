#!/bin/bash
# Churn (issue 21, case 3): N containers (default 1000, CHURN_N), CHURN_JOBS (8) at a time, each
# created, started, exec'd into and deleted by ward's CLI; every 10th with an egress policy (its
# proxy, DNS, cgroup-BPF wall and supervisor come and go with it). What a runtime can leak is
# counted before and after: mounts, cgroup directories (every hierarchy), state dirs, BPF
# programs and links, network namespaces, processes of the run, listening sockets. Zero growth
# is required of each. (The kernel's file-handle count is printed too, not judged: every other
# process on the host moves it; an fd ward leaked would live in a process, a mount, a BPF object
# or a namespace of the run, which are counted.)
# Prints a table; exits non-zero on any failed container or any growth.
#
#   integration/churn.sh        # root; WARD=path (default target/release/ward)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WARD="${WARD:-$ROOT/target/release/ward}"
N="${CHURN_N:-1000}"
JOBS="${CHURN_JOBS:-8}"

[ "$(id -u)" = 0 ] || { echo "churn.sh: run as root" >&2; exit 1; }
[ -x "$WARD" ] || { echo "churn.sh: $WARD missing (make build)" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "churn.sh: /bin/busybox missing (apt-get install busybox-static)" >&2; exit 1; }

W="$(mktemp -d /tmp/ward-churn.XXXXXX)"
STATE="$W/state"
TAG="ward-churn-$$"
cleanup() {
    local d
    for d in "$STATE"/*/; do
        [ -d "$d" ] && "$WARD" --root "$STATE" delete --force "$(basename "$d")" >/dev/null 2>&1
    done
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

# One busybox bundle, two configs (plain, and with an egress policy).
mkdir -p "$W/bundle/rootfs"/{bin,proc,sys,dev,tmp,etc} "$STATE"
cp /bin/busybox "$W/bundle/rootfs/bin/"
for a in sh sleep true cat nslookup; do ln -s busybox "$W/bundle/rootfs/bin/$a"; done
(cd "$W/bundle" && "$WARD" spec)
python3 - "$W/bundle" "$TAG" <<'PY'
import json, sys
b, tag = sys.argv[1], sys.argv[2]
c = json.load(open(f"{b}/config.json"))
c["process"]["args"] = ["sleep", "600"]
c["process"]["terminal"] = False
c["linux"]["cgroupsPath"] = f"/{tag}/@ID@"
json.dump(c, open(f"{b}/plain.json", "w"))
c["process"]["interception"] = {"network": {"allowedDomains": ["allowed.example"]}}
json.dump(c, open(f"{b}/egress.json", "w"))
PY

# ------------------------------------------------------------ what is counted
bpf_ids() { python3 "$ROOT/integration/bpf_count.py"; }  # "programs links"
ours() { # processes of this run: ward's (their command line names $W) and the containers' (root in $W)
    local p
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' < "$p/cmdline"; echo; readlink "$p/root"; } 2>/dev/null | grep -qF "$W" && echo "${p#/proc/}"
    done
}
snapshot() {
    local progs links
    read -r progs links < <(bpf_ids)
    echo "mounts $(wc -l < /proc/self/mountinfo)"
    echo "cgroups $(find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | wc -l)"
    echo "state-dirs $(find "$STATE" -mindepth 1 -maxdepth 1 ! -name '@*' | wc -l)"
    echo "bpf-progs $progs"
    echo "bpf-links $links"
    echo "netns $(find /proc/[0-9]*/ns/net -maxdepth 0 -printf '%l\n' 2>/dev/null | sort -u | wc -l)"
    echo "processes $(ours | wc -l)"
    echo "listening $(ss -Hltnux 2>/dev/null | wc -l)"
}

# ------------------------------------------------------------ one container's life
one() { # one INDEX: create, start, exec, delete; prints "ok" or "FAIL i: step: message"
    local i=$1 id="c$1" cfg=plain out
    [ $((i % 10)) = 0 ] && cfg=egress
    local b="$W/b$1"
    mkdir -p "$b"
    ln -s "$W/bundle/rootfs" "$b/rootfs"
    sed "s/@ID@/$id/" "$W/bundle/$cfg.json" > "$b/config.json"
    # create's stdio is the container's: files, never a pipe this shell would wait on.
    "$WARD" --root "$STATE" create --bundle "$b" "$id" </dev/null >/dev/null 2>"$b.err" ||
        { echo "FAIL $i: create: $(cat "$b.err")"; rm -rf "$b" "$b.err"; return; }
    out=$("$WARD" --root "$STATE" start "$id" 2>&1) || { echo "FAIL $i: start: $out"; }
    out=$("$WARD" --root "$STATE" exec "$id" cat /proc/self/status 2>&1 | grep -c '^Pid:') 
    [ "$out" = 1 ] || echo "FAIL $i: exec: $out"
    out=$("$WARD" --root "$STATE" delete --force "$id" 2>&1) || echo "FAIL $i: delete: $out"
    rm -rf "$b" "$b.err"
    echo ok
}
export -f one
export W WARD STATE

# A warm-up container (first-use caches: the seccomp cache dir, the egress range's address on
# lo), then the counts, then the churn.
one 0 >/dev/null
sleep 1
before="$(snapshot)"
files0=$(awk '{print $1}' /proc/sys/fs/file-nr)
t0=$(date +%s.%N)
results="$(seq 1 "$N" | xargs -P "$JOBS" -I{} bash -c 'one {}')"
t1=$(date +%s.%N)
sleep 2   # helpers that leave after their container (proxy, supervisor) have a moment to go
after="$(snapshot)"
files1=$(awk '{print $1}' /proc/sys/fs/file-nr)

ok=$(grep -c '^ok$' <<<"$results")
fails=$(grep '^FAIL' <<<"$results")
status=0
printf '%-14s %10s %10s %8s\n' what before after growth
while read -r name b; do
    a=$(awk -v n="$name" '$1 == n {print $2}' <<<"$after")
    g=$((a - b))
    verdict=ok
    [ "$g" -gt 0 ] && verdict=GREW
    [ "$verdict" = ok ] || status=1
    printf '%-14s %10s %10s %8s %s\n' "$name" "$b" "$a" "$g" "$verdict"
done <<<"$before"
printf 'churn: %d of %d containers created, started, exec'"'"'d and deleted (%d with an egress policy), %d at a time, %.1f s\n' \
    "$ok" "$N" "$((N / 10))" "$JOBS" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')"
echo "churn: host file handles (not judged) $files0 -> $files1"
if [ -n "$fails" ]; then
    echo "$fails" | head -20
    status=1
fi
[ "$ok" = "$N" ] || status=1
left="$(ls -d /sys/fs/cgroup/*/"$TAG" /sys/fs/cgroup/unified/"$TAG" 2>/dev/null)"
for d in $left; do find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
echo "churn: exit $status"
exit $status
