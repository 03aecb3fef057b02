"""Registry notifications: the envelope of events distribution (docker-registry) POSTs to its endpoints.

`{"events": [{"action": "push", "target": {"mediaType", "repository", "digest", "tag", "url"}, "request":
{"host"}}]}` (Content-Type application/vnd.docker.distribution.events.v1+json). Only pushes of a manifest under a
tag matter to automatic deployments; pulls, blob events and pushes by digest alone are skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from runyard.source.registry import MANIFEST_TYPES

EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")


class MalformedNotification(ValueError):
    """The body is not an envelope of registry events."""


@dataclass(frozen=True, slots=True)
class PushedTag:
    registry: str | None  # host[:port] the pusher addressed (request.host, else the target URL's), when known
    repository: str
    tag: str
    digest: str


def parse_notifications(body: bytes) -> list[PushedTag]:
    try:
        envelope = json.loads(body)
    except ValueError:
        raise MalformedNotification("the body is not JSON") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("events"), list):
        raise MalformedNotification('the body has no "events" list')
    pushed: list[PushedTag] = []
    for event in envelope["events"]:
        if not isinstance(event, dict) or event.get("action") != "push":
            continue
        target = event.get("target")
        if not isinstance(target, dict):
            continue
        repository, tag, digest = target.get("repository"), target.get("tag"), target.get("digest")
        media_type = target.get("mediaType")
        if media_type is not None and media_type not in MANIFEST_TYPES:
            continue  # a blob (layer) push
        if not (isinstance(repository, str) and isinstance(tag, str) and tag and isinstance(digest, str)):
            continue
        if not _DIGEST.fullmatch(digest):
            continue
        pushed.append(PushedTag(_registry(event, target), repository, tag, digest))
    return pushed


def _registry(event: dict[str, object], target: dict[str, object]) -> str | None:
    request = event.get("request")
    if isinstance(request, dict) and isinstance(request.get("host"), str) and request["host"]:
        return str(request["host"])
    url = target.get("url")
    if isinstance(url, str) and url:
        return urlsplit(url).netloc or None
    return None
