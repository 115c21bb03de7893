# delete --force kills every process of the cgroup, not only the init (cgroup.kill): the
# container has NO pid namespace, so killing the init alone would leave its children (two of
# them double-forked away from it) running. After delete: none of the pids that were in
# cgroup.procs is alive, and the cgroup dir is gone.
. /lib/vmtest.sh
NAMESPACES='ipc uts mount network' ARGS='["sh","/shared/t.sh"]' RESOURCES='{"pids":{"limit":100}}' mkbundle cgroup_kill
cat > "$BUNDLE/shared/t.sh" <<'IN'
(sleep 1000 &)
(sleep 1000 &)
sleep 1000 &
sleep 1000 &
echo ready > /shared/ready
wait
IN
rt run -d --bundle "$BUNDLE" cgroup_kill >/dev/null 2>&1 || fail "run -d failed"
wait_until 10 '[ -s "$BUNDLE/shared/ready" ]' || fail "container never got ready"
wait_until 5 '[ "$(cat "$CGDIR/cgroup.procs" 2>/dev/null | wc -l)" -ge 5 ]' || fail "cgroup.procs has $(cat "$CGDIR/cgroup.procs" 2>/dev/null | wc -l) pids, expected 5"
pids=$(cat "$CGDIR/cgroup.procs" | tr '\n' ' ')
say "pids in the cgroup: $pids"
rt delete --force cgroup_kill || fail "delete --force failed"
alive() {  # a pid that is gone or a zombie is not alive
    local st
    st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' /proc/$1/status 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ]
}
left=""
for p in $pids; do alive "$p" && left="$left $p($(cat /proc/$p/comm 2>/dev/null))"; done
[ -z "$left" ] || fail "processes left after delete --force:$left"
expect_gone cgroup_kill
