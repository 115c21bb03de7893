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
# State roots on tmpfs, where engines keep them (/run/containerd/runc, /run/docker/runtime-runc):
# on ext4 the state files' inode churn took a fifth of a cycle's CPU. Where /run is not a tmpfs
# (the development host's is ext4 mounted with discard: every state file removed waited for a
# discard of its block), the bench mounts one of its own there.
STATE=$(mktemp -d /run/ward-bench.XXXXXX)
if [ "$(stat -f -c %T "$STATE")" != tmpfs ]; then
    mount -t tmpfs -o mode=0700 ward-bench "$STATE"
fi
unmount_state() {
    if mountpoint -q "$STATE"; then umount -l "$STATE"; fi
    rm -rf "$STATE"
}
trap unmount_state EXIT
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
    root="$STATE/state-$name"
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

# The floor of that cycle: integration/cycle_floor.c does the same kernel work as ward's `run`
# (state, cgroups in every hierarchy, namespaces, mounts, pivot_root, masked and read-only
# paths, caps, execve) in one small static C process, and its `delete` only finds the state
# gone: what any runtime pays for this bundle on this host, before any work of its own.
cc -O2 -static -o "$WORK/cycle_floor" integration/cycle_floor.c
echo 0 > "$WORK/counter-floor"
mkdir -p "$STATE/state-floor"
hyperfine ${HYPERFINE_FLAGS:-} --runs "$RUNS" --warmup 3 --shell bash --export-json "$WORK/floor.json" \
    --command-name floor \
    "n=\$((\$(cat $WORK/counter-floor) + 1)); echo \$n > $WORK/counter-floor; $WORK/cycle_floor run $BUNDLE/rootfs $STATE/state-floor bench-floor-\$n </dev/null && $WORK/cycle_floor delete $STATE/state-floor bench-floor-\$n"

python3 - "$WORK" <<'PY'
import json, sys
mean = {n: json.load(open(f"{sys.argv[1]}/{n}.json"))["results"][0]["mean"] for n in ("ward", "runc", "crun", "floor")}
for n, m in mean.items():
    print(f"{n:5s} run+delete mean: {m * 1000:8.2f} ms")
print(f"ward/runc: {mean['ward'] / mean['runc']:.2f}x (goal <= 0.25)")
print(f"ward/crun: {mean['ward'] / mean['crun']:.2f}x (crun without cgroups: see above)")
print(f"floor/runc: {mean['floor'] / mean['runc']:.2f}x: the kernel work of this cycle alone "
      f"(integration/cycle_floor.c), ward is {(mean['ward'] - mean['floor']) * 1000:.2f} ms above it")
PY

