#!/usr/bin/env python3
"""Peak memory of a command and everything it starts: `peak.py CMD [ARGS...]`.

Prints `tree_kib maxrss_kib`: the largest sum of VmRSS over the command's process tree seen by
polling /proc every millisecond (misses what lives less than that), and the kernel's
ru_maxrss for the waited-for tree (the largest single process, never a sum). Exit status:
the command's."""
import os
import sys
import time


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    pid = os.fork()
    if pid == 0:
        os.execvp(sys.argv[1], sys.argv[1:])
    peak = 0
    while True:
        done, status, ru = os.wait4(pid, os.WNOHANG)
        if done:
            break
        tree, todo = 0, [pid]
        while todo:
            p = todo.pop()
            tree += rss_kib(p)
            todo += children(p)
        peak = max(peak, tree)
        time.sleep(0.001)
    print(peak, ru.ru_maxrss)
    sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)


main()
