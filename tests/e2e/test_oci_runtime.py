"""The OCI runtime end to end: a real `runyard serve --runtime oci` starts podman's API service itself and runs an
image service in containers with its InstanceConfiguration's memory limit. An instance that allocates past it
is replaced, and the service's events say it ran out of memory; a restarted Runyard re-adopts its containers.
boto3 is the client; the image is made here from busybox-static and pushed to Runyard's own registry (where a
private ECR identifier maps).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import DockerException

from runyard.runtime.oci import LABEL_OWNER
from runyard.runtime.podman_service import PodmanService, reachable
from tests.oci_support import busybox_image, podman_usable
from tests.support import RunyardProcess, free_port, get_via_dataplane, wait_for_status

ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/pull-app"
# Serves; after $HOG_AFTER seconds (the deployment is done by then) allocates far past its 512 MB: tail keeps
# all of its newline-free input.
APP = """#!/bin/sh
busybox httpd -f -p "0.0.0.0:$PORT" -h /www &
echo "serving on $PORT"
sleep "$HOG_AFTER"
echo "allocating"
busybox head -c 1200000000 /dev/zero | busybox tail >/dev/null
exit $?
"""


@dataclass
class Rig:
    server: RunyardProcess
    podman: PodmanService  # for the test's own podman commands (its containers.conf)

    def containers(self) -> list[Any]:
        """This Runyard's containers, through a podman service of the test's own."""
        client = docker.DockerClient(base_url=self.podman.start(), version="auto")
        try:
            owner = str(self.server.data_dir.resolve())
            return list(client.containers.list(all=True, filters={"label": f"{LABEL_OWNER}={owner}"}))
        finally:
            client.close()

    def create(self, client: Any, name: str, hog_after: int) -> dict[str, Any]:
        created = client.create_service(
            ServiceName=name,
            SourceConfiguration={
                "ImageRepository": {
                    "ImageIdentifier": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/runyard-e2e/app:1",
                    "ImageRepositoryType": "ECR",
                    "ImageConfiguration": {
                        "Port": "8080",
                        "RuntimeEnvironmentVariables": {"HOG_AFTER": str(hog_after)},
                    },
                },
                "AutoDeploymentsEnabled": False,
                "AuthenticationConfiguration": {"AccessRoleArn": ROLE},
            },
            InstanceConfiguration={"Cpu": "256", "Memory": "512"},
            HealthCheckConfiguration={"Protocol": "TCP", "Interval": 1, "HealthyThreshold": 1},
        )["Service"]
        service: dict[str, Any] = wait_for_status(client, created["ServiceArn"])
        assert service["Status"] == "RUNNING", self.server.log()[-3000:]
        assert get_via_dataplane(self.server, service["ServiceUrl"], "/index.html").text == "alive\n"
        return service


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    if reason := podman_usable():
        pytest.skip(reason)
    registry_port = free_port()
    server = RunyardProcess(
        tmp_path / "data",
        extra_env={"RUNYARD_RUNTIME": "oci", "RUNYARD_LOCAL_REGISTRY_PORT": str(registry_port)},
    ).start(timeout=60)
    podman = PodmanService(tmp_path / "podman")
    rig = Rig(server, podman)
    try:
        podman.write_conf()
        image = busybox_image(
            "runyard-e2e/app",
            {"app.sh": APP, "www/index.html": "alive\n"},
            cmd=["/bin/sh", "/app.sh"],
            podman_env=podman.environment(),
        )
        target = f"127.0.0.1:{registry_port}/runyard-e2e/app:1"
        subprocess.run(["podman", "tag", image, target], env=podman.environment(), check=True, timeout=60)
        pushed = subprocess.run(
            ["podman", "push", "--tls-verify=false", target],
            env=podman.environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert pushed.returncode == 0, pushed.stderr
        yield rig
    finally:
        server.stop()
        with contextlib.suppress(DockerException):  # containers outlive Runyard by design: remove this test's
            for container in rig.containers():
                container.remove(force=True)
        podman.stop()


def test_an_instance_past_its_memory_is_replaced_and_reported(rig: Rig, region: str) -> None:
    server = rig.server
    client = server.client("apprunner", region)
    service = rig.create(client, "memory-hog", hog_after=8)
    # Runyard started podman's service on its own socket (no engine was running or configured here).
    service_dir = server.data_dir / "podman"
    assert reachable(f"unix://{service_dir / 'podman.sock'}")

    events = server.data_dir / "logs" / "aws" / "apprunner" / "memory-hog" / service["ServiceId"] / "service"
    deadline = time.monotonic() + 90
    while "it ran out of memory" not in (text := _read(events / "events.jsonl")):
        assert time.monotonic() < deadline, text[-3000:] + server.log()[-3000:]
        time.sleep(0.5)
    assert "Replacing it" in text
    assert client.describe_service(ServiceArn=service["ServiceArn"])["Service"]["Status"] == "RUNNING"
    client.delete_service(ServiceArn=service["ServiceArn"])
    assert wait_for_status(client, service["ServiceArn"])["Status"] == "DELETED"
    assert rig.containers() == []

    server.stop()
    assert not (service_dir / "podman.sock").exists(), "the podman service Runyard started stops with it"


def test_runyard_after_a_crash_readopts_its_containers_and_podman_service(rig: Rig, region: str) -> None:
    """(A Runyard that stops cleanly stops its instances, and starts them again when it starts.)"""
    server = rig.server
    client = server.client("apprunner", region)
    service = rig.create(client, "readopted", hog_after=3600)
    before = [container.id for container in rig.containers()]
    assert len(before) == 1
    socket = server.data_dir / "podman" / "podman.sock"

    server.stop(signal.SIGKILL)
    assert [c.id for c in rig.containers() if c.status == "running"] == before, "containers outlive Runyard"
    assert reachable(f"unix://{socket}"), "so does the podman service it started"
    server.start(timeout=60)
    client = server.client("apprunner", region)
    assert client.describe_service(ServiceArn=service["ServiceArn"])["Service"]["Status"] == "RUNNING"
    deadline = time.monotonic() + 30
    while (answer := get_via_dataplane(server, service["ServiceUrl"], "/index.html")).status_code != 200:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.3)
    assert answer.text == "alive\n"
    assert [container.id for container in rig.containers()] == before, "the same container serves again"
    server.stop()  # cleanly: its instances stop, and the podman service it adopted too
    assert rig.containers() == []
    assert not socket.exists()
    assert registries_of(server.data_dir) == [], "the crashed Runyard's registry was replaced, then stopped"


def registries_of(data_dir: Path) -> list[int]:
    """Live `docker-registry` processes serving this Runyard's registry configuration."""
    config = str(data_dir / "registry" / "config.yml").encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            serving = proc.name.isdigit() and config in (proc / "cmdline").read_bytes().split(b"\0")
            if serving and (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
