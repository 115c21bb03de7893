# linux.resources.blockIO.throttleReadBpsDevice on a brd ramdisk (/dev/ram0, loaded by /init):
# io.max reads "MAJ:MIN rbps=1048576 wbps=max riops=max wiops=max", and an O_DIRECT read of 3 MiB
# from the device inside the container takes >= 2 s.
. /lib/vmtest.sh
[ -b /dev/ram0 ] || fail "/dev/ram0 missing (brd not loaded)"
majmin=$(cat /sys/block/ram0/dev)
maj=${majmin%:*}; min=${majmin#*:}
ARGS='["sh","/shared/t.sh"]' \
RESOURCES='{"blockIO":{"throttleReadBpsDevice":[{"major":'$maj',"minor":'$min',"rate":1048576}]},
  "devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
             {"allow":true,"type":"b","major":'$maj',"minor":'$min',"access":"rw"}]}' \
DEVICES='[{"path":"/dev/ram0","type":"b","major":'$maj',"minor":'$min',"fileMode":384,"uid":0,"gid":0}]' \
mkbundle io_max
cat > "$BUNDLE/shared/t.sh" <<'IN'
s=$(date +%s)
dd if=/dev/ram0 of=/dev/null bs=65536 count=48 iflag=direct 2>/shared/dd.err || { cat /shared/dd.err; exit 3; }
e=$(date +%s)
echo $((e - s)) > /shared/secs
IN
rc=0; rt run --keep --bundle "$BUNDLE" io_max || rc=$?
expect_eq "exit status" 0 "$rc"
expect_eq "io.max" "$majmin rbps=1048576 wbps=max riops=max wiops=max" "$(cgfile io.max)"
secs=$(cat "$BUNDLE/shared/secs" 2>/dev/null)
say "3 MiB O_DIRECT read took ${secs}s"
[ "${secs:-0}" -ge 2 ] || fail "3 MiB at rbps=1048576 took ${secs:-?}s, expected >= 2"
rt delete io_max || fail "delete failed"
expect_gone io_max
