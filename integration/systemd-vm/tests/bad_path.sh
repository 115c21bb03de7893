# With --systemd-cgroup, a cgroupsPath not of the slice:prefix:name form, or with a bad slice name
# (no .slice suffix, "--", a "/"), is refused: create fails, names the value (the whole path for a
# bad form, at least the slice for a bad slice, as runc does), leaves no state dir and no unit.
. /usr/local/lib/vmtest/lib.sh
i=0
# each: cgroupsPath|what the error must name
for c in "/ward-test/bad|/ward-test/bad" "system.slice:ward-test|system.slice:ward-test" \
         "system.slice:ward-test:bad:extra|system.slice:ward-test:bad:extra" \
         "notaslice:ward-test:bad|notaslice" "a--b.slice:ward-test:bad|a--b.slice" \
         "ward/test.slice:ward-test:bad|ward/test.slice"; do
    p=${c%%|*}; named=${c#*|}
    i=$((i + 1))
    CGPATH=$p ARGS='["sleep","1000"]' mkbundle bad$i
    out=$(rt create -b "$BUNDLE" bad$i 2>&1 </dev/null); rc=$?
    say "$p -> exit $rc: $(echo "$out" | tr '\n' ' ')"
    [ "$rc" -ne 0 ] || { rt delete --force bad$i; fail "cgroupsPath '$p' was accepted"; }
    [ ! -e "$ROOT/bad$i" ] || fail "state dir left after the refused '$p'"
    left=$(systemctl list-units --all --plain --no-legend '*bad*' 2>/dev/null)
    [ -z "$left" ] || fail "a unit left after the refused '$p': $left"
    case "$out" in *"$named"*) ;; *) fail "the error for cgroupsPath '$p' does not name '$named': $(echo "$out" | tr '\n' ' ')" ;; esac
done
