#!/usr/bin/env python3
"""Empty the S3 buckets a crossfed stack created, so `sam delete` can remove them
(run by `make delete`).

CloudFormation cannot delete a bucket that still holds objects, and in a versioned
bucket that includes every noncurrent version and delete marker. This lists the stack's
AWS::S3::Bucket resources (the report bucket, and the source bucket unless the stack
was deployed with CreateSourceBucket=false), shows what they hold, asks for the stack
name as confirmation (or --yes), and deletes every version and delete marker.

    empty_buckets.py --stack-name crossfed [--region R] [--yes]
"""

from __future__ import annotations

import argparse
import sys

import boto3
from botocore.exceptions import BotoCoreError, ClientError


def stack_buckets(cfn, stack: str) -> list[str]:
    buckets = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        for r in page["StackResourceSummaries"]:
            if r["ResourceType"] == "AWS::S3::Bucket" and r.get("PhysicalResourceId") \
                    and r["ResourceStatus"] != "DELETE_COMPLETE":
                buckets.append(r["PhysicalResourceId"])
    return buckets


def versions(s3, bucket: str):
    """Yields batches (up to 1000) of {Key, VersionId} for every version and delete marker."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        batch = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                 for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if batch:
            yield batch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack-name", required=True)
    ap.add_argument("--region")
    ap.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    args = ap.parse_args()
    session = boto3.Session(region_name=args.region)
    try:
        buckets = stack_buckets(session.client("cloudformation"), args.stack_name)
    except (ClientError, BotoCoreError) as e:
        print(f"cannot list the resources of stack {args.stack_name}: {e}\n"
              "(check AWS credentials/region; a stack that no longer exists needs no emptying)",
              file=sys.stderr)
        return 1
    if not buckets:
        print(f"stack {args.stack_name}: no buckets to empty")
        return 0
    s3 = session.client("s3")
    print(f"stack {args.stack_name} owns these buckets; ALL their objects and versions will be deleted:")
    for b in buckets:
        print(f"  s3://{b}")
    if not args.yes:
        if input(f"type the stack name ({args.stack_name}) to continue: ").strip() != args.stack_name:
            print("not confirmed; nothing deleted", file=sys.stderr)
            return 1
    for b in buckets:
        deleted = 0
        try:
            for batch in versions(s3, b):
                out = s3.delete_objects(Bucket=b, Delete={"Objects": batch, "Quiet": True})
                if out.get("Errors"):
                    e = out["Errors"][0]
                    print(f"s3://{b}: cannot delete {e['Key']} ({e['Code']}: {e['Message']})", file=sys.stderr)
                    return 1
                deleted += len(batch)
        except ClientError as e:
            if e.response["Error"]["Code"] == "NoSuchBucket":
                continue
            print(f"s3://{b}: {e}", file=sys.stderr)
            return 1
        print(f"s3://{b}: deleted {deleted} object versions and delete markers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
