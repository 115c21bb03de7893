# vmtest-timeout: 240
# containerd with the runc shim's SystemdCgroup = true and BinaryName = the runtime under test,
# driven by ctr (`--runc-systemd-cgroup --runc-binary`, the same two shim options containerd's
# config sets): `ctr run` with cgroups path system.slice:ctr:<id> and a memory limit makes the
# scope ctr-<id>.scope (MemoryMax on the unit and in memory.max), exec sees the scope's cgroup,
# `ctr task kill` + `ctr task delete` + `ctr container delete` stop the unit and leave no cgroup,
# runtime state or shim behind.
. /usr/local/lib/vmtest/lib.sh
D=/tmp/vmtest-ctr
rm -rf "$D"; mkdir -p "$D"
cat > "$D/config.toml" <<CONF
version = 2
root = "$D/root"
state = "$D/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$D/containerd.sock"
CONF
containerd --config "$D/config.toml" >"$D/containerd.log" 2>&1 &
cpid=$!
c() { ctr --address "$D/containerd.sock" -n vmtest "$@"; }
cleanup() {
    c task kill -s KILL c1 >/dev/null 2>&1; c task delete c1 >/dev/null 2>&1; c container delete c1 >/dev/null 2>&1
    kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
    for p in $(pids_matching "containerd-shim-runc-v2 -namespace vmtest"); do kill -KILL "$p"; done
    systemctl stop ctr-c1.scope 2>/dev/null
    rm -rf "$D"
}
trap cleanup EXIT
wait_until 60 'c version >/dev/null 2>&1' || { tail -n 20 "$D/containerd.log"; fail "containerd did not answer in 60 s"; }

UNIT=ctr-c1.scope CGDIR=$CGROOT/system.slice/ctr-c1.scope
c run -d --null-io --runtime io.containerd.runc.v2 --runc-binary "$RT" --runc-systemd-cgroup \
    --cgroup system.slice:ctr:c1 --memory-limit 67108864 --env PATH=/bin \
    --rootfs /bundles/rootfs c1 sleep 1000 >"$D/run.out" 2>&1 ||
    { cat "$D/run.out"; grep -v level=info "$D/containerd.log" | tail -n 20; fail "ctr run failed"; }
wait_until 30 'c task ls 2>/dev/null | grep -q "^c1 .*RUNNING"' || fail "task c1 not RUNNING: $(c task ls 2>&1 | tr '\n' ';')"
wait_until 10 '[ "$(prop "$UNIT" ActiveState)" = active ]' || fail "$UNIT: ActiveState '$(prop "$UNIT" ActiveState)'"
expect_prop "$UNIT" ControlGroup /system.slice/ctr-c1.scope
expect_prop "$UNIT" Slice system.slice
expect_prop "$UNIT" MemoryMax 67108864
expect_file memory.max 67108864
# the shim ran the runtime under test: its state dir is under the shim's root for this namespace
[ -f /run/containerd/runc/vmtest/c1/state.json ] || fail "no state.json under /run/containerd/runc/vmtest/c1"
[ -n "$(pids_matching "containerd-shim-runc-v2 -namespace vmtest")" ] || fail "no shim process for namespace vmtest"
pid=$(c task ls | awk '$1 == "c1" {print $2}')
expect_eq "init's cgroup" "0::/system.slice/ctr-c1.scope" "$(cat /proc/$pid/cgroup)"
expect_eq "exec's cgroup" "0::/system.slice/ctr-c1.scope" "$(c task exec --exec-id e1 c1 cat /proc/self/cgroup 2>&1)"
c task kill -s KILL c1 || fail "ctr task kill failed"
wait_until 30 'c task ls 2>/dev/null | grep -q "^c1 .*STOPPED"' || fail "task c1 not STOPPED: $(c task ls 2>&1 | tr '\n' ';')"
c task delete c1 || fail "ctr task delete failed"
c container delete c1 || fail "ctr container delete failed"
wait_until 10 '! unit_listed "$UNIT"' || fail "$UNIT still listed: $(prop "$UNIT" ActiveState)"
[ ! -e "$CGDIR" ] || fail "$CGDIR still exists"
[ ! -e /run/containerd/runc/vmtest/c1 ] || fail "runtime state /run/containerd/runc/vmtest/c1 left"
wait_until 10 '[ -z "$(pids_matching "containerd-shim-runc-v2 -namespace vmtest")" ]' || fail "the shim is still running"
say "ctr: run, exec, kill, delete through the scope"
