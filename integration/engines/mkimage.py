#!/usr/bin/env python3
"""Build a busybox image offline, as an OCI image-layout tarball (for `ctr images import`)
and as a plain rootfs tarball (for `docker import`).

usage: mkimage.py BUSYBOX OUTDIR IMAGE_REF
writes OUTDIR/rootfs.tar and OUTDIR/oci.tar
"""
import hashlib, io, json, os, subprocess, sys, tarfile, time

busybox, outdir, ref = sys.argv[1:4]
os.makedirs(outdir, exist_ok=True)

applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()

def add(tf, name, typ=tarfile.DIRTYPE, mode=0o755, data=None, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime, ti.linkname = typ, mode, 0, linkname
    ti.uid = ti.gid = 0
    if data is not None:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
    for d in ["bin", "dev", "etc", "proc", "sys", "tmp", "root", "var", "run", "usr", "usr/bin", "sbin"]:
        add(tf, d, mode=0o1777 if d == "tmp" else 0o755)
    with open(busybox, "rb") as f:
        add(tf, "bin/busybox", tarfile.REGTYPE, 0o755, f.read())
    for a in sorted(set(applets)):
        if a != "busybox":
            add(tf, "bin/" + a, tarfile.SYMTYPE, 0o777, linkname="busybox")
    add(tf, "etc/passwd", tarfile.REGTYPE, 0o644, b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    add(tf, "etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\nnobody:x:65534:\n")
layer = buf.getvalue()
with open(os.path.join(outdir, "rootfs.tar"), "wb") as f:
    f.write(layer)

def sha(b): return "sha256:" + hashlib.sha256(b).hexdigest()

config = json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["sh"], "WorkingDir": "/"},
    "rootfs": {"type": "layers", "diff_ids": [sha(layer)]},
    "history": [{"created_by": "ward integration mkimage.py"}],
}, sort_keys=True).encode()
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer), "size": len(layer)}],
}, sort_keys=True).encode()
index = json.dumps({
    "schemaVersion": 2,
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
                   "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"},
                   "annotations": {"io.containerd.image.name": ref,
                                   "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1]}}],
}, sort_keys=True).encode()

with tarfile.open(os.path.join(outdir, "oci.tar"), "w") as tf:
    add(tf, "blobs")
    add(tf, "blobs/sha256")
    for b in (layer, config, manifest):
        add(tf, "blobs/sha256/" + sha(b)[7:], tarfile.REGTYPE, 0o644, b)
    add(tf, "oci-layout", tarfile.REGTYPE, 0o644, b'{"imageLayoutVersion":"1.0.0"}')
    add(tf, "index.json", tarfile.REGTYPE, 0o644, index)
