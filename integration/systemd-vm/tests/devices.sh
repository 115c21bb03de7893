# Device rules become DevicePolicy=strict + DeviceAllow on the unit (so systemd's own device filter
# agrees with the container's): /dev/null (c 1:3) is allowed and writable inside, /dev/mydev
# (b 1:0, not allowed) cannot be opened (EPERM from the device filter, before any driver).
. /usr/local/lib/vmtest/lib.sh
ARGS='["sh","-c","echo x > /dev/null && echo null-ok > /shared/r; head -c 1 /dev/mydev 2> /shared/err; sleep 1000"]' \
DEVICES='[{"path":"/dev/mydev","type":"b","major":1,"minor":0,"fileMode":432,"uid":0,"gid":0}]' \
RESOURCES='{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}' mkbundle dev
run_d dev
expect_scope
expect_prop "$UNIT" DevicePolicy strict
allow=$(prop "$UNIT" DeviceAllow)
say "DeviceAllow: $allow"
case " $allow " in *"/dev/char/1:3 rwm"*|*"/dev/null rwm"*) ;; *) fail "DeviceAllow has no entry for c 1:3 (/dev/null): '$allow'" ;; esac
# ("block-* m" is the mknod-only entry runc adds; reading or writing b 1:0 must not be allowed)
echo "$allow" | grep -E '^(block-\*|/dev/block/1:0|block-blkext) [^ ]*[rw]' && fail "DeviceAllow lets b 1:0 through: '$allow'"
wait_until 10 '[ -e "$BUNDLE/shared/err" ]' || fail "the container did not report"
expect_eq "write to /dev/null inside" null-ok "$(cat "$BUNDLE/shared/r" 2>/dev/null)"
grep -q "Operation not permitted" "$BUNDLE/shared/err" || fail "opening /dev/mydev (b 1:0): '$(cat "$BUNDLE/shared/err")', expected Operation not permitted"
rt delete --force dev || fail "delete --force failed"
expect_gone dev
