# pids.limit 8: TasksMax=8 and pids.max 8; forking 20 sleeps inside hits the limit (pids.events).
. /usr/local/lib/vmtest/lib.sh
# The forks happen in a subshell: busybox sh exits when a fork fails, and the init must survive
# (exec, no fork) for the scope to stay.
ARGS='["sh","-c","(for i in $(seq 20); do sleep 100 & done) 2>/dev/null; echo forked > /shared/n; exec sleep 1000"]' \
RESOURCES='{"pids":{"limit":8}}' mkbundle pids
run_d pids
expect_scope
expect_prop "$UNIT" TasksMax 8
expect_file pids.max 8
wait_until 20 '[ -s "$BUNDLE/shared/n" ]' || fail "the fork loop did not report"
max=$(cgkey pids.events max)
[ "${max:-0}" -ge 1 ] || fail "pids.events max is '$max', expected >= 1"
cur=$(cgfile pids.current)
[ "$cur" -le 8 ] || fail "pids.current $cur > 8"
rt delete --force pids || fail "delete --force failed"
expect_gone pids
