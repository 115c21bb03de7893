# vmtest-timeout: 420
# Kubernetes through containerd's CRI plugin with SystemdCgroup = true: integration/cri's test
# (runtime_class_ward_matches_runc) with WARD_CRI_SYSTEMD=1. Handlers `ward` and `runc` (the
# distribution's runc 1.1.5, as the reference) each get a pod in a kubelet-style pod slice
# kubepods-besteffort-pod<uid>.slice that the test made first over D-Bus with a MemoryMax (as the
# kubelet does); the pause and the app container must each be in a scope cri-containerd-<id>.scope
# in that slice (Delegate=yes, the container's memory limit on its unit and in memory.max), exec,
# StopContainer (kill --all through the scope), StopPodSandbox and RemovePodSandbox must work and
# leave no unit, cgroup, state or process; both handlers must agree but for ward's Landlock
# annotation. It runs both runtimes whatever RUNTIME is.
. /usr/local/lib/vmtest/lib.sh
log=/tmp/vmtest/cri-test.out
# native snapshotter: overlayfs is a module of this kernel, and the VM has no modules
WARD_CRI_SYSTEMD=1 WARD_CRI_REQUIRE=1 WARD_CRI_WARD=/usr/local/bin/ward WARD_CRI_SNAPSHOTTER=native \
    timeout 360 /usr/local/lib/vmtest/cri-test --exact runtime_class_ward_matches_runc --test-threads=1 --nocapture >"$log" 2>&1
rc=$?
grep -E '^\[(ward|runc)\] (pod sandbox|container) |^ *"(pause|container|pod slice) ' "$log"
if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log"
    for f in /tmp/ward-cri-*/containerd.log; do [ -f "$f" ] && { echo "--- $f"; grep -v level=debug "$f" | tail -n 40; }; done
    fail "the CRI test failed (exit $rc): $(grep -A2 'panicked at' "$log" | tail -n +2 | tr '\n' ' ' | cut -c1-400)"
fi
grep -q '^test result: ok. 1 passed' "$log" || fail "the CRI test did not report 1 passed"
say "$(grep -c 'cri-containerd-' "$log") scope mentions; $(grep '^test result' "$log")"
