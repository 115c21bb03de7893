#!/usr/bin/python3
"""Clients run INSIDE the credential e2e containers (integration/egress/e2e_creds.sh); one JSON
line per call. Standard library only (the rootfs is the host's /usr, read-only), but for `aws`,
which is botocore's own signer and HTTP session.

The CA bundle is the one ward gives the container: SSL_CERT_FILE (else CURL_CA_BUNDLE) from our
env, else from init's (/proc/1/environ); `--cacert FILE` overrides. Credential values are never
given on the command line: `--auth-env VAR` sends `Authorization: Bearer $VAR`, `--query-env VAR`
appends `key=$VAR` to the URL's query, `--auth-file-key FILE` takes the value of "api_key" in a
JSON file (the placeholder ward wrote there), each read here from what the container holds.

    req METHOD URL [--http2|--http1.1] [--auth-env VAR] [--auth-file-key FILE] [--query-env VAR]
        [--data TEXT] [--cacert FILE]
        curl -sS --path-as-is: {"rc", "code", "version", "headers": {lower-case name: value},
        "body", "denied" (X-Ward-Denied or null), "err"}
    sse URL [--cacert FILE]
        GET URL (HTTP/1.1 over TLS, one connection), reads the two events of the origin's /sse:
        {"first_arrived": time.time() when event 1 was read, "first_sent", "second_sent",
         "gap": second_sent - first_arrived (> 0: event 1 arrived before event 2 was sent), "err"}
    aws METHOD URL [--service S] [--region R] [--data TEXT] [--tamper-query K=V]
        [--header-env NAME:VAR] [--cacert FILE] [--creds-file FILE]
        an AWS SDK's request: botocore signs it (SigV4Auth; S3SigV4Auth, which sends
        x-amz-content-sha256, when the service is "s3"; default service execute-api, region
        us-east-1) with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from our env
        (the placeholders) and sends it with botocore's own HTTP session (urllib3; the CA bundle as
        above). `--header-env NAME:VAR` adds header NAME = $VAR before signing; `--tamper-query`
        appends K=V to the query AFTER signing; `--creds-file` (JSON: access_key_id,
        secret_access_key, session_token) replaces the env (the baseline, outside ward). botocore comes from the host's /usr or from
        /e2e-py (e2e_creds.sh mounts the lab's copy there): {"code", "headers", "body", "denied",
        "signed_headers", "content_sha256", "err"}
    sdk OP ENDPOINT [--checksum when_supported|when_required] [--cacert FILE] [--creds-file FILE]
        an AWS SDK client, unchanged: botocore.session's create_client with the default credential
        chain (our env) and the CA bundle from AWS_CA_BUNDLE (ward sets it; else as above), for
        OP s3-put (PutObject aws/sdk/object.txt, path-style; --checksum: the request checksum
        setting, default the SDK's own), s3-get (GetObject of it) or ddb-list (DynamoDB
        ListTables, JSON protocol: the body has no x-amz-content-sha256): {"ok", "status",
        "content_sha256" (what the SDK sent), "err", and for a refusal "denied" (X-Ward-Denied)
        and "body"}; --creds-file as for aws (the baseline)
    env                 {"env": our environment, "init": init's (/proc/1/environ), "self":
                        /proc/self/environ as read}
    cat FILE            {"text": FILE's content}
"""
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse

TIMEOUT = 15


def out(obj):
    print(json.dumps(obj, sort_keys=True))


