"""Lists the project's Cloud Storage buckets with Google's own library, unmodified.

Credentials come from the crossfed Lambda layer: its extension serves Google's metadata-server
API on 127.0.0.1:8173 (GCE_METADATA_HOST / GCE_METADATA_IP), so `storage.Client()` finds them
like on Compute Engine. No key file, no federation code here.
"""

import os

from google.cloud import storage

# Local runs only (`make run`): an authenticated endpoint instead of storage.googleapis.com.
_ENDPOINT = os.environ.get("CROSSFED_SAMPLE_STORAGE_ENDPOINT")

client = storage.Client(client_options={"api_endpoint": _ENDPOINT} if _ENDPOINT else None)


def handler(event, context):
    return {
        "project": client.project,
        "buckets": sorted(bucket.name for bucket in client.list_buckets()),
    }
