#!/bin/bash
# Boots a throwaway VM with systemd as PID 1 on a pure cgroup v2 hierarchy (Debian's 6.1 kernel
# under qemu TCG, a Debian bookworm minbase tree as the initramfs, no network) and runs
# integration/systemd-vm/tests/*.sh inside it, from a unit of its own, against the runtime's
# systemd cgroup driver (`RUNTIME --systemd-cgroup ...`).
#
#   integration/systemd-vm/run.sh                     build ward and the CRI test client, run every test
#   WARD=/path/to/ward CRI_TEST=/path/to/cri-test     use these binaries, build nothing
#   RUNTIME=runc integration/systemd-vm/run.sh        the same tests against the host's runc
#   integration/systemd-vm/run.sh update kubepods     only these tests (file names minus .sh)
#   VM_TIMEOUT=600 VM_TEST_TIMEOUT=90                 wall limit for the VM / for one test (seconds)
#   VM_VERBOSE=1                                      show every test's output, not only failures
#
# Cached: the kernel in .work/vm/kernel (shared with integration/vm), the Debian tree in
# target/systemd-vm/image-<hash of its inputs>/rootfs.cpio (build-image.sh; needs root the first
# time). Per run only a small overlay (runtime, tests, unit, busybox bundle) is packed and appended.
# Exit status: 0 only when every expected test printed `RESULT <name> ok`; 2 on a setup error.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
HERE=$REPO/integration/systemd-vm
WORK=$REPO/.work/vm            # the kernel cache, shared with integration/vm
OUT=$REPO/target/systemd-vm
RUNTIME=${RUNTIME:-ward}
VM_TIMEOUT=${VM_TIMEOUT:-600}
VM_TEST_TIMEOUT=${VM_TEST_TIMEOUT:-90}
VM_ACCEL=${VM_ACCEL:-tcg}
VM_MEM=${VM_MEM:-2048}
mkdir -p "$WORK" "$OUT"

log() { echo "systemd-vm: $*" >&2; }
die() { echo "systemd-vm: error: $*" >&2; exit 2; }

for tool in qemu-system-x86_64 cpio gzip; do
    command -v "$tool" >/dev/null || die "$tool missing: apt-get install -y --no-install-recommends qemu-system-x86 cpio debootstrap"
done
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: apt-get install busybox-static"
case "$(LC_ALL=C ldd "$BUSYBOX" 2>&1 || true)" in
    *"not a dynamic"*|*"statically linked"*) ;; *) die "$BUSYBOX is not static (need busybox-static)" ;;
esac

# ---------------------------------------------------------------- kernel and image (cached)
. "$REPO/integration/vm/kernel.sh"
IMAGE=$("$HERE/build-image.sh") || die "the image could not be built"

# ---------------------------------------------------------------- the binaries
# The cri test (integration/cri, built with --features cri) needs ward and runc side by side, so
# ward is in the VM in every mode: `make build` gives target/release/ward.
build_cri_test() {
    command -v protoc >/dev/null || die "protoc missing (the CRI test client): apt-get install protobuf-compiler"
    log "make cri-test-path (the CRI test client, built as make integration-cri builds it)"
    CRI_TEST=$(nice make -s -C "$REPO" --no-print-directory cri-test-path 2>"$OUT/cargo.err") || true
    [ -x "${CRI_TEST:-}" ] || die "building the CRI test failed: $(tail -n 20 "$OUT/cargo.err")"
}
if [ -n "${WARD:-}" ]; then
    WARD_BIN=$(command -v "$WARD") || die "WARD=$WARD not found"
    if [ -n "${CRI_TEST:-}" ]; then
        [ -x "$CRI_TEST" ] || die "CRI_TEST=$CRI_TEST is not an executable"
    else
        build_cri_test
    fi
else
    build_cri_test
    log "make build (target/release/ward)"
    nice make -s -C "$REPO" --no-print-directory build >&2 || die "make build failed"
    WARD_BIN=$REPO/target/release/ward
