#!/usr/bin/env python3
"""Signs requests with botocore (the AWS SDK for Python's signer) and prints them as JSON, so
that ward's SigV4 re-signing (src/policy/credentials/sigv4.rs) is checked against a maintained
implementation, not against itself. The vectors in sigv4_tests.rs were printed by this script:
    pip install botocore && python3 integration/egress/sigv4_vectors.py
"""
import datetime
import json
from unittest import mock

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

WHEN = datetime.datetime(2026, 12, 6, 12, 0, 0, tzinfo=datetime.timezone.utc)


def sign(service, method, url, body, headers, key, secret, token=None):
    creds = Credentials(key, secret, token)
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    cls = S3SigV4Auth if service == "s3" else SigV4Auth
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN):
        cls(creds, service, "us-east-1").add_auth(req)
    return {
        "service": service,
        "method": method,
        "url": url,
        "body": body.decode(),
        "headers": {k: v for k, v in req.headers.items()},
    }


REAL = {"key": "AKIAREALREALREAL0001", "secret": "real/Secret+Key/0123456789abcdefghijklmn"}


def main():
    # Each request signed twice at the same instant: with the placeholders the container holds
    # (key, secret and token as minted: ward-cred-...) and with the real pair, whose signature
    # ward's re-signing must reproduce.
    ph = {"key": "ward-cred-akidplaceholder0000000", "secret": "ward-cred-secretplaceholder00000000000000"}
    cases = [
        (("sts", "POST", "https://sts.amazonaws.com/",
          b"Action=GetCallerIdentity&Version=2011-06-15",
          {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}), {}),
        (("s3", "PUT", "https://bucket.s3.amazonaws.com/dir/a%20b.txt", b"hello",
          {"Content-Type": "text/plain"}), {}),
        (("execute-api", "GET", "https://api.test/v1/./items//x%2Fy?b=2&a=1&a=0&c=sp%20ace",
          b"", {}), {"token": "TOKENEXAMPLE"}),
    ]
    vectors = []
    for args, kw in cases:
        tok = kw.pop("token", None)
        vectors.append({
            "placeholder": sign(*args, **kw, key=ph["key"], secret=ph["secret"],
                                token=tok and "ward-cred-tokenplaceholder000000000"),
            "real": sign(*args, **kw, key=REAL["key"], secret=REAL["secret"], token=tok),
        })
    print(json.dumps(vectors, indent=1))


if __name__ == "__main__":
    main()
