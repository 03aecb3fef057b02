"""Signed webhook deliveries: one POST of an event, and what a receiver needs to trust it.

The body is the event's JSON; `X-Runyard-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body bytes
with the rule's secret, so a receiver recomputes it over the bytes it read (before any JSON parsing) and
compares in constant time. `X-Runyard-Event-Id` is the same for every try of one event: receivers use it to
ignore a repeat (a delivery cut off by a restart is sent again).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import httpx

USER_AGENT = "Runyard-Events"
SIGNATURE_HEADER = "X-Runyard-Signature"
EVENT_ID_HEADER = "X-Runyard-Event-Id"
RULE_HEADER = "X-Runyard-Rule"
_ERROR_MAX = 200
_SECRET_MAX = 512


def generate_secret() -> str:
    return secrets.token_hex(32)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def check_url(url: str) -> str:
    """The URL if deliveries can go to it; ValueError saying why not."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"a target URL is http:// or https://, not {parsed.scheme or 'without a scheme'}")
    if not parsed.host:
        raise ValueError("the target URL has no host")
    if parsed.userinfo:
        # Credentials would be stored and listed with the URL; the signature is how a receiver trusts a delivery.
        raise ValueError("the target URL must not hold credentials (receivers verify X-Runyard-Signature instead)")
    if parsed.fragment:
        raise ValueError("the target URL must not have a #fragment")
    return url


def check_secret(secret: str) -> str:
    """A signing secret someone chose: printable, no spaces, not too long; ValueError saying why not."""
    if not secret:
        raise ValueError("the signing secret is empty")
    if len(secret) > _SECRET_MAX:
        raise ValueError(f"the signing secret is longer than {_SECRET_MAX} characters")
    if not secret.isprintable() or any(c.isspace() for c in secret):
        raise ValueError("the signing secret holds spaces or control characters")
    return secret


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status: int | None  # the receiver's HTTP status, when it answered
    error: str | None = None  # short, for `runyard events deliveries`; never the secret


async def post(client: httpx.AsyncClient, url: str, body: str, *, secret: str, rule: str, event_id: str) -> Outcome:
    """One try: 2xx is a delivery; anything else (another status, no answer in time) is an error to retry."""
    data = body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(secret, data),
        EVENT_ID_HEADER: event_id,
        RULE_HEADER: rule,
    }
    try:
        # Streamed and never read: only the status matters, and a receiver's large answer is not held.
        async with client.stream("POST", url, content=data, headers=headers) as response:
            status, reason = response.status_code, response.reason_phrase
    except httpx.TimeoutException as exc:
        return Outcome(ok=False, status=None, error=_short(f"no answer in time ({type(exc).__name__})", secret))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Outcome(ok=False, status=None, error=_short(f"{type(exc).__name__}: {exc}".rstrip(": "), secret))
    if 200 <= status < 300:
        return Outcome(ok=True, status=status)
    return Outcome(ok=False, status=status, error=_short(f"HTTP {status} {reason}".rstrip(), secret))


def _short(text: str, secret: str) -> str:
    text = " ".join(text.split())
    if secret:
        text = text.replace(secret, "[secret]")
    return text if len(text) <= _ERROR_MAX else text[: _ERROR_MAX - 3] + "..."
