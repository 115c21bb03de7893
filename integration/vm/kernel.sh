# Sourced by integration/vm/run.sh and integration/systemd-vm/run.sh (bash): fetches Debian's
# 6.1 kernel package once into $WORK (the caller's .work/vm) and unpacks only boot/vmlinuz and
# brd.ko into $WORK/kernel/. Needs WORK, log and die from the caller; sets KDIR and KVER.
KDIR=$WORK/kernel
if [ ! -s "$KDIR/vmlinuz" ] || [ ! -s "$KDIR/brd.ko" ]; then
    deb=$(ls "$WORK"/linux-image-6.1.*-amd64_*.deb 2>/dev/null | grep -v unsigned | tail -n1 || true)
    if [ -z "$deb" ]; then
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: *\(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
        [ -n "$pkg" ] || die "apt-cache depends linux-image-amd64 gave no kernel package (run apt-get update first)"
        log "downloading $pkg (about 70 MB, once)"
        (cd "$WORK" && apt-get download "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || die "apt-get download $pkg failed"
        deb=$(ls "$WORK"/"$pkg"_*.deb | tail -n1)
    fi
    log "extracting $(basename "$deb")"
    rm -rf "$WORK/extract" "$KDIR"
    mkdir -p "$WORK/extract" "$KDIR"
    # only vmlinuz and brd.ko: the package unpacks to ~400 MB of modules we do not need
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$WORK/extract" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/block/brd.ko*'
    cp "$WORK"/extract/boot/vmlinuz-* "$KDIR/vmlinuz"
    kver=$(basename "$WORK"/extract/lib/modules/*)
    brd=$(find "$WORK/extract/lib/modules/$kver" -name 'brd.ko*' | head -n1)
    [ -n "$brd" ] || die "brd.ko not found in $deb"
    case "$brd" in
        *.ko) cp "$brd" "$KDIR/brd.ko" ;;
        *.ko.xz) xz -dc "$brd" > "$KDIR/brd.ko" ;;   # busybox insmod cannot read compressed modules
        *.ko.zst) zstd -dc "$brd" > "$KDIR/brd.ko" ;;
        *) die "unexpected module $brd" ;;
    esac
    echo "$kver" > "$KDIR/version"
    rm -rf "$WORK/extract"
fi
KVER=$(cat "$KDIR/version")
