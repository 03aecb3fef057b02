"""`--runtime`: which backend build() wires in (auto: containers only when a container API already answers)."""

from __future__ import annotations

from pathlib import Path

import pytest

import runyard.app
from runyard.app import build
from runyard.config import Settings
from runyard.runtime.base import RuntimeKind


@pytest.fixture(autouse=True)
def _no_toolchain_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runyard.app, "detect_toolchains", dict)


@pytest.mark.parametrize(
    ("runtime", "endpoint", "kind", "starts_podman"),
    [
        ("auto", None, RuntimeKind.PROCESS, False),
        ("auto", "unix:///run/podman/podman.sock", RuntimeKind.OCI, False),
        ("process", "unix:///run/podman/podman.sock", RuntimeKind.PROCESS, False),
        ("oci", "unix:///var/run/docker.sock", RuntimeKind.OCI, False),
        ("oci", None, RuntimeKind.OCI, True),
    ],
)
def test_the_runtime_backend_chosen(
    runtime: str,
    endpoint: str | None,
    kind: RuntimeKind,
    starts_podman: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runyard.app, "find_container_api", lambda: endpoint)
    built = build(Settings(data_dir=tmp_path / "data", runtime=runtime))
    try:
        assert built.runtime_kind is kind
        api = built.container_api
        assert (api is not None) == (kind is RuntimeKind.OCI)
        if api is not None:
            assert (api.service is not None) == starts_podman
            if api.service is not None:  # nothing starts in build(): podman's service starts on first use
                assert api.service.directory == tmp_path / "data" / "podman" and not api.service.running
    finally:
        built.stop()
