"""Opaque NextToken pagination: a token names where the previous page ended and which query it
belongs to; it is omitted on the last page (Go and JS paginators stop on its absence)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from runyard.errors import InvalidInput

T = TypeVar("T")
SortKey = tuple[Any, ...]


def _fingerprint(query: dict[str, Any]) -> str:
    canonical = json.dumps(query, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_token(after: SortKey, query: dict[str, Any]) -> str:
    payload = json.dumps({"a": list(after), "q": _fingerprint(query)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_token(token: str, query: dict[str, Any]) -> SortKey:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after, fingerprint = payload["a"], payload["q"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("The NextToken is not valid.") from None
    if fingerprint != _fingerprint(query) or not isinstance(after, list):
        raise InvalidInput("The NextToken does not belong to this request: keep every other parameter the same.")
    return tuple(after)


def paginate(
    items: Sequence[T],
    *,
    key: Callable[[T], SortKey],
    max_results: int | None,
    next_token: str | None,
    query: dict[str, Any],
) -> tuple[list[T], str | None]:
    """One page of `items` ordered by `key`. Without MaxResults every remaining item comes back."""
    ordered = sorted(items, key=key)
    if next_token:
        after = decode_token(next_token, query)
        ordered = [item for item in ordered if list(key(item)) > list(after)]
    if not max_results or len(ordered) <= max_results:
        return ordered, None
    page = ordered[:max_results]
    return page, encode_token(key(page[-1]), query)
