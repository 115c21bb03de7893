# cpuset cpus "1", mems "0": AllowedCPUs=1, AllowedMemoryNodes=0, cpuset.cpus(.effective) 1,
# cpuset.mems 0, and the container's own Cpus_allowed_list is 1.
. /usr/local/lib/vmtest/lib.sh
ARGS='["sh","-c","grep Cpus_allowed_list /proc/self/status > /shared/allowed; sleep 1000"]' \
RESOURCES='{"cpu":{"cpus":"1","mems":"0"}}' mkbundle cpuset
run_d cpuset
expect_scope
expect_prop "$UNIT" AllowedCPUs 1
expect_prop "$UNIT" AllowedMemoryNodes 0
expect_file cpuset.cpus 1
expect_file cpuset.cpus.effective 1
expect_file cpuset.mems 0
wait_until 10 '[ -s "$BUNDLE/shared/allowed" ]' || fail "no Cpus_allowed_list from inside"
expect_eq "Cpus_allowed_list inside" "1" "$(awk '{print $2}' "$BUNDLE/shared/allowed")"
rt delete --force cpuset || fail "delete --force failed"
expect_gone cpuset
