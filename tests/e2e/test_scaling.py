"""Auto scaling end to end: load above MaxConcurrency scales a MinSize=1 service out, and back in once it stops.

The load is bounded (a few client threads on loopback against an app that takes 0.3 s per request); the stable
window is shortened to 6 s through the environment, so the whole cycle takes well under a minute.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from runyard.dataplane.haproxy import SLOT_PREFIX, HAProxyRuntime
from tests.support import RunyardProcess, git_repo, wait_for_status

SLOW_APP = """\
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path != "/health":
            time.sleep(0.3)
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


class Load:
    """`threads` clients in a loop, each with one request in flight: the service's concurrency is `threads`."""

    def __init__(self, server: RunyardProcess, host: str, threads: int) -> None:
        self.url, self.host = f"http://127.0.0.1:{server.http_port}/", host
        self.stop = threading.Event()
        self.pids: set[str] = set()
        self.statuses: dict[int, int] = {}
        self.lock = threading.Lock()
        self.workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(headers={"Host": self.host}, timeout=30) as client:
            while not self.stop.is_set():
                answer = client.get(self.url)
                with self.lock:
                    self.statuses[answer.status_code] = self.statuses.get(answer.status_code, 0) + 1
                    if answer.status_code == 200:
                        self.pids.add(answer.text)


def events(server: RunyardProcess, service: dict[str, Any]) -> list[str]:
    paths = (server.data_dir / "logs").rglob("events.jsonl")
    lines = [line for p in paths if f"/{service['ServiceId']}/" in str(p) for line in p.read_text().splitlines()]
    return [json.loads(line)["m"] for line in lines]


