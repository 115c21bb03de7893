# update on a running container: --memory 50M, --pids-limit 5, and `-r -` with a LinuxResources
# JSON on stdin change memory.max / pids.max / cpu.max in place.
. /lib/vmtest.sh
ARGS='["sleep","1000"]' RESOURCES='{"memory":{"limit":104857600},"pids":{"limit":20}}' mkbundle update
rt run -d --bundle "$BUNDLE" update >/dev/null 2>&1 || fail "run -d failed"
wait_until 5 '[ "$(status update)" = running ]' || fail "not running: $(status update)"
expect_eq "memory.max at start" 104857600 "$(cgfile memory.max)"
expect_eq "pids.max at start" 20 "$(cgfile pids.max)"
rt update --memory 50M update || fail "update --memory 50M failed"
expect_eq "memory.max after --memory 50M" 52428800 "$(cgfile memory.max)"
rt update --pids-limit 5 update || fail "update --pids-limit 5 failed"
expect_eq "pids.max after --pids-limit 5" 5 "$(cgfile pids.max)"
expect_eq "memory.max after --pids-limit 5" 52428800 "$(cgfile memory.max)"
echo '{"memory":{"limit":41943040},"pids":{"limit":7},"cpu":{"quota":20000,"period":100000}}' |
    rt update -r - update || fail "update -r - failed"
expect_eq "memory.max after -r -" 41943040 "$(cgfile memory.max)"
expect_eq "pids.max after -r -" 7 "$(cgfile pids.max)"
expect_eq "cpu.max after -r -" "20000 100000" "$(cgfile cpu.max)"
expect_eq "state after updates" running "$(status update)"
rt delete --force update || fail "delete --force failed"
expect_gone update
