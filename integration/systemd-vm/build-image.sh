#!/bin/bash
# Builds (once) the root tree of the systemd VM: a Debian bookworm minbase with systemd as init and
# dbus, stripped of docs, packed as an uncompressed newc cpio. Prints the cpio's path.
#
# Cached under target/systemd-vm/image-<key>/ where <key> hashes every input: this script, the
# suite, the package list and the mirror. A second call with the same inputs only prints the path.
# Needs root (debootstrap chroots) and `debootstrap cpio` (apt). ~3 minutes through the mirror.
#
#   SDVM_MIRROR=http://...   Debian mirror (default: the first URI of this machine's apt sources)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
SUITE=bookworm
# dbus-user-session: the session bus of a user's systemd instance (rootless --systemd-cgroup)
INCLUDE=systemd,systemd-sysv,dbus,dbus-user-session

log() { echo "systemd-vm: $*" >&2; }
die() { echo "systemd-vm: error: $*" >&2; exit 2; }

mirror_from_apt() {
    local m
    # deb822 sources (URIs: ...) first, then one-line sources (deb URL suite ...)
    m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
    [ -n "$m" ] || m=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
        grep -v security | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | head -n1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=${SDVM_MIRROR:-$(mirror_from_apt)}

KEY=$( { cat "$0"; echo "$SUITE $INCLUDE $MIRROR"; } | sha256sum | cut -c1-16)
OUT=$REPO/target/systemd-vm/image-$KEY
if [ -s "$OUT/rootfs.cpio" ] && [ -e "$OUT/done" ]; then
    echo "$OUT/rootfs.cpio"; exit 0
fi

[ "$(id -u)" = 0 ] || die "building the image needs root (debootstrap); it is cached afterwards"
command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install -y --no-install-recommends debootstrap"
command -v cpio >/dev/null || die "cpio missing: apt-get install -y cpio"

rm -rf "$REPO"/target/systemd-vm/image-*   # older images (other inputs): ~250 MB each
mkdir -p "$OUT"
TREE=$OUT/tree
start=$(date +%s)
log "debootstrap --variant=minbase --include=$INCLUDE $SUITE from $MIRROR (once; a few minutes)"
if ! nice debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$TREE" "$MIRROR" >"$OUT/debootstrap.log" 2>&1; then
    tail -n 20 "$OUT/debootstrap.log" >&2
    die "debootstrap failed (log: $OUT/debootstrap.log)"
fi

# Nothing the VM reads: docs, man pages, locales, apt's caches and lists.
rm -rf "$TREE"/usr/share/{doc,man,info,locale}/* "$TREE"/var/cache/apt/* "$TREE"/var/lib/apt/lists/* \
       "$TREE"/var/cache/debconf/*-old "$TREE"/var/log/*.log
# A machine-id, so that systemd does not treat the boot as a first boot (systemd-firstboot would
# prompt on the console); the same id every boot is fine for a throwaway VM.
echo 5e1f0c0d0e0a4b1c9d2e3f405162738a > "$TREE/etc/machine-id"
echo ward-sdvm > "$TREE/etc/hostname"
# The rootless tests' user: its systemd instance (user@1000.service) is started by the test.
chroot "$TREE" useradd --uid 1000 --create-home --shell /bin/bash wuser
: > "$TREE/etc/fstab"
# /newroot: where the /init of the per-run overlay copies the tree before switch_root (a
# container's pivot_root cannot work on the initramfs itself).
mkdir -p "$TREE/newroot"

size_tree=$(du -sm "$TREE" | cut -f1)
(cd "$TREE" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$OUT/rootfs.cpio.tmp"
mv "$OUT/rootfs.cpio.tmp" "$OUT/rootfs.cpio"
rm -rf "$TREE"
touch "$OUT/done"
log "image built in $(( $(date +%s) - start ))s: tree ${size_tree} MB, cpio $(( $(stat -c %s "$OUT/rootfs.cpio") / 1048576 )) MB ($OUT)"
echo "$OUT/rootfs.cpio"
