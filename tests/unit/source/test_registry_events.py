"""Registry notifications (distribution's envelope of events) -> the tags that were pushed."""

from __future__ import annotations

import json

import pytest

from runyard.source.registry_events import MalformedNotification, PushedTag, parse_notifications

DIGEST = "sha256:" + "ab" * 32


def _event(action: str = "push", **target: object) -> dict[str, object]:
    base: dict[str, object] = {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "repository": "team/app",
        "digest": DIGEST,
        "tag": "1",
        "url": "http://127.0.0.1:5000/v2/team/app/manifests/" + DIGEST,
    }
    base.update(target)
    return {"id": "e1", "action": action, "target": base, "request": {"host": "localhost:5000", "method": "PUT"}}


def test_a_manifest_push_under_a_tag_is_reported_with_the_host_the_pusher_used() -> None:
    body = json.dumps({"events": [_event()]}).encode()
    assert parse_notifications(body) == [PushedTag("localhost:5000", "team/app", "1", DIGEST)]


def test_without_a_request_host_the_target_url_names_the_registry() -> None:
    event = _event()
    del event["request"]
    assert parse_notifications(json.dumps({"events": [event]}).encode())[0].registry == "127.0.0.1:5000"


@pytest.mark.parametrize(
    "event",
    [
        _event(action="pull"),
        _event(mediaType="application/vnd.docker.image.rootfs.diff.tar.gzip"),  # a layer
        _event(tag=None),  # a push by digest
        _event(digest="not-a-digest"),
        "not an event",
    ],
)
def test_other_events_are_skipped(event: object) -> None:
    assert parse_notifications(json.dumps({"events": [event]}).encode()) == []


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"events": {}}', b"{}"])
def test_a_body_that_is_no_envelope_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedNotification):
        parse_notifications(body)
