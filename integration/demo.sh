#!/bin/bash
# Demo: run a busybox container with ward. Needs root and `make build` first.
# WARD=/path/to/runtime overrides the binary (e.g. WARD=runc to compare).
set -euo pipefail
cd "$(dirname "$0")/.."

WARD="${WARD:-$PWD/target/release/ward}"
BUNDLE="$PWD/.work/demo"
STATE="$PWD/.work/demo/state"
ID="demo-$$"

if [ "$(id -u)" -ne 0 ]; then echo "demo: run as root (containers need it)" >&2; exit 1; fi
if [ ! -x /bin/busybox ]; then echo "demo: /bin/busybox missing: apt-get install busybox-static" >&2; exit 1; fi
if ! command -v "$WARD" >/dev/null; then echo "demo: $WARD not found: run 'make build' first" >&2; exit 1; fi
if ! command -v python3 >/dev/null; then echo "demo: python3 missing: apt-get install python3" >&2; exit 1; fi

echo "== building a busybox rootfs in $BUNDLE/rootfs"
rm -rf "$BUNDLE/rootfs" "$BUNDLE/config.json"
mkdir -p "$BUNDLE"/rootfs/{bin,proc,sys,dev,tmp,etc,root} "$STATE"
cp /bin/busybox "$BUNDLE/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$BUNDLE/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$BUNDLE/rootfs/etc/passwd"
echo 'root:x:0:' > "$BUNDLE/rootfs/etc/group"

echo "== $WARD spec"
(cd "$BUNDLE" && "$WARD" spec)

python3 - "$BUNDLE/config.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["process"]["terminal"] = False
config["hostname"] = "ward-demo"
config["process"]["args"] = ["sh", "-c", """
echo "hello from inside a ward container"
echo "hostname: $(hostname)"
echo "id:       $(id)"
echo "kernel:   $(uname -r)"
echo "ls /:     $(ls / | tr '\\n' ' ')"
echo "pid 1 view (ps):"; ps -o pid,user,comm
if touch /etc/x 2>/dev/null; then echo "touch /etc/x: succeeded (root is writable!)"; else echo "touch /etc/x: refused, the root filesystem is read-only"; fi
"""]
json.dump(config, open(path, "w"), indent=2)
PY

echo "== $WARD run $ID"
status=0
"$WARD" --root "$STATE" run --bundle "$BUNDLE" "$ID" </dev/null || status=$?
"$WARD" --root "$STATE" delete --force "$ID" >/dev/null 2>&1 || true
echo "== container exited with status $status"
exit "$status"
