"""Test function: unmodified Google libraries behind the crossfed extension.

Run by awslambdaric against the local Runtime API; returns what the libraries saw.
"""

import os

import google.auth
import google.auth.transport.requests
import google.oauth2.id_token
from google.cloud import storage


def handler(event, context):
    credentials, project = google.auth.default()
    # No STORAGE_EMULATOR_HOST (it would switch to anonymous): authentication stays on.
    client = storage.Client(
        client_options={"api_endpoint": os.environ["TEST_STORAGE_ENDPOINT"]}
    )
    buckets = sorted(b.name for b in client.list_buckets())
    data = client.bucket(event["bucket"]).blob(event["object"]).download_as_bytes()
    request = google.auth.transport.requests.Request()
    id_token = google.oauth2.id_token.fetch_id_token(request, event["audience"])
    return {
        "default_credentials": type(credentials).__module__ + "." + type(credentials).__name__,
        "default_project": project,
        "storage_project": client.project,
        "service_account": client._credentials.service_account_email,
        "token": client._credentials.token,
        "buckets": buckets,
        "object": data.decode(),
        "id_token": id_token,
    }
