"""Deployments, updates, pause/resume, rollback and self-healing, under constant load through HAProxy.

The load is bounded: a few client threads on loopback for the length of each test, counting every answer.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import RunyardProcess, get_via_dataplane, git_repo, wait_for_status

# No dependencies: the build is a virtualenv and nothing else, so a deployment takes about a second.
APP = """\
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = open("version.txt").read().strip()
if VERSION == "broken":
    sys.exit("this version cannot start")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"{VERSION} {os.environ.get('NAME', '-')} {os.getpid()}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


@dataclass
class Load:
    """Client threads sending GETs through the data plane until stopped; every answer is counted."""

    server: RunyardProcess
    host: str
    threads: int = 3
    answers: Counter[str] = field(default_factory=Counter)  # version -> count
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _run(self) -> None:
        url = f"http://127.0.0.1:{self.server.http_port}/"
        with httpx.Client(headers={"Host": self.host}, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    answer = client.get(url)
                    outcome = answer.text.split()[0] if answer.status_code == 200 else f"HTTP {answer.status_code}"
                except httpx.HTTPError as error:
                    outcome = f"{type(error).__name__}: {error}"
                with self._lock:
                    if outcome.startswith(("HTTP ", "Connect", "Read", "Remote", "Write", "Pool")):
                        self.failures.append(outcome)
                    else:
                        self.answers[outcome] += 1
                time.sleep(0.005)

    def total(self) -> int:
        with self._lock:
            return sum(self.answers.values())


def app_repo(path: Path, version: str) -> Path:
    return git_repo(path, {"server.py": APP, "version.txt": version + "\n"}, message=version)


def create(server: RunyardProcess, client: Any, name: str, repository: Path, **extra: Any) -> dict[str, Any]:
    values = {"Runtime": "PYTHON_3", "StartCommand": "python server.py", "RuntimeEnvironmentVariables": {"NAME": "a"}}
    request = {
        "ServiceName": name,
        "SourceConfiguration": {
            "CodeRepository": {
                "RepositoryUrl": f"file://{repository}",
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {"ConfigurationSource": "API", "CodeConfigurationValues": values},
            },
            "AutoDeploymentsEnabled": False,
        },
        **extra,
    }
    service = wait_for_status(client, client.create_service(**request)["Service"]["ServiceArn"])
    assert service["Status"] == "RUNNING"
    return service


def served(server: RunyardProcess, service: dict[str, Any]) -> list[str]:
    """version, NAME and pid of the instance that answers."""
    answer = get_via_dataplane(server, service["ServiceUrl"])
    assert answer.status_code == 200, answer.text
    return answer.text.split()


def last_operation(client: Any, arn: str) -> dict[str, Any]:
    return dict(client.list_operations(ServiceArn=arn)["OperationSummaryList"][0])


def host(service: dict[str, Any]) -> str:
    return str(service["ServiceUrl"]).split(":")[0]


def test_five_deployments_under_load_drop_no_request(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    client = server.client("apprunner", region)
    repository = app_repo(tmp_path / "app", "v0")
    service = create(server, client, "rolling", repository)
    arn = service["ServiceArn"]

    with Load(server, host(service)) as load:
        for n in range(1, 6):
            app_repo(repository, f"v{n}")
            operation_id = client.start_deployment(ServiceArn=arn)["OperationId"]
            if n == 1:  # one operation at a time per service
                with pytest.raises(client.exceptions.InvalidStateException, match="operation in progress"):
                    client.pause_service(ServiceArn=arn)
                with pytest.raises(client.exceptions.InvalidStateException, match="operation in progress"):
                    client.delete_service(ServiceArn=arn)
            assert wait_for_status(client, arn)["Status"] == "RUNNING"
            newest = last_operation(client, arn)
            assert (newest["Id"], newest["Status"]) == (operation_id, "SUCCEEDED")
            assert served(server, service)[0] == f"v{n}"
        time.sleep(0.3)
    assert load.failures == []
    assert load.total() > 50 and {"v1", "v5"} <= set(load.answers)


def test_a_broken_commit_rolls_back_while_the_old_version_answers(
    server: RunyardProcess, region: str, tmp_path: Path
) -> None:
    client = server.client("apprunner", region)
    repository = app_repo(tmp_path / "app", "good")
    service = create(server, client, "rollback", repository)
    arn = service["ServiceArn"]

    app_repo(repository, "broken")
    with Load(server, host(service)) as load:
        operation_id = client.start_deployment(ServiceArn=arn)["OperationId"]
        assert wait_for_status(client, arn)["Status"] == "RUNNING"
    assert load.failures == []
    assert set(load.answers) == {"good"}
    operation = last_operation(client, arn)
    assert (operation["Id"], operation["Status"]) == (operation_id, "ROLLBACK_SUCCEEDED")
    assert served(server, service)[0] == "good"


def test_pause_answers_paused_and_resume_brings_back_the_same_version(
    server: RunyardProcess, region: str, tmp_path: Path
) -> None:
    client = server.client("apprunner", region)
    repository = app_repo(tmp_path / "app", "before-pause")
    service = create(server, client, "pausable", repository)
    arn = service["ServiceArn"]

    paused = client.pause_service(ServiceArn=arn)
    assert paused["Service"]["Status"] == "OPERATION_IN_PROGRESS"
    assert wait_for_status(client, arn)["Status"] == "PAUSED"
    answer = get_via_dataplane(server, service["ServiceUrl"], headers={"Accept": "text/html"})
    assert answer.status_code == 503 and "paused" in answer.text
    # The spec's list: a paused service refuses deployments and updates, allows reads, tags and deletion.
    # StartDeployment models no InvalidStateException: the refusal comes as InvalidRequestException.
    with pytest.raises(client.exceptions.InvalidRequestException, match="paused"):
        client.start_deployment(ServiceArn=arn)
    with pytest.raises(client.exceptions.InvalidStateException):
        client.update_service(ServiceArn=arn, InstanceConfiguration={"Cpu": "2 vCPU", "Memory": "4 GB"})
    client.tag_resource(ResourceArn=arn, Tags=[{"Key": "state", "Value": "paused"}])

    app_repo(repository, "newer-commit")  # resume must not pick it up
    client.resume_service(ServiceArn=arn)
    resumed = wait_for_status(client, arn)
    assert resumed["Status"] == "RUNNING" and resumed["ServiceUrl"] == service["ServiceUrl"]
    assert served(server, service)[0] == "before-pause"
    types = [(op["Type"], op["Status"]) for op in client.list_operations(ServiceArn=arn)["OperationSummaryList"]]
    assert types[:2] == [("RESUME_SERVICE", "SUCCEEDED"), ("PAUSE_SERVICE", "SUCCEEDED")]


def test_update_service_configuration_only_redeploys_without_a_build(
    server: RunyardProcess, region: str, tmp_path: Path
) -> None:
    client = server.client("apprunner", region)
    repository = app_repo(tmp_path / "app", "v1")
    service = create(server, client, "updatable", repository)
    arn = service["ServiceArn"]
    app_repo(repository, "v2")  # a configuration change must not deploy newer commits either

    code = dict(service["SourceConfiguration"]["CodeRepository"])
    code["CodeConfiguration"]["CodeConfigurationValues"]["RuntimeEnvironmentVariables"] = {"NAME": "changed"}
    with Load(server, host(service)) as load:
        answer = client.update_service(
            ServiceArn=arn,
            SourceConfiguration={"CodeRepository": code},
            HealthCheckConfiguration={"Protocol": "HTTP", "Path": "/", "Interval": 5},
        )
        values = answer["Service"]["SourceConfiguration"]["CodeRepository"]["CodeConfiguration"]
        assert values["CodeConfigurationValues"]["RuntimeEnvironmentVariables"] == {"NAME": "changed"}
        assert answer["Service"]["HealthCheckConfiguration"]["Protocol"] == "HTTP"
        updated = wait_for_status(client, arn)
    assert load.failures == []
    assert updated["Status"] == "RUNNING"
    assert updated["HealthCheckConfiguration"]["Protocol"] == "HTTP"
    assert served(server, service)[:2] == ["v1", "changed"]
    assert last_operation(client, arn)["Type"] == "UPDATE_SERVICE"
    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.update_service(
            ServiceArn=arn,
            SourceConfiguration={
                "ImageRepository": {
                    "ImageIdentifier": "public.ecr.aws/nginx/nginx:latest",
                    "ImageRepositoryType": "ECR_PUBLIC",
                },
                "AutoDeploymentsEnabled": False,
            },
        )
    assert "source type" in raised.value.response["Error"]["Message"]


def test_a_killed_instance_is_replaced(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    client = server.client("apprunner", region)
    service = create(server, client, "healing", app_repo(tmp_path / "app", "v1"))
    pid = int(served(server, service)[2])

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        answer = get_via_dataplane(server, service["ServiceUrl"])
        if answer.status_code == 200 and int(answer.text.split()[2]) != pid:
            break
        assert time.monotonic() < deadline, "the instance was not replaced"
        time.sleep(0.1)
    assert client.describe_service(ServiceArn=service["ServiceArn"])["Service"]["Status"] == "RUNNING"
    events = (server.data_dir / "logs").rglob("events.jsonl")
    text = "".join(path.read_text() for path in events if f"/{service['ServiceId']}/" in str(path))
    assert "it was killed by signal 9" in text and "Replacing it" in text


def test_a_crash_loop_backs_off_and_is_reported(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    client = server.client("apprunner", region)
    # Serves for a moment, then exits: every replacement fails the same way.
    flaky = APP.replace(
        "ThreadingHTTPServer(",
        "import threading\nthreading.Timer(1.0, lambda: os._exit(3)).start()\nThreadingHTTPServer(",
    )
    repository = git_repo(tmp_path / "app", {"server.py": flaky, "version.txt": "flaky\n"})
    service = create(server, client, "crashloop", repository)
    events = server.data_dir / "logs" / "aws" / "apprunner" / "crashloop" / service["ServiceId"] / "service"
    deadline = time.monotonic() + 30
    while "backing off from a crash loop" not in (text := (events / "events.jsonl").read_text()):
        assert time.monotonic() < deadline, text[-2000:]
        time.sleep(0.2)
    assert "it exited with code 3" in text
    # The service itself stays RUNNING: App Runner keeps replacing instances.
    assert client.describe_service(ServiceArn=service["ServiceArn"])["Service"]["Status"] == "RUNNING"
    client.delete_service(ServiceArn=service["ServiceArn"])
    assert wait_for_status(client, service["ServiceArn"])["Status"] == "DELETED"


def test_a_deployment_interrupted_by_a_crash_of_runyard_ends_after_restart(
    fresh_server: RunyardProcess, tmp_path: Path
) -> None:
    server = fresh_server.start()
    client = server.client("apprunner", "us-east-1")

    def version(name: str, build: str) -> dict[str, str]:
        config = f"version: 1.0\nruntime: python3\nbuild:\n  commands:\n    build:\n      - {build}\n"
        return {
            "server.py": APP,
            "version.txt": name + "\n",
            "apprunner.yaml": config + "run:\n  command: python server.py\n",
        }

    repository = git_repo(tmp_path / "app", version("v1", "echo quick"))
    request = {
        "ServiceName": "interrupted",
        "SourceConfiguration": {
            "CodeRepository": {
                "RepositoryUrl": f"file://{repository}",
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {"ConfigurationSource": "REPOSITORY"},
            },
            "AutoDeploymentsEnabled": False,
        },
    }
    service = wait_for_status(client, client.create_service(**request)["Service"]["ServiceArn"])
    arn = service["ServiceArn"]
    git_repo(repository, version("v2", "sleep 2"), message="v2")
    operation_id = client.start_deployment(ServiceArn=arn)["OperationId"]
    time.sleep(1.0)  # v2's build is running
    server.stop(signal.SIGKILL)
    server.start()
    assert wait_for_status(client, arn)["Status"] == "RUNNING"
    newest = last_operation(client, arn)
    assert (newest["Id"], newest["Status"]) == (operation_id, "SUCCEEDED")
    assert served(server, service)[0] == "v2"


def test_event_rules_deliver_signed_events_to_a_webhook(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    import hashlib
    import hmac
    import json
    import subprocess
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[dict[str, Any], bool]] = []
    secret = "s3cret-for-the-webhook-test-0123456789abcdef"

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            received.append((json.loads(body), hmac.compare_digest(expected, self.headers["X-Runyard-Signature"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        (tmp_path / "secret").write_text(secret)
        pattern = {"source": ["aws.apprunner"], "region": [region], "detail": {"Status": [{"prefix": "CreateService"}]}}
        command = [sys.executable, "-m", "runyard", "events", "add", f"rule-{region}", "--pattern", json.dumps(pattern)]
        command += ["--url", f"http://127.0.0.1:{receiver.server_port}/hook", "--secret-file", str(tmp_path / "secret")]
        result = subprocess.run(
            [*command, "--data-dir", str(server.data_dir)],
            env=server.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert secret not in result.stdout

        client = server.client("apprunner", region)
        service = create(server, client, "evented", app_repo(tmp_path / "app", "v1"))
        deadline = time.monotonic() + 30
        while len(received) < 2:
            assert time.monotonic() < deadline, received
            time.sleep(0.1)
    finally:
        receiver.shutdown()
        receiver.server_close()
    statuses = [event["detail"]["Status"] for event, _ in received]
    assert statuses == ["CreateServiceStarted", "CreateServiceCompletedSuccessfully"]
    assert all(valid for _, valid in received)
    event = received[1][0]
    assert event["detail-type"] == "Service Operation Status Change" and event["source"] == "aws.apprunner"
    assert event["resources"] == [service["ServiceArn"]] and event["region"] == region
    assert event["detail"]["Message"] == "Service creation completed successfully."