fi
case "$RUNTIME" in
    ward) RT_BIN=$WARD_BIN ;;
    runc) RT_BIN=$(command -v runc) || die "runc not found (apt-get install runc)" ;;
    *) die "RUNTIME must be ward or runc, not $RUNTIME" ;;
esac
# containerd, its runc shim and ctr, and runc (the CRI test's second handler) from this host's
# Debian packages: the same bookworm as the image, so their libraries are there.
HOST_BINS=()
for b in containerd containerd-shim-runc-v2 ctr runc; do
    p=$(command -v "$b") || die "$b missing: apt-get install containerd runc"
    HOST_BINS+=("$p")
done

# ---------------------------------------------------------------- the test list
TESTS=()
if [ $# -gt 0 ]; then
    for t in "$@"; do
        t=${t%.sh}; t=${t##*/}
        [ -f "$HERE/tests/$t.sh" ] || die "no test $HERE/tests/$t.sh"
        TESTS+=("$t")
    done
else
    for f in "$HERE"/tests/*.sh; do t=${f##*/}; TESTS+=("${t%.sh}"); done
fi
[ ${#TESTS[@]} -gt 0 ] || die "no tests in $HERE/tests"

# ---------------------------------------------------------------- the per-run overlay
# Unpacked by the kernel over the image (a later cpio in the same initrd replaces earlier files).
OV=$OUT/overlay
rm -rf "$OV"
V=$OV/usr/local/lib/vmtest
mkdir -p "$V/tests" "$OV/usr/local/bin" "$OV/etc/systemd/system/multi-user.target.wants" "$OV/bundles/rootfs"
cp "$BUSYBOX" "$V/busybox"
install -m 0755 "$HERE/init" "$OV/init"
install -m 0755 "$HERE/runner.sh" "$V/runner.sh"
cp "$HERE/lib.sh" "$V/lib.sh"
for t in "${TESTS[@]}"; do cp "$HERE/tests/$t.sh" "$V/tests/$t.sh"; done
cat > "$V/vmtest.conf" <<CONF
RUNTIME=$RUNTIME
RT=/usr/local/bin/$RUNTIME
ROOT=/run/vmtest-$RUNTIME
TEST_TIMEOUT=$VM_TEST_TIMEOUT
VERBOSE=${VM_VERBOSE:-0}
CONF
# The Debian tree has glibc, libgcc_s and libseccomp already (same bookworm as this host); copy
# whatever else ldd names.
install_bin() {  # install_bin SOURCE DEST
    install -D -m 0755 "$1" "$OV$2"
    for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true); do
        case "$lib" in /lib64/ld-linux*|*/libc.so.*|*/libm.so.*|*/libgcc_s.so.*|*/libseccomp.so.*|*/libpthread.so.*|*/libdl.so.*|*/librt.so.*) continue ;; esac
        mkdir -p "$OV$(dirname "$lib")"; cp -L "$lib" "$OV$lib"
    done
}
install_bin "$WARD_BIN" /usr/local/bin/ward
install_bin "$RT_BIN" "/usr/local/bin/$RUNTIME"
for b in "${HOST_BINS[@]}"; do install_bin "$b" "/usr/local/bin/${b##*/}"; done
install_bin "$CRI_TEST" /usr/local/lib/vmtest/cri-test
install_bin "$BUSYBOX" /usr/bin/busybox    # the CRI test builds its images from it
# minbase has no /etc/hosts; containerd's CRI copies the host's into every pod
mkdir -p "$OV/etc"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$OV/etc/hosts"
cp "$HERE/vmtest.service" "$OV/etc/systemd/system/vmtest.service"
ln -s ../vmtest.service "$OV/etc/systemd/system/multi-user.target.wants/vmtest.service"
# Units that wait for devices udev would announce (minbase has no udev) or for a person.
for u in serial-getty@ttyS0.service getty@tty1.service systemd-firstboot.service \
         console-getty.service systemd-networkd-wait-online.service; do
    ln -s /dev/null "$OV/etc/systemd/system/$u"
done
# The container rootfs template (shared, read-only in every config): static busybox.
RF=$OV/bundles/rootfs
mkdir -p "$RF"/{bin,proc,sys,dev,tmp,etc,root,shared}
cp "$BUSYBOX" "$RF/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$RF/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$RF/etc/passwd"
echo 'root:x:0:' > "$RF/etc/group"
(cd "$OV" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) > "$OUT/overlay.cpio.gz"
cat "$IMAGE" "$OUT/overlay.cpio.gz" > "$OUT/initrd.img"

# ---------------------------------------------------------------- boot
CONSOLE=$OUT/console.log
log "booting kernel $KVER ($VM_ACCEL, ${VM_MEM} MB) into systemd, ${#TESTS[@]} tests against $RUNTIME ($RT_BIN); console: $CONSOLE"
start=$(date +%s)
qemu_status=0
timeout --kill-after=10 "$VM_TIMEOUT" nice qemu-system-x86_64 \
    -accel "$VM_ACCEL" -smp 2 -m "$VM_MEM" \
    -display none -no-reboot -nic none \
    -serial "file:$CONSOLE" -monitor none \
    -kernel "$KDIR/vmlinuz" -initrd "$OUT/initrd.img" \
    -append "console=ttyS0 quiet loglevel=1 panic=-1 systemd.show_status=auto systemd.unified_cgroup_hierarchy=1" \
    </dev/null >/dev/null 2>"$OUT/qemu.err" || qemu_status=$?
elapsed=$(( $(date +%s) - start ))
if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
    log "the VM hit the ${VM_TIMEOUT}s wall timeout"
elif [ "$qemu_status" -ne 0 ]; then
    log "qemu exited $qemu_status: $(cat "$OUT/qemu.err")"
fi

# ---------------------------------------------------------------- verdict
tr -d '\r' < "$CONSOLE" > "$CONSOLE.txt"
grep -a -E '^(init|runner): ' "$CONSOLE.txt" | sed 's/^/  /' >&2 || true
if grep -q '^LOG-BEGIN ' "$CONSOLE.txt"; then
    sed -n '/^LOG-BEGIN /,/^LOG-END /p' "$CONSOLE.txt" | sed 's/^/  | /' >&2
fi
pass=0; failed=0; missing=0; gaps=0
echo "== systemd VM tests against $RUNTIME --systemd-cgroup, ${elapsed}s"
for t in "${TESTS[@]}"; do
    line=$(grep -a "^RESULT $t " "$CONSOLE.txt" | tail -n1 || true)
    case "$line" in
        "RESULT $t ok"*) pass=$((pass + 1)); echo "ok    $t ${line#RESULT $t ok }" ;;
        "RESULT $t gap"*)   # a check the reference runc is known not to pass (RUNTIME=runc only)
            if [ "$RUNTIME" = runc ]; then gaps=$((gaps + 1)); echo "gap   $t (runc): ${line#RESULT $t gap }"
            else failed=$((failed + 1)); echo "FAIL  $t: ${line#RESULT $t gap }"; fi ;;
        "RESULT $t fail"*) failed=$((failed + 1)); echo "FAIL  $t: ${line#RESULT $t fail }" ;;
        *) missing=$((missing + 1)); failed=$((failed + 1)); echo "FAIL  $t: no RESULT line (VM died or timed out?)" ;;
    esac
done
if [ "$missing" -gt 0 ]; then
    echo "-- last console lines:"; tail -n 30 "$CONSOLE.txt"
fi
[ "$gaps" -eq 0 ] || echo "systemd-vm: $gaps known runc gap(s), not counted as failures"
echo "systemd-vm: $pass passed, $failed failed"
[ "$failed" -eq 0 ]
