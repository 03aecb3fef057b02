"""What the benchmarks share: a real `runyard serve` on free ports with a throw-away data directory, and git."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx

ACCESS_KEY = "AKIARUNYARDBENCH0001"
SECRET_KEY = "runyard-bench-secret-key-000000000000000"
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
        repository.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(repository)], check=True, env=env)
    for name, text in files.items():
        (repository / name).write_text(text)
    subprocess.run(["git", "-C", str(repository), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repository), "commit", "-q", "-m", message], check=True, env=env)


@dataclass(frozen=True)
class Server:
    workdir: Path
    port: int
    http_port: int

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def client(self, service: str = "apprunner") -> Any:
        return boto3.client(
            service,
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


@contextlib.contextmanager
def runyard(*, keep: bool = False, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A fresh Runyard, stopped (and its data directory removed unless `keep`) on the way out."""
    workdir = Path(tempfile.mkdtemp(prefix="runyard-bench-"))
    server = Server(workdir, free_port(), free_port())
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "AWS_"))}
    environment.update(RUNYARD_ACCESS_KEY_ID=ACCESS_KEY, RUNYARD_SECRET_ACCESS_KEY=SECRET_KEY, **(env or {}))
    command = [sys.executable, "-m", "runyard", "serve", "--data-dir", str(server.data_dir)]
    command += ["--port", str(server.port), "--http-port", str(server.http_port), "--log-level", "warning"]
    with (workdir / "server.log").open("wb") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
        if keep:
            print(f"data kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def create_service(client: Any, name: str, repository: Path, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """CreateService from a local repository's main branch with the API's code configuration `values`."""
    service: dict[str, Any] = client.create_service(
        ServiceName=name,
        SourceConfiguration={
            "CodeRepository": {
                "RepositoryUrl": f"file://{repository}",
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {"ConfigurationSource": "API", "CodeConfigurationValues": values},
            },
            "AutoDeploymentsEnabled": False,
        },
        **extra,
    )["Service"]
    return service
