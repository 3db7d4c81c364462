"""`make bench` baseline: `functions/python-list-buckets` without the crossfed layer.

The same function federating in-process with Google's `google-auth`, the seed article's way
(`google.auth.aws.Credentials.from_info(config)` from the gcloud-generated credential
configuration), with the credentials and client built once at init so that warm invocations
reuse the cached token (the seed builds them per invocation, which would federate on every
call). The configuration is read from a bundled file rather than fetched from SSM with boto3:
that spares this baseline a round trip and an import the layer's extension does pay for.
"""

import json
import os

from google.auth import aws
from google.cloud import storage

# Local runs only: an authenticated endpoint instead of storage.googleapis.com.
_ENDPOINT = os.environ.get("CROSSFED_SAMPLE_STORAGE_ENDPOINT")

with open(os.environ["CROSSFED_BENCH_CREDENTIAL_CONFIG"], encoding="utf-8") as f:
    credentials = aws.Credentials.from_info(json.load(f))

client = storage.Client(
    credentials=credentials,
    project=os.environ["GOOGLE_CLOUD_PROJECT"],
    client_options={"api_endpoint": _ENDPOINT} if _ENDPOINT else None,
)


def handler(event, context):
    return {
        "project": client.project,
        "buckets": sorted(bucket.name for bucket in client.list_buckets()),
    }
