# linux.resources.cpu quota 10000 / period 100000: a busy loop for ~1.5 s of wall time is throttled
# (cpu.max reads "10000 100000", cpu.stat nr_throttled > 0, and the loop itself got well under
# half of a CPU: utime+stime < 50 ticks of /proc/<pid>/stat over 1.5 s, ~150 unthrottled).
# The loop's own time is measured, not the cgroup's usage_usec: that also counts the runtime's
# setup inside the cgroup before the limit applies (runc's Go init: ~1 s under TCG).
. /lib/vmtest.sh
ARGS='["sh","/shared/t.sh"]' RESOURCES='{"cpu":{"quota":10000,"period":100000}}' mkbundle cpu_max
cat > "$BUNDLE/shared/t.sh" <<'IN'
sh -c 'while :; do :; done' &
loop=$!
sleep 1.5
set -- $(cat /proc/$loop/stat)
kill $loop
echo $(( ${14} + ${15} )) > /shared/ticks
IN
rc=0; rt run --keep --bundle "$BUNDLE" cpu_max || rc=$?
say "cpu.stat: $(cgfile cpu.stat | tr '\n' ' ')"
expect_eq "exit status" 0 "$rc"
expect_eq "cpu.max" "10000 100000" "$(cgfile cpu.max)"
thr=$(cgkey cpu.stat nr_throttled)
[ "${thr:-0}" -gt 0 ] || fail "cpu.stat nr_throttled is '$thr', expected > 0"
ticks=$(cat "$BUNDLE/shared/ticks" 2>/dev/null)
say "busy loop: $ticks ticks of CPU in 1.5 s"
[ -n "$ticks" ] && [ "$ticks" -lt 50 ] || fail "busy loop got '$ticks' ticks of CPU in 1.5 s at a 10% quota (expected < 50)"
rt delete cpu_max || fail "delete failed"
expect_gone cpu_max
