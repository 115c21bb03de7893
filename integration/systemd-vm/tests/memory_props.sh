# memory reservation and swap: MemoryLow=8388608 (memory.low) and MemorySwapMax = swap - limit
# (runc's v2 conversion: 48 MiB - 16 MiB = 16777216, memory.swap.max), beside MemoryMax.
. /usr/local/lib/vmtest/lib.sh
ARGS='["sleep","1000"]' RESOURCES='{"memory":{"limit":16777216,"reservation":8388608,"swap":50331648}}' mkbundle mem
run_d mem
expect_scope
expect_prop "$UNIT" MemoryMax 16777216;     expect_file memory.max 16777216
expect_prop "$UNIT" MemoryLow 8388608;      expect_file memory.low 8388608
expect_prop "$UNIT" MemorySwapMax 33554432; expect_file memory.swap.max 33554432
rt delete --force mem || fail "delete --force failed"
expect_gone mem
