# Sourced by every test inside the VM (busybox sh, no python, no jq): . /lib/vmtest.sh
# RT is the runtime under test (/usr/bin/ward, or /usr/bin/runc with RUNTIME=runc).
. /etc/vmtest.conf
ROOT=/run/ward
CGROOT=/sys/fs/cgroup

rt() { "$RT" --root "$ROOT" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
say() { echo "# $*"; }
# expect_eq WHAT EXPECTED ACTUAL
expect_eq() { [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"; }
# cgfile NAME: the content of a file of this test's cgroup ("<missing>" if unreadable)
cgfile() { cat "$CGDIR/$1" 2>/dev/null || echo "<missing>"; }
# cgkey FILE KEY: the value of KEY in a flat-keyed cgroup file (memory.events, cpu.stat ...)
cgkey() { sed -n "s/^$2 //p" "$CGDIR/$1" 2>/dev/null; }
# status ID / pid ID: fields of `state`
status() { rt state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }
initpid() { rt state "$1" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'; }
# wait_until SECONDS 'CONDITION': poll every 0.1 s until the shell CONDITION (eval'd each time,
# so single-quote it) holds; false on timeout
wait_until() {
    local n=$(( $1 * 10 )) cond=$2
    while [ "$n" -gt 0 ]; do eval "$cond" && return 0; n=$((n - 1)); sleep 0.1; done
    eval "$cond"
}
# After a delete: no state dir and no cgroup dir may be left.
expect_gone() {
    [ ! -e "$ROOT/$1" ] || fail "state dir $ROOT/$1 still exists after delete"
    if [ -e "$CGDIR" ]; then
        local procs events later
        procs=$(cat "$CGDIR/cgroup.procs" 2>/dev/null | tr '\n' ' ')
        events=$(cat "$CGDIR/cgroup.events" 2>/dev/null | tr '\n' ' ')
        if wait_until 2 '[ ! -e "$CGDIR" ]'; then later="it vanished within 2 s"; else later="still there 2 s later"; fi
        fail "cgroup dir $CGDIR still exists after delete returned (cgroup.procs: [$procs], cgroup.events: $events; $later)"
    fi
}

# mkbundle NAME: writes /bundles/NAME/config.json. The rootfs is the shared busybox template
# (/bundles/rootfs, read-only); /bundles/NAME/shared is bind-mounted read-write at /shared.
# Inputs (JSON fragments; all but ARGS optional):
#   ARGS        process.args, a JSON array
#   RESOURCES   linux.resources, a JSON object (left out when empty)
#   DEVICES     linux.devices, a JSON array (left out when empty)
#   CAPS        capabilities, quoted names joined with commas (default: runc spec's three)
#   NAMESPACES  namespace types, space-separated (default: pid ipc uts mount network)
#   CGPATH      linux.cgroupsPath (default /ward-vm/NAME; "none" leaves it out)
#   PROCESS_EXTRA  more process fields, each followed by a comma (e.g. '"landlock": {...},')
# Sets BUNDLE and CGDIR (the cgroup directory the runtime must use).
mkbundle() {
    local name=$1 ns="" t linux_extra=""
    BUNDLE=/bundles/$name
    CGPATH=${CGPATH:-/ward-vm/$name}
    CAPS=${CAPS:-'"CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"'}
    NAMESPACES=${NAMESPACES:-pid ipc uts mount network}
    for t in $NAMESPACES; do ns="$ns${ns:+,}{\"type\":\"$t\"}"; done
    if [ "$CGPATH" = none ]; then CGDIR=/nonexistent; else
        CGDIR=$CGROOT$CGPATH; linux_extra="$linux_extra\"cgroupsPath\":\"$CGPATH\","; fi
    [ -n "${RESOURCES:-}" ] && linux_extra="$linux_extra\"resources\":$RESOURCES,"
    [ -n "${DEVICES:-}" ] && linux_extra="$linux_extra\"devices\":$DEVICES,"
    rm -rf "$BUNDLE"
    mkdir -p "$BUNDLE/shared"
    cat > "$BUNDLE/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "process": {
    ${PROCESS_EXTRA:-}
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": $ARGS,
    "env": ["PATH=/bin", "HOME=/root"],
    "cwd": "/",
    "capabilities": {"bounding": [$CAPS], "effective": [$CAPS], "permitted": [$CAPS]},
    "noNewPrivileges": true
  },
  "root": {"path": "/bundles/rootfs", "readonly": true},
  "hostname": "c-$name",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
    {"destination": "/shared", "type": "bind", "source": "$BUNDLE/shared", "options": ["rbind", "rw"]}
  ],
  "linux": {
    $linux_extra
    "namespaces": [$ns]
  }
}
EOF
}