# --- exec: `exec /bin/true` into a running container under ward and runc. Both runtimes
# re-execute themselves from an unwritable copy before entering a container (CVE-2019-5736);
# ward's share of that is measured on its own: `state run` makes ward re-execute (any argument
# spelling create/run/exec does), `state nosuch` does not, and both fail alike after that.
ln -sf busybox "$BUNDLE/rootfs/bin/sleep"
mkdir -p "$WORK/exec"
python3 - "$BUNDLE/config.json" "$WORK/exec/config.json" "$BUNDLE/rootfs" <<'PY'
import json, sys
src, dst, rootfs = sys.argv[1:]
config = json.load(open(src))
config["root"] = {"path": rootfs, "readonly": True}
config["process"]["args"] = ["sleep", "1000"]
json.dump(config, open(dst, "w"), indent=2)
PY
for name in ward runc; do
    ${CMD[$name]} --root "$STATE/state-$name" run -d --bundle "$WORK/exec" "exec-$name" </dev/null >/dev/null
    hyperfine ${HYPERFINE_FLAGS:-} -N --runs "$RUNS" --warmup 3 --export-json "$WORK/exec-$name.json" \
        --command-name "$name" "${CMD[$name]} --root $STATE/state-$name exec exec-$name /bin/true"
    if [ "$name" = ward ]; then
        # The floor of exec (integration/cycle_floor.c): join the cgroups and the namespaces of
        # ward's container, fork, drop capabilities, execve /bin/true, wait.
        init=$($WARD --root "$STATE/state-ward" state exec-ward | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
        hyperfine ${HYPERFINE_FLAGS:-} -N --runs "$RUNS" --warmup 3 --export-json "$WORK/exec-floor.json" \
            --command-name floor "$WORK/cycle_floor exec $init"
    fi
    ${CMD[$name]} --root "$STATE/state-$name" delete -f "exec-$name"
done
hyperfine ${HYPERFINE_FLAGS:-} -N -i --runs "$((RUNS * 3))" --warmup 5 --export-json "$WORK/selfclone.json" \
    --command-name plain "$WARD --root $STATE/state-ward state nosuch" \
    --command-name reexec "$WARD --root $STATE/state-ward state run"
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
mean = {n: json.load(open(f"{work}/exec-{n}.json"))["results"][0]["mean"] for n in ("ward", "runc", "floor")}
for n, m in mean.items():
    print(f"{n:5s} exec /bin/true mean: {m * 1000:8.2f} ms")
print(f"ward/runc exec: {mean['ward'] / mean['runc']:.2f}x (goal <= 0.2)")
print(f"floor/runc exec: {mean['floor'] / mean['runc']:.2f}x (integration/cycle_floor.c exec), "
      f"ward is {(mean['ward'] - mean['floor']) * 1000:.2f} ms above it")
r = {x["command"]: x["mean"] for x in json.load(open(f"{work}/selfclone.json"))["results"]}
print(f"ward's re-exec from its read-only copy: +{(r['reexec'] - r['plain']) * 1000:.2f} ms per create/run/exec")
PY

# --- many containers (issue 20): `list`, `state` and `features` with MANY (default 1000) created
# containers in the root, ward and runc each on its own root (created, never started: init waits
# on its fifo; removed with delete --force at the end, also when interrupted).
MANY="${MANY:-1000}"
many_cleanup() {
    for name in ward runc; do
        for d in "$STATE/many-$name"/*/; do
            [ -d "$d" ] && ${CMD[$name]} --root "$STATE/many-$name" delete --force "$(basename "$d")" >/dev/null 2>&1
        done
    done
    return 0
}
trap 'many_cleanup; unmount_state' EXIT
cc -O2 -o "$WORK/list_floor" integration/list_floor.c
for name in ward runc; do
    mkdir -p "$STATE/many-$name"
    for i in $(seq 1 "$MANY"); do
        # Ids (and so default cgroup paths) differ per runtime: a shared cgroup would not be empty.
        ${CMD[$name]} --root "$STATE/many-$name" create --bundle "$WORK/exec" "$name-m$i" </dev/null >/dev/null ||
            { echo "bench: $name create $name-m$i failed" >&2; exit 1; }
    done
done
hyperfine ${HYPERFINE_FLAGS:-} -N --runs 20 --warmup 2 --export-json "$WORK/many.json" \
    --command-name ward-list "$WARD --root $STATE/many-ward list" \
    --command-name runc-list "runc --root $STATE/many-runc list" \
    --command-name ward-state "$WARD --root $STATE/many-ward state ward-m$MANY" \
    --command-name runc-state "runc --root $STATE/many-runc state runc-m$MANY" \
    --command-name ward-features "$WARD features" \
    --command-name runc-features "runc features" \
    --command-name list-floor "$WORK/list_floor $STATE/many-ward /sys/fs/cgroup/freezer" >/dev/null
many_cleanup
python3 - "$WORK/many.json" "$MANY" <<'PY'
import json, sys
r = {x["command"]: x["mean"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for what in ("list", "state", "features"):
    print(f"{what:8s} with {sys.argv[2]} containers: ward {r['ward-' + what]:7.2f} ms, runc {r['runc-' + what]:7.2f} ms (goal: ward < 5 ms)")
print(f"list floor: {r['list-floor']:.2f} ms to read the 3 files per container a live status needs, "
      "one thread, C (integration/list_floor.c); ward spreads them over the CPUs")
PY

# --- seccomp overhead: raw getpid syscalls in a container with Podman's default profile
# (converted to linux.seccomp as moby does, like conformance/seccomp_profile.rs) vs. no filter.
PROFILE=/usr/share/containers/seccomp.json
CALLS="${CALLS:-5000000}"
[ -r "$PROFILE" ] || { echo "bench: $PROFILE missing (apt-get install golang-github-containers-common)" >&2; exit 1; }
command -v cc >/dev/null || { echo "bench: cc missing (apt-get install gcc libc6-dev)" >&2; exit 1; }
PROBE_ROOTFS="$WORK/probe-rootfs"
mkdir -p "$PROBE_ROOTFS"/{proc,sys,dev,tmp}
cc -static -O2 -o "$PROBE_ROOTFS/probe" conformance/probe.c
for filter in none default; do
    mkdir -p "$WORK/seccomp-$filter"
    cp "$BUNDLE/config.json" "$WORK/seccomp-$filter/config.json"
done
python3 - "$WORK" "$PROBE_ROOTFS" "$PROFILE" "$CALLS" <<'PY'
import json, os, sys
work, rootfs, profile_path, calls = sys.argv[1:]
profile = json.load(open(profile_path))
kernel = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])

def version(v):
    return tuple(int(x) for x in v.split(".")[:2])

def applies(entry, caps):
    inc, exc = entry.get("includes") or {}, entry.get("excludes") or {}
    if "amd64" in (exc.get("arches") or []) or any(c in caps for c in exc.get("caps") or []):
        return False
    if exc.get("minKernel") and kernel >= version(exc["minKernel"]):
        return False
    arches = inc.get("arches") or []
    return ((not arches or "amd64" in arches) and all(c in caps for c in inc.get("caps") or [])
            and (not inc.get("minKernel") or kernel >= version(inc["minKernel"])))

for name in ("none", "default"):
    path = f"{work}/seccomp-{name}/config.json"
    config = json.load(open(path))
    config["root"] = {"path": rootfs, "readonly": True}
    config["process"]["args"] = ["/probe", "getpid-loop", calls]
    config["linux"].pop("seccomp", None)
    if name == "default":
        caps = config["process"]["capabilities"]["bounding"]
        seccomp = {k: profile[k] for k in ("defaultAction", "defaultErrnoRet", "flags", "listenerPath") if profile.get(k) is not None}
        arch = next(a for a in profile["archMap"] if a["architecture"] == "SCMP_ARCH_X86_64")
        seccomp["architectures"] = [arch["architecture"]] + arch["subArchitectures"]
        seccomp["syscalls"] = [{k: e[k] for k in ("names", "action", "errnoRet", "args") if e.get(k) is not None}
                               for e in profile["syscalls"] if applies(e, caps)]
        config["linux"]["seccomp"] = seccomp
    json.dump(config, open(path, "w"), indent=2)
PY

declare -A NS
declare -A EG
for name in ward runc; do
    for filter in none default; do
        root="$STATE/state-$name"
        # Best of three runs: the loop is long enough that noise only ever adds time.
        best=""
        for i in 1 2 3; do
            out=$(${CMD[$name]} --root "$root" run --bundle "$WORK/seccomp-$filter" "getpid-$name-$filter-$i" </dev/null)
            ns=${out#ns_per_call=}
            best=$(python3 -c "print(min(float(x) for x in '$best $ns'.split()))")
        done
        NS[$name-$filter]=$best
        printf '%-5s seccomp=%-8s getpid: %8.2f ns/call\n' "$name" "$filter" "$best"
    done
done
python3 -c "print(f'ward+seccomp / ward-none:    {${NS[ward-default]} / ${NS[ward-none]}:.2f}x')"
python3 -c "print(f'ward+seccomp / runc+seccomp: {${NS[ward-default]} / ${NS[runc-default]}:.2f}x')"

# --- isolation tiers: the same bundle native vs. under gVisor (org.ward.isolation=gvisor),
# cycle time of run+delete and the cost of a getpid, so users can choose the wall per risk.
if command -v runsc >/dev/null; then
    for tier in native gvisor; do
        mkdir -p "$WORK/tier-$tier"
        python3 - "$BUNDLE/config.json" "$WORK/tier-$tier/config.json" "$BUNDLE/rootfs" "$tier" <<'PY'
import json, sys
src, dst, rootfs, tier = sys.argv[1:]
config = json.load(open(src))
config["root"] = {"path": rootfs, "readonly": True}
config["annotations"] = {"org.ward.isolation": tier}
json.dump(config, open(dst, "w"), indent=2)
PY
        root="$STATE/state-tier-$tier"
        mkdir -p "$root"
        counter="$WORK/counter-tier-$tier"
        echo 0 > "$counter"
        hyperfine ${HYPERFINE_FLAGS:-} --runs "${TIER_RUNS:-10}" --warmup 1 --shell bash --export-json "$WORK/tier-$tier.json" \
            --command-name "$tier" \
            "n=\$((\$(cat $counter) + 1)); echo \$n > $counter; $WARD --root $root run --bundle $WORK/tier-$tier tier-$tier-\$n </dev/null"
        mkdir -p "$WORK/tier-$tier-getpid"
        python3 - "$WORK/seccomp-none/config.json" "$WORK/tier-$tier-getpid/config.json" "$tier" "${TIER_CALLS:-200000}" <<'PY'
import json, sys
src, dst, tier, calls = sys.argv[1:]
config = json.load(open(src))
config["annotations"] = {"org.ward.isolation": tier}
config["process"]["args"] = ["/probe", "getpid-loop", calls]
json.dump(config, open(dst, "w"), indent=2)
PY
        out=$($WARD --root "$root" run --bundle "$WORK/tier-$tier-getpid" "tier-getpid-$tier" </dev/null)
        NS[tier-$tier]=${out#ns_per_call=}
    done
    python3 - "$WORK" "${NS[tier-native]}" "${NS[tier-gvisor]}" <<'PY'
import json, sys
work, native_ns, gvisor_ns = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
mean = {t: json.load(open(f"{work}/tier-{t}.json"))["results"][0]["mean"] for t in ("native", "gvisor")}
print(f"tier native run+delete: {mean['native'] * 1000:8.2f} ms   getpid: {native_ns:8.2f} ns/call")
print(f"tier gvisor run+delete: {mean['gvisor'] * 1000:8.2f} ms   getpid: {gvisor_ns:8.2f} ns/call")
print(f"gvisor/native: cycle {mean['gvisor'] / mean['native']:.1f}x, getpid {gvisor_ns / native_ns:.1f}x")
PY
else
    echo "bench: runsc not installed (apt-get install runsc): isolation tiers not measured"
fi

# --- egress walls and the interception layer: the added cost of an allowed connect under the
# BPF policy, of an observed syscall's round trip through the supervisor, and a getpid loop
# showing other syscalls unaffected (goals: < 1 us, < 10 us, ~0).
cc -static -O2 -o "$BUNDLE/rootfs/egress-probe" conformance/egress_probe.c
for applet in sh ip; do ln -sf busybox "$BUNDLE/rootfs/bin/$applet"; done
for variant in none policy observe; do
    mkdir -p "$WORK/egress-$variant"
    python3 - "$BUNDLE/config.json" "$WORK/egress-$variant/config.json" "$variant" "$BUNDLE/rootfs" <<'PY'
import json, sys
src, dst, variant, rootfs = sys.argv[1:]
config = json.load(open(src))
config["root"] = {"path": rootfs, "readonly": True}
caps = ["CAP_NET_ADMIN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
config["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
config["process"]["args"] = ["sh", "-c", "ip link set lo up; /egress-probe connect-loop 127.0.0.1 1 20000 , open-loop 20000 , getpid-loop 2000000"]
if variant == "policy":
    config["process"]["interception"] = {"network": {"default": "deny", "allow": ["10.0.0.0/8:443", "127.0.0.0/8:1"]}}
if variant == "observe":
    config["process"]["interception"] = {"observe": ["openat"]}
json.dump(config, open(dst, "w"), indent=2)
PY
    out=$("$WARD" --root "$STATE/state-ward" run --bundle "$WORK/egress-$variant" "egress-$variant" </dev/null)
    readarray -t v < <(echo "$out" | sed -n 's/^ns_per_call=//p')
    EG[$variant-connect]=${v[0]}; EG[$variant-open]=${v[1]}; EG[$variant-getpid]=${v[2]}
    printf 'interception=%-8s connect: %9.1f ns  openat+close: %9.1f ns  getpid: %7.1f ns\n' "$variant" "${v[0]}" "${v[1]}" "${v[2]}"
done
python3 -c "print(f'allowed connect under the BPF policy: +{${EG[policy-connect]} - ${EG[none-connect]}:.0f} ns')"
python3 -c "print(f'observed openat round trip via the supervisor: +{(${EG[observe-open]} - ${EG[none-open]}) / 1000:.1f} us')"
python3 -c "print(f'getpid with observe on openat: {${EG[observe-getpid]} / ${EG[none-getpid]}:.2f}x of none')"
# The same observed round trip with the container and the supervisor on one CPU. With the
# kernel's sync wake-up (6.6+) both figures should match: a wake-up across vCPUs costs tens of
# microseconds on a VM, and the flag keeps the round trip on one CPU.
for variant in none observe; do
    out=$(taskset -c 0 "$WARD" --root "$STATE/state-ward" run --bundle "$WORK/egress-$variant" "egress-pinned-$variant" </dev/null)
    EG[pinned-$variant]=$(echo "$out" | sed -n 's/^ns_per_call=//p' | sed -n 2p)
done
python3 -c "print(f'observed openat round trip, one CPU: +{(${EG[pinned-observe]} - ${EG[pinned-none]}) / 1000:.1f} us')"
# The floor of that round trip on this machine: a C supervisor that only answers (RECV +
# SEND(CONTINUE), the kernel's sync wake-up; no poll, no read of the path, no record), the
# same openat+close loop. Best of three.
cc -O2 -o "$WORK/notify_floor" integration/notify_floor.c
floor=$(for i in 1 2 3; do "$WORK/notify_floor" 20000 sync | sed -n 's/^added_us=//p'; done | sort -n | head -n 1)
echo "observed round trip floor (integration/notify_floor.c, a bare C supervisor): +$floor us"
