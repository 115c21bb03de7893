# delete stops the unit: gone from `systemctl list-units --all`, and its cgroup dir with it, after
# (1) kill + delete of a stopped container, (2) delete --force of a running one, (3) delete of a
# created one (its init waiting in the scope).
. /usr/local/lib/vmtest/lib.sh
ARGS='["sleep","1000"]' mkbundle del1
run_d del1
expect_scope
rt kill del1 KILL || fail "kill failed"
wait_until 10 '[ "$(status del1)" = stopped ]' || fail "status '$(status del1)' after kill, expected stopped"
rt delete del1 || fail "delete of the stopped container failed"
expect_gone del1

ARGS='["sleep","1000"]' mkbundle del2
run_d del2
expect_scope
rt delete --force del2 || fail "delete --force failed"
expect_gone del2

ARGS='["sleep","1000"]' mkbundle del3
rt create -b "$BUNDLE" del3 </dev/null >"$BUNDLE/out" 2>&1 || fail "create failed: $(cat "$BUNDLE/out")"
expect_scope
expect_eq "status after create" created "$(status del3)"
grep -qx "$(initpid del3)" "$CGDIR/cgroup.procs" || fail "the created init $(initpid del3) is not in $CGDIR/cgroup.procs"
rt delete --force del3 || fail "delete --force of the created container failed"
expect_gone del3
