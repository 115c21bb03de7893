"""mitmproxy addon for integration/egress/bench_creds.sh: the same credential swap ward's proxy
does, so the two are compared doing the same work. BENCH_MITM_SWAP names a JSON file
{"host", "method", "path", "placeholder", "secret"} (mode 0600, made by the bench): in a request
to that host, method and path, the placeholder in the Authorization header becomes the secret;
the placeholder anywhere else in a request gets 403. A response header or body carrying the
secret gets the placeholder back.
"""
import json
import os

from mitmproxy import http


class Swap:
    def __init__(self):
        with open(os.environ["BENCH_MITM_SWAP"]) as f:
            cfg = json.load(f)
        self.host, self.method, self.path = cfg["host"], cfg["method"], cfg["path"]
        self.ph, self.secret = cfg["placeholder"], cfg["secret"]
        self.ph_b, self.secret_b = self.ph.encode(), self.secret.encode()

    def request(self, flow: http.HTTPFlow) -> None:
        r = flow.request
        bound = (r.pretty_host == self.host and r.method == self.method
                 and r.path.split("?", 1)[0] == self.path)
        seen = False
        for k, v in r.headers.items(multi=True):
            if self.ph in v:
                seen = True
        if not bound and (seen or self.ph in r.path or (r.raw_content and self.ph_b in r.raw_content)):
            flow.response = http.Response.make(403, b"placeholder refused\n")
            return
        if seen:
            for k in list(r.headers.keys()):
                vals = r.headers.get_all(k)
                if any(self.ph in v for v in vals):
                    r.headers.set_all(k, [v.replace(self.ph, self.secret) for v in vals])

    def response(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        for k in list(resp.headers.keys()):
            vals = resp.headers.get_all(k)
            if any(self.secret in v for v in vals):
                resp.headers.set_all(k, [v.replace(self.secret, self.ph) for v in vals])
        if resp.raw_content and self.secret_b in resp.raw_content:
            resp.content = resp.content.replace(self.secret_b, self.ph_b)


addons = [Swap()]
