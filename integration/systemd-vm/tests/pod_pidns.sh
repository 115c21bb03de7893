# A pod as containerd's CRI makes it: a pause container in its own scope in the pod slice, then an
# app container that joins the pause's pid and ipc namespaces (namespace paths) and has a memory
# limit, in a scope of its own next to it; both run, the app sees the pause as pid 1, and
# deleting the app leaves the pause and its scope alone.
. /usr/local/lib/vmtest/lib.sh
pod=kubepods-besteffort-pod2b3c4d5e_6f70_4182_9304_a5b6c7d8e9f0.slice
CGPATH=$pod:cri-containerd:pause ARGS='["sleep","1000"]' mkbundle pause
PAUSE_UNIT=$UNIT PAUSE_CGDIR=$CGDIR
run_d pause
expect_scope
ppid=$(initpid pause)
[ -n "$ppid" ] || fail "no pid for the pause container"
CGPATH=$pod:cri-containerd:app RESOURCES='{"memory":{"limit":67108864}}' \
NAMESPACES="[{\"type\":\"pid\",\"path\":\"/proc/$ppid/ns/pid\"},{\"type\":\"ipc\",\"path\":\"/proc/$ppid/ns/ipc\"},{\"type\":\"mount\"},{\"type\":\"uts\"}]" \
ARGS='["sh","-c","cat /proc/1/cmdline | tr \"\\\\0\" \" \" > /shared/pid1; sleep 1000"]' mkbundle app
run_d app
expect_scope
expect_prop "$UNIT" MemoryMax 67108864
expect_file memory.max 67108864
wait_until 10 '[ -s "$BUNDLE/shared/pid1" ]' || fail "the app wrote no /shared/pid1"
expect_eq "pid 1 as the app sees it" "sleep 1000 " "$(cat "$BUNDLE/shared/pid1")"
expect_eq "the app's pid namespace" "$(readlink /proc/$ppid/ns/pid)" "$(readlink /proc/$(initpid app)/ns/pid)"
rt delete --force app || fail "delete --force app failed"
expect_gone app
expect_eq "pause after the app's delete" running "$(status pause)"
expect_prop "$PAUSE_UNIT" ActiveState active
UNIT=$PAUSE_UNIT CGDIR=$PAUSE_CGDIR
rt delete --force pause || fail "delete --force pause failed"
expect_gone pause
systemctl stop "$pod"
