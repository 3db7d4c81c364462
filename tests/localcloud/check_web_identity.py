#!/usr/bin/env python3
"""Self-check of the AssumeRoleWithWebIdentity hook (web_identity.py).

Starts patched moto in-process on a free 127.0.0.1 port, creates the
crossfed-from-google role exactly as setup.py does (plus two helper roles),
turns auth on and calls AssumeRoleWithWebIdentity with Google-style ID tokens
signed by tests/fixtures/google-id-token-test-key.pem:

  good token (form body, query string, boto3)  -> 200, ASIA credentials that
      work for S3 (SigV4 + IAM) and are denied for SSM (role policy: s3 only)
  second allowed sub                           -> 200
  wrong oaud / wrong sub / other role / no role -> 403 AccessDenied
  accounts.google.com:aud matches azp, not aud  -> 200 / 403
  expired token                                -> 400 ExpiredTokenException
  tampered signature / foreign issuer / garbage -> 400 InvalidIdentityToken
  bad RoleSessionName / DurationSeconds         -> 400 ValidationError
  unsigned GetCallerIdentity                    -> 403 (auth still on elsewhere)

Exit status 0 means every check passed.
"""

from __future__ import annotations

import base64
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import boto3
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from werkzeug.serving import make_server

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import moto_server  # noqa: E402
import setup  # noqa: E402

KEY = serialization.load_pem_private_key(
    (HERE.parent / "fixtures" / "google-id-token-test-key.pem").read_bytes(), password=None
)
ACCOUNT = setup.ACCOUNT_ID
AUD = setup.GOOGLE_AUDIENCE
SUB, SUB2 = setup.GOOGLE_SUBS
NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: dict, header: dict | None = None) -> str:
    header = header or {"alg": "RS256", "kid": "crossfed-test", "typ": "JWT"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    sig = KEY.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(sig)}"


def claims(**overrides) -> dict:
    now = int(time.time())
    c = {"iss": "https://accounts.google.com", "aud": AUD, "azp": SUB, "sub": SUB,
         "iat": now, "exp": now + 3600}
    c.update(overrides)
    return {k: v for k, v in c.items() if v is not None}


