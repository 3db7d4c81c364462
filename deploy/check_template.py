#!/usr/bin/env python3
"""Offline SAM translation of template.yaml for each Architecture (run by `make lint`).

`sam validate --lint` only runs cfn-lint; the SAM transform itself (e.g. an invalid
ScheduleV2 DeadLetterConfig) fails only at deploy time. This script runs the transform
locally, once per Architecture value, and writes a copy of the template whose
Architecture default is that value to target/template-<arch>.yaml, so that
`sam validate --lint -t` and cfn-lint see each architecture too.

    check_template.py [TEMPLATE]        exit status 1 if any transform fails
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURES = ("arm64", "x86_64")
# Parameters without a default, as a user would give them.
REQUIRED = {
    "GoogleCloudProject": "my-project",
    "SourceBucketName": "crossfed-source",
    "SyncDestination": "gs://crossfed-destination/mirror",
}


class NoManagedPolicies:
    """The template names no managed policy by name, so nothing needs AWS to resolve."""

    def load(self) -> dict[str, str]:
        return {}


def with_default_architecture(text: str, arch: str) -> str:
    pattern = re.compile(r"(\n  Architecture:\n    Type: String\n    Default: )\S+")
    out, n = pattern.subn(lambda m: m.group(1) + arch, text)
    if n != 1:
        raise SystemExit("template.yaml: cannot find the Architecture parameter's Default")
    return out


def partition_problems(text: str) -> list[str]:
    """Hard-coded partition or DNS suffix (service principals excepted)."""
    return [
        f"line {n}: {line.strip()} (use ${{AWS::Partition}} / ${{AWS::URLSuffix}})"
        for n, line in enumerate(text.splitlines(), 1)
        if ("arn:aws:" in line or "amazonaws.com" in line) and "Service:" not in line
    ]


def schedule_input_problems(doc: dict) -> list[str]:
    """The scheduled report's Input must have the shape of the sample event file."""
    sample = json.loads((ROOT / "events" / "cross-cloud-report-schedule.json").read_text())
    events = doc["Resources"]["CrossCloudReportFunction"]["Properties"]["Events"]
    raw = events["Daily"]["Properties"]["Input"]["Fn::Sub"]
    raw = raw.replace("${AWS::AccountId}", sample["account"]).replace("${AWS::Region}", sample["region"])
    sent = json.loads(raw)
    problems = []
    if sorted(sent) != sorted(sample):
        problems.append(f"schedule Input keys {sorted(sent)} != sample event keys {sorted(sample)}")
    for key in ("version", "detail-type", "source", "account", "region", "detail"):
        if sent.get(key) != sample.get(key):
            problems.append(f"schedule Input {key}={sent.get(key)!r}, sample event has {sample.get(key)!r}")
    return problems


ACCOUNT = "111122223333"
PSEUDO = {"AWS::Partition": "aws", "AWS::AccountId": ACCOUNT, "AWS::Region": "us-east-1"}


