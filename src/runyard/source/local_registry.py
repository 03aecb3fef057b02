"""The image registry Runyard runs with the OCI runtime: Debian's `docker-registry` (distribution) on loopback.

It keeps the images of code services and is where private ECR identifiers point (see image_locations.py), so
`podman push --tls-verify=false 127.0.0.1:<port>/<repository>:<tag>` is how an image gets "into ECR" here. Storage
is `<data_dir>/registry`; the registry sends its push events to Runyard's notification endpoint, so a push of a
tracked tag deploys at once instead of at the next poll. The notification token is random per start and only in
the config file (mode 0600) and Runyard's memory.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from runyard.errors import RunyardError

log = logging.getLogger(__name__)
BINARY = "docker-registry"
_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0


class RegistryStartFailed(RunyardError):
    """The local registry did not start."""


class LocalRegistry:
    def __init__(self, directory: Path, *, port: int, notify_url: str | None, binary: str = BINARY) -> None:
        self.directory = directory
        self.port = port
        self.notify_url = notify_url
        self.binary = binary
        self.notification_token = secrets.token_urlsafe(24)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port, as image references name it."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def config(self) -> dict[str, object]:
        document: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.directory / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.address},
        }
        if self.notify_url:
            document["notifications"] = {
                "endpoints": [
                    {
                        "name": "runyard",
                        "url": self.notify_url,
                        "headers": {"Authorization": [f"Bearer {self.notification_token}"]},
                        "timeout": "2s",
                        "threshold": 3,
                        "backoff": "1s",
                    }
                ]
            }
        return document

    def start(self) -> None:
        """Start `docker-registry serve` and wait until /v2/ answers. Blocking: call from a thread."""
        if self.running:
            return
        if shutil.which(self.binary) is None:
            raise RegistryStartFailed(
                f"The OCI runtime keeps images in a local registry: {self.binary!r} is not installed (`make deps`)."
            )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        config_path = self.directory / "config.yml"
        self._stop_stale(config_path)
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(self.config(), handle)
        log_path = self.directory / "registry.log"
        with log_path.open("ab") as output:
            self._process = subprocess.Popen(
                [self.binary, "serve", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        self._pid_path.write_text(f"{self._process.pid}\n")
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RegistryStartFailed(
                    f"The local registry exited with {self._process.returncode} (is port {self.port} free?): "
                    f"see {log_path}"
                )
            try:
                if httpx.get(f"http://{self.address}/v2/", timeout=1, trust_env=False).status_code == 200:
                    log.info("local image registry on %s (storage %s)", self.address, self.directory / "data")
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RegistryStartFailed(f"The local registry did not answer within {_START_TIMEOUT:.0f} s: see {log_path}")

    @property
    def _pid_path(self) -> Path:
        return self.directory / "registry.pid"

    def _stop_stale(self, config_path: Path) -> None:
        """A registry left running by a Runyard that crashed still holds the port: stop it before starting ours."""
        try:
            pid = int(self._pid_path.read_text().split()[0])
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            return
        if str(config_path).encode() not in command_line:
            return  # the pid was reused by an unrelated process
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + _STOP_TIMEOUT
            while time.monotonic() < deadline:
                if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                    return
                time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
