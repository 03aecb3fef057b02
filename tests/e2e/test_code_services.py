"""Code-based services end to end: boto3 -> CreateService from a local git repository -> real pip/npm build ->
supervised instances -> HAProxy, reached with the service's Host header. Also failures, deletion and logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import RunyardProcess, get_via_dataplane, git_repo, wait_for_status

# The spec's python-hello (Getting started), listening on $PORT as App Runner's runtime provides it.
HELLO_SERVER = """\
import os

from flask import Flask

PORT = int(os.environ.get("PORT", "8080"))
name = os.environ.get("NAME")
if name is None or len(name) == 0:
    name = "world"
MESSAGE = "Hello, " + name + "!"
print("Message: " + MESSAGE)

app = Flask(__name__)


@app.route("/")
def root():
    print("Handling web request. Returning message.")
    return MESSAGE.encode("utf-8")


@app.route("/pid")
def pid():
    return str(os.getpid())


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=PORT)
"""
HELLO_FILES = {"requirements.txt": "Flask>=2.2,<4\n", "server.py": HELLO_SERVER}
HELLO_YAML = """\
version: 1.0
runtime: python3
build:
  commands:
    build:
      - pip install -r requirements.txt
run:
  command: python server.py
  network:
    port: 8000
    env: APP_PORT
  env:
    - name: NAME
      value: "Yaml"
