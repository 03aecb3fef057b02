"""SigV4 verification with botocore's own signer, honouring the client's SignedHeaders."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

MAX_SKEW_SECONDS = 15 * 60
_AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request\s*,\s*"
    r"SignedHeaders=([a-z0-9;\-]+)\s*,\s*Signature=([0-9a-f]{64})\s*"
)


class AuthFailure(Exception):
    """A request that is not signed for a known principal; `code` is AWS's error name (HTTP 403)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class SignedIdentity:
    access_key_id: str
    region: str
    service: str


class _ExactHeadersSigner(SigV4Auth):  # type: ignore[misc]
    """botocore's signer, but signing exactly the headers the client listed (no deny-list)."""

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        headers = HTTPHeaders()
        for name, value in request.headers.items():
            headers[name.lower()] = value
        return headers


def verify(
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
    now: float | None = None,
) -> SignedIdentity:
    """Check an Authorization header against the known secrets; return who signed it and for what.

    `headers` must be case-insensitive (Starlette's Headers are). Raises AuthFailure.
    """
    authorization = headers.get("authorization")
    if not authorization:
        raise AuthFailure("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = _AUTH_RE.fullmatch(authorization.strip())
    if match is None:
        raise AuthFailure(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters "
            "of the AWS4-HMAC-SHA256 algorithm.",
        )
    access_key, scope_date, region, service, signed_headers, signature = match.groups()
    secret = secrets.get(access_key)
    if secret is None:
        raise AuthFailure("UnrecognizedClientException", "The security token included in the request is invalid.")
    amz_date = headers.get("x-amz-date", "")
    if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date):
        raise AuthFailure("IncompleteSignatureException", "The request must contain a valid X-Amz-Date header.")
    if amz_date[:8] != scope_date:
        raise AuthFailure("InvalidSignatureException", "Date in Credential scope does not match X-Amz-Date.")
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:  # well-formed but not a date, e.g. month 13
        raise AuthFailure(
            "IncompleteSignatureException", "The request must contain a valid X-Amz-Date header."
        ) from None
    current = time.time() if now is None else now
    if abs(current - signed_at) > MAX_SKEW_SECONDS:
        raise AuthFailure(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now outside the allowed {MAX_SKEW_SECONDS // 60} minute window.",
        )
    names = signed_headers.split(";")
    if "host" not in names:
        raise AuthFailure("InvalidSignatureException", "'Host' must be a signed header.")
    missing = [name for name in names if name not in headers]
    if missing:
        raise AuthFailure("InvalidSignatureException", f"Signed header {missing[0]!r} is missing from the request.")
    declared_hash = headers.get("x-amz-content-sha256")
    if declared_hash is not None and declared_hash != hashlib.sha256(body).hexdigest():
        raise AuthFailure("InvalidSignatureException", "The provided x-amz-content-sha256 does not match the body.")

    url = f"http://{headers['host']}{raw_path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in names})
    request.context["timestamp"] = amz_date
    signer = _ExactHeadersSigner(Credentials(access_key, secret), service, region)
    try:
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    except ValueError:  # an unparsable Host, e.g. "[::1"
        raise AuthFailure("InvalidSignatureException", "The Host header is not valid.") from None
    if not hmac.compare_digest(expected, signature):
        raise AuthFailure(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    return SignedIdentity(access_key_id=access_key, region=region, service=service)
