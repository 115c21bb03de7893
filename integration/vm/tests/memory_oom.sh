# linux.resources.memory.limit 16 MiB; the container buffers 64 MiB in memory
# (busybox tail keeps a newline-free input whole) -> the OOM killer kills it: run exits 137,
# memory.max reads 16777216 and memory.events counts oom_kill >= 1.
. /lib/vmtest.sh
ARGS='["sh","/shared/t.sh"]' RESOURCES='{"memory":{"limit":16777216}}' mkbundle memory_oom
cat > "$BUNDLE/shared/t.sh" <<'IN'
head -c 67108864 /dev/zero | tail
IN
rc=0; rt run --keep --bundle "$BUNDLE" memory_oom || rc=$?
say "run exited $rc; memory.events: $(cat "$CGDIR/memory.events" 2>/dev/null | tr '\n' ' ')"
expect_eq "memory.max" 16777216 "$(cgfile memory.max)"
kills=$(cgkey memory.events oom_kill)
[ "${kills:-0}" -ge 1 ] || fail "memory.events oom_kill is '${kills}', expected >= 1"
expect_eq "exit status of run" 137 "$rc"
rt delete memory_oom || fail "delete failed"
expect_gone memory_oom
