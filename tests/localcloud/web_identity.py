"""STS AssumeRoleWithWebIdentity for Google ID tokens, as strict as AWS.

moto 5.2.5 accepts any WebIdentityToken for any role.  apply_patches()
makes moto's STS:

* accept AssumeRoleWithWebIdentity without a SigV4 signature even with auth
  on (AWS does not require one), whether the parameters travel in the query
  string or a form body;
* validate RoleArn, RoleSessionName (2-64 chars of [\\w+=,.@-]),
  DurationSeconds (900..MaxSessionDuration of the role), WebIdentityToken
  (4..20000 chars) and Policy (JSON) -> ValidationError /
  MalformedPolicyDocument;
* verify the token as a Google ID token: RS256 JWT signed by the test key
  tests/fixtures/google-id-token-test-key.pub.pem (kid "crossfed-test"),
  ``iss`` https://accounts.google.com or accounts.google.com, ``exp`` in the
  future -> InvalidIdentityToken / ExpiredTokenException;
* evaluate the role's trust policy as AWS does for Google: an Allow statement
  for sts:AssumeRoleWithWebIdentity with Principal.Federated
  accounts.google.com whose conditions hold, and no matching Deny.  Condition
  keys: accounts.google.com:aud = the token's ``azp`` (``aud`` if no azp),
  accounts.google.com:oaud = ``aud``, accounts.google.com:sub = ``sub``,
  accounts.google.com:email = ``email``; operators StringEquals,
  StringEqualsIgnoreCase, StringLike, StringNotEquals, StringNotLike (each
  also ...IfExists).  Anything else does not match.  Otherwise 403
  AccessDenied "Not authorized to perform sts:AssumeRoleWithWebIdentity"
  (also for a role that does not exist);
* on success let moto mint the session (ASIA credentials that moto's IAM
  checks attribute to the role) and add SubjectFromWebIdentityToken,
  Provider and Audience to the response.

Errors use the AWS query-protocol XML (ErrorResponse/Error/Type,Code,Message).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from moto.core.exceptions import _RESTError
from moto.iam.models import iam_backends
from moto.sts.responses import TokenResponse

ACTION = "AssumeRoleWithWebIdentity"
GOOGLE_PROVIDER = "accounts.google.com"
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
KEY_ID = "crossfed-test"
PUBLIC_KEY_PATH = (
    Path(__file__).resolve().parents[1] / "fixtures" / "google-id-token-test-key.pub.pem"
)
SESSION_NAME_RE = re.compile(r"[\w+=,.@-]*", re.ASCII)

_public_key: rsa.RSAPublicKey | None = None


def public_key() -> rsa.RSAPublicKey:
    global _public_key
    if _public_key is None:
        key = serialization.load_pem_public_key(PUBLIC_KEY_PATH.read_bytes())
        assert isinstance(key, rsa.RSAPublicKey)
        _public_key = key
    return _public_key


class StsError(_RESTError):
    """An STS error in the AWS query-protocol XML format."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.code = status
        super().__init__(code, message)
        self.description = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n'
            "  <Error>\n"
            "    <Type>Sender</Type>\n"
            f"    <Code>{_xml(code)}</Code>\n"
            f"    <Message>{_xml(message)}</Message>\n"
            "  </Error>\n"
            f"  <RequestId>{uuid.uuid4()}</RequestId>\n"
            "</ErrorResponse>\n"
        )
        self.content_type = "text/xml"


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def validation_error(message: str) -> StsError:
    return StsError(400, "ValidationError", message)


def invalid_token(message: str) -> StsError:
    return StsError(400, "InvalidIdentityToken", message)


