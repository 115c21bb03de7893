#!/usr/bin/python3
"""Clients run INSIDE the e2e containers (integration/egress/e2e.sh); one JSON line per call.

    curl ARGS...            curl -sS with ARGS; {"rc","code","connect","body","denied","err"}
    urllib URL CAFILE       Python's urllib (honours proxy variables; e2e.sh gives it none)
    raw NAME PORT PATH      a client that ignores proxy variables: getaddrinfo + socket + HTTP/1.1
    connect IP PORT         a raw TCP connect(): {"result": "ok" | "EPERM" | other errno name}
    dns SERVER NAME TYPE [udp|udpc|tcp]
                            one DNS query sent straight to SERVER:53 (UDP with sendto, connected
                            UDP, or TCP):
                            {"rcode", "answers": [A/AAAA as text, other types as "TYPEn"],
                             "from": the reply's source (UDP) or the peer (TCP)}
    intact BASE-URL N FILE [CURL-ARGS...]
                            curl downloads BASE/bytes/N (N zeros) and uploads FILE to BASE/echo:
                            {"down": "ok"|what went wrong, "up": "ok"|what went wrong}
    flood NAME PORT N       opens N TCP connections to NAME:PORT, each with an unfinished HTTP
                            head, waits 2 s, counts those the peer closed: {"opened", "connect_failed", "closed_by_peer"}
    environ                 the proxy variables of the container's init (/proc/1/environ)

Standard library only: the container's rootfs is the host's /usr, read-only.
"""
import errno
import json
import os
import random
import socket
import struct
import subprocess
import sys

TIMEOUT = 10
TYPES = {"A": 1, "AAAA": 28, "TXT": 16, "HTTPS": 65}


def out(obj):
    print(json.dumps(obj, sort_keys=True))


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if getattr(e, "errno", None) else repr(e)


def cmd_curl(args):
    body, hdrs = "/tmp/e2e-body", "/tmp/e2e-headers"
    for f in (body, hdrs):
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass
    p = subprocess.run(
        ["curl", "-sS", "--max-time", str(TIMEOUT), "-o", body, "-D", hdrs,
         "-w", "%{http_code} %{http_connect}"] + args,
        capture_output=True, text=True)
    code, _, connect = p.stdout.strip().partition(" ")
    denied = None
    headers = ""
    if os.path.exists(hdrs):
        with open(hdrs, errors="replace") as f:
            headers = f.read()
        for line in headers.splitlines():
            k, _, v = line.partition(":")
            if k.strip().lower() == "x-ward-denied":
                denied = v.strip()
    text = ""
    if os.path.exists(body):
        with open(body, "rb") as f:
            text = f.read(2000).decode(errors="replace")
    out({"rc": p.returncode, "code": code, "connect": connect, "body": text,
         "denied": denied, "err": p.stderr.strip()[-300:]})


def cmd_urllib(url, cafile):
    import ssl
    import urllib.error
    import urllib.request
    ctx = ssl.create_default_context(cafile=cafile)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT, context=ctx) as r:
            out({"code": str(r.status), "body": r.read(2000).decode(errors="replace"), "err": ""})
    except urllib.error.HTTPError as e:
        out({"code": str(e.code), "body": e.read(2000).decode(errors="replace"), "err": str(e)})
    except Exception as e:  # the check wants the failure's text, whatever it is
        out({"code": "000", "body": "", "err": repr(e)[-300:]})


def cmd_raw(name, port, path):
    try:
        infos = socket.getaddrinfo(name, int(port), socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as e:
        out({"code": "000", "addr": None, "body": "", "err": "getaddrinfo: %s" % e})
        return
    addr = infos[0][4]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect(addr)
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, name)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        out({"code": "000", "addr": addr[0], "body": "", "err": err_name(e)})
        return
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split(b" ")
    code = status[1].decode() if len(status) > 1 else "000"
    out({"code": code, "addr": addr[0], "body": body[:2000].decode(errors="replace"), "err": ""})


def cmd_connect(ip, port):
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((ip, int(port)))
        out({"result": "ok"})
    except socket.timeout:
        out({"result": "timeout"})
    except OSError as e:
        out({"result": err_name(e)})
    finally:
        s.close()


