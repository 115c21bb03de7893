# A kubelet-style path kubepods-burstable-pod<uid>.slice:cri-containerd:ID puts the scope under
# kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/ (each slice a unit);
# and when the kubelet made the pod slice first (StartTransientUnit with a MemoryMax, as it does),
# the container lands in it and its limit applies; delete leaves the pod slice to the kubelet.
. /usr/local/lib/vmtest/lib.sh
uid=0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0
CGPATH=kubepods-burstable-pod$uid.slice:cri-containerd:kp1 \
ARGS='["sh","-c","cat /proc/self/cgroup > /shared/cg; sleep 1000"]' mkbundle kp1
expect_eq "expected cgroup (this test's own slice expansion)" \
    "/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$uid.slice/cri-containerd-kp1.scope" "$CGDIR"
run_d kp1
expect_scope
for s in kubepods.slice kubepods-burstable.slice kubepods-burstable-pod$uid.slice; do
    expect_prop $s ActiveState active
done
expect_prop kubepods-burstable-pod$uid.slice ControlGroup /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$uid.slice
wait_until 10 '[ -s "$BUNDLE/shared/cg" ]' || fail "no /proc/self/cgroup from inside"
expect_eq "/proc/self/cgroup inside" "0::${CGDIR#$CGROOT}" "$(cat "$BUNDLE/shared/cg")"
rt delete --force kp1 || fail "delete --force failed"
expect_gone kp1

# the pod slice made first, by "the kubelet"
pod=kubepods-burstable-pod1a2b3c4d_0000_1111_2222_333344445555.slice
busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager \
    StartTransientUnit 'ssa(sv)a(sa(sv))' "$pod" replace 2 Description s "pod slice (test)" MemoryMax t 209715200 0 ||
    fail "StartTransientUnit $pod failed"
wait_until 5 '[ "$(prop "$pod" ActiveState)" = active ]' || fail "$pod not active"
CGPATH=$pod:cri-containerd:kp2 ARGS='["sleep","1000"]' RESOURCES='{"memory":{"limit":67108864}}' mkbundle kp2
run_d kp2
expect_scope
expect_prop "$UNIT" MemoryMax 67108864
expect_file memory.max 67108864
expect_eq "the pod slice's memory.max" 209715200 "$(cat "$(dirname "$CGDIR")/memory.max")"
rt delete --force kp2 || fail "delete --force failed"
expect_gone kp2
expect_prop "$pod" ActiveState active
systemctl stop "$pod"
