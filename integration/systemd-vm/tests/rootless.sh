# vmtest-timeout: 180
# Rootless: the runtime as uid 1000 with --systemd-cgroup talks to that user's systemd instance
# (user@1000.service) over its session bus (dbus-user-session), as runc does. The scope lives in
# the user instance's delegated subtree (<manager>/user.slice/ward-test-rl.scope, runc's default
# slice user.slice inside it), its MemoryMax/TasksMax on the user unit and in the files; update,
# pause/resume, ps and delete --force work through it; nothing left. Then without a session bus
# the create fails naming it, and leaves nothing.
. /usr/local/lib/vmtest/lib.sh
U=1000
XDG=/run/user/$U
systemctl start user@$U.service || fail "systemctl start user@$U.service failed"
wait_until 30 '[ -S $XDG/bus ]' || fail "no session bus at $XDG/bus (user@$U.service: $(prop user@$U.service ActiveState))"
asuser() { setpriv --reuid=$U --regid=$U --init-groups env -i PATH="$PATH" HOME=/home/wuser XDG_RUNTIME_DIR=$XDG "$@"; }
URT_ROOT=$XDG/vmtest-$RUNTIME
urt() { asuser "$RT" --root "$URT_ROOT" --systemd-cgroup "$@"; }
uprop() { asuser systemctl --user show -p "$2" --value "$1" 2>/dev/null; }
MGR=$(prop user@$U.service ControlGroup)
[ -n "$MGR" ] || fail "user@$U.service has no ControlGroup"
say "user manager's cgroup: $MGR; delegated: $(cat "$CGROOT$MGR/cgroup.subtree_control")"

MAPUID=$U CGPATH=user.slice:ward-test:rl RESOURCES='{"memory":{"limit":67108864},"pids":{"limit":32}}' \
ARGS='["sh","-c","cat /proc/self/cgroup > /shared/cg; sleep 1000"]' mkbundle rl
CGDIR=$CGROOT$MGR/user.slice/$UNIT
urt run -d --bundle "$BUNDLE" rl >"$BUNDLE/out" 2>&1 </dev/null || fail "rootless run -d failed: $(tail -n 3 "$BUNDLE/out")"
wait_until 10 '[ "$(uprop $UNIT ActiveState)" = active ]' || fail "$UNIT (user) ActiveState '$(uprop $UNIT ActiveState)'"
[ -z "$(prop $UNIT ActiveState | grep -v inactive)" ] || fail "$UNIT is a unit of the system instance"
expect_eq "$UNIT ControlGroup" "$MGR/user.slice/$UNIT" "$(uprop $UNIT ControlGroup)"
expect_eq "$UNIT MemoryMax" 67108864 "$(uprop $UNIT MemoryMax)"
expect_eq "$UNIT TasksMax" 32 "$(uprop $UNIT TasksMax)"
expect_file memory.max 67108864
expect_file pids.max 32
wait_until 10 '[ -s "$BUNDLE/shared/cg" ]' || fail "no /proc/self/cgroup from inside"
expect_eq "/proc/self/cgroup inside" "0::$MGR/user.slice/$UNIT" "$(cat "$BUNDLE/shared/cg")"
pid=$(urt state rl | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
expect_eq "init's owner" "$U" "$(stat -c %u /proc/$pid)"

urt update --memory 33554432 --pids-limit 16 rl || fail "rootless update failed"
expect_eq "$UNIT MemoryMax after update" 33554432 "$(uprop $UNIT MemoryMax)"
expect_eq "$UNIT TasksMax after update" 16 "$(uprop $UNIT TasksMax)"
expect_file memory.max 33554432
expect_file pids.max 16
urt pause rl || fail "rootless pause failed"
expect_file cgroup.freeze 1
urt resume rl || fail "rootless resume failed"
expect_file cgroup.freeze 0
urt ps --format json rl | grep -q "$pid" || fail "ps does not list init $pid"

urt delete --force rl || fail "rootless delete --force failed"
wait_until 5 '[ -z "$(asuser systemctl --user list-units --all --plain --no-legend $UNIT)" ]' || fail "$UNIT still a user unit after delete"
[ ! -e "$CGDIR" ] || fail "$CGDIR left after delete"
[ ! -e "$URT_ROOT/rl" ] || fail "state $URT_ROOT/rl left after delete"

# No session bus: a clear error naming it, nothing left.
MAPUID=$U CGPATH=user.slice:ward-test:nobus ARGS='["true"]' mkbundle nobus
out=$(setpriv --reuid=$U --regid=$U --init-groups env -i PATH="$PATH" HOME=/home/wuser XDG_RUNTIME_DIR=/tmp \
    "$RT" --root "$URT_ROOT" --systemd-cgroup create --bundle "$BUNDLE" nobus 2>&1 </dev/null) &&
    fail "create without a session bus succeeded"
say "without a session bus: $out"
echo "$out" | grep -qi "bus" || fail "the error does not name the bus: $out"
[ ! -e "$URT_ROOT/nobus" ] || fail "state $URT_ROOT/nobus left after the failed create"
[ -z "$(asuser systemctl --user list-units --all --plain --no-legend "$UNIT")" ] || fail "$UNIT left"
systemctl stop user@$U.service