"""
EXPRESS_FILES = {
    "package.json": '{"name": "hello-express", "version": "1.0.0", "private": true,'
    ' "dependencies": {"express": "^4.19.2"}}\n',
    "index.js": (
        "const express = require('express');\n"
        "const app = express();\n"
        "app.get('/', (req, res) => res.send(`Hello from Express, ${process.env.NAME}!`));\n"
        "app.listen(process.env.PORT, '127.0.0.1');\n"
    ),
}


def code_service(name: str, repository: Path, **values: Any) -> dict[str, Any]:
    configuration: dict[str, Any] = {"ConfigurationSource": "API", "CodeConfigurationValues": values}
    if not values:
        configuration = {"ConfigurationSource": "REPOSITORY"}
    return {
        "ServiceName": name,
        "SourceConfiguration": {
            "CodeRepository": {
                "RepositoryUrl": f"file://{repository}",
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": configuration,
            },
            "AutoDeploymentsEnabled": False,
        },
    }


def python_hello(name: str, repository: Path, **extra: Any) -> dict[str, Any]:
    return code_service(
        name,
        repository,
        Runtime="PYTHON_3",
        BuildCommand="pip install -r requirements.txt",
        StartCommand="python server.py",
        Port="8080",
        RuntimeEnvironmentVariables={"NAME": "Jane"},
        **extra,
    )


def runyard_logs(server: RunyardProcess, region: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "runyard", "logs", *args, "--region", region, "--data-dir", str(server.data_dir)],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_python_hello_from_the_getting_started_guide(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    client = server.client("apprunner", region)
    repository = git_repo(tmp_path / "python-hello", HELLO_FILES)

    created = client.create_service(**python_hello("python-hello", repository))
    service = created["Service"]
    assert service["Status"] == "OPERATION_IN_PROGRESS"
    assert len(service["ServiceId"]) == 32
    label, host_region, rest = service["ServiceUrl"].split(".", 2)
    assert len(label) == 10 and label.isalnum() and label == label.lower()
    assert host_region == region and rest == f"localhost:{server.http_port}"
    code = service["SourceConfiguration"]["CodeRepository"]
    assert code["CodeConfiguration"]["CodeConfigurationValues"]["RuntimeEnvironmentVariables"] == {"NAME": "Jane"}

    running = wait_for_status(client, service["ServiceArn"])
    assert running["Status"] == "RUNNING", runyard_logs(server, region, "python-hello", "--deployment", "latest")
    response = get_via_dataplane(server, running["ServiceUrl"])
    assert response.status_code == 200
    assert response.text == "Hello, Jane!"

    operations = client.list_operations(ServiceArn=service["ServiceArn"])["OperationSummaryList"]
    assert [(op["Type"], op["Status"]) for op in operations] == [("CREATE_SERVICE", "SUCCEEDED")]
    assert operations[0]["Id"] == created["OperationId"] and "EndedAt" in operations[0]
    summaries = client.list_services()["ServiceSummaryList"]
    assert [(s["ServiceName"], s["Status"]) for s in summaries] == [("python-hello", "RUNNING")]

    deployment = runyard_logs(server, region, "python-hello", "--deployment", created["OperationId"])
    assert "[AppRunner] Successfully pulled your application source code" in deployment
    assert "[Build] " in deployment and "Flask" in deployment
    assert "is successful." in deployment
    assert "Message: Hello, Jane!" in runyard_logs(server, region, "python-hello", "--application")
    assert "Service status is set to RUNNING." in runyard_logs(server, region, "python-hello")

    # Deletion: instances stop, routing goes, the service stays describable as DELETED for a while.
    deleting = client.delete_service(ServiceArn=service["ServiceArn"])
    assert deleting["Service"]["Status"] == "OPERATION_IN_PROGRESS" and deleting["OperationId"]
    deleted = wait_for_status(client, service["ServiceArn"])
    assert deleted["Status"] == "DELETED" and "DeletedAt" in deleted
    assert get_via_dataplane(server, running["ServiceUrl"]).status_code == 404
    operations = client.list_operations(ServiceArn=service["ServiceArn"])["OperationSummaryList"]
    assert [(op["Type"], op["Status"]) for op in operations] == [
        ("DELETE_SERVICE", "SUCCEEDED"),
        ("CREATE_SERVICE", "SUCCEEDED"),
    ]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_service(ServiceArn=service["ServiceArn"])


def test_configured_by_apprunner_yaml_in_a_monorepo(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    client = server.client("apprunner", region)
    files = {f"apps/hello/{name}": text for name, text in HELLO_FILES.items()}
    files["apps/hello/apprunner.yaml"] = HELLO_YAML
    files["README.md"] = "a monorepo\n"
    repository = git_repo(tmp_path / "monorepo", files)
    request = code_service("yaml-hello", repository)
    request["SourceConfiguration"]["CodeRepository"]["SourceDirectory"] = "apps/hello"

    service = client.create_service(**request)["Service"]
    code = service["SourceConfiguration"]["CodeRepository"]
    assert code["CodeConfiguration"] == {"ConfigurationSource": "REPOSITORY"}
    assert code["SourceDirectory"] == "apps/hello"
    running = wait_for_status(client, service["ServiceArn"])
    assert running["Status"] == "RUNNING"
    assert get_via_dataplane(server, running["ServiceUrl"]).text == "Hello, Yaml!"


def test_node_express_app_built_with_npm(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    client = server.client("apprunner", region)
    repository = git_repo(tmp_path / "express", EXPRESS_FILES)
    request = code_service(
        "express-hello",
        repository,
        Runtime="NODEJS_18",
        BuildCommand="npm install --no-audit --no-fund",
        StartCommand="node index.js",
        RuntimeEnvironmentVariables={"NAME": "Node"},
    )
    request["HealthCheckConfiguration"] = {"Protocol": "HTTP", "Path": "/", "Interval": 2}
    service = client.create_service(**request)["Service"]
    running = wait_for_status(client, service["ServiceArn"])
    assert running["Status"] == "RUNNING"
    assert running["HealthCheckConfiguration"]["Protocol"] == "HTTP"
    assert get_via_dataplane(server, running["ServiceUrl"]).text == "Hello from Express, Node!"


def _failed(client: Any, request: dict[str, Any]) -> tuple[dict[str, Any], str]:
    created = client.create_service(**request)
    service = wait_for_status(client, created["Service"]["ServiceArn"])
    assert service["Status"] == "CREATE_FAILED"
    operations = client.list_operations(ServiceArn=service["ServiceArn"])["OperationSummaryList"]
    assert [(op["Type"], op["Status"]) for op in operations] == [("CREATE_SERVICE", "FAILED")]
    return service, created["OperationId"]


def test_failing_build_reports_the_builds_error(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    client = server.client("apprunner", region)
    repository = git_repo(tmp_path / "broken", {"server.py": "print('never built')\n"})
    request = code_service(
        "broken-build",
        repository,
        Runtime="PYTHON_3",
        BuildCommand="echo compiling && echo 'error: missing semicolon' >&2 && exit 3",
        StartCommand="python server.py",
    )
    service, operation_id = _failed(client, request)
    deployment = runyard_logs(server, region, "broken-build", "--deployment", operation_id)
    assert "[Build] error: missing semicolon" in deployment
    assert "exit code 3" in deployment
    assert "Service creation failed: Failed to build" in runyard_logs(server, region, "broken-build")
    answer = get_via_dataplane(server, service["ServiceUrl"], headers={"Accept": "text/plain"})
    assert answer.status_code == 503


def test_crashing_start_command(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    client = server.client("apprunner", region)
    repository = git_repo(tmp_path / "crash", {"server.py": "import sys\nprint('cannot start')\nsys.exit(7)\n"})
    request = code_service("crashing", repository, Runtime="PYTHON_3", StartCommand="python server.py")
    _, operation_id = _failed(client, request)
    deployment = runyard_logs(server, region, "crashing", "--deployment", operation_id)
    assert "exit code 7" in deployment
    assert "cannot start" in deployment


def test_invalid_apprunner_yaml_fails_the_deployment(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    client = server.client("apprunner", region)
    repository = git_repo(
        tmp_path / "bad-yaml",
        {
            "apprunner.yaml": "version: 1.0\nruntime: python3\nbuild:\n  commands:\n    build:\n      - echo ok\n"
            "run:\n  comand: python server.py\n",
            "server.py": "",
        },
    )
    _, operation_id = _failed(client, code_service("bad-yaml", repository))
    deployment = runyard_logs(server, region, "bad-yaml", "--deployment", operation_id)
    assert "Invalid apprunner.yaml: " in deployment
    assert "unknown key 'comand' in run" in deployment


def test_unreadable_source_is_refused_before_anything_is_stored(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    for url in ("git@github.com:example/private.git", "ssh://git@example.com/repo.git"):
        request = code_service("nope", Path("/"), Runtime="PYTHON_3", StartCommand="python x.py")
        request["SourceConfiguration"]["CodeRepository"]["RepositoryUrl"] = url
        with pytest.raises(client.exceptions.InvalidRequestException) as raised:
            client.create_service(**request)
        assert "connection" in raised.value.response["Error"]["Message"]
    request = code_service(
        "nope",
        Path("/tmp"),
        Runtime="PYTHON_3",
        StartCommand="python x.py",
        RuntimeEnvironmentSecrets={"TOKEN": "arn:aws:ssm:us-east-1:000000000000:parameter/token"},
    )
    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_service(**request)
    assert "RuntimeEnvironmentSecrets" in raised.value.response["Error"]["Message"]
    request = code_service("nope", Path("/tmp"), Runtime="CORRETTO_11", StartCommand="java -jar app.jar")
    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_service(**request)
    message = raised.value.response["Error"]["Message"]
    assert "CORRETTO_11" in message and "PYTHON_3" in message
    assert client.list_services()["ServiceSummaryList"] == []


def instance_processes(server: RunyardProcess) -> list[int]:
    """Processes running with their working directory in one of the server's build artifacts."""
    artifacts = str(server.data_dir / "builds" / "artifacts")
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str((proc / "cwd").readlink()).startswith(artifacts):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def wait_until_served(server: RunyardProcess, service_url: str, path: str = "/") -> str:
    deadline = time.monotonic() + 60
    while True:
        answer = get_via_dataplane(server, service_url, path)
        if answer.status_code == 200:
            return answer.text
        assert time.monotonic() < deadline, f"{service_url} answers {answer.status_code}: {answer.text[:200]}"
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["graceful", "crash"])
def test_running_service_survives_a_restart_of_runyard(fresh_server: RunyardProcess, tmp_path: Path, how: str) -> None:
    server = fresh_server.start()
    client = server.client("apprunner", "us-east-1")
    repository = git_repo(tmp_path / "python-hello", HELLO_FILES)
    service = client.create_service(**python_hello("survivor", repository))["Service"]
    running = wait_for_status(client, service["ServiceArn"])
    assert running["Status"] == "RUNNING"
    url = running["ServiceUrl"]
    pid_before = wait_until_served(server, url, "/pid")
    assert len(instance_processes(server)) == 1

    # A graceful stop takes the instances down with it; a crash (kill -9) leaves them and HAProxy running.
    server.stop(signal.SIGTERM if how == "graceful" else signal.SIGKILL)
    assert len(instance_processes(server)) == (0 if how == "graceful" else 1)
    server.start()

    assert wait_until_served(server, url) == "Hello, Jane!"
    pid_after = wait_until_served(server, url, "/pid")
    # Re-adopted after a crash (same process), restarted after a graceful stop; never duplicated.
    assert (pid_after == pid_before) == (how == "crash")
    assert len(instance_processes(server)) == 1
    described = client.describe_service(ServiceArn=service["ServiceArn"])["Service"]
    assert described["Status"] == "RUNNING"
    operations = client.list_operations(ServiceArn=service["ServiceArn"])["OperationSummaryList"]
    assert [(op["Type"], op["Status"]) for op in operations] == [("CREATE_SERVICE", "SUCCEEDED")]
    server.stop()
    assert instance_processes(server) == []


def test_haproxy_is_supervised(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    """HAProxy killed outright is started again by Runyard, with the routes to the live instances."""
    client = server.client("apprunner", region)
    repository = git_repo(tmp_path / "static", {"index.html": "still here\n"})
    request = code_service("static", repository, Runtime="PYTHON_3", StartCommand="python -m http.server $PORT")
    service = wait_for_status(client, client.create_service(**request)["Service"]["ServiceArn"])
    assert service["Status"] == "RUNNING"
    assert wait_until_served(server, service["ServiceUrl"], "/index.html") == "still here\n"

    pid_file = server.data_dir / "dataplane" / "haproxy.pid"

    def master_pid() -> int:
        text = pid_file.read_text().split() if pid_file.exists() else []
        return int(text[0]) if text else 0

    master = master_pid()
    os.killpg(master, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while master_pid() in (master, 0):
        assert time.monotonic() < deadline, "HAProxy was not started again"
        time.sleep(0.1)
    assert wait_until_served(server, service["ServiceUrl"], "/index.html") == "still here\n"
