#!/usr/bin/env python3
"""Provision the freshly started moto server for crossfed tests.

Run once after moto_server.py is up and auth is still OFF (moto's default).
Creates the admin user, the two roles, the role a Google workload assumes with
a Google ID token (crossfed-from-google) and its S3 bucket, turns SigV4 auth
ON, assumes both roles and writes KEY=VALUE lines to target/localcloud/env (or $LOCALCLOUD_ENV_FILE).

Output file format: one KEY=VALUE per line, no quotes, no `export`; readable by
`set -a; . target/localcloud/env; set +a` and by a trivial line parser.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
MOTO_PORT = os.environ.get("MOTO_PORT", "5055")
MOTO_URL = os.environ.get("LOCALCLOUD_MOTO_URL", f"http://127.0.0.1:{MOTO_PORT}")
GCS_HOST = os.environ.get("GCS_HOST", "127.0.0.1")
GCS_PORT = os.environ.get("GCS_PORT", "5056")
ENV_FILE = Path(os.environ.get("LOCALCLOUD_ENV_FILE", REPO / "target/localcloud/env"))
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
SESSION_NAME = "crossfed-localcloud"
DURATION = 43200

ADMIN_USER = "crossfed-admin"
ROLES = {"ROLE": "crossfed-lambda", "OTHER_ROLE": "crossfed-other"}

CFG = Config(retries={"max_attempts": 2})

# Google -> AWS (AssumeRoleWithWebIdentity with a Google ID token; moto checks
# tokens and trust policies through web_identity.py).
GOOGLE_ROLE = "crossfed-from-google"
GOOGLE_AUDIENCE = "crossfed-test-audience"
GOOGLE_SUBS = ["111111111111111111111", "222222222222222222222"]
GOOGLE_BUCKET = "crossfed-from-google-bucket"


def client(service: str, key: str = "testing", secret: str = "testing", token: str | None = None):
    return boto3.client(
        service,
        endpoint_url=MOTO_URL,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=CFG,
    )


def policy(statements: list[dict]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


ADMIN_POLICY = policy([{"Effect": "Allow", "Action": "*", "Resource": "*"}])
ROLE_POLICY = policy(
    [
        {
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters"],
            "Resource": f"arn:aws:ssm:*:{ACCOUNT_ID}:parameter/crossfed/*",
        },
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
        {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        # gcs-sync: back-off of failed messages (as template.yaml grants it).
        {"Effect": "Allow", "Action": "sqs:ChangeMessageVisibility", "Resource": "*"},
    ]
)
# One statement holding both principals: moto 5.2.5 crashes (HTTP 500,
# TypeError in IAMPolicyStatement._check_principal) on a trust statement that
# has a "Service" principal but no "AWS" one.
TRUST_POLICY = policy(
    [
        {
            "Effect": "Allow",
            "Principal": {
                "AWS": [f"arn:aws:iam::{ACCOUNT_ID}:user/{ADMIN_USER}"],
                "Service": "lambda.amazonaws.com",
            },
            "Action": "sts:AssumeRole",
        }
    ]
)


GOOGLE_TRUST_POLICY = policy(
    [
        {
            "Effect": "Allow",
            "Principal": {"Federated": "accounts.google.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    "accounts.google.com:oaud": GOOGLE_AUDIENCE,
                    "accounts.google.com:sub": GOOGLE_SUBS,
                }
            },
        }
    ]
)
GOOGLE_ROLE_POLICY = policy([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])


def set_auth(initial_no_auth_action_count: int) -> None:
    # moto 5.x: body is the bare number (float(request.data.decode())).
    req = urllib.request.Request(
        f"{MOTO_URL}/moto-api/reset-auth",
        data=str(initial_no_auth_action_count).encode(),
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        if resp.status != 200:
            raise SystemExit(f"reset-auth failed: HTTP {resp.status}")


def main() -> int:
    # --- provisioning, auth OFF -------------------------------------------
    iam = client("iam")
    iam.create_user(UserName=ADMIN_USER)
    iam.put_user_policy(UserName=ADMIN_USER, PolicyName="admin", PolicyDocument=ADMIN_POLICY)
    key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    admin_key, admin_secret = key["AccessKeyId"], key["SecretAccessKey"]

    for role in ROLES.values():
        iam.create_role(
            RoleName=role,
            AssumeRolePolicyDocument=TRUST_POLICY,
            MaxSessionDuration=DURATION,
        )
        iam.put_role_policy(RoleName=role, PolicyName="crossfed", PolicyDocument=ROLE_POLICY)

    google_role_arn = iam.create_role(
        RoleName=GOOGLE_ROLE,
        AssumeRolePolicyDocument=GOOGLE_TRUST_POLICY,
        MaxSessionDuration=DURATION,
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=GOOGLE_ROLE, PolicyName="crossfed", PolicyDocument=GOOGLE_ROLE_POLICY
    )
    client("s3").create_bucket(Bucket=GOOGLE_BUCKET)

    # --- auth ON ------------------------------------------------------------
    set_auth(0)

    env: dict[str, str] = {
        "LOCALCLOUD_MOTO_URL": MOTO_URL,
        "LOCALCLOUD_REGION": REGION,
        "LOCALCLOUD_ACCOUNT_ID": ACCOUNT_ID,
        "LOCALCLOUD_ADMIN_ACCESS_KEY_ID": admin_key,
        "LOCALCLOUD_ADMIN_SECRET_ACCESS_KEY": admin_secret,
        "LOCALCLOUD_GOOGLE_ROLE_ARN": google_role_arn,
        "LOCALCLOUD_GOOGLE_AUDIENCE": GOOGLE_AUDIENCE,
        "LOCALCLOUD_GOOGLE_SUB": GOOGLE_SUBS[0],
        "LOCALCLOUD_GOOGLE_BUCKET": GOOGLE_BUCKET,
    }

    sts_admin = client("sts", admin_key, admin_secret)
    who = sts_admin.get_caller_identity()
    assert who["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/{ADMIN_USER}", who["Arn"]

    for prefix, role in ROLES.items():
        role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"
        creds = sts_admin.assume_role(
            RoleArn=role_arn, RoleSessionName=SESSION_NAME, DurationSeconds=DURATION
        )
        c = creds["Credentials"]
        assumed_arn = creds["AssumedRoleUser"]["Arn"]
        assert c["AccessKeyId"].startswith("ASIA"), "expected temporary credentials"
        got = client("sts", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]).get_caller_identity()
        assert got["Arn"] == assumed_arn, (got["Arn"], assumed_arn)
        env[f"LOCALCLOUD_{prefix}_ARN"] = role_arn
        env[f"LOCALCLOUD_{prefix}_ACCESS_KEY_ID"] = c["AccessKeyId"]
        env[f"LOCALCLOUD_{prefix}_SECRET_ACCESS_KEY"] = c["SecretAccessKey"]
        env[f"LOCALCLOUD_{prefix}_SESSION_TOKEN"] = c["SessionToken"]
        env[f"LOCALCLOUD_{prefix}_ASSUMED_ARN"] = assumed_arn

    # --- sanity: auth is really on and the admin can write SSM ---------------
    ssm_admin = client("ssm", admin_key, admin_secret)
    name = "/crossfed/localcloud-selfcheck"
    ssm_admin.put_parameter(Name=name, Value="ok", Type="String", Overwrite=True)
    ssm_role = client(
        "ssm",
        env["LOCALCLOUD_ROLE_ACCESS_KEY_ID"],
        env["LOCALCLOUD_ROLE_SECRET_ACCESS_KEY"],
        env["LOCALCLOUD_ROLE_SESSION_TOKEN"],
    )
    assert ssm_role.get_parameter(Name=name)["Parameter"]["Value"] == "ok"
    outside = "/not-crossfed/localcloud-selfcheck"
    ssm_admin.put_parameter(Name=outside, Value="no", Type="String", Overwrite=True)
    for label, call in (
        ("unknown access key", lambda: client("ssm").get_parameter(Name=name)),
        ("role outside /crossfed/*", lambda: ssm_role.get_parameter(Name=outside)),
    ):
        try:
            call()
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status not in (400, 403):
                raise
        else:
            raise SystemExit(f"moto auth check failed: {label} was accepted")
    ssm_admin.delete_parameter(Name=name)
    ssm_admin.delete_parameter(Name=outside)

    # --- sanity: AssumeRoleWithWebIdentity is reachable unsigned and strict ---
    try:
        client("sts").assume_role_with_web_identity(
            RoleArn=google_role_arn, RoleSessionName="selfcheck", WebIdentityToken="not-a-jwt"
        )
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "InvalidIdentityToken":
            raise
    else:
        raise SystemExit("moto accepted an invalid web identity token")

    env["LOCALCLOUD_GCS_HTTP"] = f"http://{GCS_HOST}:{GCS_PORT}"

    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    tmp = ENV_FILE.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    os.chmod(tmp, 0o600)
    tmp.replace(ENV_FILE)
    print(f"localcloud: wrote {ENV_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
