"""What a user would script instead of gcs-sync: boto3 streaming GET -> google-cloud-storage
resumable upload (100 MiB chunks, CRC32C checked), as `make bench` runs it side by side
with gcs-sync on the same local clouds.

Usage: boto3_to_gcs.py S3_BUCKET KEY GCS_BUCKET NAME
Environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
AWS_REGION, STORAGE_EMULATOR_HOST (the Cloud Storage JSON API). Prints the copy's wall
time in seconds (client construction excluded) as JSON on stdout.
"""

import json
import sys
import time

import boto3
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

CHUNK = 100 * 1024 * 1024


def main() -> None:
    s3_bucket, key, gcs_bucket, name = sys.argv[1:5]
    s3 = boto3.client("s3")
    gcs = storage.Client(project="bench", credentials=AnonymousCredentials())
    started = time.monotonic()
    response = s3.get_object(Bucket=s3_bucket, Key=key)
    size = response["ContentLength"]
    blob = gcs.bucket(gcs_bucket).blob(name, chunk_size=CHUNK)
    blob.upload_from_file(
        response["Body"],
        size=size,
        content_type=response.get("ContentType"),
        checksum="crc32c",
    )
    elapsed = time.monotonic() - started
    blob.reload()
    print(json.dumps({"seconds": elapsed, "size": blob.size, "crc32c": blob.crc32c}))


if __name__ == "__main__":
    main()