def access_denied() -> StsError:
    return StsError(403, "AccessDenied", f"Not authorized to perform sts:{ACTION}")


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_google_id_token(token: str, now: float | None = None) -> dict[str, Any]:
    """Claims of a valid Google ID token signed by the test key, or StsError."""
    not_jwt = invalid_token(
        "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)"
    )
    parts = token.split(".")
    if len(parts) != 3:
        raise not_jwt
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error):
        raise not_jwt from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise not_jwt
    iss = claims.get("iss")
    if iss not in GOOGLE_ISSUERS:
        raise invalid_token(f"No OpenIDConnect provider found in your account for {iss}")
    if header.get("alg") != "RS256" or header.get("kid") != KEY_ID:
        raise invalid_token("Couldn't verify the token signature: unknown key or algorithm")
    try:
        public_key().verify(
            signature,
            f"{parts[0]}.{parts[1]}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        raise invalid_token("Couldn't verify the token signature") from None
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise invalid_token("The token is missing the required claim exp")
    now = time.time() if now is None else now
    if exp <= now:
        raise StsError(
            400,
            "ExpiredTokenException",
            f"Token expired: current date/time {int(now)} must be before the expiration date/time {exp}",
        )
    for claim in ("aud", "sub"):
        if not isinstance(claims.get(claim), str) or not claims[claim]:
            raise invalid_token(f"The token is missing the required claim {claim}")
    return claims


def condition_values(claims: dict[str, Any]) -> dict[str, str]:
    """Context keys AWS sets for a Google ID token (lower-case names)."""
    values = {
        f"{GOOGLE_PROVIDER}:aud": claims.get("azp") or claims["aud"],
        f"{GOOGLE_PROVIDER}:oaud": claims["aud"],
        f"{GOOGLE_PROVIDER}:sub": claims["sub"],
    }
    if isinstance(claims.get("email"), str):
        values[f"{GOOGLE_PROVIDER}:email"] = claims["email"]
    return values


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(condition: Any, context: dict[str, str]) -> bool:
    if condition is None:
        return True
    if not isinstance(condition, dict):
        return False
    for operator, tests in condition.items():
        if not isinstance(tests, dict):
            return False
        op = operator
        if_exists = op.endswith("IfExists")
        if if_exists:
            op = op[: -len("IfExists")]
        for key, expected in tests.items():
            actual = context.get(str(key).lower())
            wanted = [str(v) for v in _as_list(expected)]
            if actual is None:
                # Missing key: only the negated and ...IfExists forms hold.
                if if_exists or op in ("StringNotEquals", "StringNotLike"):
                    continue
                return False
            if op == "StringEquals":
                ok = actual in wanted
            elif op == "StringEqualsIgnoreCase":
                ok = actual.lower() in (w.lower() for w in wanted)
            elif op == "StringNotEquals":
                ok = actual not in wanted
            elif op == "StringLike":
                ok = any(fnmatch.fnmatchcase(actual, w) for w in wanted)
            elif op == "StringNotLike":
                ok = not any(fnmatch.fnmatchcase(actual, w) for w in wanted)
            else:
                ok = False  # unsupported operator: never grants access
            if not ok:
                return False
    return True


def _action_matches(statement: dict[str, Any]) -> bool:
    target = f"sts:{ACTION}".lower()
    if "Action" in statement:
        return any(fnmatch.fnmatchcase(target, str(a).lower()) for a in _as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(
            fnmatch.fnmatchcase(target, str(a).lower()) for a in _as_list(statement["NotAction"])
        )
    return False


def _principal_matches(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal")
    if not isinstance(principal, dict):
        return False
    return GOOGLE_PROVIDER in _as_list(principal.get("Federated", []))


def trust_policy_allows(document: str, claims: dict[str, Any]) -> bool:
    try:
        policy = json.loads(document)
    except ValueError:
        policy = json.loads(unquote(document))
    context = condition_values(claims)
    allowed = False
    for statement in _as_list(policy.get("Statement", [])):
        if not isinstance(statement, dict):
            continue
        if not (
            _action_matches(statement)
            and _principal_matches(statement)
            and _condition_holds(statement.get("Condition"), context)
        ):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


def _role_for(arn: str):
    match = re.fullmatch(r"arn:(aws[\w-]*):iam::(\d{12}):role/(?:[\w+=,.@/-]*/)?[\w+=,.@-]+", arn)
    if not match:
        return None
    partition, account = match.group(1), match.group(2)
    try:
        return iam_backends[account][partition].get_role_by_arn(arn)
    except Exception:  # noqa: BLE001 - moto raises its own NotFound types
        return None


def _check_params(self: TokenResponse) -> tuple[str, str, int]:
    def value_error(value: Any, field: str, constraint: str) -> StsError:
        shown = "null" if value is None else f"'{value}'"
        return validation_error(
            f"1 validation error detected: Value {shown} at '{field}' failed to satisfy constraint: {constraint}"
        )

    role_arn = self._get_param("RoleArn")
    session = self._get_param("RoleSessionName")
    token = self._get_param("WebIdentityToken")
    for value, field in ((role_arn, "roleArn"), (session, "roleSessionName"), (token, "webIdentityToken")):
        if value is None:
            raise value_error(None, field, "Member must not be null")
    if not 20 <= len(role_arn) <= 2048:
        raise value_error(role_arn, "roleArn", "Member must have length between 20 and 2048")
    if len(session) < 2:
        raise value_error(session, "roleSessionName", "Member must have length greater than or equal to 2")
    if len(session) > 64:
        raise value_error(session, "roleSessionName", "Member must have length less than or equal to 64")
    if not SESSION_NAME_RE.fullmatch(session):
        raise value_error(
            session, "roleSessionName", r"Member must satisfy regular expression pattern: [\w+=,.@-]*"
        )
    if not 4 <= len(token) <= 20000:
        raise value_error("***", "webIdentityToken", "Member must have length between 4 and 20000")
    raw_duration = self._get_param("DurationSeconds")
    try:
        duration = 3600 if raw_duration is None else int(raw_duration)
    except (TypeError, ValueError):
        raise value_error(raw_duration, "durationSeconds", "Member must be an integer") from None
    if duration < 900:
        raise value_error(duration, "durationSeconds", "Member must have value greater than or equal to 900")
    if duration > 43200:
        raise value_error(duration, "durationSeconds", "Member must have value less than or equal to 43200")
    policy = self._get_param("Policy")
    if policy is not None:
        try:
            json.loads(policy)
        except ValueError:
            raise StsError(400, "MalformedPolicyDocument", "The policy is not in the valid JSON format.") from None
        if len(policy) > 2048:
            raise StsError(400, "PackedPolicyTooLarge", "Packed size of consumed sessions policies exceeds 100 percent of the allowed value.")
    return role_arn, token, duration


_orig_assume_role_with_web_identity = TokenResponse.assume_role_with_web_identity
_orig_sts_authenticate = TokenResponse._authenticate_and_authorize_normal_action


def _assume_role_with_web_identity(self: TokenResponse):
    role_arn, token, duration = _check_params(self)
    claims = verify_google_id_token(token)
    role = _role_for(role_arn)
    if role is None or not trust_policy_allows(role.assume_role_policy_document, claims):
        raise access_denied()
    max_duration = int(role.max_session_duration or 3600)
    if duration > max_duration:
        raise validation_error(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        )
    result = _orig_assume_role_with_web_identity(self)
    result.result["SubjectFromWebIdentityToken"] = claims["sub"]
    result.result["Provider"] = GOOGLE_PROVIDER
    result.result["Audience"] = claims.get("azp") or claims["aud"]
    return result


def _sts_authenticate(self: TokenResponse, resource: str = "*") -> None:
    # AWS does not require (or check) a signature on AssumeRoleWithWebIdentity.
    if self._get_action() == ACTION:
        return None
    return _orig_sts_authenticate(self, resource)


def unsigned_web_identity_in_query(environ: dict[str, Any]) -> bool:
    """An unsigned AssumeRoleWithWebIdentity whose Action is in the URL (moto
    only routes unsigned STS calls by a form body)."""
    if environ.get("HTTP_AUTHORIZATION"):
        return False
    query = parse_qs(environ.get("QUERY_STRING", ""))
    return query.get("Action") == [ACTION]


def apply_patches() -> None:
    TokenResponse.assume_role_with_web_identity = _assume_role_with_web_identity
    TokenResponse._authenticate_and_authorize_normal_action = _sts_authenticate

