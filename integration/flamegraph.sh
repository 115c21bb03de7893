#!/bin/bash
# A flame graph of ward's container cycle (run + delete of /bin/true, state root on tmpfs):
# every process of the cycle (ward, its re-exec, init, the container) sampled with call
# stacks. Writes bench/cycle-flamegraph.svg. Needs root, perf, inferno (cargo install inferno),
# busybox-static, runc (for `runc spec`) and make build.
set -euo pipefail
cd "$(dirname "$0")/.."
WARD="${WARD:-$PWD/target/release/ward}"
CYCLES="${CYCLES:-200}"
WORK="$PWD/.work/flamegraph"
OUT="${OUT:-$PWD/bench/cycle-flamegraph.svg}"
for tool in perf inferno-collapse-perf inferno-flamegraph runc /bin/busybox "$WARD"; do
    command -v "$tool" >/dev/null || { echo "flamegraph: $tool missing" >&2; exit 1; }
done
rm -rf "$WORK"
mkdir -p "$WORK/bundle/rootfs"/{bin,proc,sys,dev,tmp,etc} "$(dirname "$OUT")"
cp /bin/busybox "$WORK/bundle/rootfs/bin/busybox"
ln -s busybox "$WORK/bundle/rootfs/bin/true"
(cd "$WORK/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"\/bin\/true"/' config.json)
root=$(mktemp -d /run/ward-flamegraph.XXXXXX)
trap 'rm -rf "$root"' EXIT
cat > "$WORK/loop.sh" <<IN
for i in \$(seq 1 $CYCLES); do
    # run removes a container that exited; the delete is the engines' habit (a no-op here).
    $WARD --root $root run --bundle $WORK/bundle f\$i </dev/null && $WARD --root $root delete f\$i 2>/dev/null
done
true
IN
start=$(date +%s%N)
perf record -q -F 4999 -g -o "$WORK/perf.data" -- bash "$WORK/loop.sh" 2>/dev/null
ms=$(( ($(date +%s%N) - start) / 1000000 ))
perf script -i "$WORK/perf.data" 2>/dev/null | inferno-collapse-perf --all > "$WORK/folded"
# The loop's own shell is not ward's cost.
grep -v '^bash;' "$WORK/folded" | grep -v '^seq;' > "$WORK/folded.ward"
inferno-flamegraph --minwidth 0.2 --title "ward run+delete of /bin/true, $CYCLES cycles, $(( ms / CYCLES )) ms a cycle under perf ($(uname -r), $(nproc) CPUs)" \
    --subtitle "every process of the cycle; kernel frames included (_[k]); the ward binary's own frames appear as '/' after its re-exec from the read-only copy" \
    < "$WORK/folded.ward" > "$OUT"
echo "flamegraph: $OUT ($(( ms / CYCLES )) ms a cycle under perf)"
