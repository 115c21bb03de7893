# Sourced by every test inside the systemd VM (bash; no python, no jq): . /usr/local/lib/vmtest/lib.sh
# RT is the runtime under test (/usr/local/bin/ward or /usr/local/bin/runc), always run with
# --systemd-cgroup, so the container's cgroup is a transient scope unit systemd made for it.
. /usr/local/lib/vmtest/vmtest.conf
CGROOT=/sys/fs/cgroup

rt() { "$RT" --root "$ROOT" --systemd-cgroup "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
# gap REASON: a check runc (the reference) is known not to pass, for REASON: with RUNTIME=runc the
# test ends here as a known gap (RESULT ... gap, not a failure); with any other runtime it fails.
gap() {
    if [ "$RUNTIME" = runc ]; then echo "GAP: $*"; exit 3; fi
    fail "$*"
}
say() { echo "# $*"; }
# expect_eq WHAT EXPECTED ACTUAL
expect_eq() { [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"; }
# prop UNIT PROPERTY: a property of a unit as systemctl shows it
prop() { systemctl show -p "$2" --value "$1" 2>/dev/null; }
# expect_prop UNIT PROPERTY EXPECTED
expect_prop() { expect_eq "$1 $2" "$3" "$(prop "$1" "$2")"; }
# cgfile NAME: the content of a file of this test's scope cgroup ("<missing>" if unreadable)
cgfile() { cat "$CGDIR/$1" 2>/dev/null || echo "<missing>"; }
expect_file() { expect_eq "${CGDIR#$CGROOT}/$1" "$2" "$(cgfile "$1")"; }
# cgkey FILE KEY: the value of KEY in a flat-keyed cgroup file (memory.events, cpu.stat ...)
cgkey() { sed -n "s/^$2 //p" "$CGDIR/$1" 2>/dev/null; }
# status ID / initpid ID: fields of `state`
status() { rt state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }
initpid() { rt state "$1" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'; }
# pids_matching TEXT: pids whose command line (NULs as spaces) contains TEXT (no procps in minbase)
pids_matching() {
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}; pid=${pid%/cmdline}
        [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
        tr '\0' ' ' < "$f" 2>/dev/null | grep -qF -- "$1" && echo "$pid"
    done
    return 0
}
# wait_until SECONDS 'CONDITION': poll every 0.1 s until the eval'd CONDITION holds; false on timeout
wait_until() {
    local n=$(( $1 * 10 )) cond=$2
    while [ "$n" -gt 0 ]; do eval "$cond" && return 0; n=$((n - 1)); sleep 0.1; done
    eval "$cond"
}
# unit_listed UNIT: systemd still knows the unit (any state, as `systemctl list-units --all` lists)
unit_listed() { [ -n "$(systemctl list-units --all --full --plain --no-legend "$1" 2>/dev/null)" ]; }
# run_d ID: `run -d` the bundle made by mkbundle, stdio to $BUNDLE/out; fails the test if run fails
run_d() {
    rt run -d -b "$BUNDLE" "$1" </dev/null >"$BUNDLE/out" 2>&1 || fail "run -d $1 failed: $(tr '\n' ' ' < "$BUNDLE/out")"
}
# expect_scope: the unit exists, is active, and its cgroup is where the cgroupsPath says
expect_scope() {
    wait_until 5 '[ "$(prop "$UNIT" ActiveState)" = active ]' ||
        fail "$UNIT: ActiveState '$(prop "$UNIT" ActiveState)', expected active (units: $(systemctl list-units --all --plain --no-legend 'ward-test*' 'cri-*' | tr '\n' ';'))"
    expect_prop "$UNIT" ControlGroup "${CGDIR#$CGROOT}"
    [ -d "$CGDIR" ] || fail "cgroup dir $CGDIR missing"
}
# expect_gone ID: after delete, no state dir, no unit (as list-units --all shows), no cgroup dir
expect_gone() {
    [ ! -e "$ROOT/$1" ] || fail "state dir $ROOT/$1 still exists after delete"
    if unit_listed "$UNIT"; then
        local later
        if wait_until 2 '! unit_listed "$UNIT"'; then later="gone within 2 s"; else later="still there 2 s later"; fi
        fail "$UNIT still listed after delete returned: $(systemctl list-units --all --plain --no-legend "$UNIT") ($later)"
    fi
    [ ! -e "$CGDIR" ] || fail "cgroup dir $CGDIR still exists after delete (populated: $(cgkey cgroup.events populated))"
}

# mkbundle NAME: writes /bundles/NAME/config.json (rootfs: the shared static-busybox template,
# read-only; /bundles/NAME/shared bind-mounted read-write at /shared). Inputs:
#   ARGS        process.args, a JSON array (required)
#   RESOURCES   linux.resources, a JSON object (left out when empty)
#   DEVICES     linux.devices, a JSON array (left out when empty)
#   CGPATH      linux.cgroupsPath (default system.slice:ward-test:NAME; "none" leaves it out)
#   NAMESPACES  linux.namespaces, a JSON array (default: new pid, ipc, uts, mount, network)
#   MAPUID      rootless: a user namespace mapping container root to this host uid (one id),
#               and /bundles/NAME/shared owned by it
# Sets BUNDLE, UNIT (the scope unit) and CGDIR (its cgroup directory).
mkbundle() {
    local name=$1 linux_extra="" slice prefix cname
    BUNDLE=/bundles/$name
    CGPATH=${CGPATH:-system.slice:ward-test:$name}
    if [ "$CGPATH" != none ]; then linux_extra="$linux_extra\"cgroupsPath\":\"$CGPATH\","; fi
    IFS=: read -r slice prefix cname <<<"$CGPATH"
    UNIT=$prefix-$cname.scope
    CGDIR=$CGROOT$(slice_path "${slice:-system.slice}")/$UNIT
    [ -n "${RESOURCES:-}" ] && linux_extra="$linux_extra\"resources\":$RESOURCES,"
    [ -n "${DEVICES:-}" ] && linux_extra="$linux_extra\"devices\":$DEVICES,"
    local ns='[{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}]'
    [ -n "${NAMESPACES:-}" ] && ns=$NAMESPACES
    if [ -n "${MAPUID:-}" ]; then
        ns="${ns%]}, {\"type\": \"user\"}]"
        linux_extra="$linux_extra\"uidMappings\":[{\"containerID\":0,\"hostID\":$MAPUID,\"size\":1}],"
        linux_extra="$linux_extra\"gidMappings\":[{\"containerID\":0,\"hostID\":$MAPUID,\"size\":1}],"
    fi
    rm -rf "$BUNDLE"
    mkdir -p "$BUNDLE/shared"
    [ -z "${MAPUID:-}" ] || chown "$MAPUID:$MAPUID" "$BUNDLE/shared"
    cat > "$BUNDLE/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": $ARGS,
    "env": ["PATH=/bin", "HOME=/root"],
    "cwd": "/",
    "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
    "noNewPrivileges": true
  },
  "root": {"path": "/bundles/rootfs", "readonly": true},
  "hostname": "c-$name",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
    {"destination": "/shared", "type": "bind", "source": "$BUNDLE/shared", "options": ["rbind", "rw"]}
  ],
  "linux": {
    $linux_extra
    "namespaces": $ns
  }
}
JSON
}
# slice_path NAME.slice: where systemd puts a slice (a-b-c.slice lives in a.slice/a-b.slice/),
# written here independently of any runtime
slice_path() {
    local s=${1%.slice} acc="" out="" part
    [ "$1" = -.slice ] && { echo ""; return; }
    local IFS=-
    for part in $s; do
        acc=${acc:+$acc-}$part
        out="$out/$acc.slice"
    done
    echo "$out"
}
