#!/bin/bash
# `ward sandbox -- /bin/true` vs bare bwrap with the equivalent flags vs `srt /bin/true`, in the
# same hyperfine run, as the unprivileged user of setup.sh (issue 18's goals: ward within 1.5x
# of bwrap while adding Landlock, seccomp and the proxy; srt at least 20x slower than ward).
# Prints the means, the two ratios and each one's peak memory. Root (it runs the commands as
# ward-sb); RUNS=N (default 30), WARD=path (default target/release/ward). No assertions: a ward
# without `sandbox` yet is reported and left out, and the rest still runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

WARD="${WARD:-$ROOT/target/release/ward}"
USER_SB="${SANDBOX_USER:-ward-sb}"
RUNS="${RUNS:-30}"

[ "$(id -u)" = 0 ] || { echo "bench: run as root (the commands run as $USER_SB)" >&2; exit 1; }
for tool in hyperfine bwrap srt /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool missing: run integration/sandbox/setup.sh" >&2; exit 1; }
done
id "$USER_SB" >/dev/null 2>&1 || { echo "bench: no user $USER_SB: run integration/sandbox/setup.sh" >&2; exit 1; }

WORK="$(mktemp -d /tmp/ward-sandbox-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
HOME_SB="$(getent passwd "$USER_SB" | cut -d: -f6)"
# srt's settings: what `ward sandbox` does with no settings (write the cwd, no network).
cat > "$WORK/settings.json" <<'JSON'
{"network": {"allowedDomains": [], "deniedDomains": []},
 "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": []}}
JSON
cp integration/sandbox/peak.py "$WORK/peak.py"
chown -R "$USER_SB:" "$WORK"
as_user() { runuser -u "$USER_SB" -- env -C "$WORK" HOME="$HOME_SB" "$@"; }

declare -A CMD
CMD[bwrap]="bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts --unshare-net \
--die-with-parent --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --bind $WORK $WORK \
--chdir $WORK /bin/true"
CMD[srt]="srt --settings $WORK/settings.json /bin/true"
CMD[ward]="$WARD sandbox -- /bin/true"
names=(bwrap srt)
if [ ! -x "$WARD" ]; then
    echo "bench: $WARD missing (make build): the ward column is left out" >&2
elif ! as_user $WARD sandbox -- /bin/true >/dev/null 2>"$WORK/ward.err"; then
    echo "bench: '$WARD sandbox -- /bin/true' does not run as $USER_SB yet (issue 18 not landed?): the ward column is left out" >&2
    sed 's/^/bench:   /' "$WORK/ward.err" | head -5 >&2
else
    names=(ward bwrap srt)
fi
for n in "${names[@]}"; do
    as_user ${CMD[$n]} >/dev/null || { echo "bench: $n does not run: ${CMD[$n]}" >&2; exit 1; }
done

args=()
for n in "${names[@]}"; do args+=(-n "$n" "${CMD[$n]}"); done
as_user hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/times.json" "${args[@]}"

# Peak memory: the largest of five runs each.
declare -A TREE MAXRSS
for n in "${names[@]}"; do
    t=0 m=0
    for _ in 1 2 3 4 5; do
        read -r a b < <(as_user /usr/bin/python3 "$WORK/peak.py" ${CMD[$n]})
        [ "$a" -gt "$t" ] && t=$a
        [ "$b" -gt "$m" ] && m=$b
    done
    TREE[$n]=$t MAXRSS[$n]=$m
done

/usr/bin/python3 - "$WORK/times.json" "$(for n in "${names[@]}"; do echo "$n=${TREE[$n]}:${MAXRSS[$n]}"; done)" <<'PY'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
mem = dict(line.split("=") for line in sys.argv[2].split())
print()
print(f"{'':6} {'mean':>10} {'stddev':>9} {'tree peak':>11} {'max RSS':>9}")
for n, r in res.items():
    tree, rss = (int(x) for x in mem[n].split(":"))
    print(f"{n:6} {r['mean']*1000:8.1f}ms {r['stddev']*1000:7.1f}ms {tree/1024:8.1f}MiB {rss/1024:6.1f}MiB")
print("(tree peak: the process tree's summed RSS, sampled every ms; max RSS: the largest process)")
m = {n: r["mean"] for n, r in res.items()}
if "ward" in m:
    wb, sw = m["ward"] / m["bwrap"], m["srt"] / m["ward"]
    print(f"ward/bwrap {wb:.2f}x (goal <= 1.5: {'met' if wb <= 1.5 else 'NOT met'})")
    print(f"srt/ward   {sw:.1f}x (goal >= 20: {'met' if sw >= 20 else 'NOT met'})")
else:
    print(f"srt/bwrap  {m['srt'] / m['bwrap']:.1f}x   (no ward column: `ward sandbox` is not there yet)")
PY
