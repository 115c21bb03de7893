#!/bin/bash
# Runs inside the systemd VM from vmtest.service: every /usr/local/lib/vmtest/tests/*.sh under a
# timeout, one `RESULT <name> ok|fail <detail>` line each on the console (a failed test's output
# first, between LOG-BEGIN/LOG-END), then powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
. /usr/local/lib/vmtest/vmtest.conf
exec </dev/null >/dev/console 2>&1
dmesg -n 1    # keep kernel messages (OOM reports) off the console the results go to

up=$(cut -d' ' -f1 /proc/uptime)
echo "runner: booted to vmtest.service in ${up}s: kernel $(uname -r), $(nproc) cpus, $(systemctl --version | head -n1)"
echo "runner: cgroup: $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "runner: system state: $(systemctl is-system-running 2>&1); jobs: $(systemctl list-jobs --no-legend 2>/dev/null | wc -l)"
echo "runner: runtime: $("$RT" --version 2>&1 | head -n1)"
mkdir -p /tmp/vmtest "$ROOT"
for t in /usr/local/lib/vmtest/tests/*.sh; do
    name=${t##*/}; name=${name%.sh}
    log=/tmp/vmtest/$name.log
    start=$(date +%s)
    # a test may ask for more time than TEST_TIMEOUT: a line `# vmtest-timeout: SECONDS`
    limit=$(sed -n 's/^# vmtest-timeout: *\([0-9][0-9]*\).*/\1/p' "$t" | head -n1)
    [ -n "$limit" ] && [ "$limit" -gt "$TEST_TIMEOUT" ] || limit=$TEST_TIMEOUT
    timeout "$limit" bash "$t" >"$log" 2>&1 </dev/null
    rc=$?
    secs=$(( $(date +%s) - start ))
    if [ "$rc" -eq 0 ]; then
        if [ "${VERBOSE:-0}" = 1 ]; then echo "LOG-BEGIN $name"; cat "$log"; echo "LOG-END $name"; fi
        echo "RESULT $name ok (${secs}s)"
    elif [ "$rc" -eq 3 ] && grep -q '^GAP: ' "$log"; then
        if [ "${VERBOSE:-0}" = 1 ]; then echo "LOG-BEGIN $name"; cat "$log"; echo "LOG-END $name"; fi
        echo "RESULT $name gap $(grep '^GAP: ' "$log" | tail -n 1 | cut -c6-) (${secs}s)"
    else
        detail=$(grep '^FAIL: ' "$log" | tail -n 1 | cut -c7-)
        case "$rc" in 124|143) [ -n "$detail" ] || detail="timed out after ${limit}s" ;; esac
        [ -n "$detail" ] || detail="exit $rc: $(tail -n 1 "$log")"
        echo "LOG-BEGIN $name"; cat "$log"; echo "LOG-END $name"
        echo "RESULT $name fail $detail (${secs}s)"
    fi
    # whatever a test left must not disturb the next one
    for c in "$ROOT"/*; do
        [ -d "$c" ] && "$RT" --root "$ROOT" --systemd-cgroup delete --force "${c##*/}" >/dev/null 2>&1
    done
done
echo "runner: done at uptime $(cut -d' ' -f1 /proc/uptime)s"
sync
