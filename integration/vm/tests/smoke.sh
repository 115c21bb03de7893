# A plain container (no cgroupsPath, no resources) runs and exits 0: proves the VM, the bundle
# template and the runtime binary work before any cgroup v2 feature is tested.
. /lib/vmtest.sh
CGPATH=none ARGS='["sh","/shared/t.sh"]' mkbundle smoke
cat > "$BUNDLE/shared/t.sh" <<'IN'
echo "hello from $(hostname)"
IN
rc=0; out=$(rt run --bundle "$BUNDLE" smoke 2>&1) || rc=$?
echo "$out"
expect_eq "exit status" 0 "$rc"
expect_eq "output" "hello from c-smoke" "$out"
[ ! -e "$ROOT/smoke" ] || fail "state dir left after run"
