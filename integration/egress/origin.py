#!/usr/bin/env python3
"""The egress lab's origin: HTTP and HTTPS for the lab's test names (integration/egress).

One process serves every listener given on the command line, dual-stack (IPv4 and IPv6) on
every address of its network namespace. HTTPS picks the certificate by SNI (one per name, signed
by the lab's test CA); without SNI, or with an unknown one, the first name's certificate is used,
so a client that fronts one name with another still reaches the handler and the echo shows it.

Endpoints (any Host, any name):
  /            "hello from NAME\n"  (NAME: the SNI on HTTPS, else the Host without port)
  /echo...     JSON: scheme, sni, host, request_line, method, path, version, headers (in order,
               as sent), body_len and body_sha256 of the request body, peer and local address
  /bytes/N     N zero bytes (Content-Length N), for throughput tests
The API-like endpoints (issue 17's credentials and path rules; any name, api.test in the tests):
  /v1/messages, /v1/messages/...   200 JSON {"ok": true, "endpoint": "messages", ...}
  /v1/files, /v1/files/...         200 JSON {"ok": true, "endpoint": "files", ...} ("uploaded":
                                   reaching it at all is what the tests must prevent)
  /echo-auth                       200 JSON {"authorization": the Authorization header, "key": the
                                   query parameter `key`}; the same two values in the response
                                   headers X-Echo-Authorization and X-Echo-Key (an origin that
                                   echoes a credential back)
  /aws/..., /aws-*/...              AWS SigV4 verified with botocore (SigV4Auth; S3SigV4Auth when
                                   the Credential's service is "s3") against the REAL pair in the
                                   JSON file --aws-creds FILE (WARD_LAB_AWS_CREDS; keys
                                   access_key_id, secret_access_key, session_token), read per
                                   request: 200 {"ok": true, "access_key_id", "service", ...}, or
                                   403 {"ok": false, "reason"} when the key id, the session token,
                                   x-amz-content-sha256 (or, for STREAMING-UNSIGNED-PAYLOAD-TRAILER,
                                   the aws-chunked length or crc32 trailer), the date or the
                                   signature is wrong (500
                                   without botocore or the file); the same JSON in the header
                                   X-Lab-Aws (for "s3" the body is empty on PUT/POST and an XML
                                   <Error> on refusal, as S3's); the record gets "aws": {"verified",
                                   "reason", "key_id", "service", "content_sha256"}
  /sse                             text/event-stream, chunked: event 1 at once, then after
                                   `?delay=S` seconds (default 1) event 2; each event's data is
                                   JSON with "n" and "sent" (the origin's time.time() when it was
                                   written), so a client proves event 1 arrived before 2 was sent
Every response carries `X-Lab-Origin: NAME` and `X-Lab-Scheme: http|https`.

With WARD_LAB_RECORD=FILE (or --record FILE) the origin appends one JSON line per request to
FILE: time, scheme, sni, host, method, target (as sent), path, authorization (null when absent),
headers (in order), body (text, at most 64 KiB, undecodable bytes replaced). The credential tests
read it to prove the origin saw the real secret only on the bound host and path.

Sockets have TCP_NODELAY and a small response goes out in one write (head and body together),
so keep-alive requests are not held up by Nagle's algorithm and delayed ACKs.

Usage: origin.py --ready FILE --http PORT... --https PORT... --cert NAME=CERT,KEY... [--record FILE]
                 [--aws-creds FILE]
"""
import argparse
import base64
import calendar
import hashlib
import hmac
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ZEROS = bytes(64 * 1024)
RECORD_BODY_MAX = 64 * 1024
RECORD_LOCK = threading.Lock()


