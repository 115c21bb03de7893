# The harness and the runtime's systemd driver at all: `--systemd-cgroup run` of an echo in
# system.slice:ward-test:smoke runs in /system.slice/ward-test-smoke.scope and leaves nothing.
. /usr/local/lib/vmtest/lib.sh
ARGS='["sh","-c","echo hello; cat /proc/self/cgroup"]' mkbundle smoke
out=$(rt run -b "$BUNDLE" smoke 2>&1 </dev/null); rc=$?
echo "$out"
[ "$rc" -eq 0 ] || fail "run exited $rc: $(echo "$out" | tr '\n' ' ')"
echo "$out" | grep -qx hello || fail "no 'hello' in the output"
expect_eq "/proc/self/cgroup inside" "0::/system.slice/ward-test-smoke.scope" "$(echo "$out" | grep '^0::')"
wait_until 3 '! unit_listed "$UNIT"'
expect_gone smoke
