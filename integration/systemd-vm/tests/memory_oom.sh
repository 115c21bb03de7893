# memory.limit 16 MiB: the scope's MemoryMax and memory.max say 16777216, and a 64 MiB hog inside
# (busybox tail keeps a newline-free input whole; busybox head takes no "64M") is OOM-killed (137) while the container's init survives to report it.
. /usr/local/lib/vmtest/lib.sh
ARGS='["sh","-c","while [ ! -e /shared/go ]; do sleep 0.1; done; head -c 67108864 /dev/zero | tail; echo $? > /shared/rc; sleep 1000"]' \
RESOURCES='{"memory":{"limit":16777216}}' mkbundle oom
run_d oom
expect_scope
expect_prop "$UNIT" MemoryMax 16777216
expect_file memory.max 16777216
touch "$BUNDLE/shared/go"
wait_until 30 '[ -s "$BUNDLE/shared/rc" ]' || fail "the hog did not end within 30 s"
expect_eq "the hog's exit status" 137 "$(cat "$BUNDLE/shared/rc")"
kills=$(cgkey memory.events oom_kill)
[ "${kills:-0}" -ge 1 ] || fail "memory.events oom_kill is '${kills}', expected >= 1"
say "oom_kill $kills; the unit: $(prop "$UNIT" ActiveState)"
rt delete --force oom || fail "delete --force failed"
expect_gone oom