def encode_name(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"


def skip_name(msg, i):
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += n + 1


def cmd_dns(server, name, qtype, proto="udp"):
    tid = random.randrange(65536)
    q = struct.pack(">HHHHHH", tid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack(">HH", TYPES[qtype], 1)
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    try:
        if proto == "tcp":
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect((server, 53))
            s.sendall(struct.pack(">H", len(q)) + q)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            msg = buf[2:]
            src = s.getpeername()
        elif proto == "udpc":  # connected UDP, as glibc's resolver
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(5)
            s.connect((server, 53))
            s.send(q)
            msg, src = s.recvfrom(4096)
        else:  # unconnected UDP (sendto), as musl's resolver
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(5)
            s.sendto(q, (server, 53))
            msg, src = s.recvfrom(4096)
        s.close()
    except socket.timeout:
        out({"rcode": None, "answers": [], "err": "timeout"})
        return
    except OSError as e:
        out({"rcode": None, "answers": [], "err": err_name(e)})
        return
    rid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
    i = 12
    for _ in range(qd):
        i = skip_name(msg, i) + 4
    answers = []
    for _ in range(an):
        i = skip_name(msg, i)
        t, _c, _ttl, ln = struct.unpack(">HHIH", msg[i:i + 10])
        data = msg[i + 10:i + 10 + ln]
        i += 10 + ln
        if t == 1:
            answers.append(socket.inet_ntop(socket.AF_INET, data))
        elif t == 28:
            answers.append(socket.inet_ntop(socket.AF_INET6, data))
        else:
            answers.append("TYPE%d" % t)
    out({"rcode": flags & 0xF, "answers": answers, "id_ok": rid == tid, "from": src[0], "err": ""})


def cmd_intact(base, n, path, *extra):
    import hashlib
    n = int(n)
    res = {}
    p = subprocess.run(["curl", "-sS", "--max-time", "60", "-o", "/tmp/e2e-down"] + list(extra) + [base + "/bytes/%d" % n],
                       capture_output=True, text=True)
    if p.returncode != 0:
        res["down"] = "curl rc=%d %s" % (p.returncode, p.stderr.strip()[-200:])
    else:
        with open("/tmp/e2e-down", "rb") as f:
            data = f.read()
        res["down"] = "ok" if data == bytes(n) else "got %d bytes (%d non-zero), want %d zeros" % (
            len(data), sum(1 for b in data if b), n)
        os.unlink("/tmp/e2e-down")
    with open(path, "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    size = os.path.getsize(path)
    p = subprocess.run(["curl", "-sS", "--max-time", "60", "--data-binary", "@" + path] + list(extra) + [base + "/echo"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        res["up"] = "curl rc=%d %s" % (p.returncode, p.stderr.strip()[-200:])
    else:
        try:
            echo = json.loads(p.stdout)
            ok = echo.get("body_sha256") == want and echo.get("body_len") == size
            res["up"] = "ok" if ok else "origin got %s bytes sha256 %s, sent %d sha256 %s" % (
                echo.get("body_len"), echo.get("body_sha256"), size, want)
        except ValueError:
            res["up"] = "not JSON: %r" % p.stdout[:200]
    out(res)


def cmd_flood(name, port, n):
    import time
    addr = socket.getaddrinfo(name, int(port), socket.AF_INET, socket.SOCK_STREAM)[0][4]
    # each sends an unfinished HTTP head: the proxy holds it (head timeout 10 s) and dials nothing
    head = ("GET / HTTP/1.1\r\nHost: %s\r\n" % name).encode()
    socks, failed = [], 0
    deadline = time.monotonic() + 20
    for _ in range(int(n)):
        if time.monotonic() > deadline or failed >= 10:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(addr)
            s.send(head)
            socks.append(s)
        except OSError:
            failed += 1
            s.close()
    time.sleep(2)
    closed = 0
    for s in socks:
        try:
            if s.recv(1, socket.MSG_DONTWAIT) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    out({"opened": len(socks), "connect_failed": failed, "closed_by_peer": closed})


def cmd_environ():
    with open("/proc/1/environ", "rb") as f:
        env = [e.decode(errors="replace") for e in f.read().split(b"\0") if e]
    out({k: v for k, _, v in (e.partition("=") for e in env) if k.lower().endswith("_proxy")})


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "curl":
        cmd_curl(args)
    elif cmd == "urllib":
        cmd_urllib(*args)
    elif cmd == "raw":
        cmd_raw(*args)
    elif cmd == "connect":
        cmd_connect(*args)
    elif cmd == "dns":
        cmd_dns(*args)
    elif cmd == "intact":
        cmd_intact(*args)
    elif cmd == "flood":
        cmd_flood(*args)
    elif cmd == "environ":
        cmd_environ()
    else:
        sys.exit("e2e_client.py: unknown command %r" % cmd)


if __name__ == "__main__":
    main(sys.argv)
