#!/usr/bin/env python3
"""Run moto in server mode on 127.0.0.1:${MOTO_PORT:-5055}, with a SigV4 fix.

moto bug (moto 5.2.5, moto/iam/access_control.py,
IAMRequestBase._create_aws_request): the request it re-signs to verify a
SigV4 signature is built with ``data=self._body or self._data``.  For a
request whose body is EMPTY and whose parameters are in the query string
(``POST /?Action=GetCallerIdentity&Version=2011-06-15`` with no body, the
exact request a Google Workload Identity Federation AWS subject token signs)
``self._data`` is the parsed query string, so botocore re-encodes it as a
form body and hashes *that* as the payload instead of sha256(b"").  Every
correctly signed request of that shape is rejected with
SignatureDoesNotMatch.  The patch below re-signs such requests with an empty
payload.  The parameters are still covered by the signature through the
canonical query string, which botocore takes from the URL (the path moto
passes includes ``?query``).

Second gap (not a crash, a missing feature): moto authorizes every SSM call
against the resource "*", so a policy scoped to
``arn:aws:ssm:*:ACCOUNT:parameter/crossfed/*`` never matches and the role is
denied.  The patch makes SSM authorize against the parameter ARN(s) named in
the request (each of ``Names`` for GetParameters).

Third gap: with auth on, a request without an Authorization header, or with
a malformed one, crashes moto's check (KeyError/IndexError -> HTTP 500).  The
patch answers 403 MissingAuthenticationToken / IncompleteSignature instead,
as AWS does.  An AWS4 Authorization header without a well-formed credential
scope already crashes moto's request routing, so reject_malformed_sigv4()
answers those with 403 IncompleteSignature before moto sees them.

Fourth gap: moto's STS AssumeRoleWithWebIdentity accepts any token for any
role and, with auth on, demands a SigV4 signature AWS does not require (and
cannot route an unsigned call whose parameters are in the query string).
web_identity.py (next to this file) makes it verify Google ID tokens signed by
the test key in tests/fixtures and evaluate the role's trust policy like AWS;
see its docstring.

Note: moto never checks the age of X-Amz-Date; the crossfed fake STS does.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from botocore.awsrequest import AWSRequest
from moto.iam import access_control
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import _RESTError
from moto.ssm.responses import SimpleSystemManagerResponse
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import web_identity  # noqa: E402


class MissingAuthenticationTokenError(_RESTError):
    code = 403

    def __init__(self) -> None:
        super().__init__("MissingAuthenticationToken", "Request is missing Authentication Token")


class IncompleteSignatureError(_RESTError):
    code = 403

    def __init__(self) -> None:
        super().__init__("IncompleteSignature", "The request signature does not conform to AWS standards.")


_orig_iam_request_init = access_control.IAMRequestBase.__init__


def _header(headers, name: str):
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _iam_request_init(self, account_id, method, path, data, body, headers, action):
    auth = _header(headers, "authorization")
    if not auth:
        raise MissingAuthenticationTokenError()
    credential = auth.partition("Credential=")[2].partition(",")[0]
    if (
        not auth.startswith("AWS4-HMAC-SHA256 ")
        or len(credential.split("/")) != 5
        or "SignedHeaders=" not in auth
        or "Signature=" not in auth
        or "Authorization" not in headers
        or "X-Amz-Date" not in headers
    ):
        raise IncompleteSignatureError()
    _orig_iam_request_init(self, account_id, method, path, data, body, headers, action)


def _content_length(headers) -> int:
    value = _header(headers, "content-length")
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _create_aws_request(self: access_control.IAMRequestBase) -> AWSRequest:
    signed_headers = self._get_string_between(
        "SignedHeaders=", ",", self._headers["Authorization"]
    ).split(";")
    headers = self._create_headers_for_aws_request(signed_headers, self._headers)
    if self._body:
        data = self._body
    elif "?" in self._path and _content_length(self._headers) == 0:
        # Parameters travel in the URL and nothing was sent: the signed
        # payload is empty.  (A form body that werkzeug consumed still has a
        # Content-Length and keeps the upstream fallback below.)
        data = b""
    else:
        # Upstream fallback (form parameters no longer present as raw body).
        data = self._data
    request = AWSRequest(
        method=self._method, url=self._path, data=data, headers=headers
    )
    request.context["timestamp"] = headers["X-Amz-Date"]
    return request


def _ssm_parameter_arn(self: SimpleSystemManagerResponse, name: str) -> str:
    if name.startswith("arn:"):
        return name
    if not name.startswith("/"):
        name = "/" + name
    return f"arn:{self.partition}:ssm:{self.region}:{self.current_account}:parameter{name}"


def _ssm_authenticate(self: SimpleSystemManagerResponse, resource: str = "*") -> None:
    names: list[str] = []
    try:
        params = json.loads(self.body) if self.body else {}
    except (TypeError, ValueError):
        params = {}
    if isinstance(params, dict):
        if isinstance(params.get("Name"), str):
            names.append(params["Name"])
        if isinstance(params.get("Names"), list):
            names.extend(n for n in params["Names"] if isinstance(n, str))
    if not names:
        return ActionAuthenticatorMixin._authenticate_and_authorize_normal_action(self, resource)
    for name in names:
        ActionAuthenticatorMixin._authenticate_and_authorize_normal_action(
            self, _ssm_parameter_arn(self, name)
        )


def apply_patches() -> None:
    access_control.IAMRequestBase.__init__ = _iam_request_init
    access_control.IAMRequestBase._create_aws_request = _create_aws_request
    SimpleSystemManagerResponse._authenticate_and_authorize_normal_action = _ssm_authenticate
    web_identity.apply_patches()


class _Dispatcher(DomainDispatcherApplication):
    """Routes an unsigned AssumeRoleWithWebIdentity with query parameters to
    STS (moto only recognises unsigned STS calls by their form body)."""

    def infer_service_region_host(self, environ, path):
        if web_identity.unsigned_web_identity_in_query(environ):
            return "sts.us-east-1.amazonaws.com"
        return super().infer_service_region_host(environ, path)


_INCOMPLETE_SIGNATURE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>Sender</Type>'
    b"<Code>IncompleteSignature</Code>"
    b"<Message>The request signature does not conform to AWS standards.</Message>"
    b"</Error><RequestId>0</RequestId></ErrorResponse>"
)


def reject_malformed_sigv4(app):
    """WSGI middleware: 403 for an AWS4 Authorization header moto cannot route."""

    def wrapped(environ, start_response):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if "AWS4" in auth:
            try:
                scope = auth.split(",")[0].split()[1]
                ok = scope.startswith("Credential=") and len(scope.split("/")) == 5
            except IndexError:
                ok = False
            if not ok:
                start_response(
                    "403 Forbidden",
                    [("Content-Type", "text/xml"),
                     ("Content-Length", str(len(_INCOMPLETE_SIGNATURE)))],
                )
                return [_INCOMPLETE_SIGNATURE]
        return app(environ, start_response)

    return wrapped


def make_app():
    return reject_malformed_sigv4(_Dispatcher(create_backend_app))


def main() -> int:
    host = os.environ.get("MOTO_HOST", "127.0.0.1")
    port = int(os.environ.get("MOTO_PORT", "5055"))
    apply_patches()
    app = make_app()
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)

    def _stop(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"moto (patched) listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
