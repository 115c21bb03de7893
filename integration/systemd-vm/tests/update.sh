# Limits set at create hold across `systemctl daemon-reload`; `update` changes memory, pids, cpu
# quota and cpuset on the unit (so systemd keeps them) and in the files, and they hold across
# another daemon-reload; the container keeps running.
. /usr/local/lib/vmtest/lib.sh
ARGS='["sleep","1000"]' \
RESOURCES='{"memory":{"limit":104857600},"pids":{"limit":20},"cpu":{"quota":10000,"period":100000,"cpus":"0-1"}}' mkbundle upd
run_d upd
expect_scope
check() {   # check MEM PIDS QUOTA_PER_SEC CPUMAX CPUS  (after WHEN)
    expect_prop "$UNIT" MemoryMax "$1"; expect_file memory.max "$1"
    expect_prop "$UNIT" TasksMax "$2"; expect_file pids.max "$2"
    expect_prop "$UNIT" CPUQuotaPerSecUSec "$3"; expect_file cpu.max "$4"
    expect_prop "$UNIT" AllowedCPUs "$5"; expect_file cpuset.cpus "$5"
}
check 104857600 20 100ms "10000 100000" 0-1
systemctl daemon-reload || fail "daemon-reload failed"
say "after daemon-reload (create's limits)"
check 104857600 20 100ms "10000 100000" 0-1
rt update --memory 52428800 --pids-limit 5 --cpu-quota 20000 --cpu-period 100000 --cpuset-cpus 1 upd ||
    fail "update failed"
say "after update"
check 52428800 5 200ms "20000 100000" 1
systemctl daemon-reload || fail "daemon-reload failed"
sleep 1
say "after update + daemon-reload"
check 52428800 5 200ms "20000 100000" 1
# update -r: a resources JSON on stdin (what containerd sends)
echo '{"memory":{"limit":41943040},"pids":{"limit":7}}' | rt update -r - upd || fail "update -r - failed"
systemctl daemon-reload || fail "daemon-reload failed"
say "after update -r - + daemon-reload"
expect_prop "$UNIT" MemoryMax 41943040; expect_file memory.max 41943040
expect_prop "$UNIT" TasksMax 7; expect_file pids.max 7
expect_eq "status" running "$(status upd)"
rt delete --force upd || fail "delete --force failed"
expect_gone upd