def plain_addr(addr):
    """The address part of a socket address, an IPv4-mapped IPv6 address shown as IPv4."""
    host, port = addr[0], addr[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:"):]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def aws_chunked_check(body, headers):
    """None when `body` is a well-formed aws-chunked payload of X-Amz-Decoded-Content-Length bytes
    whose x-amz-checksum-crc32 trailer (if any) matches; else why not."""
    data, rest, trailers = b"", body, {}
    while True:
        line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            return "aws-chunked body ends early"
        try:
            size = int(line.split(b";")[0], 16)
        except ValueError:
            return "aws-chunked size line is not hex"
        if size == 0:
            break
        data, rest = data + rest[:size], rest[size + 2:]
    for line in rest.split(b"\r\n"):
        if b":" in line:
            k, _, v = line.partition(b":")
            trailers[k.strip().lower().decode()] = v.strip().decode()
    if str(len(data)) != headers.get("X-Amz-Decoded-Content-Length", ""):
        return "x-amz-decoded-content-length does not match the aws-chunked payload"
    crc = trailers.get("x-amz-checksum-crc32")
    if crc is not None and crc != base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode():
        return "the x-amz-checksum-crc32 trailer does not match the payload"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ward-lab-origin/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s %s\n" % (self.server.scheme, plain_addr(self.client_address), fmt % args))

    def served_name(self):
        sni = getattr(self.connection, "lab_sni", None)
        if sni:
            return sni
        host = self.headers.get("Host", "")
        if host.startswith("["):
            return host.split("]")[0] + "]"
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

    def read_body(self):
        """Reads the request body: (length, sha256 hex); its first RECORD_BODY_MAX bytes are kept
        in self.body_head for the record."""
        self.body_head = bytearray()
        digest = hashlib.sha256()
        total = 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += self.read_exactly(size, digest)
                self.rfile.readline()
        else:
            size = int(self.headers.get("Content-Length", "0") or "0")
            total += self.read_exactly(size, digest)
        return total, digest.hexdigest()

    def read_exactly(self, size, digest):
        """Reads `size` body bytes into `digest`; their count."""
        left = size
        while left:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                raise ConnectionError("body ended early")
            digest.update(chunk)
            if len(self.body_head) < RECORD_BODY_MAX:
                self.body_head += chunk[:RECORD_BODY_MAX - len(self.body_head)]
            left -= len(chunk)
        return size

    def start(self, code, length, ctype):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Lab-Origin", self.served_name())
        self.send_header("X-Lab-Scheme", self.server.scheme)
        self.end_headers()

    def reply(self, code, body, ctype, extra=()):
        """A whole response in one write: status, headers and body."""
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Lab-Origin", self.served_name())
        self.send_header("X-Lab-Scheme", self.server.scheme)
        for k, v in extra:
            self.send_header(k, v)
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def record(self, path):
        out = self.server.record
        if out is None:
            return
        doc = {
            "time": time.time(),
            "scheme": self.server.scheme,
            "sni": getattr(self.connection, "lab_sni", None),
            "host": self.headers.get("Host"),
            "method": self.command,
            "target": self.path,
            "path": path,
            "authorization": self.headers.get("Authorization"),
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": bytes(self.body_head).decode(errors="replace"),
        }
        if getattr(self, "aws_seen", None) is not None:
            doc["aws"] = self.aws_seen
        line = json.dumps(doc) + "\n"
        with RECORD_LOCK:
            out.write(line)
            out.flush()

    def aws_verify(self, body):
        """SigV4 check of this request with the lab's real pair: (status, doc)."""
        try:
            from botocore.auth import S3SigV4Auth, SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
        except ImportError as e:
            return 500, {"ok": False, "reason": "botocore is not importable: %s" % e}
        path = self.server.aws_creds
        try:
            with open(path or "") as f:
                real = json.load(f)
        except (OSError, ValueError) as e:
            return 500, {"ok": False, "reason": "no lab AWS credentials (--aws-creds): %s" % e.__class__.__name__}
        auth = self.headers.get("Authorization", "")
        m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/,]*)/(\d{8})/([^/,]+)/([^/,]+)/aws4_request,\s*"
                         r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})", auth)
        if not m:
            return 403, {"ok": False, "reason": "no SigV4 Authorization"}
        key_id, day, region, service, signed, sig = m.groups()
        doc = {"access_key_id": key_id, "service": service, "region": region,
               "content_sha256": self.headers.get("X-Amz-Content-SHA256")}
        if key_id != real["access_key_id"]:
            return 403, dict(doc, ok=False, reason="unknown access key id")
        token = real.get("session_token")
        if token and self.headers.get("X-Amz-Security-Token") != token:
            return 403, dict(doc, ok=False, reason="the session token does not match the key")
        body_sha = hashlib.sha256(body).hexdigest()
        sent_sha = doc["content_sha256"]
        if sent_sha == "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
            # aws-chunked with a checksum trailer (the SDKs' default for S3 uploads since 2025)
            why = aws_chunked_check(body, self.headers)
            if why:
                return 403, dict(doc, ok=False, reason=why)
        elif sent_sha is not None and sent_sha != "UNSIGNED-PAYLOAD" and sent_sha != body_sha:
            return 403, dict(doc, ok=False, reason="x-amz-content-sha256 does not match the body")
        amz_date = self.headers.get("X-Amz-Date", "")
        try:
            t = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            return 403, dict(doc, ok=False, reason="no x-amz-date")
        if abs(time.time() - t) > 900 or amz_date[:8] != day:
            return 403, dict(doc, ok=False, reason="x-amz-date is skewed or not the Credential's day")
        # the request as botocore would have signed it: the signed headers only, the target as sent
        req = AWSRequest(method=self.command, url="https://%s%s" % (self.headers.get("Host"), self.path),
                         data=body)
        for name in signed.split(";"):
            values = self.headers.get_all(name) or []
            if not values:
                return 403, dict(doc, ok=False, reason="signed header %s is not in the request" % name)
            for v in values:
                req.headers[name] = v
        req.context["timestamp"] = amz_date
        signer = (S3SigV4Auth if service == "s3" else SigV4Auth)(
            Credentials(real["access_key_id"], real["secret_access_key"], token), service, region)
        canonical = signer.canonical_request(req)
        want = signer.signature(signer.string_to_sign(req, canonical), req)
        if not hmac.compare_digest(want, sig):
            return 403, dict(doc, ok=False, reason="the signature does not match (SignatureDoesNotMatch)")
        return 200, dict(doc, ok=True, session_token="matches" if token else "none",
                         body_len=len(body), body_sha256=body_sha)

    def api(self, path, query):
        """The API-like endpoints; False when `path` is none of them."""
        if self.aws_seen is not None:
            code, doc = self.aws_result
            extra = [("X-Lab-Aws", json.dumps(doc, separators=(",", ":")))]
            if doc.get("service") != "s3" or self.command == "GET" and code == 200:
                self.reply(code, (json.dumps(doc) + "\n").encode(), "application/json", extra)
            elif code == 200:
                # S3 answers an upload with an empty body (an SDK takes a 200 with a body that is
                # not XML for an error)
                self.reply(code, b"", "application/xml", extra)
            else:
                err = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>\n" % (
                    "AccessDenied" if code == 403 else "InternalError",
                    doc.get("reason", "").replace("&", "&amp;").replace("<", "&lt;"))
                self.reply(code, err.encode(), "application/xml", extra)
        elif path in ("/v1/messages", "/v1/files") or path.startswith(("/v1/messages/", "/v1/files/")):
            endpoint = path.split("/")[2]
            doc = {"ok": True, "endpoint": endpoint, "method": self.command, "path": path,
                   "body_len": self.req_body_len}
            if endpoint == "files":
                doc["uploaded"] = True
            self.reply(200, (json.dumps(doc) + "\n").encode(), "application/json")
        elif path == "/echo-auth":
            auth = self.headers.get("Authorization", "")
            key = (query.get("key") or [""])[0]
            doc = {"authorization": auth, "key": key}
            self.reply(200, (json.dumps(doc) + "\n").encode(), "application/json",
                       [("X-Echo-Authorization", auth), ("X-Echo-Key", key)])
        elif path == "/sse":
            self.sse(query)
        else:
            return False
        return True

    def sse(self, query):
        try:
            delay = min(float((query.get("delay") or ["1"])[0]), 30.0)
        except ValueError:
            delay = 1.0
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Lab-Origin", self.served_name())
        self.send_header("X-Lab-Scheme", self.server.scheme)
        self.end_headers()
        if self.command == "HEAD":
            return
        for n in (1, 2):
            if n == 2:
                time.sleep(delay)
            ev = ("id: %d\nevent: tick\ndata: %s\n\n" % (n, json.dumps({"n": n, "sent": time.time()}))).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
        self.wfile.write(b"0\r\n\r\n")

    def handle_any(self):
        body_len, body_sha = self.read_body()
        self.req_body_len = body_len
        path = self.path
        split = urllib.parse.urlsplit(path)
        self.aws_seen = None
        if split.path == "/aws" or split.path.startswith(("/aws/", "/aws-")):
            self.aws_result = self.aws_verify(bytes(self.body_head))
            code, doc = self.aws_result
            self.aws_seen = {"verified": code == 200, "reason": doc.get("reason"),
                             "key_id": doc.get("access_key_id"), "service": doc.get("service"),
                             "content_sha256": doc.get("content_sha256")}
        self.record(split.path)
        if self.api(split.path, urllib.parse.parse_qs(split.query)):
            return
        if path == "/echo" or path.startswith("/echo/") or path.startswith("/echo?"):
            sni = getattr(self.connection, "lab_sni", None)
            doc = {
                "scheme": self.server.scheme,
                "sni": sni,
                "host": self.headers.get("Host"),
                "request_line": self.requestline,
                "method": self.command,
                "path": path,
                "version": self.request_version,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body_len": body_len,
                "body_sha256": body_sha,
                "peer": plain_addr(self.client_address),
                "local": plain_addr(self.connection.getsockname()),
            }
            out = (json.dumps(doc, indent=1) + "\n").encode()
            self.start(200, len(out), "application/json")
            if self.command != "HEAD":
                self.wfile.write(out)
        elif path.startswith("/bytes/"):
            try:
                n = int(path[len("/bytes/"):])
                if n < 0:
                    raise ValueError
            except ValueError:
                out = b"bad length\n"
                self.start(400, len(out), "text/plain")
                self.wfile.write(out)
                return
            self.start(200, n, "application/octet-stream")
            if self.command != "HEAD":
                while n:
                    k = min(n, len(ZEROS))
                    self.wfile.write(ZEROS[:k])
                    n -= k
        else:
            self.reply(200, f"hello from {self.served_name()}\n".encode(), "text/plain")

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = handle_any


