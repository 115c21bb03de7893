#!/bin/bash
# ward vs runc vs crun in the pure cgroup v2 VM (crun 1.8 refuses the hybrid development hosts):
# the run+delete cycle, peak memory of create, exec, and 100 parallel starts (8 at a time), all
# with cgroups on, under qemu TCG (slow for all three alike: read the ratios, not the times).
# Called by `make bench`; needs what integration/vm/run.sh needs plus runc, crun and hyperfine.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in runc crun hyperfine; do
    command -v "$tool" >/dev/null || { echo "vm bench: $tool missing (apt-get install runc crun hyperfine)" >&2; exit 1; }
done
out=$(VM_TESTS_DIR=integration/vm/bench VM_EXTRA_BINS="runc crun hyperfine" VM_VERBOSE=1 \
    VM_TEST_TIMEOUT=${VM_TEST_TIMEOUT:-1500} VM_TIMEOUT=${VM_TIMEOUT:-1800} \
    integration/vm/run.sh runtimes 2>&1) || { echo "$out" | tail -n 40 >&2; echo "vm bench: failed" >&2; exit 1; }
# run.sh prints the VM's log lines as "  | <line>".
echo "$out" | sed -n 's/^  | \(BENCH .*\)/\1/p' > "$PWD/.work/vm/bench.txt"
python3 - "$PWD/.work/vm/bench.txt" <<'PY'
import sys
v = {}
for line in open(sys.argv[1]):
    _, key, value = line.split()
    v[key] = float(value)
sh = v["cycle-sh"]
cycle = {rt: v[f"cycle-{rt}"] - sh for rt in ("ward", "runc", "crun")}
print("== pure cgroup v2 VM (qemu TCG, 2 vCPUs), cgroups on, the same bundle for all three")
for rt in ("ward", "runc", "crun"):
    print(f"{rt:5s} run+delete {cycle[rt] * 1000:8.1f} ms   exec {v['exec-' + rt] * 1000:7.1f} ms   "
          f"create peak memory {v['peak-' + rt] / 2**20:6.1f} MiB   {v['par']:.0f} run -d, 8 at a time: {v['par-' + rt]:6.1f} s")
print(f"binary start (--version): ward {v['version-ward'] * 1000:.1f} ms, runc {v['version-runc'] * 1000:.1f} ms, "
      f"crun {v['version-crun'] * 1000:.1f} ms (crun re-executes from a sealed copy even here); "
      f"ward's re-exec from its read-only copy (CVE-2019-5736): +{v['reexec'] * 1000:.1f} ms per create/run/exec")
ratio = lambda k, a, b: v[f"{k}-{a}"] / v[f"{k}-{b}"]
print(f"cycle  ward/crun {cycle['ward'] / cycle['crun']:.2f} (goal <= 0.8)   ward/runc {cycle['ward'] / cycle['runc']:.2f} (goal <= 0.25)")
print(f"exec   ward/crun {ratio('exec', 'ward', 'crun'):.2f} (goal <= 1)     ward/runc {ratio('exec', 'ward', 'runc'):.2f} (goal <= 0.2)")
print(f"create peak memory ward/crun {ratio('peak', 'ward', 'crun'):.2f} (goal <= 1)")
print(f"parallel starts    ward/crun {ratio('par', 'ward', 'crun'):.2f} (goal <= 1)")
PY
