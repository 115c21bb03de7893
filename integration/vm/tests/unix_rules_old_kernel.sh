# Unix socket rules (network.allowUnix) need the cgroup unix socket hooks of Linux 6.7+; this VM
# runs Debian's 6.1. There, a policy with allowUnix fails create with an error that says why,
# and leaves no state dir or cgroup; the same policy without allowUnix (TCP/UDP rules only)
# runs, so the refusal is about unix rules, not about egress. ward only.
. /lib/vmtest.sh
case "$RT" in *runc) say "runc has no egress policy: nothing to compare"; exit 0;; esac

case "$(rt features)" in *'"org.ward.interception.allowUnix": "false"'*) ;; *) fail "features does not say allowUnix is unavailable";; esac

ARGS='["true"]' PROCESS_EXTRA='"interception": {"network": {"default": "deny", "allowUnix": ["/run/app.sock"]}},' \
mkbundle unix_old
rc=0; out=$(rt run --bundle "$BUNDLE" unix_old 2>&1) || rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "allowUnix ran on a kernel without the unix socket hooks"
case "$out" in *allowUnix*6.7*) ;; *) fail "the error does not name allowUnix and Linux 6.7";; esac
expect_gone unix_old

ARGS='["sh","-c","echo walled"]' PROCESS_EXTRA='"interception": {"network": {"default": "deny"}},' \
mkbundle unix_old_inet
rc=0; out=$(rt run --bundle "$BUNDLE" unix_old_inet 2>&1) || rc=$?
echo "$out"
expect_eq "run with TCP/UDP rules only" 0 "$rc"
case "$out" in *walled*) ;; *) fail "the container did not run";; esac
