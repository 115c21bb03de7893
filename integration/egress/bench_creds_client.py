#!/usr/bin/env python3
"""The client of integration/egress/bench_creds.sh: POST /v1/messages over ONE kept-alive TLS
connection, as fast as Python goes (raw socket + ssl, a prebuilt request, Content-Length parsing
only). Runs in the client's place: inside a ward container or under `ip netns exec`.

    bench_creds_client.py HOST PORT lat N | rps SECONDS
        [--cafile FILE|init] [--proxy HOST:PORT] [--token-env VAR]

--cafile init: the CA bundle named by SSL_CERT_FILE in the environment of the container's init
(/proc/1/environ: what ward sets for the container), else in ours.
--proxy: a CONNECT tunnel through HOST:PORT first (mitmproxy in regular mode), then TLS to HOST
inside it (terminated by the proxy, which must be trusted by --cafile).
--token-env VAR: the request carries `Authorization: Bearer $VAR` (the placeholder inside ward's
container, the placeholder for mitmproxy's addon, the real secret direct).
lat N: 50 warm-up requests, then N timed one by one; prints {"times": [ms...], "errors": n}.
rps S: requests back to back for S seconds; prints {"requests": n, "seconds": s, "errors": n}.
Every response must be `HTTP/1.1 200`; anything else counts as an error (the first few shown).
"""
import argparse
import json
import os
import socket
import ssl
import sys
import time

BODY = b'{"model": "lab", "messages": [{"role": "user", "content": "hi"}]}'


def init_env(name):
    try:
        with open("/proc/1/environ", "rb") as f:
            for kv in f.read().split(b"\0"):
                k, _, v = kv.partition(b"=")
                if k.decode(errors="replace") == name:
                    return v.decode()
    except OSError:
        pass
    return os.environ.get(name)


def connect(host, port, cafile, proxy):
    if proxy:
        ph, _, pp = proxy.rpartition(":")
        s = socket.create_connection((ph, int(pp)), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(4096)
            if not d:
                raise OSError(f"proxy closed during CONNECT: {head!r}")
            head += d
        if head.split(b" ", 2)[1] != b"200":
            raise OSError(f"CONNECT refused: {head.splitlines()[0]!r}")
    else:
        s = socket.create_connection((host, port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx.wrap_socket(s, server_hostname=host)


class Conn:
    def __init__(self, s):
        self.s = s
        self.buf = b""

    def roundtrip(self, req):
        self.s.sendall(req)
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise OSError("connection closed")
            self.buf += d
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(rest) < length:
            d = self.s.recv(65536)
            if not d:
                raise OSError("connection closed in body")
            rest += d
        self.buf = rest[length:]
        status = head.split(b"\r\n", 1)[0]
        if not status.startswith(b"HTTP/1.1 200"):
            raise OSError(f"status {status!r}: {rest[:length][:160]!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("mode", choices=["lat", "rps"])
    ap.add_argument("amount", type=float)
    ap.add_argument("--cafile")
    ap.add_argument("--proxy")
    ap.add_argument("--token-env")
    a = ap.parse_args()
    cafile = init_env("SSL_CERT_FILE") if a.cafile == "init" else a.cafile
    auth = b""
    if a.token_env:
        tok = os.environ.get(a.token_env)
        if tok is None:
            sys.exit(f"bench_creds_client: no {a.token_env} in the environment")
        auth = b"Authorization: Bearer " + tok.encode() + b"\r\n"
    authority = a.host if a.port == 443 else f"{a.host}:{a.port}"
    req = (b"POST /v1/messages HTTP/1.1\r\nHost: " + authority.encode() + b"\r\n"
           b"Content-Type: application/json\r\n" + auth +
           b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)
    errors, first = 0, []
    c = Conn(connect(a.host, a.port, cafile, a.proxy))

    def one():
        nonlocal c, errors
        try:
            c.roundtrip(req)
            return True
        except (OSError, ssl.SSLError, ValueError) as e:
            errors += 1
            if len(first) < 3:
                first.append(f"{type(e).__name__}: {e}")
            c.s.close()
            c = Conn(connect(a.host, a.port, cafile, a.proxy))
            return False

    for _ in range(50):
        one()
    if a.mode == "lat":
        times = []
        for _ in range(int(a.amount)):
            t0 = time.perf_counter()
            if one():
                times.append((time.perf_counter() - t0) * 1000)
        print(json.dumps({"times": times, "errors": errors, "first_errors": first}))
    else:
        n, t0 = 0, time.perf_counter()
        end = t0 + a.amount
        while time.perf_counter() < end:
            for _ in range(20):
                if one():
                    n += 1
        dt = time.perf_counter() - t0
        print(json.dumps({"requests": n, "seconds": dt, "errors": errors, "first_errors": first}))


if __name__ == "__main__":
    main()
