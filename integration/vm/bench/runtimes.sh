# ward, runc and crun side by side on a pure cgroup v2 host (run by integration/vm/bench.sh; crun
# refuses the hybrid development hosts). Same bundle for all three, cgroups on (cgroupfs driver,
# linux.cgroupsPath set). Prints `BENCH <key> <value>` lines; the host side computes the ratios.
. /lib/vmtest.sh
RUNS=${BENCH_RUNS:-20}
PAR=${BENCH_PAR:-100}
RTS="ward runc crun"
now() { cut -d' ' -f1 /proc/uptime; }
for rt in $RTS; do
    command -v "$rt" >/dev/null || fail "$rt missing in the VM (VM_EXTRA_BINS)"
    mkdir -p "/run/b-$rt"
done
command -v hyperfine >/dev/null || fail "hyperfine missing in the VM (VM_EXTRA_BINS)"

# --- cycle: run + delete of /bin/true, a fresh id each time, the same cgroup path.
cat > /tmp/cycle.sh <<'IN'
rt=$1; n=$(( $(cat /tmp/n-$rt 2>/dev/null || echo 0) + 1 )); echo $n > /tmp/n-$rt
$rt --root /run/b-$rt run --bundle /bundles/cycle-$rt c$n </dev/null >/dev/null && { $rt --root /run/b-$rt delete c$n 2>/dev/null; true; }
IN
for rt in $RTS; do
    CGPATH=/bench/cycle-$rt ARGS='["/bin/true"]' mkbundle "cycle-$rt"
    sh /tmp/cycle.sh "$rt" || fail "$rt run failed"
    hyperfine -N --runs "$RUNS" --warmup 3 --export-json "/tmp/cycle-$rt.json" "sh /tmp/cycle.sh $rt" >/dev/null ||
        fail "$rt: the cycle failed"
    echo "BENCH cycle-$rt $(sed -n 's/.*"mean": *\([0-9.e-]*\).*/\1/p' "/tmp/cycle-$rt.json" | head -n 1)"
done
# The plain script's own cost (sh, cat, the counter) is in every row alike.
hyperfine -N --runs "$RUNS" --export-json /tmp/cycle-sh.json "sh -c 'n=\$(( \$(cat /tmp/n-ward) + 0 )); true'" >/dev/null
echo "BENCH cycle-sh $(sed -n 's/.*"mean": *\([0-9.e-]*\).*/\1/p' /tmp/cycle-sh.json | head -n 1)"

# --- the binary's own start (--version: load, relocate, exit; crun re-executes itself from a
# sealed copy in a constructor, so its figure holds two loads), and ward's re-exec from its
# read-only copy for CVE-2019-5736 (`state run` re-executes, `state nosuch` does not; both fail).
for rt in $RTS; do
    hyperfine -N --runs "$RUNS" --warmup 3 --export-json "/tmp/version-$rt.json" "$rt --version" >/dev/null
    echo "BENCH version-$rt $(sed -n 's/.*"mean": *\([0-9.e-]*\).*/\1/p' "/tmp/version-$rt.json" | head -n 1)"
done
hyperfine -N -i --runs "$RUNS" --warmup 3 --export-json /tmp/reexec.json \
    "ward --root /run/b-ward state nosuch" "ward --root /run/b-ward state run" >/dev/null 2>&1
echo "BENCH reexec $(sed -n 's/.*"mean": *\([0-9.e-]*\).*/\1/p' /tmp/reexec.json | awk 'NR == 1 {a = $1} NR == 2 {print $1 - a}')"

# --- peak memory of create, over the whole process tree: each create runs alone in a fresh
# cgroup whose memory.peak the kernel keeps (every process and page it charged, also those of
# init before it joins the container's cgroup). Warm caches first; the largest of five.
for rt in $RTS; do
    CGPATH=/bench/peak-$rt ARGS='["sleep","100"]' mkbundle "peak-$rt"
    best=0
    for i in 0 1 2 3 4 5; do
        cg=/sys/fs/cgroup/benchpeak-$rt-$i
        mkdir "$cg"
        sh -c "echo \$\$ > $cg/cgroup.procs && exec $rt --root /run/b-$rt create --bundle /bundles/peak-$rt pk$i" </dev/null >/dev/null 2>&1 ||
            fail "$rt create failed"
        peak=$(cat "$cg/memory.peak")
        $rt --root /run/b-$rt delete --force "pk$i" >/dev/null 2>&1
        rmdir "$cg"
        [ "$i" -gt 0 ] && [ "$peak" -gt "$best" ] && best=$peak
    done
    echo "BENCH peak-$rt $best"
done

# --- exec of /bin/true into a running container.
for rt in $RTS; do
    CGPATH=/bench/exec-$rt ARGS='["sleep","1000"]' mkbundle "exec-$rt"
    $rt --root /run/b-$rt run -d --bundle "/bundles/exec-$rt" ex </dev/null >/dev/null 2>&1 || fail "$rt run -d failed"
    hyperfine -N --runs "$RUNS" --warmup 3 --export-json "/tmp/exec-$rt.json" "$rt --root /run/b-$rt exec ex /bin/true" >/dev/null ||
        fail "$rt exec failed"
    echo "BENCH exec-$rt $(sed -n 's/.*"mean": *\([0-9.e-]*\).*/\1/p' "/tmp/exec-$rt.json" | head -n 1)"
    $rt --root /run/b-$rt delete --force ex >/dev/null 2>&1
done

# --- PAR containers created and started (run -d), 8 at a time: the wall time until all run.
for rt in $RTS; do
    CGPATH=/bench/par-$rt-N ARGS='["sleep","1000"]' mkbundle "par-$rt"
    i=1
    while [ "$i" -le "$PAR" ]; do
        mkdir -p "/bundles/par-$rt-$i"
        sed "s#/bench/par-$rt-N#/bench/par-$rt-$i#" "/bundles/par-$rt/config.json" > "/bundles/par-$rt-$i/config.json"
        i=$((i + 1))
    done
    start=$(now)
    seq 1 "$PAR" | xargs -P 8 -I{} sh -c "$rt --root /run/b-$rt run -d --bundle /bundles/par-$rt-{} p{} </dev/null >/dev/null 2>&1 || echo FAILED {}" > /tmp/par-$rt.out
    end=$(now)
    running=$($rt --root /run/b-$rt list 2>/dev/null | grep -c ' running ')
    [ -s /tmp/par-$rt.out ] && fail "$rt: parallel run -d failed: $(head -n 3 /tmp/par-$rt.out)"
    [ "$running" = "$PAR" ] || fail "$rt: $running of $PAR containers running"
    echo "BENCH par-$rt $(echo "$start $end" | awk '{print $2 - $1}')"
    for c in /run/b-$rt/*/; do $rt --root /run/b-$rt delete --force "$(basename "$c")" >/dev/null 2>&1; done
done
echo "BENCH par $PAR"
