#!/usr/bin/env python3
"""Writes the config.json of one e2e container (integration/egress/e2e.sh).

    e2e_bundle.py BUNDLE --rootfs DIR --netns PATH|new --cgroup PATH --ca FILE --helpers DIR
                  [--policy FILE --via field|annotation] [--hook-json FILE --ward BIN]
                  [--env-file FILE] [--pydeps DIR]

The rootfs is a skeleton made by e2e.sh (mount points, /etc files, merged-/usr links); the host's
/usr and /etc/ssl are bind-mounted read-only, the lab CA at /etc/lab-ca.pem, the helpers at /e2e.
The init sleeps; the checks run through `<runtime> exec`.
--pydeps DIR: bind-mounted read-only at /e2e-py (botocore for the AWS checks when the host's
/usr has none; the rootfs needs the mount point).
--env-file: KEY=VALUE lines added to process.env (credential values for issue 17's tests: read
from a file so they never appear in a command line).
--policy: the `process.interception` object (JSON file), put in the field or, with
`--via annotation`, in the `org.ward.interception` annotation.
--hook-json: a Podman/CRI-O hooks.d file (hooks/ of this repo): its hook goes into the config's
hooks for each of its stages (runc has no hooks.d of its own); a path whose basename is `ward` is
replaced by --ward, and each --hook-global ARG goes right after its argv[0] (ward's global flags:
--root for where its records go, --egress-resolver for the lab's names).
"""
import argparse
import json
import os

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def ro_bind(src, dst):
    return {"destination": dst, "type": "bind", "source": src,
            "options": ["rbind", "ro", "nosuid", "nodev"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--netns", required=True)
    ap.add_argument("--cgroup", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--helpers", required=True)
    ap.add_argument("--policy")
    ap.add_argument("--via", choices=["field", "annotation"], default="field")
    ap.add_argument("--hook-json")
    ap.add_argument("--ward")
    ap.add_argument("--hook-global", action="append", default=[])
    ap.add_argument("--env-file")
    ap.add_argument("--pydeps")
    a = ap.parse_args()

    netns = {"type": "network"}
    if a.netns != "new":
        netns["path"] = a.netns
    process = {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["sleep", "3600"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
        "cwd": "/",
        "capabilities": {k: CAPS for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
        "noNewPrivileges": True,
    }
    if a.env_file:
        with open(a.env_file) as f:
            process["env"] += [l.rstrip("\n") for l in f if "=" in l]
    config = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": os.path.abspath(a.rootfs), "readonly": True},
        "hostname": "e2e",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=1777"]},
            ro_bind("/usr", "/usr"),
            ro_bind("/etc/ssl", "/etc/ssl"),
            ro_bind(os.path.abspath(a.ca), "/etc/lab-ca.pem"),
            ro_bind(os.path.abspath(a.helpers), "/e2e"),
        ] + ([ro_bind(os.path.abspath(a.pydeps), "/e2e-py")] if a.pydeps else []),
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")] + [netns],
            "cgroupsPath": a.cgroup,
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }
    if a.policy:
        with open(a.policy) as f:
            policy = json.load(f)
        net = policy.get("network", {})
        if a.hook_json and net.pop("proxyEnv", False):
            # A hook cannot change the env runc has already set (ward hook egress refuses
            # proxyEnv): the variables go in process.env, as hooks/README.md tells runc users.
            # The first container of a network namespace gets slot 0, 198.18.0.1.
            for k, v in (("HTTP_PROXY", "http://198.18.0.1:3128"),
                         ("HTTPS_PROXY", "http://198.18.0.1:3128"),
                         ("ALL_PROXY", "socks5h://198.18.0.1:3128")):
                process["env"] += [f"{k}={v}", f"{k.lower()}={v}"]
        if a.via == "field":
            process["interception"] = policy
        else:
            config["annotations"] = {"org.ward.interception": json.dumps(policy)}
    if a.hook_json:
        # ward hook egress refuses CAP_NET_RAW (raw/packet sockets pass the cgroup wall; only
        # ward's own runtime can close them): the runc column drops it, as hooks/README.md says.
        for k in ("bounding", "effective", "permitted"):
            process["capabilities"][k] = [c for c in process["capabilities"][k] if c != "CAP_NET_RAW"]
        with open(a.hook_json) as f:
            hd = json.load(f)
        hook = dict(hd["hook"])
        if os.path.basename(hook["path"]) == "ward" and a.ward:
            hook["path"] = a.ward
            args = hook.get("args") or ["ward"]
            hook["args"] = args[:1] + a.hook_global + args[1:]
        hooks = config.setdefault("hooks", {})
        for stage in hd.get("stages", []):
            hooks.setdefault(stage, []).append(hook)
    path = os.path.join(a.bundle, "config.json")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(config, f, indent=1)


if __name__ == "__main__":
    main()
