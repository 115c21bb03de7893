# pause/resume through cgroup.freeze: a counter loop stops advancing while paused
# (cgroup.freeze 1, cgroup.events "frozen 1", state "paused") and goes on after resume.
. /lib/vmtest.sh
ARGS='["sh","/shared/t.sh"]' RESOURCES='{"pids":{"limit":100}}' mkbundle pause_resume
cat > "$BUNDLE/shared/t.sh" <<'IN'
i=0
while :; do i=$((i + 1)); echo $i > /shared/count.tmp; mv /shared/count.tmp /shared/count; sleep 0.1; done
IN
count() { cat "$BUNDLE/shared/count" 2>/dev/null || echo 0; }
rt run -d --bundle "$BUNDLE" pause_resume >/dev/null 2>&1 || fail "run -d failed"
wait_until 10 '[ "$(count)" -ge 2 ]' || fail "the counter never started"
rt pause pause_resume || fail "pause failed"
expect_eq "cgroup.freeze after pause" 1 "$(cgfile cgroup.freeze)"
wait_until 5 '[ "$(cgkey cgroup.events frozen)" = 1 ]' || fail "cgroup.events frozen is '$(cgkey cgroup.events frozen)' after pause"
expect_eq "state after pause" paused "$(status pause_resume)"
c1=$(count); sleep 1; c2=$(count)
expect_eq "counter while paused" "$c1" "$c2"
rt resume pause_resume || fail "resume failed"
expect_eq "cgroup.freeze after resume" 0 "$(cgfile cgroup.freeze)"
expect_eq "cgroup.events frozen after resume" 0 "$(cgkey cgroup.events frozen)"
expect_eq "state after resume" running "$(status pause_resume)"
wait_until 5 '[ "$(count)" -gt "$c2" ]' || fail "counter did not advance after resume ($c2 -> $(count))"
say "counter $c1 -> $c2 while paused, $(count) after resume"
rt delete --force pause_resume || fail "delete --force failed"
expect_gone pause_resume