def wait_for_event(server: RunyardProcess, service: dict[str, Any], text: str, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = events(server, service)
        if any(text in message for message in found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no event with {text!r} after {timeout} s:\n" + "\n".join(found))
        time.sleep(0.2)


def serving_pids(server: RunyardProcess, host: str, requests: int = 8) -> set[str]:
    """Sequential requests: leastconn takes turns among the active instances, never the standby ones."""
    with httpx.Client(headers={"Host": host}, timeout=10) as client:
        return {client.get(f"http://127.0.0.1:{server.http_port}/").text for _ in range(requests)}


def slot_limits(server: RunyardProcess) -> set[int | None]:
    """maxconn of every serving slot, read from Runyard's HAProxy through its admin socket."""
    plane = server.data_dir / "dataplane"
    runtime = HAProxyRuntime(plane / "haproxy.sock", hosts_map=plane / "hosts.map")
    rows = asyncio.run(runtime.stats())
    return {r.slim for r in rows if r.svname.startswith(SLOT_PREFIX) and not r.status.startswith("MAINT")}


def test_load_above_max_concurrency_scales_out_and_back_in(tmp_path: Path) -> None:
    server = RunyardProcess(tmp_path / "data", extra_env={"RUNYARD_AUTOSCALE_STABLE_WINDOW": "6"}).start()
    try:
        client = server.client("apprunner")
        scaling = client.create_auto_scaling_configuration(
            AutoScalingConfigurationName="busy", MaxConcurrency=2, MinSize=1, MaxSize=3
        )["AutoScalingConfiguration"]
        repository = git_repo(tmp_path / "repo", {"server.py": SLOW_APP})
        arn = client.create_service(
            ServiceName="scales",
            SourceConfiguration={
                "CodeRepository": {
                    "RepositoryUrl": f"file://{repository}",
                    "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                    "CodeConfiguration": {
                        "ConfigurationSource": "API",
                        "CodeConfigurationValues": {"Runtime": "PYTHON_3", "StartCommand": "python server.py"},
                    },
                },
                "AutoDeploymentsEnabled": False,
            },
            HealthCheckConfiguration={"Protocol": "HTTP", "Path": "/health", "Interval": 1, "HealthyThreshold": 1},
            AutoScalingConfigurationArn=scaling["AutoScalingConfigurationArn"],
        )["Service"]["ServiceArn"]
        service = wait_for_status(client, arn)
        assert service["Status"] == "RUNNING"
        host = service["ServiceUrl"].split(":")[0]
        assert len(serving_pids(server, host, requests=4)) == 1

        # 8 requests in flight against MaxConcurrency 2: 8 / (2 x 0.7) wants 6 instances, MaxSize caps it at 3.
        with Load(server, host, threads=8) as load:
            wait_for_event(server, service, "Scaling out from 1 to", timeout=30)
            wait_for_event(server, service, "Scaled out: 3 instances", timeout=60)
            deadline = time.monotonic() + 30
            while len(load.pids) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
        assert len(load.pids) == 3, load.pids  # three instances really answered
        assert set(load.statuses) == {200}, load.statuses  # requests waited in the queue; none was refused

        # No load: after the stable window the service returns to MinSize (one instance, serving).
        messages = wait_for_event(server, service, "Scaling in from 3 to 1", timeout=60)
        assert not any("Scaling out from 3" in m for m in messages)  # MaxSize was never exceeded
        deadline = time.monotonic() + 20
        while len(pids := serving_pids(server, host)) != 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(pids) == 1 and pids <= load.pids
        assert client.describe_service(ServiceArn=arn)["Service"]["Status"] == "RUNNING"
    finally:
        server.stop()


def test_min_size_keeps_instances_provisioned_and_an_update_applies_without_new_instances(tmp_path: Path) -> None:
    """MinSize 2 with one request at a time: both stay provisioned, one serves; a new configuration applies live."""
    server = RunyardProcess(tmp_path / "data", extra_env={"RUNYARD_AUTOSCALE_STABLE_WINDOW": "4"}).start()
    try:
        client = server.client("apprunner")
        two = client.create_auto_scaling_configuration(
            AutoScalingConfigurationName="min-two", MaxConcurrency=10, MinSize=2, MaxSize=4
        )["AutoScalingConfiguration"]["AutoScalingConfigurationArn"]
        one = client.create_auto_scaling_configuration(
            AutoScalingConfigurationName="min-one", MaxConcurrency=1, MinSize=1, MaxSize=1
        )["AutoScalingConfiguration"]["AutoScalingConfigurationArn"]
        repository = git_repo(tmp_path / "repo", {"server.py": SLOW_APP})
        source = {
            "CodeRepository": {
                "RepositoryUrl": f"file://{repository}",
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {
                    "ConfigurationSource": "API",
                    "CodeConfigurationValues": {"Runtime": "PYTHON_3", "StartCommand": "python server.py"},
                },
            },
            "AutoDeploymentsEnabled": False,
        }
        arn = client.create_service(ServiceName="standby", SourceConfiguration=source, AutoScalingConfigurationArn=two)[
            "Service"
        ]["ServiceArn"]
        service = wait_for_status(client, arn)
        host = service["ServiceUrl"].split(":")[0]
        wait_for_event(server, service, "1 of 2 provisioned instances active, 1 on standby", timeout=30)
        assert len(serving_pids(server, host)) == 1
        assert slot_limits(server) == {10}

        # A configuration-only update: stored and applied to the running instances (no new ones started).
        operation = client.update_service(ServiceArn=arn, AutoScalingConfigurationArn=one)["OperationId"]
        assert wait_for_status(client, arn)["AutoScalingConfigurationSummary"]["AutoScalingConfigurationArn"] == one
        log = next((server.data_dir / "logs").rglob(f"*{operation.replace('-', '')}.jsonl")).read_text()
        assert "take the new configuration as they are" in log and "Starting" not in log
        # MinSize and MaxSize 1 now: the standby instance is no longer needed.
        wait_for_event(server, service, "Scaling in from 2 to 1", timeout=30)
        assert len(serving_pids(server, host)) == 1
        deadline = time.monotonic() + 10
        while slot_limits(server) != {1} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert slot_limits(server) == {1}  # the new MaxConcurrency, on the instance that kept running
    finally:
        server.stop()
