"""Finding a container API: DOCKER_HOST decides alone when set; nothing reachable means none."""

from __future__ import annotations

from pathlib import Path

import pytest

from runyard.runtime import podman_service
from runyard.runtime.podman_service import CONTAINERS_CONF, PodmanService, find_container_api


def test_an_unreachable_docker_host_is_no_container_api(tmp_path: Path) -> None:
    assert find_container_api({"DOCKER_HOST": f"unix://{tmp_path / 'none.sock'}"}) is None


def test_no_socket_means_no_container_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(podman_service, "KNOWN_SOCKETS", (tmp_path / "podman.sock", tmp_path / "docker.sock"))
    (tmp_path / "docker.sock").write_text("")  # a stale file, nothing listening
    assert find_container_api({}) is None


def test_the_containers_conf_runyard_writes(tmp_path: Path) -> None:
    service = PodmanService(tmp_path / "podman")
    service.write_conf()
    text = service.containers_conf.read_text()
    assert text == CONTAINERS_CONF
    for setting in ('runtime = "runc"', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', "nproc=32768"):
        assert setting in text
    assert service.environment()["CONTAINERS_CONF"] == str(service.containers_conf)
    assert not service.running
    service.stop()  # not started: nothing to do
