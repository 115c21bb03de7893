#!/bin/bash
# Times `run` + `delete` of a /bin/true busybox container under ward, runc and crun.
# Needs root, hyperfine, runc, crun and `make build`. No assertions: prints means and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

WARD="${WARD:-$PWD/target/release/ward}"
WORK="$PWD/.work/bench"
BUNDLE="$WORK/bundle"
RUNS="${RUNS:-30}"

for tool in hyperfine runc crun python3 /bin/busybox "$WARD"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool missing (apt-get install hyperfine runc crun busybox-static; make build)" >&2; exit 1; }
done

rm -rf "$WORK"
mkdir -p "$BUNDLE"/rootfs/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$BUNDLE/rootfs/bin/busybox"
ln -s busybox "$BUNDLE/rootfs/bin/true"
(cd "$BUNDLE" && runc spec)
python3 - "$BUNDLE/config.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["process"]["terminal"] = False
config["process"]["args"] = ["/bin/true"]
json.dump(config, open(path, "w"), indent=2)
PY

declare -A CMD=(
    [ward]="$WARD"
    [runc]="runc"
    [crun]="crun --cgroup-manager=disabled"
)
for name in ward runc crun; do
    root="$WORK/state-$name"
    mkdir -p "$root"
    # Each run uses a fresh id from a counter file. `run` already removes a container that
    # exited (crun has no --keep), so the timed `delete` normally just reports "does not exist".
    counter="$WORK/counter-$name"
    echo 0 > "$counter"
    next_id="n=\$((\$(cat $counter) + 1)); echo \$n > $counter; id=bench-$name-\$n"
    wrap=()
    if [ "$name" = crun ] && grep -qs . /sys/fs/cgroup/unified/cgroup.controllers; then
        # crun refuses hybrid hosts whose cgroup2 mount has controllers, even with
        # --cgroup-manager=disabled. Hide the cgroup2 mount in a private mount namespace
        # (the host's mounts are untouched); hyperfine runs inside it, so no per-run cost.
        wrap=(unshare --mount --propagation private sh -c 'umount -l /sys/fs/cgroup/unified && exec "$@"' -)
    fi
    "${wrap[@]}" hyperfine ${HYPERFINE_FLAGS:-} --runs "$RUNS" --warmup 3 --shell bash --export-json "$WORK/$name.json" \
        --command-name "$name" \
        "$next_id; ${CMD[$name]} --root $root run --bundle $BUNDLE \$id </dev/null && { ${CMD[$name]} --root $root delete \$id 2>/dev/null || true; }"
done

python3 - "$WORK" <<'PY'
import json, sys
mean = {n: json.load(open(f"{sys.argv[1]}/{n}.json"))["results"][0]["mean"] for n in ("ward", "runc", "crun")}
for n, m in mean.items():
    print(f"{n:5s} run+delete mean: {m * 1000:8.2f} ms")
print(f"ward/runc: {mean['ward'] / mean['runc']:.2f}x")
print(f"ward/crun: {mean['ward'] / mean['crun']:.2f}x")
PY
