#!/bin/bash
# Boots a throwaway pure-cgroup-v2 VM (Debian's 6.1 kernel under qemu TCG, an initramfs, no network)
# and runs integration/vm/tests/*.sh inside it against ward (or runc: RUNTIME=runc).
#
#   integration/vm/run.sh                     build target/release/ward, run every test
#   WARD=/path/to/ward integration/vm/run.sh  use that binary, build nothing
#   RUNTIME=runc integration/vm/run.sh        run the same tests against the host's runc
#   integration/vm/run.sh pids_max cpuset     run only these tests (names = file names minus .sh)
#   VM_TIMEOUT=300 VM_TEST_TIMEOUT=30         wall limit for the whole VM / for one test (seconds)
#   VM_VERBOSE=1                              show every test's output, not only the failed ones
#   VM_ACCEL=tcg                              qemu accelerator (/dev/kvm does not boot a stock kernel here)
#   VM_TESTS_DIR=dir                          take the tests from dir (integration/vm/bench.sh: bench/)
#   VM_EXTRA_BINS="crun hyperfine"            more host binaries for the VM, at /usr/bin with their libraries
#
# Cached under .work/vm/: the kernel .deb, vmlinuz and brd.ko (reused when present). The initramfs is
# rebuilt on every run (it takes a second). Exit status: 0 only when every expected test printed
# `RESULT <name> ok`.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
HERE=$REPO/integration/vm
TESTS_DIR=${VM_TESTS_DIR:-$HERE/tests}
WORK=$REPO/.work/vm
RUNTIME=${RUNTIME:-ward}
VM_TIMEOUT=${VM_TIMEOUT:-300}
VM_TEST_TIMEOUT=${VM_TEST_TIMEOUT:-30}
VM_ACCEL=${VM_ACCEL:-tcg}
mkdir -p "$WORK"

log() { echo "vm: $*" >&2; }
die() { echo "vm: error: $*" >&2; exit 2; }

for tool in qemu-system-x86_64 cpio gzip; do
    command -v "$tool" >/dev/null || die "$tool missing: apt-get install -y --no-install-recommends qemu-system-x86 cpio"
done
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: apt-get install busybox-static"
file_out=$(LC_ALL=C ldd "$BUSYBOX" 2>&1 || true)
case "$file_out" in *"not a dynamic"*|*"statically linked"*) ;; *) die "$BUSYBOX is not static (need busybox-static)";; esac

# ---------------------------------------------------------------- the kernel (cached)
. "$HERE/kernel.sh"   # sets KDIR (vmlinuz, brd.ko) and KVER; shared with integration/systemd-vm

# ---------------------------------------------------------------- the runtime binary
case "$RUNTIME" in
    ward)
        if [ -n "${WARD:-}" ]; then
            RT_BIN=$(command -v "$WARD") || die "WARD=$WARD not found"
        else
            log "make build"
            make -s -C "$REPO" --no-print-directory build >&2
            RT_BIN=$REPO/target/release/ward
        fi ;;
    runc) RT_BIN=$(command -v runc) || die "runc not found (apt-get install runc)" ;;
    *) die "RUNTIME must be ward or runc, not $RUNTIME" ;;
esac

