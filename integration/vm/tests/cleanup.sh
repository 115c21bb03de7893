# Nothing is left after delete, on three paths: run (auto-delete), create + delete --force
# (never started), run -d + kill + delete. The container's cgroup is the cgroupsPath
# (/proc/self/cgroup inside reads 0::/ward-vm/cleanup: no cgroup namespace in this config).
. /lib/vmtest.sh
ARGS='["sh","/shared/t.sh"]' RESOURCES='{"memory":{"limit":67108864}}' mkbundle cleanup
cat > "$BUNDLE/shared/t.sh" <<'IN'
cat /proc/self/cgroup > /shared/cgroup
exec sleep 1000
IN
# 1. run in the foreground, killed from outside; run deletes on exit
rt run --bundle "$BUNDLE" cleanup >/dev/null 2>&1 &
runner=$!
wait_until 10 '[ -s "$BUNDLE/shared/cgroup" ]' || fail "container never started"
expect_eq "/proc/self/cgroup inside" "0::/ward-vm/cleanup" "$(cat "$BUNDLE/shared/cgroup")"
expect_eq "memory.max" 67108864 "$(cgfile memory.max)"
rt kill cleanup KILL || fail "kill failed"
wait $runner
expect_gone cleanup

# 2. create, never start, delete --force
rt create --bundle "$BUNDLE" cleanup >/dev/null 2>&1 </dev/null || fail "create failed"
expect_eq "state after create" created "$(status cleanup)"
pid=$(initpid cleanup)
grep -qx "$pid" "$CGDIR/cgroup.procs" 2>/dev/null || fail "created init $pid not in $CGDIR/cgroup.procs"
rt delete --force cleanup || fail "delete --force of a created container failed"
expect_gone cleanup

# 3. run -d, kill, wait for stopped, plain delete
rm -f "$BUNDLE/shared/cgroup"
rt run -d --bundle "$BUNDLE" cleanup >/dev/null 2>&1 || fail "run -d failed"
wait_until 10 '[ -s "$BUNDLE/shared/cgroup" ]' || fail "container never started"
rt kill cleanup KILL || fail "kill failed"
wait_until 5 '[ "$(status cleanup)" = stopped ]' || fail "not stopped after kill: $(status cleanup)"
rt delete cleanup || fail "delete of a stopped container failed"
expect_gone cleanup
