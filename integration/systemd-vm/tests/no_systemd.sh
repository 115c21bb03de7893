# With --systemd-cgroup and no systemd reachable, create fails within 20 s with an error that says
# so (names dbus or systemd) and leaves no state dir and no unit. In a mount namespace of this
# test's own: (a) tmpfs over /run/dbus and /run/systemd (no systemd at all, as on a host without
# it); (b) the same but /run/systemd/system present (systemd looks booted, no socket answers).
. /usr/local/lib/vmtest/lib.sh
ARGS='["sleep","1000"]' mkbundle nosd
# control: with systemd reachable the same create works (else a runtime refusing the flag outright
# would pass this test)
rt create -b "$BUNDLE" nosd </dev/null >"$BUNDLE/out" 2>&1 || fail "control: create with systemd reachable failed: $(tr '\n' ' ' < "$BUNDLE/out")"
expect_scope
rt delete --force nosd || fail "control: delete --force failed"
expect_gone nosd
for variant in a b; do
    hide='mount -t tmpfs tmpfs /run/dbus && mount -t tmpfs tmpfs /run/systemd'
    [ $variant = b ] && hide="$hide && mkdir /run/systemd/system"
    # (stdio to a file: a create that wrongly succeeds leaves its init holding a pipe open)
    timeout 20 unshare -m sh -c "$hide"' && exec "$0" "$@"' \
        "$RT" --root "$ROOT" --systemd-cgroup create -b "$BUNDLE" nosd </dev/null >"$BUNDLE/out" 2>&1; rc=$?
    out=$(tr '\n' ' ' < "$BUNDLE/out")
    say "($variant) exit $rc: $out"
    [ "$rc" -ne 124 ] || fail "($variant) create hung for 20 s with no systemd reachable"
    [ "$rc" -ne 0 ] || { rt delete --force nosd; fail "($variant) create succeeded with no systemd reachable"; }
    echo "$out" | grep -qiE 'dbus|d-bus|systemd' || fail "($variant) the error does not say dbus or systemd: $out"
    [ ! -e "$ROOT/nosd" ] || fail "($variant) state dir $ROOT/nosd left after the failed create"
    ! unit_listed "$UNIT" || fail "($variant) $UNIT exists after the failed create"
done
