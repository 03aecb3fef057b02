"""Scale-out reaction: from a load step above MaxConcurrency x instances to the first new instance serving.

Runs a real `runyard serve` (default auto scaling settings: 60 s stable window, 6 s panic window) with one
service whose requests take 0.2 s, MaxConcurrency 2, MinSize 1, MaxSize 4. Once it idles on one instance, 8
client threads start at once (8 in flight, 4x what one instance takes). Measured, in one run:
  decision - load step -> the "Scaling out" event (Knative-style panic: the 6 s panic window's average
             reaches twice what the active instances can take)
  serving  - load step -> the first answer from a second instance
  deploy   - CreateService -> RUNNING for the service (round 1 builds; later rounds reuse the artifact)

Usage: .venv/bin/python bench/scaling.py [--rounds N] [--keep]
The last line is `ratio: X` = median serving reaction / round 1's deploy time (a cold start from nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from common import Server, commit, create_service, runyard

APP = """\
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        time.sleep(0.2)
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


class Step:
    """`threads` clients with one request in flight each; notes when an instance other than `first` answers."""

    def __init__(self, server: Server, host: str, threads: int, first: str) -> None:
        self.url, self.host, self.first = f"http://127.0.0.1:{server.http_port}/", host, first
        self.stop = threading.Event()
        self.new_instance_at: float | None = None
        self.lock = threading.Lock()
        self.workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self.started = 0.0

    def __enter__(self) -> Step:
        self.started = time.time()
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(headers={"Host": self.host}, timeout=60) as client:
            while not self.stop.is_set():
                answer = client.get(self.url)
                if answer.status_code == 200 and answer.text != self.first:
                    with self.lock:
                        self.new_instance_at = self.new_instance_at or time.time()


def events_since(server: Server, since: float) -> list[tuple[float, str]]:
    found: list[tuple[float, str]] = []
    for path in (server.data_dir / "logs").rglob("events.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["t"] >= since:
                found.append((record["t"], record["m"]))
    return sorted(found)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def round_trip(server: Server, host: str) -> tuple[float, float]:
    with httpx.Client(headers={"Host": host}, timeout=10) as client:
        first = client.get(f"http://127.0.0.1:{server.http_port}/").text
    with Step(server, host, threads=8, first=first) as step:
        wait_until(lambda: step.new_instance_at is not None, 120, "a second instance")
        decided = next(t for t, m in events_since(server, step.started) if m.startswith("Scaling out"))
    assert step.new_instance_at is not None
    return decided - step.started, step.new_instance_at - step.started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="load steps to measure [3]")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args()
    with runyard(keep=args.keep) as server:
        client = server.client()
        repository = server.workdir / "slow"
        commit(repository, {"server.py": APP}, "slow app")
        scaling = client.create_auto_scaling_configuration(
            AutoScalingConfigurationName="bench", MaxConcurrency=2, MinSize=1, MaxSize=4
        )["AutoScalingConfiguration"]["AutoScalingConfigurationArn"]
        print(f"MaxConcurrency 2, MinSize 1, MaxSize 4; a step to 8 requests in flight; {os.cpu_count()} cores")
        serving: list[float] = []
        deploys: list[float] = []
        for round_ in range(1, args.rounds + 1):
            deploy, host = create(client, Path(repository), f"slow-{round_}", scaling)
            decision, reaction = round_trip(server, host)
            deploys.append(deploy)
            serving.append(reaction)
            print(f"round {round_}: decision {decision:5.2f} s  serving {reaction:5.2f} s  deploy {deploy:5.2f} s")
        print(f"median serving reaction: {statistics.median(serving):.2f} s")
        print(f"ratio: {statistics.median(serving) / deploys[0]:.2f}")


def create(client: Any, repository: Path, name: str, scaling: str) -> tuple[float, str]:
    """A new service (each round starts from one idle instance); seconds to RUNNING and its host."""
    started = time.perf_counter()
    values = {"Runtime": "PYTHON_3", "StartCommand": "python server.py"}
    service = create_service(client, name, repository, values, AutoScalingConfigurationArn=scaling)
    arn = service["ServiceArn"]
    wait_until(
        lambda: client.describe_service(ServiceArn=arn)["Service"]["Status"] != "OPERATION_IN_PROGRESS", 120, name
    )
    elapsed = time.perf_counter() - started
    time.sleep(2)  # a few idle samples, as a service that has been waiting for traffic has
    return elapsed, str(service["ServiceUrl"]).split(":")[0]


if __name__ == "__main__":
    main()
