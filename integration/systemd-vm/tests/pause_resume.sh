# pause freezes the scope's cgroup (cgroup.freeze 1, cgroup.events frozen 1, state paused, a
# counter inside stands still) and the unit stays active; resume thaws it.
. /usr/local/lib/vmtest/lib.sh
ARGS='["sh","-c","i=0; while :; do i=$((i+1)); echo $i > /shared/count; sleep 0.1; done"]' mkbundle pause
run_d pause
expect_scope
wait_until 10 '[ -s "$BUNDLE/shared/count" ]' || fail "the counter did not start"
rt pause pause || fail "pause failed"
expect_file cgroup.freeze 1
wait_until 5 '[ "$(cgkey cgroup.events frozen)" = 1 ]' || fail "cgroup.events frozen is '$(cgkey cgroup.events frozen)' after pause"
expect_eq "status after pause" paused "$(status pause)"
a=$(cat "$BUNDLE/shared/count"); sleep 1; b=$(cat "$BUNDLE/shared/count")
expect_eq "the counter while paused" "$a" "$b"
expect_prop "$UNIT" ActiveState active
rt resume pause || fail "resume failed"
expect_file cgroup.freeze 0
wait_until 5 '[ "$(cgkey cgroup.events frozen)" = 0 ]' || fail "cgroup.events frozen is '$(cgkey cgroup.events frozen)' after resume"
expect_eq "status after resume" running "$(status pause)"
wait_until 5 '[ "$(cat "$BUNDLE/shared/count")" -gt "$b" ]' || fail "the counter did not move after resume"
rt delete --force pause || fail "delete --force failed"
expect_gone pause