def environ_of(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    env = {}
    for kv in raw.split(b"\0"):
        if kv:
            k, _, v = kv.decode(errors="replace").partition("=")
            env[k] = v
    return env


def cafile(arg):
    if arg:
        return arg
    for src in (os.environ, environ_of("/proc/1/environ")):
        for k in ("SSL_CERT_FILE", "CURL_CA_BUNDLE"):
            if src.get(k):
                return src[k]
    return None


def opts(args):
    o, rest, i = {}, [], 0
    flags = {"--http2", "--http1.1"}
    while i < len(args):
        a = args[i]
        if a in flags:
            o[a] = True
            i += 1
        elif a.startswith("--"):
            o[a] = args[i + 1]
            i += 2
        else:
            rest.append(a)
            i += 1
    return o, rest


def cmd_req(args):
    o, (method, url) = opts(args)
    if o.get("--query-env"):
        v = os.environ.get(o["--query-env"], "")
        url += ("&" if "?" in url else "?") + "key=" + urllib.parse.quote(v, safe="")
    auth = None
    if o.get("--auth-env"):
        auth = os.environ.get(o["--auth-env"], "")
    if o.get("--auth-file-key"):
        with open(o["--auth-file-key"]) as f:
            auth = json.load(f)["api_key"]
    body, hdrs = "/tmp/creds-body", "/tmp/creds-headers"
    for f in (body, hdrs):
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass
    cmd = ["curl", "-sS", "--path-as-is", "--max-time", str(TIMEOUT), "-o", body, "-D", hdrs,
           "-w", "%{http_code} %{http_version}", "-X", method]
    ca = cafile(o.get("--cacert"))
    if ca and url.startswith("https:"):
        cmd += ["--cacert", ca]
    if o.get("--http2"):
        cmd.append("--http2")
    if o.get("--http1.1"):
        cmd.append("--http1.1")
    if o.get("--data") is not None:
        cmd += ["--data-binary", o["--data"], "-H", "Content-Type: application/json"]
    stdin = None
    if auth is not None:
        # the header goes through a curl config on stdin, not argv (a placeholder is no secret,
        # but nothing credential-like belongs in a command line)
        cmd += ["-K", "-"]
        stdin = 'header = "Authorization: Bearer %s"\n' % auth.replace("\\", "\\\\").replace('"', '\\"')
    cmd.append(url)
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    code, _, version = p.stdout.strip().partition(" ")
    headers, denied = {}, None
    if os.path.exists(hdrs):
        with open(hdrs, errors="replace") as f:
            for line in f.read().splitlines():
                k, sep, v = line.partition(":")
                if sep and not k.startswith("HTTP/"):
                    headers[k.strip().lower()] = v.strip()
        denied = headers.get("x-ward-denied")
    text = ""
    if os.path.exists(body):
        with open(body, "rb") as f:
            text = f.read(4000).decode(errors="replace")
    out({"rc": p.returncode, "code": code, "version": version, "headers": headers, "body": text,
         "denied": denied, "err": p.stderr.strip()[-300:]})


def cmd_sse(args):
    o, (url,) = opts(args)
    u = urllib.parse.urlsplit(url)
    res = {"first_arrived": None, "first_sent": None, "second_sent": None, "gap": None, "err": ""}
    try:
        ctx = ssl.create_default_context(cafile=cafile(o.get("--cacert")))
        ctx.set_alpn_protocols(["http/1.1"])
        s = socket.create_connection((u.hostname, u.port or 443), timeout=TIMEOUT)
        s = ctx.wrap_socket(s, server_hostname=u.hostname)
        target = u.path + ("?" + u.query if u.query else "")
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n" % (target, u.hostname)).encode())
        buf = b""
        events = []
        while len(events) < 2:
            d = s.recv(65536)
            now = time.time()
            if not d:
                break
            buf += d
            # events end with a blank line; the chunked framing around them does not matter here
            while b"\n\n" in buf:
                ev, _, buf = buf.partition(b"\n\n")
                for line in ev.split(b"\n"):
                    if line.startswith(b"data: "):
                        doc = json.loads(line[6:])
                        events.append((now, doc))
                        if doc["n"] == 1:
                            res["first_arrived"], res["first_sent"] = now, doc["sent"]
                        else:
                            res["second_sent"] = doc["sent"]
        s.close()
        if res["first_arrived"] is not None and res["second_sent"] is not None:
            res["gap"] = res["second_sent"] - res["first_arrived"]
        else:
            res["err"] = "events seen: %d; head: %r" % (len(events), buf[:200])
    except Exception as e:  # the check wants the failure's text, whatever it is
        res["err"] = repr(e)[-300:]
    out(res)


def cmd_aws(args):
    o, (method, url) = opts(args)
    res = {"code": None, "headers": {}, "body": "", "denied": None, "signed_headers": None,
           "content_sha256": None, "err": ""}
    try:
        if os.path.isdir("/e2e-py"):
            sys.path.insert(0, "/e2e-py")
        from botocore.auth import S3SigV4Auth, SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        from botocore.httpsession import URLLib3Session

        service = o.get("--service", "execute-api")
        data = o.get("--data")
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if o.get("--header-env"):
            name, _, var = o["--header-env"].partition(":")
            headers[name] = os.environ.get(var, "")
        req = AWSRequest(method=method, url=url, data=data.encode() if data is not None else None,
                         headers=headers)
        if o.get("--creds-file"):
            with open(o["--creds-file"]) as f:
                c = json.load(f)
            creds = Credentials(c["access_key_id"], c["secret_access_key"], c.get("session_token"))
        else:
            creds = Credentials(os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY"),
                                os.environ.get("AWS_SESSION_TOKEN"))
        (S3SigV4Auth if service == "s3" else SigV4Auth)(creds, service, o.get("--region", "us-east-1")).add_auth(req)
        auth = req.headers.get("Authorization", "")
        res["signed_headers"] = auth.partition("SignedHeaders=")[2].partition(",")[0]
        res["content_sha256"] = req.headers.get("X-Amz-Content-SHA256")
        if o.get("--tamper-query"):
            req.url += ("&" if "?" in req.url else "?") + o["--tamper-query"]
        session = URLLib3Session(verify=cafile(o.get("--cacert")) or True, timeout=TIMEOUT)
        r = session.send(req.prepare())
        res["code"] = r.status_code
        res["headers"] = {k.lower(): v for k, v in r.headers.items()}
        res["denied"] = res["headers"].get("x-ward-denied")
        res["body"] = r.content[:4000].decode(errors="replace")
    except Exception as e:  # the check wants the failure's text, whatever it is
        res["err"] = repr(e)[-300:]
    out(res)


def cmd_sdk(args):
    o, (op, endpoint) = opts(args)
    res = {"ok": False, "status": None, "content_sha256": None, "err": ""}
    try:
        if os.path.isdir("/e2e-py"):
            sys.path.insert(0, "/e2e-py")
        import botocore.session
        from botocore.config import Config
        from botocore.exceptions import ClientError

        session = botocore.session.get_session()
        sent = []
        session.register("before-send", lambda request, **_: sent.append(request.headers.get("X-Amz-Content-SHA256")))
        got = []
        session.register("before-parse", lambda response_dict, **_: got.append(response_dict))
        verify = o.get("--cacert") or (None if os.environ.get("AWS_CA_BUNDLE") else cafile(None))
        keys = {}
        if o.get("--creds-file"):
            with open(o["--creds-file"]) as f:
                c = json.load(f)
            keys = {"aws_access_key_id": c["access_key_id"], "aws_secret_access_key": c["secret_access_key"],
                    "aws_session_token": c.get("session_token")}
        cfg = {"retries": {"max_attempts": 1}}
        if o.get("--checksum"):
            cfg["request_checksum_calculation"] = o["--checksum"]
        if op.startswith("s3-"):
            cfg["s3"] = {"addressing_style": "path"}
        c = session.create_client("s3" if op.startswith("s3-") else "dynamodb", endpoint_url=endpoint,
                                  region_name="us-east-1", verify=verify, config=Config(**cfg), **keys)
        try:
            if op == "s3-put":
                r = c.put_object(Bucket="aws", Key="sdk/object.txt", Body=b"an object from the SDK\n")
            elif op == "s3-get":
                r = c.get_object(Bucket="aws", Key="sdk/object.txt")
                r["Body"].read()
            elif op == "ddb-list":
                r = c.list_tables()
            else:
                raise ValueError("unknown sdk op %r" % op)
            res["ok"], res["status"] = True, r["ResponseMetadata"]["HTTPStatusCode"]
        except ClientError as e:
            res["status"] = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            res["err"] = str(e)[-300:]
        if got and got[-1]["status_code"] != 200:
            # a refusal's own words (ward's X-Ward-Denied and text body, or the origin's JSON)
            res["denied"] = got[-1]["headers"].get("x-ward-denied")
            body = got[-1]["body"]
            res["body"] = (body if isinstance(body, bytes) else b"")[:500].decode(errors="replace")
        if sent:
            res["content_sha256"] = sent[-1].decode() if isinstance(sent[-1], bytes) else sent[-1]
    except Exception as e:  # the check wants the failure's text, whatever it is
        res["err"] = repr(e)[-300:]
    out(res)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "req":
        cmd_req(args)
    elif cmd == "sse":
        cmd_sse(args)
    elif cmd == "aws":
        cmd_aws(args)
    elif cmd == "sdk":
        cmd_sdk(args)
    elif cmd == "env":
        out({"env": dict(os.environ), "init": environ_of("/proc/1/environ"),
             "self": environ_of("/proc/self/environ")})
    elif cmd == "cat":
        with open(args[0], errors="replace") as f:
            out({"text": f.read()})
    else:
        sys.exit("e2e_creds_client.py: unknown command %r" % cmd)


if __name__ == "__main__":
    main(sys.argv)