def post(url: str, body: bytes | None = None,
         content_type: str = "application/x-www-form-urlencoded") -> tuple[int, str]:
    headers = {"Content-Type": content_type} if body else {}
    req = urllib.request.Request(url, data=body or b"", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def error_code(body: str) -> str | None:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    code = root.find(f"{NS}Error/{NS}Code")
    if code is None:
        code = root.find("Error/Code")
    return None if code is None else code.text


def main() -> int:
    moto_server.apply_patches()
    port = free_port()
    srv = make_server("127.0.0.1", port, moto_server.make_app(), threaded=True,
                      request_handler=moto_server.MotoRequestHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}"

    def cl(svc, k="testing", s="testing", t=None):
        return boto3.client(svc, endpoint_url=base, region_name="us-east-1",
                            aws_access_key_id=k, aws_secret_access_key=s, aws_session_token=t)

    iam = cl("iam")
    iam.create_role(RoleName=setup.GOOGLE_ROLE, AssumeRolePolicyDocument=setup.GOOGLE_TRUST_POLICY,
                    MaxSessionDuration=43200)
    iam.put_role_policy(RoleName=setup.GOOGLE_ROLE, PolicyName="p", PolicyDocument=setup.GOOGLE_ROLE_POLICY)
    iam.create_role(RoleName="by-azp", MaxSessionDuration=3600, AssumeRolePolicyDocument=setup.policy([{
        "Effect": "Allow", "Principal": {"Federated": "accounts.google.com"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {"accounts.google.com:aud": SUB}}}]))
    iam.create_role(RoleName="aws-only", AssumeRolePolicyDocument=setup.TRUST_POLICY)
    cl("s3").create_bucket(Bucket=setup.GOOGLE_BUCKET)
    st, body = post(f"{base}/moto-api/reset-auth", b"0", "text/plain")
    assert st == 200, (st, body)

    role = f"arn:aws:iam::{ACCOUNT}:role/{setup.GOOGLE_ROLE}"
    results: list[tuple[str, bool]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        results.append((name, ok))
        print(f"{'PASS' if ok else 'FAIL'} {name}" + ("" if ok else f"\n    {detail[:400]}"))

    def assume(token: str, role_arn: str = role, **extra) -> tuple[int, str]:
        params = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                  "RoleArn": role_arn, "RoleSessionName": "gcp-workload",
                  "WebIdentityToken": token, **extra}
        return post(base + "/", urllib.parse.urlencode(params).encode())

    def expect(name: str, token: str, status: int, code: str, role_arn: str = role, **extra) -> None:
        st, body = assume(token, role_arn, **extra)
        check(name, st == status and error_code(body) == code, f"HTTP {st}: {body}")

    # --- success: form body, unsigned --------------------------------------
    st, body = assume(jwt(claims()), DurationSeconds="43200")
    ok = st == 200
    check("good token, unsigned form body -> 200", ok, f"HTTP {st}: {body}")
    if ok:
        root = ET.fromstring(body)
        r = root.find(f"{NS}AssumeRoleWithWebIdentityResult")
        c = {e.tag.replace(NS, ""): e.text for e in r.find(f"{NS}Credentials")}
        check("ASIA credentials", c["AccessKeyId"].startswith("ASIA"), c["AccessKeyId"])
        check("SubjectFromWebIdentityToken = sub",
              r.find(f"{NS}SubjectFromWebIdentityToken").text == SUB, body)
        check("Provider/Audience", r.find(f"{NS}Provider").text == "accounts.google.com"
              and r.find(f"{NS}Audience").text == SUB, body)
        arn = r.find(f"{NS}AssumedRoleUser/{NS}Arn").text
        check("assumed-role ARN", arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/{setup.GOOGLE_ROLE}/gcp-workload", arn)
        creds = (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        buckets = [b["Name"] for b in cl("s3", *creds).list_buckets()["Buckets"]]
        check("S3 ListBuckets signed with the session", setup.GOOGLE_BUCKET in buckets, str(buckets))
        who = cl("sts", *creds).get_caller_identity()["Arn"]
        check("GetCallerIdentity signed with the session", who == arn, who)
        try:
            cl("ssm", *creds).get_parameter(Name="/crossfed/x")
            check("role policy enforced (SSM denied)", False, "SSM call was accepted")
        except ClientError as e:
            # moto answers this JSON-protocol call with an XML AccessDenied.
            check("role policy enforced (SSM denied)",
                  e.response["ResponseMetadata"]["HTTPStatusCode"] == 403
                  and "not authorized to perform: ssm:GetParameter" in str(e.response["Error"]),
                  str(e.response["Error"]))
        tampered = (creds[0], creds[1][:-2] + "xx", creds[2])
        try:
            cl("s3", *tampered).list_buckets()
            check("wrong secret rejected", False, "accepted")
        except ClientError as e:
            check("wrong secret rejected", e.response["ResponseMetadata"]["HTTPStatusCode"] == 403,
                  str(e.response["Error"]))

    # --- success: query string, unsigned; boto3 ----------------------------
    params = urllib.parse.urlencode({"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                                     "RoleArn": role, "RoleSessionName": "query",
                                     "WebIdentityToken": jwt(claims())})
    st, body = post(f"{base}/?{params}")
    check("good token, unsigned query string -> 200", st == 200 and "AccessKeyId" in body, f"HTTP {st}: {body}")
    try:
        r = cl("sts").assume_role_with_web_identity(
            RoleArn=role, RoleSessionName="boto", WebIdentityToken=jwt(claims(sub=SUB2, azp=SUB2)))
        check("boto3 (second allowed sub) -> 200", r["SubjectFromWebIdentityToken"] == SUB2, str(r))
    except ClientError as e:
        check("boto3 (second allowed sub) -> 200", False, str(e.response))
    st, body = post(f"{base}/?Action=GetCallerIdentity&Version=2011-06-15")
    check("unsigned GetCallerIdentity still rejected", st == 403, f"HTTP {st}: {body}")

    # --- trust policy ---------------------------------------------------------
    expect("wrong oaud -> 403 AccessDenied", jwt(claims(aud="other-audience")), 403, "AccessDenied")
    expect("wrong sub -> 403 AccessDenied", jwt(claims(sub="333333333333333333333")), 403, "AccessDenied")
    expect("role without Google principal -> 403", jwt(claims()), 403, "AccessDenied",
           f"arn:aws:iam::{ACCOUNT}:role/aws-only")
    expect("missing role -> 403", jwt(claims()), 403, "AccessDenied",
           f"arn:aws:iam::{ACCOUNT}:role/does-not-exist")
    by_azp = f"arn:aws:iam::{ACCOUNT}:role/by-azp"
    st, body = assume(jwt(claims(aud="anything")), by_azp)
    check("accounts.google.com:aud compares azp -> 200", st == 200, f"HTTP {st}: {body}")
    st, body = assume(jwt(claims(aud=SUB, azp=None)), by_azp)
    check("accounts.google.com:aud falls back to aud without azp -> 200", st == 200, f"HTTP {st}: {body}")
    expect("accounts.google.com:aud is not oaud -> 403", jwt(claims(aud=SUB, azp="999")), 403,
           "AccessDenied", by_azp)

    # --- token ------------------------------------------------------------------
    now = int(time.time())
    st, body = assume(jwt(claims(iat=now - 7200, exp=now - 60)))
    check("expired -> ExpiredTokenException",
          st == 400 and error_code(body) == "ExpiredTokenException" and "Token expired: current date/time" in body,
          f"HTTP {st}: {body}")
    good = jwt(claims())
    head, payload, sig = good.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[10] ^= 0x55
    expect("tampered signature -> InvalidIdentityToken", f"{head}.{payload}.{b64url(bytes(raw))}",
           400, "InvalidIdentityToken")
    forged = b64url(json.dumps(claims(sub=SUB2)).encode())
    expect("swapped payload -> InvalidIdentityToken", f"{head}.{forged}.{sig}", 400, "InvalidIdentityToken")
    expect("foreign issuer -> InvalidIdentityToken", jwt(claims(iss="https://evil.example")), 400,
           "InvalidIdentityToken")
    expect("bare issuer accounts.google.com -> 200", jwt(claims(iss="accounts.google.com")), 200, None)
    expect("garbage token -> InvalidIdentityToken", "not-a-jwt", 400, "InvalidIdentityToken")
    expect("unknown kid -> InvalidIdentityToken",
           jwt(claims(), {"alg": "RS256", "kid": "other", "typ": "JWT"}), 400, "InvalidIdentityToken")

    # --- parameters ---------------------------------------------------------------
    expect("RoleSessionName with space -> ValidationError", good, 400, "ValidationError",
           RoleSessionName="a b")
    expect("RoleSessionName of 1 char -> ValidationError", good, 400, "ValidationError", RoleSessionName="a")
    expect("RoleSessionName of 65 chars -> ValidationError", good, 400, "ValidationError",
           RoleSessionName="a" * 65)
    expect("DurationSeconds 899 -> ValidationError", good, 400, "ValidationError", DurationSeconds="899")
    expect("DurationSeconds 43201 -> ValidationError", good, 400, "ValidationError", DurationSeconds="43201")
    expect("DurationSeconds above MaxSessionDuration -> ValidationError", jwt(claims()), 400,
           "ValidationError", by_azp, DurationSeconds="7200")
    st, body = post(base + "/", urllib.parse.urlencode({
        "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": role,
        "WebIdentityToken": good}).encode())
    check("missing RoleSessionName -> ValidationError", st == 400 and error_code(body) == "ValidationError",
          f"HTTP {st}: {body}")

    srv.shutdown()
    failed = [n for n, p in results if not p]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
