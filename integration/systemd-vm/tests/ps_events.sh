# ps lists the scope's processes, events --stats reads the scope's cgroup (pids.current, memory),
# kill --all KILL ends every process of the scope.
. /usr/local/lib/vmtest/lib.sh
ARGS='["sh","-c","sleep 1000 & sleep 1000 & touch /shared/up; wait"]' mkbundle ps
run_d ps
expect_scope
wait_until 10 '[ -e "$BUNDLE/shared/up" ]' || fail "the container did not start its children"
# --format json: the pids alone (the table form runs the host's ps, which minbase lacks)
pids=$(rt ps --format json ps 2>&1)
n=$(echo "$pids" | tr -c '0-9\n' ' ' | wc -w)
expect_eq "ps --format json: number of pids (sh + 2 sleeps) in '$pids'" 3 "$n"
for p in $(echo "$pids" | tr -c '0-9' ' '); do
    grep -qx "$p" "$CGDIR/cgroup.procs" || fail "ps lists $p, which is not in $CGDIR/cgroup.procs"
done
stats=$(rt events --stats ps 2>&1)
say "events --stats: $stats"
cur=$(cgfile pids.current)
echo "$stats" | grep -q "\"pids\":{\"current\":$cur" || fail "events --stats has no pids.current $cur: $stats"
echo "$stats" | grep -q '"memory":{' || fail "events --stats has no memory stats"
rt kill --all ps KILL || fail "kill --all failed"
wait_until 10 '[ "$(status ps)" = stopped ]' || fail "status '$(status ps)' after kill --all, expected stopped"
wait_until 5 '[ ! -e "$CGDIR" ] || [ -z "$(cat "$CGDIR/cgroup.procs" 2>/dev/null)" ]' || fail "processes left in the scope: $(cat "$CGDIR/cgroup.procs" | tr '\n' ' ')"
rt delete ps || fail "delete failed"
expect_gone ps