class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port, scheme, tls=None, record=None, aws_creds=None):
        self.scheme = scheme
        self.aws_creds = aws_creds
        self.tls = tls
        self.record = record
        super().__init__(("::", port), Handler, bind_and_activate=False)
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.server_bind()
        self.server_activate()

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a slow or broken client
        # never holds up accept().
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            request.settimeout(30)
            request = self.tls.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        err = sys.exc_info()[1]
        sys.stderr.write(f"{self.scheme} {plain_addr(client_address)} error: {err!r}\n")


def tls_contexts(pairs):
    contexts = {}
    for pair in pairs:
        name, files = pair.split("=", 1)
        cert, key = files.split(",", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        contexts[name.lower()] = ctx
    default = contexts[pairs[0].split("=", 1)[0].lower()]

    def pick(sock, name, _ctx):
        if name:
            sock.lab_sni = name
            name = name.lower().rstrip(".")
            chosen = contexts.get(name)
            if chosen is None and "." in name:
                chosen = contexts.get("*." + name.split(".", 1)[1])
            if chosen is not None:
                sock.context = chosen

    for ctx in contexts.values():
        ctx.sni_callback = pick
    return default


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ready", required=True)
    ap.add_argument("--http", type=int, action="append", default=[])
    ap.add_argument("--https", type=int, action="append", default=[])
    ap.add_argument("--cert", action="append", default=[])
    ap.add_argument("--record", default=os.environ.get("WARD_LAB_RECORD") or None)
    ap.add_argument("--aws-creds", default=os.environ.get("WARD_LAB_AWS_CREDS") or None)
    args = ap.parse_args()
    if args.record:
        args.record = open(args.record, "a", encoding="utf-8")
    servers = [Server(p, "http", record=args.record, aws_creds=args.aws_creds) for p in args.http]
    if args.https:
        tls = tls_contexts(args.cert)
        servers += [Server(p, "https", tls, args.record, args.aws_creds) for p in args.https]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    with open(args.ready, "w") as f:
        f.write("ready\n")
    threading.Event().wait()


if __name__ == "__main__":
    main()