def resolve(value, params: dict[str, str]):
    """Ref / Fn::Sub / Fn::GetAtt of a policy value, with `params` and pseudo parameters."""
    if isinstance(value, list):
        return [resolve(v, params) for v in value]
    if isinstance(value, dict) and "Ref" in value:
        return {**PSEUDO, **params}[value["Ref"]]
    if isinstance(value, dict) and "Fn::Sub" in value:
        return re.sub(r"\$\{([^}]+)\}", lambda m: {**PSEUDO, **params}[m.group(1)], value["Fn::Sub"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if isinstance(value, dict):
        return {k: resolve(v, params) for k, v in value.items()}
    return value


def condition_matches(condition: dict, context: dict[str, str]) -> bool:
    """IAM condition semantics for the operators the queue policy uses: every key must
    match; a key absent from the request makes a positive operator false and a negated one
    (`...NotEquals`) true."""
    for operator, keys in condition.items():
        negated = "Not" in operator
        if operator not in ("ArnEquals", "ArnNotEquals", "StringEquals", "StringNotEquals"):
            raise SystemExit(f"check_template.py: condition operator {operator} not modelled")
        for key, wanted in keys.items():
            wanted = wanted if isinstance(wanted, list) else [wanted]
            if key not in context:
                matched = negated
            else:
                matched = (context[key] in wanted) != negated
            if not matched:
                return False
    return True


def sync_queue_policy_problems(doc: dict) -> list[str]:
    """Who may send to the sync queue: the source bucket's S3 notifications, and this
    account's principals with an IAM allow (DLQ redrive, `start-message-move-task`, sends
    with its caller's permissions); not other buckets' notifications, not other accounts."""
    params = dict(REQUIRED)
    bucket = f"arn:aws:s3:::{params['SourceBucketName']}"
    statements = doc["Resources"]["SyncQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    statements = [resolve(s, params) for s in statements]

    def decide(principal: dict, context: dict[str, str], identity_allows: bool) -> str:
        applies = [
            s for s in statements
            if "sqs:SendMessage" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
            and (s["Principal"] == "*" or s["Principal"] == principal)
            and condition_matches(s.get("Condition", {}), context)
        ]
        if any(s["Effect"] == "Deny" for s in applies):
            return "denied"
        allowed = identity_allows or any(s["Effect"] == "Allow" for s in applies)
        return "allowed" if allowed else "denied"

    s3 = {"Service": "s3.amazonaws.com"}
    cases = [
        ("the source bucket's notifications", s3,
         {"aws:SourceArn": bucket, "aws:SourceAccount": ACCOUNT}, False, "allowed"),
        ("another bucket's notifications", s3,
         {"aws:SourceArn": "arn:aws:s3:::other-bucket", "aws:SourceAccount": ACCOUNT}, False,
         "denied"),
        ("DLQ redrive by a role of this account", {"AWS": ACCOUNT},
         {"aws:PrincipalAccount": ACCOUNT}, True, "allowed"),
        ("a principal of another account", {"AWS": "444455556666"},
         {"aws:PrincipalAccount": "444455556666"}, True, "denied"),
    ]
    problems = []
    for what, principal, context, identity_allows, expected in cases:
        got = decide(principal, context, identity_allows)
        if got != expected:
            problems.append(f"SyncQueuePolicy: sqs:SendMessage by {what} is {got}, want {expected}")
    return problems


def main() -> int:
    template = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"
    text = template.read_text()
    out_dir = ROOT / "target"
    out_dir.mkdir(exist_ok=True)
    failed = 0
    doc = yaml_parse(text)
    problems = partition_problems(text) + schedule_input_problems(doc)
    for problem in problems + sync_queue_policy_problems(doc):
        failed += 1
        print(f"template.yaml: {problem}", file=sys.stderr)
    for arch in ARCHITECTURES:
        variant = with_default_architecture(text, arch)
        (out_dir / f"template-{arch}.yaml").write_text(variant)
        # Local CodeUri/ContentUri paths are what `sam build` replaces; the translator wants
        # an S3 URI.
        local_uri = re.compile(r"^(\s+(?:CodeUri|ContentUri): )(?!s3://)\S+$", re.M)
        doc = yaml_parse(local_uri.sub(lambda m: m.group(1) + "s3://bucket/key", variant))
        try:
            out = transform(doc, {**REQUIRED, "Architecture": arch}, NoManagedPolicies())
        except InvalidDocumentException as e:
            failed += 1
            for cause in e.causes:
                print(f"template.yaml (Architecture={arch}): {cause.message}", file=sys.stderr)
            continue
        functions = [
            name for name, r in out["Resources"].items() if r["Type"] == "AWS::Lambda::Function"
        ]
        print(f"template.yaml (Architecture={arch}): SAM transform OK, "
              f"{len(out['Resources'])} resources, functions {', '.join(sorted(functions))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
