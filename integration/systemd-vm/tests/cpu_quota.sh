# cpu quota 10 ms per 100 ms and shares 512: CPUQuotaPerSecUSec=100ms, CPUQuotaPeriodUSec=100ms,
# CPUWeight=20 (runc's shares->weight conversion: 1 + (512-2)*9999/262142); cpu.max and cpu.weight
# in the files; a busy loop inside is throttled.
. /usr/local/lib/vmtest/lib.sh
ARGS='["sh","-c","while [ ! -e /shared/go ]; do sleep 0.1; done; timeout 1 sh -c \"while :; do :; done\"; touch /shared/done; sleep 1000"]' \
RESOURCES='{"cpu":{"quota":10000,"period":100000,"shares":512}}' mkbundle cpu
run_d cpu
expect_scope
expect_prop "$UNIT" CPUQuotaPerSecUSec 100ms
expect_prop "$UNIT" CPUQuotaPeriodUSec 100ms
expect_prop "$UNIT" CPUWeight 20
expect_file cpu.max "10000 100000"
expect_file cpu.weight 20
touch "$BUNDLE/shared/go"
wait_until 20 '[ -e "$BUNDLE/shared/done" ]' || fail "the busy loop did not end"
thr=$(cgkey cpu.stat nr_throttled)
[ "${thr:-0}" -gt 0 ] || fail "cpu.stat nr_throttled is '$thr', expected > 0"
rt delete --force cpu || fail "delete --force failed"
expect_gone cpu
