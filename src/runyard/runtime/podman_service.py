"""Where the OCI backend's container engine is: a Docker-compatible API that already runs, or podman's own.

Any engine that speaks the Docker API will do (dockerd, or `podman system service`). When none is reachable
and the OCI runtime was asked for, Runyard starts podman's service on a socket in its data directory, with a
containers.conf of its own (CONTAINERS_CONF), and stops it again when Runyard stops. Containers outlive the
service (podman's conmon supervises them), so a restarted Runyard re-adopts them.

The containers.conf is what plain podman needs on a host like the reference machine (cgroups v1 hybrid, no
systemd, no CAP_SYS_RESOURCE): runc and cgroupfs; file events and k8s-file logs (no journald); and ulimits no
higher than the hard limits the shell has (podman would otherwise raise them, which needs the capability).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import docker
from docker.errors import DockerException

from runyard.runtime.base import RuntimeBackendError

_log = logging.getLogger(__name__)

CONTAINERS_CONF = """\
# Written by Runyard for the podman service it starts (CONTAINERS_CONF); see docs/runtime.md.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

# Checked in this order when no endpoint is configured: podman's rootful service, then dockerd.
KNOWN_SOCKETS = (Path("/run/podman/podman.sock"), Path("/var/run/docker.sock"))
_PING_TIMEOUT_S = 2.0
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0
API_TIMEOUT_S = 120.0  # per request: pulls and `stop` with a long grace take a while


def reachable(base_url: str, timeout: float = _PING_TIMEOUT_S) -> bool:
    """Whether a Docker-compatible API answers at `base_url` (unix://…, tcp://…)."""
    if base_url.startswith("unix://") and not _unix_socket_answers(base_url.removeprefix("unix://"), timeout):
        return False  # (and the SDK would leave the socket of a refused connection open)
    try:
        client = docker.DockerClient(base_url=base_url, timeout=int(max(1, timeout)), version="auto")
    except DockerException:
        return False
    try:
        return bool(client.ping())
    except (DockerException, OSError):
        return False
    finally:
        client.close()


def _unix_socket_answers(path: str, timeout: float) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def find_container_api(environ: Mapping[str, str] | None = None) -> str | None:
    """The first reachable engine: DOCKER_HOST when set (and nothing else then), else the well-known sockets."""
    environ = os.environ if environ is None else environ
    if docker_host := environ.get("DOCKER_HOST"):
        return docker_host if reachable(docker_host) else None
    for socket_path in KNOWN_SOCKETS:
        if socket_path.exists() and reachable(f"unix://{socket_path}"):
            return f"unix://{socket_path}"
    return None


class PodmanService:
    """`podman system service` on `<directory>/podman.sock`, started and stopped by Runyard."""

    def __init__(self, directory: Path, *, binary: str = "podman") -> None:
        self.directory = directory
        self.binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._adopted: int | None = None  # the pid of a service an earlier Runyard started and did not stop

    @property
    def socket(self) -> Path:
        return self.directory / "podman.sock"

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def containers_conf(self) -> Path:
        return self.directory / "containers.conf"

    def environment(self) -> dict[str, str]:
        """The environment for podman commands that must behave like the service (e.g. `podman import`)."""
        return {**os.environ, "CONTAINERS_CONF": str(self.containers_conf)}

    def write_conf(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.containers_conf.write_text(CONTAINERS_CONF)

    @property
    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self._adopted is not None and self._ours(self._adopted)

    @property
    def _pid_file(self) -> Path:
        return self.directory / "service.pid"

    def _ours(self, pid: int) -> bool:
        """Whether `pid` is still a podman service on our socket (not a recycled pid)."""
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return b"service" in command and self.base_url.encode() in command

    def start(self) -> str:
        """Start the service unless one of ours already answers on the socket (an earlier Runyard's that ended
        without stopping it: it is adopted, and stopped with this one); return its URL. Blocking: call it in a
        thread from async code."""
        if self.running:
            return self.base_url
        if self.socket.exists() and reachable(self.base_url):
            with contextlib.suppress(OSError, ValueError):
                pid = int(self._pid_file.read_text())
                self._adopted = pid if self._ours(pid) else None
            _log.info("adopted podman's API service on %s", self.socket)
            return self.base_url
        if shutil.which(self.binary) is None:
            raise RuntimeBackendError(f"The OCI runtime needs podman ({self.binary!r} is not installed: `make deps`)")
        self.write_conf()
        self.socket.unlink(missing_ok=True)  # a stale socket of a service that died
        log_path = self.directory / "service.log"
        with open(log_path, "ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "system", "service", "--time=0", self.base_url],
                env=self.environment(),
                cwd=self.directory,  # conmon writes files (an `oom` marker) into its working directory
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a Ctrl-C to Runyard must not kill it under running containers
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeBackendError(
                    f"podman's API service exited with {self._process.returncode}: see {log_path}"
                )
            if self.socket.exists() and reachable(self.base_url, timeout=1.0):
                self._pid_file.write_text(str(self._process.pid))
                _log.info("started podman's API service (pid %d) on %s", self._process.pid, self.socket)
                return self.base_url
            time.sleep(0.1)
        self.stop()
        raise RuntimeBackendError(
            f"podman's API service did not answer within {_START_TIMEOUT_S:.0f} s: see {log_path}"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        adopted, self._adopted = self._adopted, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        elif adopted is not None and self._ours(adopted):  # not our child: signal it, then watch it go
            with contextlib.suppress(ProcessLookupError):
                os.kill(adopted, signal.SIGTERM)
            deadline = time.monotonic() + _STOP_TIMEOUT_S
            while self._ours(adopted) and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._ours(adopted):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(adopted, signal.SIGKILL)
        else:
            return
        self._pid_file.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)
        _log.info("stopped podman's API service")


class ContainerApi:
    """The engine the OCI backend talks to: a known endpoint, or a podman service started on first use."""

    def __init__(self, base_url: str | None = None, *, service: PodmanService | None = None) -> None:
        if base_url is None and service is None:
            raise ValueError("a container API needs an endpoint or a podman service to start")
        self._base_url = base_url
        self._service = service
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        self._on_close: list[Callable[[], None]] = []

    @property
    def service(self) -> PodmanService | None:
        return self._service

    def client(self) -> docker.DockerClient:
        """A connected client (blocking the first time: it may start podman's service)."""
        with self._lock:
            if self._client is not None and self._service is not None and not self._service.running:
                _log.warning("podman's API service is gone; starting it again")  # containers live on (conmon)
                self._client.close()
                self._client = None
            if self._client is None:
                base_url = self._base_url or self._start_service()
                try:
                    self._client = docker.DockerClient(base_url=base_url, timeout=int(API_TIMEOUT_S), version="auto")
                except DockerException as exc:
                    raise RuntimeBackendError(f"The container API at {base_url} is not reachable: {exc}") from exc
            return self._client

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run `callback` first when the API is closed (e.g. to end log streams)."""
        self._on_close.append(callback)

    def _start_service(self) -> str:
        assert self._service is not None
        return self._service.start()

    def close(self) -> None:
        for callback in self._on_close:
            try:
                callback()
            except Exception:
                _log.exception("closing the container API")
        with self._lock:
            client, self._client = self._client, None
            if client is not None:
                with contextlib.suppress(DockerException, OSError):
                    client.close()
            if self._service is not None:
                self._service.stop()