# ---------------------------------------------------------------- the test list
TESTS=()
if [ $# -gt 0 ]; then
    for t in "$@"; do
        t=${t%.sh}; t=${t##*/}
        [ -f "$TESTS_DIR/$t.sh" ] || die "no test $TESTS_DIR/$t.sh"
        TESTS+=("$t")
    done
else
    for f in "$TESTS_DIR"/*.sh; do t=${f##*/}; TESTS+=("${t%.sh}"); done
fi
[ ${#TESTS[@]} -gt 0 ] || die "no tests in $TESTS_DIR"

# ---------------------------------------------------------------- the initramfs
IR=$WORK/initramfs
rm -rf "$IR"
mkdir -p "$IR"/{bin,sbin,usr/bin,usr/sbin,lib,proc,sys,dev,tmp,run,etc,tests,bundles/rootfs,newroot,root}
cp "$BUSYBOX" "$IR/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$IR/bin/$applet"
done

# The runtime at /usr/bin/<name>, with the shared libraries ldd names (the loader at its own path).
# Copying ldd's list is enough for a glibc-dynamic ward or runc and costs no second (LTO) build.
install -m 0755 "$RT_BIN" "$IR/usr/bin/$RUNTIME"
copy_libs() {
    local lib
    for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true); do
        [ -e "$IR$lib" ] && continue
        mkdir -p "$IR$(dirname "$lib")"
        cp -L "$lib" "$IR$lib"
    done
}
copy_libs "$RT_BIN"
for extra in ${VM_EXTRA_BINS:-}; do
    bin=$(command -v "$extra") || die "$extra (VM_EXTRA_BINS) not found on this host"
    install -m 0755 "$bin" "$IR/usr/bin/${bin##*/}"
    copy_libs "$bin"
done

cp "$KDIR/brd.ko" "$IR/lib/brd.ko"
cp "$HERE/init" "$IR/init"
cp "$HERE/lib.sh" "$IR/lib/vmtest.sh"
chmod 0755 "$IR/init"
for t in "${TESTS[@]}"; do cp "$TESTS_DIR/$t.sh" "$IR/tests/$t.sh"; done
cat > "$IR/etc/vmtest.conf" <<EOF
RUNTIME=$RUNTIME
RT=/usr/bin/$RUNTIME
TEST_TIMEOUT=$VM_TEST_TIMEOUT
VERBOSE=${VM_VERBOSE:-0}
EOF
echo 'root:x:0:0:root:/root:/bin/sh' > "$IR/etc/passwd"
echo 'root:x:0:' > "$IR/etc/group"

# The container rootfs template (shared, mounted read-only by every test's config): static busybox.
RF=$IR/bundles/rootfs
mkdir -p "$RF"/{bin,proc,sys,dev,tmp,etc,root,shared}
cp "$BUSYBOX" "$RF/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$RF/bin/$applet"
done
cp "$IR/etc/passwd" "$IR/etc/group" "$RF/etc/"

(cd "$IR" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) > "$WORK/initramfs.gz"

# ---------------------------------------------------------------- boot
CONSOLE=$WORK/console.log
log "booting kernel $KVER ($VM_ACCEL) with ${#TESTS[@]} tests against $RUNTIME ($RT_BIN); console: $CONSOLE"
start=$(date +%s)
qemu_status=0
timeout --kill-after=10 "$VM_TIMEOUT" qemu-system-x86_64 \
    -accel "$VM_ACCEL" -smp 2 -m 1024 \
    -display none -no-reboot -nic none \
    -serial "file:$CONSOLE" -monitor none \
    -kernel "$KDIR/vmlinuz" -initrd "$WORK/initramfs.gz" \
    -append "console=ttyS0 quiet loglevel=1 panic=-1" </dev/null >/dev/null 2>"$WORK/qemu.err" || qemu_status=$?
elapsed=$(( $(date +%s) - start ))
if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
    log "the VM hit the ${VM_TIMEOUT}s wall timeout"
elif [ "$qemu_status" -ne 0 ]; then
    log "qemu exited $qemu_status: $(cat "$WORK/qemu.err")"
fi

# ---------------------------------------------------------------- verdict
tr -d '\r' < "$CONSOLE" > "$CONSOLE.txt"
# Show the output of failed tests (the VM prints it between BEGIN/END markers).
if grep -q '^LOG-BEGIN ' "$CONSOLE.txt"; then
    sed -n '/^LOG-BEGIN /,/^LOG-END /p' "$CONSOLE.txt" | sed 's/^/  | /' >&2
fi
pass=0; failed=0; missing=0
echo "== ward VM (cgroup v2) tests against $RUNTIME, ${elapsed}s"
for t in "${TESTS[@]}"; do
    line=$(grep -a "^RESULT $t " "$CONSOLE.txt" | tail -n1 || true)
    case "$line" in
        "RESULT $t ok"*) pass=$((pass + 1)); echo "ok    $t" ;;
        "RESULT $t fail"*) failed=$((failed + 1)); echo "FAIL  $t: ${line#RESULT $t fail }" ;;
        *) missing=$((missing + 1)); failed=$((failed + 1)); echo "FAIL  $t: no RESULT line (VM died or timed out?)" ;;
    esac
done
if [ "$missing" -gt 0 ]; then
    echo "-- last console lines:"; tail -n 20 "$CONSOLE.txt"
fi
echo "vm: $pass passed, $failed failed"
[ "$failed" -eq 0 ]
