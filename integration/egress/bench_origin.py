#!/usr/bin/env python3
"""A minimal HTTPS origin for integration/egress/bench_creds.sh: as fast as Python goes, so the
origin is not what the credential bench measures. Standard library only.

    bench_origin.py --port PORT --cert CERT --key KEY --ready FILE

One thread per connection, HTTP/1.1 keep-alive, TCP_NODELAY. Every request (any method, any
path; a Content-Length body is read and dropped) gets `200 {"ok": true}` in one write, except
`GET /stats`, which returns {"requests": N, "auth": {sha256(Authorization value): count}} so the
bench can prove the real secret (not the placeholder) reached the origin without the origin
being told the secret.
"""
import argparse
import hashlib
import json
import socket
import ssl
import threading

BODY = b'{"ok": true}\n'
RESP = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"X-Lab-Origin: bench\r\n\r\n" % len(BODY)) + BODY
LOCK = threading.Lock()
AUTH = {}
COUNT = [0]


def serve(conn):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                d = conn.recv(65536)
                if not d:
                    return
                buf += d
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length, auth = 0, b""
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    length = int(v.strip())
                elif k == b"authorization":
                    auth = v.strip()
            while len(buf) < length:
                d = conn.recv(65536)
                if not d:
                    return
                buf += d
            buf = buf[length:]
            h = hashlib.sha256(auth).hexdigest()
            with LOCK:
                COUNT[0] += 1
                AUTH[h] = AUTH.get(h, 0) + 1
            if lines[0].startswith(b"GET /stats "):
                with LOCK:
                    body = json.dumps({"requests": COUNT[0], "auth": AUTH}).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                conn.sendall(RESP)
    except (OSError, ValueError):
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ready", required=True)
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["http/1.1"])
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind(("::", a.port))
    ls.listen(512)
    with open(a.ready, "w") as f:
        f.write("ready\n")
    while True:
        c, _ = ls.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def run(c=c):
            try:
                c.settimeout(60)
                s = ctx.wrap_socket(c, server_side=True)
            except (OSError, ssl.SSLError):
                c.close()
                return
            serve(s)
        threading.Thread(target=run, daemon=True).start()


if __name__ == "__main__":
    main()
