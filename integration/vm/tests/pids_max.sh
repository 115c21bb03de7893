# linux.resources.pids.limit 8: forking 20 background sleeps fails part way
# (pids.max reads 8, pids.events max >= 1, fewer than 20 forks succeeded).
. /lib/vmtest.sh
ARGS='["sh","/shared/t.sh"]' RESOURCES='{"pids":{"limit":8}}' mkbundle pids_max
cat > "$BUNDLE/shared/t.sh" <<'IN'
i=0
while [ $i -lt 20 ]; do
    sleep 30 &
    i=$((i + 1))
    echo $i > /shared/forked
done
echo all-forked
IN
rc=0; out=$(rt run --keep --bundle "$BUNDLE" pids_max 2>&1) || rc=$?
echo "$out"
forked=$(cat "$BUNDLE/shared/forked" 2>/dev/null || echo 0)
say "run exited $rc after $forked forks; pids.events: $(cgfile pids.events)"
expect_eq "pids.max" 8 "$(cgfile pids.max)"
case "$out" in *all-forked*) fail "all 20 forks succeeded under pids.max 8";; esac
[ "$forked" -lt 20 ] || fail "$forked forks succeeded"
hits=$(cgkey pids.events max)
[ "${hits:-0}" -ge 1 ] || fail "pids.events max is '$hits', expected >= 1"
[ "$rc" -ne 0 ] || fail "the fork failure did not fail the container (exit 0)"
rt delete --force pids_max || fail "delete failed"
expect_gone pids_max
