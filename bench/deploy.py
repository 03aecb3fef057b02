"""Deploy time: CreateService -> RUNNING -> first answer through the data plane, for the spec's python-hello.

Runs a real `runyard serve` on free ports with a fresh data directory and measures, in one run:
  cold    - first deployment: empty pip cache, no venv seed, no artifact
  warm    - a new commit of the same app: caches warm, the build runs again
  reused  - a second service of the same commit: the artifact is reused, nothing is built

Usage: .venv/bin/python bench/deploy.py [--keep]
The last line is `ratio: X` = cold / warm deploy time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import httpx

ACCESS_KEY = "AKIARUNYARDBENCH0001"
SECRET_KEY = "runyard-bench-secret-key-000000000000000"
SERVER = """\
import os
from flask import Flask

name = os.environ.get("NAME") or "world"
app = Flask(__name__)


@app.route("/")
def root():
    return "Hello, " + name + "!"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ["PORT"]))
"""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@runyard.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@runyard.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def commit(repository: Path, files: dict[str, str], message: str) -> None:
    env = {**os.environ, **GIT_ENV}
    if not (repository / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main", str(repository)], check=True, env=env)
    for name, text in files.items():
        (repository / name).write_text(text)
    subprocess.run(["git", "-C", str(repository), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repository), "commit", "-q", "-m", message], check=True, env=env)


def deploy(client: Any, http_port: int, name: str, repository: Path) -> float:
    """Seconds from CreateService to the first `Hello, Jane!` through HAProxy."""
    started = time.perf_counter()
    service = client.create_service(
        ServiceName=name,
        SourceConfiguration={
            "CodeRepository": {
                "RepositoryUrl": f"file://{repository}",
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {
                    "ConfigurationSource": "API",
                    "CodeConfigurationValues": {
                        "Runtime": "PYTHON_3",
                        "BuildCommand": "pip install -r requirements.txt",
                        "StartCommand": "python server.py",
                        "RuntimeEnvironmentVariables": {"NAME": "Jane"},
                    },
                },
            },
            "AutoDeploymentsEnabled": False,
        },
    )["Service"]
    host = service["ServiceUrl"].split(":")[0]
    deadline = started + 300
    while time.perf_counter() < deadline:
        status = client.describe_service(ServiceArn=service["ServiceArn"])["Service"]["Status"]
        if status == "RUNNING":
            answer = httpx.get(f"http://127.0.0.1:{http_port}/", headers={"Host": host}, timeout=10)
            if answer.text == "Hello, Jane!":
                return time.perf_counter() - started
        elif status != "OPERATION_IN_PROGRESS":
            raise SystemExit(f"{name} ended {status}")
        time.sleep(0.05)
    raise SystemExit(f"{name} was not running after 300 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="runyard-bench-"))
    port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "AWS_"))}
    env.update(RUNYARD_ACCESS_KEY_ID=ACCESS_KEY, RUNYARD_SECRET_ACCESS_KEY=SECRET_KEY)
    command = [sys.executable, "-m", "runyard", "serve", "--data-dir", str(workdir / "data")]
    command += ["--port", str(port), "--http-port", str(http_port), "--log-level", "warning"]
    with (workdir / "server.log").open("wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = boto3.client(
            "apprunner",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        repository = workdir / "python-hello"
        repository.mkdir()
        commit(repository, {"requirements.txt": "Flask\n", "server.py": SERVER}, "first")
        print("deploying python-hello (Flask from the package index) on", f"{os.cpu_count()} cores", flush=True)
        cold = deploy(client, http_port, "hello-cold", repository)
        print(f"cold:   {cold:6.2f} s  (empty caches, full build)", flush=True)
        commit(repository, {"README.md": "a new commit\n"}, "second")
        warm = deploy(client, http_port, "hello-warm", repository)
        print(f"warm:   {warm:6.2f} s  (warm caches, new commit: build runs again)", flush=True)
        reused = deploy(client, http_port, "hello-reused", repository)
        print(f"reused: {reused:6.2f} s  (same commit: artifact reused, no build)", flush=True)
        print(f"ratio: {cold / warm:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        if args.keep:
            print(f"data kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
