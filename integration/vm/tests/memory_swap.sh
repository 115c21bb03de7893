# linux.resources.memory limit 32M, swap 64M (swap = memory+swap, runc semantics)
# -> memory.max 33554432 and memory.swap.max 33554432 (= swap - limit).
. /lib/vmtest.sh
ARGS='["true"]' RESOURCES='{"memory":{"limit":33554432,"swap":67108864}}' mkbundle memory_swap
rc=0; rt run --keep --bundle "$BUNDLE" memory_swap || rc=$?
expect_eq "exit status" 0 "$rc"
expect_eq "memory.max" 33554432 "$(cgfile memory.max)"
expect_eq "memory.swap.max" 33554432 "$(cgfile memory.swap.max)"
rt delete memory_swap || fail "delete failed"
expect_gone memory_swap
