# observe on a kernel before 6.6 (Debian's 6.1): no sync wake-up flag, and a RECV blocked in the
# kernel never returns once a listener's processes are gone. The supervisor's thread for each
# listener must then wait in poll (which reports the hang-up), so the thread of an exec ends
# with its process: after five execs the supervisor is back to two threads (main + init's
# listener), and every exec is logged. ward only.
. /lib/vmtest.sh
case "$RT" in *runc) say "runc has no supervisor: nothing to compare"; exit 0;; esac
ARGS='["sleep","60"]' PROCESS_EXTRA='"interception": {"observe": ["execve"]},' mkbundle observe_old
rt run -d --bundle "$BUNDLE" observe_old || fail "run -d failed"
sup=$(sed -n 's/.*"supervisor": *\[ *\([0-9]*\).*/\1/p' "$ROOT/observe_old/state.json")
[ -n "$sup" ] || fail "no supervisor in the state: $(cat "$ROOT/observe_old/state.json")"
threads() { ls "/proc/$sup/task" 2>/dev/null | wc -l; }
wait_until 5 '[ "$(threads)" -eq 2 ]' || fail "supervisor has $(threads) threads, expected 2 before any exec"
for i in 1 2 3 4 5; do
    out=$(rt exec observe_old echo "exec-$i") || fail "exec $i failed"
    expect_eq "exec $i output" "exec-$i" "$out"
done
wait_until 5 '[ "$(threads)" -eq 2 ]' || fail "supervisor kept $(threads) threads after the execs ended (exec listeners leak)"
log=$ROOT/observe_old/violations.jsonl
wait_until 5 '[ "$(grep -c "\"exec-" "$log")" -eq 5 ]' || fail "expected 5 logged execs: $(cat "$log")"
rt delete --force observe_old
kill -0 "$sup" 2>/dev/null && fail "the supervisor outlived delete"
expect_gone observe_old
