# blockIO.weight 500: IOWeight=4950 (runc's blkio->io conversion: 1 + (500-10)*9999/990) on the unit
# and `default 4950` in io.weight (the kernel's iocost file; no bfq in the VM).
. /usr/local/lib/vmtest/lib.sh
ARGS='["sleep","1000"]' RESOURCES='{"blockIO":{"weight":500}}' mkbundle io
run_d io
expect_scope
expect_file io.weight "default 4950"
iow=$(prop "$UNIT" IOWeight)
systemctl daemon-reload || fail "daemon-reload failed"
sleep 1
after=$(cgfile io.weight)
rt delete --force io || fail "delete --force failed"
expect_gone io
say "IOWeight on the unit: '$iow'; io.weight after daemon-reload: '$after'"
# runc 1.1.5 writes io.weight itself but sets no IOWeight on the unit (its genV2ResourcesProperties
# has no case for blockIO.weight), so a daemon-reload or set-property can undo it; ward must set it.
[ "$iow" = 4950 ] || gap "IOWeight on $UNIT is '$iow', expected 4950 (runc 1.1.5 sets no IOWeight property); io.weight after daemon-reload: '$after'"
expect_eq "io.weight after daemon-reload" "default 4950" "$after"
