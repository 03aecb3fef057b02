"""The runtime seam: what every backend (process, OCI, later Kubernetes) promises the control plane.

A backend starts one instance of a prepared artifact and hands back the address to route to; it does not
wait for the app to listen (that is the health checker's job). Health, scaling and routing live elsewhere.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from runyard.errors import RunyardError

# Instance ids become file and cgroup names: keep them to one safe path component.
_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_valid_instance_id(instance_id: str) -> bool:
    return _INSTANCE_ID.fullmatch(instance_id) is not None


class RuntimeBackendError(RunyardError):
    """A backend could not do what was asked; the message is safe to show (it never carries env values)."""


class InstanceNotFound(RuntimeBackendError):
    """The backend knows no instance by that id (never started, or stopped and forgotten)."""


class RuntimeKind(enum.StrEnum):
    """Which backend runs instances (`runyard serve --runtime`); OCI runs images, so code services need one built."""

    PROCESS = "process"
    OCI = "oci"


class LimitMechanism(enum.StrEnum):
    """How an instance's CPU and memory limits were enforced."""

    CGROUP_V1 = "cgroup-v1"  # memory and CPU, per instance
    RLIMIT = "rlimit"  # address-space limit only; CPU is not limited
    CONTAINER = "container"  # the container engine enforces both
    NONE = "none"


class InstanceStatus(enum.StrEnum):
    RUNNING = "running"
    EXITED = "exited"  # exit_code is set, or None when the backend could not learn it (adopted instance)
    KILLED = "killed"  # ended by `signal`


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """One instance to run. `command` is the user's start command string, exactly as App Runner takes it.

    `image` and `container_port` are for the OCI backend only (the process backend refuses an `image`): with an
    image, `command` may be "" (the image's own ENTRYPOINT/CMD runs) and `working_dir` is ignored.
    """

    instance_id: str
    working_dir: Path
    command: str
    env: Mapping[str, str]
    port_env_names: tuple[str, ...]  # each is set to the instance's port, as is PORT itself
    cpu_units: int  # 1024 units = one vCPU
    memory_mb: int
    log_path: Path  # stdout and stderr are appended here
    image: str | None = None  # OCI backend: an image reference, pinned by digest where known
    container_port: int | None = None  # OCI backend: the port the app listens on inside its container

    def validate(self) -> None:
        """Raise `RuntimeBackendError` unless every field is usable; names only, never values, in messages."""
        if not is_valid_instance_id(self.instance_id):
            raise RuntimeBackendError(f"Invalid instance id: {self.instance_id!r}")
        if self.image is None and not self.command.strip():
            raise RuntimeBackendError("The start command is empty")
        if self.image is not None and not self.image.strip():
            raise RuntimeBackendError("The image reference is empty")
        if self.container_port is not None and not 0 < self.container_port < 65536:
            raise RuntimeBackendError(f"Invalid container port: {self.container_port}")
        if not self.port_env_names:
            raise RuntimeBackendError("At least one port environment variable name is required")
        for name in (*self.env, *self.port_env_names):
            if not _ENV_NAME.fullmatch(name):
                raise RuntimeBackendError(f"Invalid environment variable name: {name!r}")
        if self.cpu_units <= 0 or self.memory_mb <= 0:
            raise RuntimeBackendError("cpu_units and memory_mb must be positive")


@dataclass(frozen=True, slots=True)
class Instance:
    """A started instance: where to route to, and how its limits are enforced."""

    instance_id: str
    host: str
    port: int
    started_at: float  # seconds since the epoch
    limits: LimitMechanism
    log_path: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class InstanceState:
    status: InstanceStatus
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool = False  # the memory limit ended it (known only where the mechanism reports it)

    @property
    def running(self) -> bool:
        return self.status is InstanceStatus.RUNNING


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Complete lines from a byte offset of the instance's log; pass `next_offset` back to follow it."""

    lines: tuple[str, ...]
    next_offset: int


@dataclass(frozen=True, slots=True)
class InstanceUsage:
    """What an instance has used: CPU time since it started (a counter) and the memory it holds now."""

    cpu_seconds: float
    memory_bytes: int
    memory_limit_bytes: int | None  # the limit enforced on it, where the mechanism enforces one on memory


class RuntimeBackend(Protocol):
    async def start(self, spec: InstanceSpec) -> Instance:
        """Start one instance; return once it is spawned (not once it listens)."""
        ...

    async def stop(self, instance_id: str, *, grace: float) -> None:
        """Ask the instance to stop (SIGTERM), kill it after `grace` seconds, release its resources.

        Stopping an instance that is already gone is not an error, so callers can retry safely.
        """
        ...

    async def inspect(self, instance_id: str) -> InstanceState:
        """The instance's state; raises `InstanceNotFound` for an id the backend does not know."""
        ...

    async def instances(self) -> list[Instance]:
        """The running instances, including ones started before a Runyard restart (re-adopted)."""
        ...

    async def logs(self, instance_id: str, *, offset: int = 0) -> LogChunk:
        """The instance's stdout and stderr lines, from byte `offset` of its log."""
        ...

    async def usage(self, instance_id: str) -> InstanceUsage:
        """CPU time and memory of the instance's processes; raises `InstanceNotFound` for an unknown id."""
        ...
