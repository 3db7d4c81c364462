#!/usr/bin/env python3
"""Offline SAM translation of template.yaml for each Architecture (run by `make lint`).

`sam validate --lint` only runs cfn-lint; the SAM transform itself (e.g. an invalid
ScheduleV2 DeadLetterConfig) fails only at deploy time. This script runs the transform
locally, once per Architecture value, and writes a copy of the template whose
Architecture default is that value to target/template-<arch>.yaml, so that
`sam validate --lint -t` and cfn-lint see each architecture too.

    check_template.py [TEMPLATE]        exit status 1 if any transform fails

With --stack, it prints instead what a deployed stack of that name would show, as JSON, for
the tests of `crossfed bootstrap`: the stack's Outputs (DescribeStacks) with physical names
as CloudFormation generates them (STACK-LogicalId-SUFFIX, shortened to 64 characters for roles
and functions), the template's parameters, and each function's name (its role's session name
in Lambda), role and environment evaluated with the given parameter values:

    check_template.py --stack NAME [--parameters JSON]   JSON: {"Key": "value", ...}
"""

from __future__ import annotations

import argparse
import hashlib
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


def physical_name(stack: str, logical_id: str, limit: int = 64) -> str:
    """A name as CloudFormation generates it for a resource without one: STACK-LOGICALID-SUFFIX
    (a 12-character suffix), the stack name and logical ID shortened (the longer first) so
    that the whole fits in `limit` characters."""
    digest = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest().upper()
    suffix = digest[:12]
    head, tail = stack, logical_id
    while len(head) + len(tail) + len(suffix) + 2 > limit:
        if len(head) >= len(tail):
            head = head[:-1]
        else:
            tail = tail[:-1]
    return f"{head}-{tail}-{suffix}"


class Stack:
    """Evaluates the transformed template's intrinsic functions for one deployed stack."""

    def __init__(self, transformed: dict, name: str, params: dict[str, str]):
        self.doc = transformed
        self.name = name
        self.pseudo = {
            "AWS::Partition": "aws",
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": "us-east-1",
            "AWS::StackName": name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        defaults = {
            k: str(v.get("Default", "")) for k, v in transformed.get("Parameters", {}).items()
        }
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise SystemExit(f"not parameters of the template: {', '.join(unknown)}")
        self.params = {**defaults, **params}

    def physical(self, logical_id: str) -> str:
        resource = self.doc["Resources"][logical_id]
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::Lambda::Function":
            explicit = props.get("FunctionName")
            return self.eval(explicit) if explicit else physical_name(self.name, logical_id)
        if kind == "AWS::IAM::Role":
            explicit = props.get("RoleName")
            return self.eval(explicit) if explicit else physical_name(self.name, logical_id)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{self.queue_name(logical_id)}"
        if kind == "AWS::S3::Bucket":
            explicit = props.get("BucketName")
            return self.eval(explicit) if explicit else physical_name(self.name, logical_id, 63).lower()
        return physical_name(self.name, logical_id)

    def queue_name(self, logical_id: str) -> str:
        return physical_name(self.name, logical_id, 80)

    def attribute(self, logical_id: str, attr: str) -> str:
        kind = self.doc["Resources"][logical_id]["Type"]
        if kind == "AWS::SQS::Queue" and attr in ("Arn", "QueueName"):
            name = self.queue_name(logical_id)
            return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}" if attr == "Arn" else name
        name = self.physical(logical_id)
        if kind == "AWS::IAM::Role" and attr == "Arn":
            return f"arn:aws:iam::{ACCOUNT}:role/{name}"
        if kind == "AWS::Lambda::Function" and attr == "Arn":
            return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
        return f"arn:aws:{kind.split('::')[1].lower()}:us-east-1:{ACCOUNT}:{name}/{attr}"

    def condition(self, name: str) -> bool:
        return bool(self.eval(self.doc["Conditions"][name]))

    def ref(self, name: str):
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.physical(name)

    def sub(self, text: str, extra: dict) -> str:
        def one(m: re.Match) -> str:
            key = m.group(1)
            if key in extra:
                return str(extra[key])
            if "." in key and key.split(".")[0] in self.doc["Resources"]:
                return self.attribute(*key.split(".", 1))
            return str(self.ref(key))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def eval(self, value):
        if isinstance(value, list):
            return [self.eval(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attribute(parts[0], parts[1])
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                return self.sub(arg[0], {k: self.eval(v) for k, v in arg[1].items()})
            if key == "Fn::If":
                return self.eval(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self.eval(arg[0]) == self.eval(arg[1])
            if key == "Fn::Not":
                return not self.eval(arg[0])
            if key == "Fn::And":
                return all(self.eval(a) for a in arg)
            if key == "Fn::Or":
                return any(self.eval(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Select":
                return self.eval(arg[1])[int(self.eval(arg[0]))]
            if key == "Fn::Split":
                return self.eval(arg[1]).split(arg[0])
            if key == "Fn::Join":
                return arg[0].join(self.eval(arg[1]))
            if key == "Fn::FindInMap":
                m, k1, k2 = (self.eval(a) for a in arg)
                return self.doc["Mappings"][m][k1][k2]
        return {k: self.eval(v) for k, v in value.items()}

    def describe(self) -> dict:
        outputs = {}
        for key, output in self.doc.get("Outputs", {}).items():
            if "Condition" in output and not self.condition(output["Condition"]):
                continue
            outputs[key] = str(self.eval(output["Value"]))
        functions = {}
        for logical_id, r in self.doc["Resources"].items():
            if r["Type"] != "AWS::Lambda::Function":
                continue
            props = r["Properties"]
            env = self.eval(props.get("Environment", {}).get("Variables", {}))
            functions[logical_id] = {
                "name": self.physical(logical_id),
                "role_arn": self.eval(props["Role"]),
                "environment": {k: v for k, v in env.items() if v is not None},
            }
        return {
            "stack": self.name,
            "parameters": sorted(self.doc.get("Parameters", {})),
            "outputs": outputs,
            "functions": functions,
        }


def describe_stack(template: Path, stack: str, params: dict[str, str]) -> dict:
    """The transformed template (Architecture's default) as a deployed stack named `stack`."""
    local_uri = re.compile(r"^(\s+(?:CodeUri|ContentUri): )(?!s3://)\S+$", re.M)
    doc = yaml_parse(local_uri.sub(lambda m: m.group(1) + "s3://bucket/key", template.read_text()))
    values = {**REQUIRED, **params}
    out = transform(doc, values, NoManagedPolicies())
    return Stack(out, stack, values).describe()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", nargs="?", default=str(ROOT / "template.yaml"))
    parser.add_argument("--stack", help="print the deployed stack of this name (JSON)")
    parser.add_argument("--parameters", default="{}", help="parameter values (JSON object)")
    args = parser.parse_args()
    template = Path(args.template)
    if args.stack:
        print(json.dumps(describe_stack(template, args.stack, json.loads(args.parameters)), indent=2))
        return 0
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
