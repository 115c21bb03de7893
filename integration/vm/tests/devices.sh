# linux.resources.devices (the cgroup v2 eBPF device program):
#   rules [deny all rwm, allow c 1:3 rwm], linux.devices /dev/null and /dev/mydev (b 1:0, the brd
#   ramdisk) -> inside, writing /dev/null works and opening /dev/mydev fails with EPERM.
# A control container with an extra allow rule for b 1:0 r reads /dev/mydev fine, so the EPERM
# comes from the device program, not from the node.
# runc semantics (which ward follows, src/policy/cgroups/mod.rs device_rules): the runtime appends its
# default allow list after the spec's rules: `c *:* m`, `b *:* m`, c 1:3 1:5 1:7 1:8 1:9 5:0 5:2
# 10:200 rwm, c 136:* rwm. Hence /dev/mydev is NOT c 1:5 (/dev/zero, readable by that list), and
# `mknod /tmp/x c 1 7` (CAP_MKNOD given) SUCCEEDS. MKNOD_EXPECT=deny flips that assertion
# for a runtime that does not append `c *:* m`.
. /lib/vmtest.sh
[ -b /dev/ram0 ] || fail "/dev/ram0 missing (brd not loaded)"
MKNOD_EXPECT=${MKNOD_EXPECT:-allow}
DEVS='[{"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":438,"uid":0,"gid":0},
       {"path":"/dev/mydev","type":"b","major":1,"minor":0,"fileMode":438,"uid":0,"gid":0}]'
T='"CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_MKNOD"'
script='
if echo x > /dev/null; then echo null=ok; else echo null=denied; fi
if head -c 1 /dev/mydev >/dev/null 2>/tmp/err; then echo mydev=ok; else echo "mydev=$(cat /tmp/err)"; fi
if mknod /tmp/x c 1 7 2>/tmp/err; then echo mknod=ok; else echo "mknod=$(cat /tmp/err)"; fi
'

ARGS='["sh","/shared/t.sh"]' CAPS=$T DEVICES=$DEVS \
RESOURCES='{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}' \
mkbundle devices
echo "$script" > "$BUNDLE/shared/t.sh"
rc=0; out=$(rt run --keep --bundle "$BUNDLE" devices 2>&1) || rc=$?
echo "$out"
expect_eq "exit status" 0 "$rc"
echo "$out" | grep -qx 'null=ok' || fail "writing /dev/null failed: $out"
echo "$out" | grep -q '^mydev=.*Operation not permitted' || fail "/dev/mydev (b 1:0) not denied with EPERM: $(echo "$out" | grep mydev=)"
if [ "$MKNOD_EXPECT" = deny ]; then
    echo "$out" | grep -q '^mknod=.*Operation not permitted' || fail "mknod c 1 7 not denied with EPERM: $(echo "$out" | grep mknod=)"
else
    echo "$out" | grep -qx 'mknod=ok' || fail "mknod c 1 7 denied under $RUNTIME: $(echo "$out" | grep mknod=)"
fi
[ -d "$CGDIR" ] || fail "no cgroup dir $CGDIR"
rt delete devices || fail "delete failed"
expect_gone devices

# control: the same node with an allow rule is readable
ARGS='["sh","/shared/t.sh"]' CAPS=$T DEVICES=$DEVS \
RESOURCES='{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},{"allow":true,"type":"b","major":1,"minor":0,"access":"r"}]}' \
mkbundle devices-control
echo "$script" > "$BUNDLE/shared/t.sh"
rc=0; out=$(rt run --bundle "$BUNDLE" devices-control 2>&1) || rc=$?
echo "$out"
expect_eq "control: exit status" 0 "$rc"
echo "$out" | grep -qx 'mydev=ok' || fail "control: /dev/mydev not readable with an allow rule: $(echo "$out" | grep mydev=)"
expect_gone devices-control
