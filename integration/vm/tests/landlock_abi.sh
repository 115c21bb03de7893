# Landlock on a kernel with an older ABI (Debian 6.1: ABI 2, no truncate/ioctl_dev/network/scopes).
# Best effort: a ruleset that also handles `truncate` runs, the missing right dropped with a
# warning, and the rest enforced (write outside /tmp refused). disableBestEffort: the same
# ruleset fails create, and nothing is left behind. ward only (runc has no Landlock).
. /lib/vmtest.sh
case "$RT" in *runc) say "runc has no Landlock: nothing to compare"; exit 0;; esac
abi=$(rt features | sed -n 's/.*"org.ward.landlock.abi": *"\([0-9]*\)".*/\1/p')
say "kernel Landlock ABI: $abi"
[ -n "$abi" ] && [ "$abi" -ge 1 ] && [ "$abi" -lt 3 ] || fail "expected ABI 1 or 2 on this kernel, features says '$abi'"

policy='"handledAccessFS": ["write_file", "make_reg", "truncate"]'
rules='"rules": {"pathBeneath": [{"allowedAccess": ["write_file", "make_reg", "truncate"], "paths": ["/tmp", "/dev"]}]}'
ARGS='["sh","-c","echo x > /tmp/a && echo tmp-ok; echo y > /shared/b && echo shared-ok; true"]' \
PROCESS_EXTRA="\"landlock\": {\"ruleset\": {$policy}, $rules}," CGPATH=none mkbundle landlock_best
rc=0; out=$(rt run --bundle "$BUNDLE" landlock_best 2>&1) || rc=$?
echo "$out"
expect_eq "best-effort run exit" 0 "$rc"
case "$out" in *tmp-ok*) ;; *) fail "write beneath the granted /tmp failed";; esac
case "$out" in *shared-ok*) fail "write outside the ruleset succeeded: Landlock not enforced";; esac
case "$out" in *"Permission denied"*) ;; *) fail "the refused write did not fail with EACCES";; esac
case "$out" in *"best effort"*) ;; *) fail "no warning that truncate was dropped";; esac
[ ! -e "$BUNDLE/shared/b" ] || fail "/shared/b was written"

ARGS='["true"]' PROCESS_EXTRA="\"landlock\": {\"ruleset\": {$policy}, $rules, \"disableBestEffort\": true}," \
CGPATH=none mkbundle landlock_strict
rc=0; out=$(rt run --bundle "$BUNDLE" landlock_strict 2>&1) || rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "disableBestEffort on ABI $abi ran anyway"
case "$out" in *disableBestEffort*) ;; *) fail "the error does not say why (disableBestEffort)";; esac
expect_gone landlock_strict
