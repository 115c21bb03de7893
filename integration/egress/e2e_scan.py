#!/usr/bin/env python3
"""Host-side searches for integration/egress/e2e_creds.sh: where do the secrets (and the
placeholders) occur? The values are read from files (one a line), never from argv or env, so this
process's command line carries none of them. One JSON line per call.

    e2e_scan.py --secrets FILE [--placeholders FILE] mem PID...
        every readable mapping of each process (/proc/PID/maps + /proc/PID/mem): {"pids",
        "regions", "bytes", "secret_hits": ["PID ADDR-RANGE PATHNAME", ...], "placeholder_hits":
        count, "errors": [...]}
    e2e_scan.py --secrets FILE [--placeholders FILE] files ROOT
        every regular file under ROOT (a container's /proc/PID/root), not following symlinks,
        skipping proc, sys, usr and dev (but not dev/shm): {"files", "secret_hits": [paths],
        "placeholder_hits": [paths], "errors": count}
    e2e_scan.py --secrets FILE paths PATH...
        files and directories (recursively) on the host, e.g. ward's state dir and logs:
        {"files", "secret_hits": [paths]}
    e2e_scan.py --secrets FILE stdin
        the text on stdin (e.g. `ps` output): {"bytes", "secret_hits": count}
"""
import json
import os
import re
import sys

CHUNK = 8 << 20


def load(path):
    if not path:
        return []
    with open(path, "rb") as f:
        return [l.strip() for l in f.read().split(b"\n") if l.strip()]


def count_in(data, needles):
    return sum(data.count(n) for n in needles)


def scan_mem(pids, secrets, phs):
    res = {"pids": len(pids), "regions": 0, "bytes": 0, "secret_hits": [], "placeholder_hits": 0, "errors": []}
    overlap = max([len(n) for n in secrets + phs] + [1])
    for pid in pids:
        try:
            maps = open(f"/proc/{pid}/maps").read().splitlines()
            mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
        except OSError as e:
            res["errors"].append(f"{pid}: {e}")
            continue
        with mem:
            for line in maps:
                parts = line.split(None, 5)
                rng, perms = parts[0], parts[1]
                name = parts[5] if len(parts) > 5 else ""
                if "r" not in perms or name in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                    continue
                lo, hi = (int(x, 16) for x in rng.split("-"))
                res["regions"] += 1
                pos, tail = lo, b""
                while pos < hi:
                    try:
                        mem.seek(pos)
                        data = mem.read(min(CHUNK, hi - pos))
                    except (OSError, ValueError, OverflowError):
                        break
                    if not data:
                        break
                    res["bytes"] += len(data)
                    win = tail + data
                    for s in secrets:
                        if s in win:
                            res["secret_hits"].append(f"{pid} {rng} {name}")
                    res["placeholder_hits"] += count_in(data, phs)
                    tail = win[-overlap:]
                    pos += len(data)
    res["secret_hits"] = sorted(set(res["secret_hits"]))
    return res


def walk(root, skip_top):
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d not in skip_top]
        elif rel == "dev":
            dirnames[:] = [d for d in dirnames if d == "shm"]
        for f in filenames:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p) and not os.path.islink(p):
                yield p


def scan_files(root, secrets, phs, skip_top):
    res = {"files": 0, "secret_hits": [], "placeholder_hits": [], "errors": 0}
    for p in walk(root, skip_top):
        try:
            with open(p, "rb") as f:
                data = f.read(256 << 20)
        except OSError:
            res["errors"] += 1
            continue
        res["files"] += 1
        rel = "/" + os.path.relpath(p, root)
        if count_in(data, secrets):
            res["secret_hits"].append(rel)
        if count_in(data, phs):
            res["placeholder_hits"].append(rel)
    return res


def main(argv):
    args = argv[1:]
    secrets, phs = [], []
    while args and args[0].startswith("--"):
        if args[0] == "--secrets":
            secrets = load(args[1])
        elif args[0] == "--placeholders":
            phs = load(args[1])
        args = args[2:]
    if not secrets:
        sys.exit("e2e_scan.py: no secrets to look for")
    cmd, rest = args[0], args[1:]
    if cmd == "mem":
        res = scan_mem([p for p in rest if re.fullmatch(r"[0-9]+", p)], secrets, phs)
    elif cmd == "files":
        res = scan_files(rest[0], secrets, phs, {"proc", "sys", "usr"})
    elif cmd == "paths":
        res = {"files": 0, "secret_hits": []}
        for p in rest:
            if os.path.isdir(p):
                r = scan_files(p, secrets, [], set())
                res["files"] += r["files"]
                res["secret_hits"] += [p + h for h in r["secret_hits"]]
            elif os.path.isfile(p):
                res["files"] += 1
                with open(p, "rb") as f:
                    if count_in(f.read(), secrets):
                        res["secret_hits"].append(p)
    elif cmd == "stdin":
        data = sys.stdin.buffer.read()
        res = {"bytes": len(data), "secret_hits": count_in(data, secrets)}
    else:
        sys.exit(f"e2e_scan.py: unknown command {cmd!r}")
    print(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv)
