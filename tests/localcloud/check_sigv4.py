#!/usr/bin/env python3
"""Self-check of the moto SigV4 patch (not run by `make localcloud-up`).

Starts moto in-process on a free 127.0.0.1 port (patched unless --unpatched),
creates a user + role, turns auth on, assumes the role (ASIA credentials) and
sends the request a Google WIF AWS subject token describes:

    POST http://127.0.0.1:PORT/?Action=GetCallerIdentity&Version=2011-06-15
    (empty body; host, x-amz-date, x-amz-security-token and
     x-goog-cloud-target-resource signed)

Expected with the patch: correct signature -> 200 + assumed-role ARN;
tampered x-goog-cloud-target-resource / wrong signature / tampered query /
wrong session token -> 403.  With --unpatched the correct request is expected
to be rejected (demonstrates the moto bug); exit status 0 means "as expected".
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
import moto_server  # noqa: E402

TARGET = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws"
ACCOUNT = "123456789012"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send(url: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--unpatched", action="store_true")
    args = ap.parse_args()

    if not args.unpatched:
        moto_server.apply_patches()
    port = free_port()
    app = moto_server.make_app()
    srv = make_server("127.0.0.1", port, app, threaded=True,
                      request_handler=moto_server.MotoRequestHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}"

    def cl(svc, k="testing", s="testing", t=None):
        return boto3.client(svc, endpoint_url=base, region_name="us-east-1",
                            aws_access_key_id=k, aws_secret_access_key=s, aws_session_token=t)

    iam = cl("iam")
    iam.create_user(UserName="admin")
    iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    iam.create_role(RoleName="r", MaxSessionDuration=43200, AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
         "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:user/admin"]}}]}))
    send(f"{base}/moto-api/reset-auth", {"Content-Type": "text/plain"}, b"0")

    ar = cl("sts", key["AccessKeyId"], key["SecretAccessKey"]).assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r", RoleSessionName="wif", DurationSeconds=43200)
    c = ar["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA"), c["AccessKeyId"]
    assumed = ar["AssumedRoleUser"]["Arn"]
    creds = Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])

    query = "Action=GetCallerIdentity&Version=2011-06-15"
    url = f"{base}/?{query}"

    def signed() -> dict[str, str]:
        req = AWSRequest(method="POST", url=url, data=b"", headers={
            "Host": f"127.0.0.1:{port}",
            "x-goog-cloud-target-resource": TARGET,
        })
        SigV4Auth(creds, "sts", "us-east-1").add_auth(req)
        return dict(req.headers.items())

    results: list[tuple[str, bool]] = []

    def expect(name: str, status: int, body: str, ok_expected: bool) -> None:
        ok = status == 200 and assumed in body and "GetCallerIdentityResult" in body
        passed = ok if ok_expected else (status == 403 and not ok)
        results.append((name, passed))
        print(f"{'PASS' if passed else 'FAIL'} {name}: HTTP {status}"
              + ("" if passed else f"\n    {body[:300]}"))

    h = signed()
    assert "x-goog-cloud-target-resource" in h["Authorization"], h["Authorization"]
    st, body = send(url, h)
    expect("correct signature, empty body, query params"
           + (" (unpatched: rejection expected = bug reproduced)" if args.unpatched else ""),
           st, body, not args.unpatched)
    if args.unpatched:
        return 0 if results[-1][1] else 1

    h = signed()
    h["x-goog-cloud-target-resource"] = TARGET.replace("projects/1/", "projects/2/")
    expect("tampered x-goog-cloud-target-resource", *send(url, h), False)

    h = signed()
    sig = h["Authorization"][-1]
    h["Authorization"] = h["Authorization"][:-1] + ("0" if sig != "0" else "1")
    expect("wrong signature", *send(url, h), False)

    h = signed()
    expect("tampered query string", *send(f"{base}/?Action=GetCallerIdentity&Version=2011-06-16", h), False)

    h = signed()
    h["X-Amz-Security-Token"] = c["SessionToken"][:-2] + "xx"
    expect("wrong session token", *send(url, h), False)

    h = signed()
    expect("non-empty body not covered by signature", *send(url, h, b"Foo=bar"), False)

    expect("no Authorization header", *send(url, {"Host": f"127.0.0.1:{port}"}), False)

    h = signed()
    h["Authorization"] = "AWS4-HMAC-SHA256 garbage"
    expect("malformed Authorization header", *send(url, h), False)

    h = signed()
    del h["X-Amz-Date"]
    expect("missing X-Amz-Date", *send(url, h), False)

    srv.shutdown()
    failed = [n for n, p in results if not p]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
