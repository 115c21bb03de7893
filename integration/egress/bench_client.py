#!/usr/bin/env python3
"""Latency of new connections for integration/egress/bench.sh (runs in the client's place:
inside a container, or under `ip netns exec`). Standard library only.

    bench_client.py NAME http|https N [--proxy HOST:PORT|env] [--cafile FILE]

Each of N (+ a few warm-up) requests opens a new TCP connection, sends `GET / HTTP/1.1` with
`Connection: close` and reads the response to EOF; the time is from before connect() to EOF.
NAME is resolved once before the loop (so the loop times connections, not DNS). Without
--proxy the connection goes to NAME itself (directly, or ward's transparent listener when the
container's DNS answered with a slot address); --proxy sends absolute-form GET (http) or a
CONNECT tunnel with TLS inside, not terminated by the proxy (https); `--proxy env` takes it from
HTTP_PROXY / HTTPS_PROXY as `proxyEnv: true` sets them. Prints one JSON line: the times in
milliseconds, the number of errors and the first few, the address NAME resolved to.
"""
import argparse
import json
import os
import socket
import ssl
import sys
import time
import urllib.parse

WARMUP = 5


def proxy_from(arg, scheme):
    if arg == "env":
        arg = os.environ.get("HTTPS_PROXY" if scheme == "https" else "HTTP_PROXY", "")
        if not arg:
            raise SystemExit(f"bench_client: no {scheme.upper()}_PROXY in the environment")
    u = urllib.parse.urlsplit(arg if "://" in arg else "http://" + arg)
    return (u.hostname, u.port or 3128)


def read_all(s):
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def one(name, scheme, addr, proxy, ctx):
    port = 443 if scheme == "https" else 80
    t0 = time.perf_counter()
    s = socket.create_connection(proxy or (addr, port), timeout=10)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        target = "/"
        if proxy and scheme == "https":
            s.sendall(f"CONNECT {name}:{port} HTTP/1.1\r\nHost: {name}:{port}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                b = s.recv(4096)
                if not b:
                    raise OSError(f"proxy closed during CONNECT: {head!r}")
                head += b
            if not head.split(b" ", 2)[1].startswith(b"200"):
                raise OSError(f"CONNECT refused: {head.splitlines()[0]!r}")
        elif proxy:
            target = f"http://{name}/"
        if scheme == "https":
            s = ctx.wrap_socket(s, server_hostname=name)
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        resp = read_all(s)
    finally:
        s.close()
    dt = time.perf_counter() - t0
    want = f"hello from {name}".encode()
    if not resp.startswith(b"HTTP/1.1 200") or not resp.rstrip().endswith(want):
        raise OSError(f"unexpected response: {resp[:120]!r}...{resp[-40:]!r}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("scheme", choices=["http", "https"])
    ap.add_argument("n", type=int)
    ap.add_argument("--proxy")
    ap.add_argument("--cafile")
    a = ap.parse_args()
    name, scheme, n = a.name, a.scheme, a.n
    proxy = proxy_from(a.proxy, scheme) if a.proxy else None
    ctx = ssl.create_default_context(cafile=a.cafile)
    addr = None if proxy else socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0]
    times, errors = [], []
    for i in range(WARMUP + n):
        try:
            dt = one(name, scheme, addr, proxy, ctx)
            if i >= WARMUP:
                times.append(dt * 1000)
        except (OSError, ssl.SSLError) as e:
            errors.append(f"{type(e).__name__}: {e}")
    print(json.dumps({"times": times, "errors": len(errors), "first_errors": errors[:3], "addr": addr}))

if __name__ == "__main__":
    main()
