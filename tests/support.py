"""A real `runyard serve` in a subprocess on a free port, and clients pointed at it."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

ACCESS_KEY = "AKIARUNYARDTEST00001"
SECRET_KEY = "runyard-test-secret-key-0000000000000000"
_regions = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_region() -> str:
    """A region of its own per test: resources are scoped by the SigV4 region, so tests never collide."""
    return f"test-r{next(_regions)}-{os.getpid() % 10}"


@dataclass
class RunyardProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "AWS_"))}
        # The process runtime unless a test asks for OCI: `auto` would pick OCI wherever a container API runs.
        env.update(RUNYARD_ACCESS_KEY_ID=ACCESS_KEY, RUNYARD_SECRET_ACCESS_KEY=SECRET_KEY, RUNYARD_RUNTIME="process")
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> RunyardProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        with self.log_path.open("ab") as log:
            self.process = self._spawn(log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"runyard serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.endpoint}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"runyard serve did not become ready:\n{self.log()}")

    def _spawn(self, log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runyard",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--http-port",
                str(self.http_port),
                "--log-level",
                "info",
            ],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def client(self, service: str, region: str = "us-east-1", **overrides: Any) -> Any:
        """A boto3 client for this server; retries off so a test sees the first answer."""
        kwargs: dict[str, Any] = dict(
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
        kwargs.update(overrides)
        return boto3.client(service, **kwargs)

    def cli_env(self, region: str = "us-east-1") -> dict[str, str]:
        """Environment for the AWS CLI (`aws ... --endpoint-url`)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION=region,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            AWS_MAX_ATTEMPTS="1",
        )
        return env


# -- real git repositories and deployed apps -------------------------------------------------------------

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Runyard Tests",
    "GIT_AUTHOR_EMAIL": "tests@runyard.invalid",
    "GIT_COMMITTER_NAME": "Runyard Tests",
    "GIT_COMMITTER_EMAIL": "tests@runyard.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git_repo(path: Path, files: dict[str, str], *, branch: str = "main", message: str = "first") -> Path:
    """A local repository whose `branch` holds exactly `files` (committed); returns its path."""
    env = {**os.environ, **_GIT_ENV}
    if not (path / ".git").exists():
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True, env=env)
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-q", "-m", message], check=True, env=env)
    return path


def wait_for_status(client: Any, arn: str, *, timeout: float = 240.0) -> dict[str, Any]:
    """DescribeService until the service leaves OPERATION_IN_PROGRESS; returns the Service."""
    deadline = time.monotonic() + timeout
    while True:
        service: dict[str, Any] = client.describe_service(ServiceArn=arn)["Service"]
        if service["Status"] != "OPERATION_IN_PROGRESS":
            return service
        if time.monotonic() > deadline:
            raise AssertionError(f"{arn} still {service['Status']} after {timeout} s")
        time.sleep(0.2)


def get_via_dataplane(
    server: RunyardProcess, service_url: str, path: str = "/", headers: dict[str, str] | None = None
) -> httpx.Response:
    """A request through Runyard's HAProxy, addressed by Host header like a browser on *.localhost would."""
    host = service_url.split(":")[0]
    return httpx.get(
        f"http://127.0.0.1:{server.http_port}{path}", headers={**(headers or {}), "Host": host}, timeout=10
    )
