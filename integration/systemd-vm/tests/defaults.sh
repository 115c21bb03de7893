# Empty parts take runc's defaults: ":ward-test:dflt" (no slice) is a scope in system.slice.
. /usr/local/lib/vmtest/lib.sh
CGPATH=:ward-test:dflt ARGS='["sleep","1000"]' mkbundle dflt
expect_eq "expected cgroup" /sys/fs/cgroup/system.slice/ward-test-dflt.scope "$CGDIR"
run_d dflt
expect_scope
rt delete --force dflt || fail "delete --force failed"
expect_gone dflt
