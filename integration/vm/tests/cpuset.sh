# linux.resources.cpu.cpus "1": the container may run on CPU 1 only
# (Cpus_allowed_list inside is 1, cpuset.cpus and cpuset.cpus.effective read 1).
. /lib/vmtest.sh
ARGS='["sh","/shared/t.sh"]' RESOURCES='{"cpu":{"cpus":"1"}}' mkbundle cpuset
cat > "$BUNDLE/shared/t.sh" <<'IN'
sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status
IN
rc=0; out=$(rt run --keep --bundle "$BUNDLE" cpuset 2>&1) || rc=$?
echo "$out"
expect_eq "exit status" 0 "$rc"
expect_eq "Cpus_allowed_list inside" 1 "$out"
expect_eq "cpuset.cpus" 1 "$(cgfile cpuset.cpus)"
expect_eq "cpuset.cpus.effective" 1 "$(cgfile cpuset.cpus.effective)"
rt delete cpuset || fail "delete failed"
expect_gone cpuset
