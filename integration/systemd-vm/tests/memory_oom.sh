# memory.limit 16 MiB: the scope's MemoryMax and memory.max say 16777216, and a 64 MiB hog inside
# (one dd read of 64 MiB from /dev/zero into one buffer: a single process whose memory is touched
# in one syscall, so the OOM kill comes at once even under a slow TCG) is OOM-killed (137) while
# the container's init survives to report it.
. /usr/local/lib/vmtest/lib.sh
ARGS='["sh","-c","while [ ! -e /shared/go ]; do sleep 0.1; done; dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo $? > /shared/rc; sleep 1000"]' \
RESOURCES='{"memory":{"limit":16777216}}' mkbundle oom
run_d oom
expect_scope
expect_prop "$UNIT" MemoryMax 16777216
expect_file memory.max 16777216
touch "$BUNDLE/shared/go"
wait_until 60 '[ -s "$BUNDLE/shared/rc" ]' ||
    fail "the hog did not end within 60 s (memory.current $(cat "$CGDIR/memory.current" 2>/dev/null)," \
        "memory.events: $(tr '\n' ' ' < "$CGDIR/memory.events" 2>/dev/null), procs: $(tr '\n' ' ' < "$CGDIR/cgroup.procs" 2>/dev/null)," \
        "unit $(prop "$UNIT" ActiveState), kernel: $(dmesg 2>/dev/null | grep -i -m3 -e oom -e 'killed process' | tr '\n' ' '))"
expect_eq "the hog's exit status" 137 "$(cat "$BUNDLE/shared/rc")"
kills=$(cgkey memory.events oom_kill)
[ "${kills:-0}" -ge 1 ] || fail "memory.events oom_kill is '${kills}', expected >= 1"
say "oom_kill $kills; the unit: $(prop "$UNIT" ActiveState)"
rt delete --force oom || fail "delete --force failed"
expect_gone oom
