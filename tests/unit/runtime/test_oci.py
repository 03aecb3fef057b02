"""The OCI backend's pure parts: exit states (and the out-of-memory rule), registry names, log timestamps."""

from __future__ import annotations

from typing import Any

import pytest

from runyard.runtime.base import InstanceState, InstanceStatus
from runyard.runtime.oci import _parse_timestamp, _registry, _state


def attrs(status: str, code: int = 0, *, memory: int = 64 << 20, oom: bool = False) -> dict[str, Any]:
    return {
        "State": {"Status": status, "Running": status == "running", "ExitCode": code, "OOMKilled": oom},
        "HostConfig": {"Memory": memory},
    }


@pytest.mark.parametrize(
    ("container", "stopped_by_us", "state"),
    [
        (attrs("running"), False, InstanceState(InstanceStatus.RUNNING)),
        (attrs("created"), False, InstanceState(InstanceStatus.RUNNING)),
        (attrs("exited", 0), False, InstanceState(InstanceStatus.EXITED, exit_code=0)),
        (attrs("exited", 3), False, InstanceState(InstanceStatus.EXITED, exit_code=3)),
        # SIGKILL under a memory limit that Runyard did not send: the limit (podman 4.3 never reports OOMKilled)
        (attrs("exited", 137), False, InstanceState(InstanceStatus.KILLED, signal=9, oom_killed=True)),
        (attrs("exited", 137), True, InstanceState(InstanceStatus.KILLED, signal=9)),
        (attrs("exited", 137, memory=0), False, InstanceState(InstanceStatus.KILLED, signal=9)),
        (attrs("exited", 143), True, InstanceState(InstanceStatus.KILLED, signal=15)),
        (attrs("exited", 1, oom=True), False, InstanceState(InstanceStatus.EXITED, exit_code=1, oom_killed=True)),
        (attrs("exited", 255), False, InstanceState(InstanceStatus.EXITED, exit_code=255)),
    ],
)
def test_container_states(container: dict[str, Any], stopped_by_us: bool, state: InstanceState) -> None:
    assert _state(container, stopped_by_us=stopped_by_us) == state


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("busybox", "docker.io"),
        ("library/busybox:1", "docker.io"),
        ("localhost/runyard/app:1", "localhost"),
        ("127.0.0.1:9500/runyard/app@sha256:" + "0" * 64, "127.0.0.1:9500"),
        ("public.ecr.aws/nginx/nginx:latest", "public.ecr.aws"),
    ],
)
def test_registry_of_an_image(image: str, registry: str) -> None:
    assert _registry(image) == registry


def test_log_timestamps_of_podman_and_dockerd_compare_in_time_order() -> None:
    podman = _parse_timestamp("2026-11-21T21:35:59Z")
    assert podman == (1795296959, 0)
    assert _parse_timestamp("2026-11-21T21:35:59.1Z") == (1795296959, 100_000_000)
    assert _parse_timestamp("2026-11-21T21:35:59.12Z") > _parse_timestamp("2026-11-21T21:35:59.1Z")
    assert _parse_timestamp("2026-11-21T21:35:59.123456789Z") == (1795296959, 123456789)
    with pytest.raises(ValueError):
        _parse_timestamp("app listening")
