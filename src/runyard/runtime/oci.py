"""The OCI backend: each instance is a container, run through the Docker-compatible API of podman or dockerd.

The container is the instance: its image (pulled when absent), the start command run as `/bin/sh -c` (App
Runner's StartCommand; none: the image's own ENTRYPOINT/CMD), the port variables set to the container port,
which is published on 127.0.0.1 only, and the engine's CPU (nano_cpus) and memory (mem_limit, no swap past it)
limits. The containers are labelled with the instance id and with this Runyard's data directory, so the engine
is the one source of truth: a restarted Runyard re-adopts its own containers, never another Runyard's.

Logs: a follower thread per container streams the engine's log (with timestamps) into `spec.log_path`, and
records how far it got, so a follower after a Runyard restart resumes without losing or repeating lines.

Out of memory: podman 4.3 with runc on cgroups v1 does not report OOMKilled, so exit 137 (SIGKILL) of a
container with a memory limit that Runyard did not stop itself counts as out of memory too.

Every docker SDK call blocks, so each runs in a thread (asyncio.to_thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import json
import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.types.daemon import CancellableStream

from runyard.runtime.base import (
    Instance,
    InstanceNotFound,
    InstanceSpec,
    InstanceState,
    InstanceStatus,
    InstanceUsage,
    LimitMechanism,
    LogChunk,
    RuntimeBackendError,
    RuntimeKind,
    is_valid_instance_id,
)
from runyard.runtime.logfile import read_lines
from runyard.runtime.podman_service import ContainerApi

_log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_CONTAINER_PORT = 8080
LABEL_INSTANCE = "runyard.instance"
LABEL_OWNER = "runyard.owner"  # the data directory of the Runyard that started it
LABEL_LOG = "runyard.log-path"
LABEL_STARTED = "runyard.started-at"
LABEL_PORT = "runyard.host-port"
_MIB = 1024 * 1024
_SIGKILL_EXIT = 128 + 9
_PORT_ATTEMPTS = 5
_FOLLOWER_DRAIN_S = 5.0  # after the container stopped: how long its last log lines may take to land
_GONE_KEPT = 1024  # final states remembered for `inspect` after an instance is removed


@dataclass(frozen=True, slots=True)
class _Gone:
    state: InstanceState
    log_path: Path


class OciBackend:
    kind = RuntimeKind.OCI

    def __init__(
        self,
        api: ContainerApi,
        state_dir: Path,
        *,
        owner: str,
        port_range: tuple[int, int] = (20000, 29999),
        insecure_registries: Iterable[str] = (),
    ) -> None:
        """`owner` names this Runyard (its data directory); `insecure_registries` are registry hosts
        (host:port) pulled from over plain HTTP, without TLS verification."""
        self._api = api
        self._dir = state_dir
        self._owner = owner
        self._prefix = "runyard-" + hashlib.sha256(owner.encode()).hexdigest()[:10] + "-"
        self._port_range = port_range
        self._insecure = frozenset(insecure_registries)
        self._stopping: set[str] = set()  # stopped by Runyard: a SIGKILL then is not the memory limit's
        self._gone: dict[str, _Gone] = {}
        api.on_close(lambda: _FOLLOWERS.close(self._prefix))  # Runyard stops; its containers and their logs go on

    # The protocol (runtime/base.py); each blocking part runs in a thread.

    async def start(self, spec: InstanceSpec) -> Instance:
        spec.validate()
        if spec.image is None:
            raise RuntimeBackendError(f"Instance {spec.instance_id} names no image: the OCI runtime runs images")
        return await asyncio.to_thread(self._start, spec, spec.image)

    async def stop(self, instance_id: str, *, grace: float) -> None:
        await asyncio.to_thread(self._stop, instance_id, grace)

    async def inspect(self, instance_id: str) -> InstanceState:
        return await asyncio.to_thread(self._inspect, instance_id)

    async def instances(self) -> list[Instance]:
        running, ended = await asyncio.to_thread(self._list)
        for instance_id in ended:  # like the process backend: the dead are cleaned up, their state remembered
            try:
                await self.stop(instance_id, grace=0)
            except RuntimeBackendError as exc:
                _log.warning("%s", exc.message)
        return running

    async def logs(self, instance_id: str, *, offset: int = 0) -> LogChunk:
        return await asyncio.to_thread(self._logs, instance_id, offset)

    async def usage(self, instance_id: str) -> InstanceUsage:
        return await asyncio.to_thread(self._usage, instance_id)

    # Blocking parts.

    def _name(self, instance_id: str) -> str:
        return self._prefix + instance_id

    def _container(self, instance_id: str) -> Container | None:
        if not is_valid_instance_id(instance_id):
            return None
        try:
            container = self._api.client().containers.get(self._name(instance_id))
        except NotFound:
            return None
        except DockerException as exc:
            raise RuntimeBackendError(f"The container engine failed on instance {instance_id}: {exc}") from exc
        if container.labels.get(LABEL_OWNER) != self._owner:
            return None  # the same name, another Runyard's: not ours to touch
        return container

    def _start(self, spec: InstanceSpec, image: str) -> Instance:
        instance_id = spec.instance_id
        if self._container(instance_id) is not None:
            raise RuntimeBackendError(f"Instance {instance_id} already exists")
        self._ensure_image(image)
        container_port = spec.container_port or DEFAULT_CONTAINER_PORT
        env = dict(spec.env)
        env.update(dict.fromkeys(("PORT", *spec.port_env_names), str(container_port)))
        command = spec.command.strip()
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        spec.log_path.touch()
        self._dir.mkdir(parents=True, exist_ok=True)
        _position_path(self._dir, instance_id).unlink(missing_ok=True)
        memory = spec.memory_mb * _MIB
        for attempt in range(_PORT_ATTEMPTS):
            host_port = self._allocate_port()
            started_at = time.time()
            labels = {
                LABEL_INSTANCE: instance_id,
                LABEL_OWNER: self._owner,
                LABEL_LOG: str(spec.log_path),
                LABEL_STARTED: repr(started_at),
                LABEL_PORT: str(host_port),
            }
            try:
                container = self._api.client().containers.create(
                    image,
                    # App Runner runs a StartCommand through a shell in place of the image's own start command.
                    command=[command] if command else None,
                    entrypoint=["/bin/sh", "-c"] if command else None,
                    name=self._name(instance_id),
                    labels=labels,
                    environment=env,
                    ports={f"{container_port}/tcp": (LOOPBACK, host_port)},
                    mem_limit=memory,
                    memswap_limit=memory,  # no swapping past the limit either
                    nano_cpus=spec.cpu_units * 1_000_000_000 // 1024,
                    stdin_open=False,
                    tty=False,
                )
            except DockerException as exc:
                raise RuntimeBackendError(f"Instance {instance_id} could not be created: {exc}") from exc
            try:
                container.start()
            except DockerException as exc:
                with contextlib.suppress(DockerException):
                    container.remove(force=True)
                if "address already in use" in str(exc) and attempt + 1 < _PORT_ATTEMPTS:
                    continue  # another process took the port between the check and the bind
                raise RuntimeBackendError(f"Instance {instance_id} could not start: {exc}") from exc
            break
        self._gone.pop(instance_id, None)
        self._follow(container, spec.log_path)
        _log.info("instance %s started: container %s, port %d", instance_id, container.short_id, host_port)
        return Instance(instance_id, LOOPBACK, host_port, started_at, LimitMechanism.CONTAINER, spec.log_path)

    def _ensure_image(self, image: str) -> None:
        client = self._api.client()
        try:
            client.images.get(image)
            return
        except ImageNotFound:
            pass
        except DockerException as exc:
            raise RuntimeBackendError(f"The container engine could not look up image {image}: {exc}") from exc
        _log.info("pulling image %s", image)
        try:
            if self._plain_http(_registry(image)) and self._is_podman():
                self._pull_without_tls(image)
            else:
                client.images.pull(image)
        except DockerException as exc:
            raise RuntimeBackendError(f"Image {image} could not be pulled: {exc}") from exc

    def _plain_http(self, registry: str) -> bool:
        """Registries pulled from without TLS: those configured, and loopback ones (as dockerd does by default)."""
        host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
        return registry in self._insecure or host == "localhost" or host.startswith("127.")

    def _is_podman(self) -> bool:
        components = self._api.client().version().get("Components") or []
        return any("podman" in str(component.get("Name", "")).lower() for component in components)

    def _pull_without_tls(self, image: str) -> None:
        """podman's own pull endpoint, which can skip TLS (its Docker-compatible one cannot)."""
        api = self._api.client().api
        response = api.post(
            f"{api.base_url}/v4.0.0/libpod/images/pull",
            params={"reference": image, "tlsVerify": "false", "quiet": "true"},
            stream=True,
        )
        try:
            if response.status_code >= 400:
                raise APIError(response.text, response)
            for line in response.iter_lines():
                if line and (error := json.loads(line).get("error")):
                    raise APIError(str(error), response)
        finally:
            response.close()

    def _allocate_port(self) -> int:
        low, high = self._port_range
        taken = {instance.port for instance in self._list(follow=False)[0]}
        span = high - low + 1
        first = random.randrange(span)
        for step in range(span):
            port = low + (first + step) % span
            if port not in taken and _port_free(port):
                return port
        raise RuntimeBackendError(f"No free port in {low}-{high}")

    def _stop(self, instance_id: str, grace: float) -> None:
        container = self._container(instance_id)
        if container is None:
            return
        self._stopping.add(instance_id)
        try:
            before = _state(container.attrs, stopped_by_us=False)
            if before.running:
                try:  # the engine sends the image's stop signal (SIGTERM), then SIGKILL after `grace`
                    container.stop(timeout=math.ceil(grace))
                except NotFound:
                    pass
                except DockerException as exc:
                    raise RuntimeBackendError(f"Instance {instance_id} could not be stopped: {exc}") from exc
                with contextlib.suppress(NotFound):
                    container.reload()
            final = _state(container.attrs, stopped_by_us=before.running)
            _FOLLOWERS.drain(container.name or "", _FOLLOWER_DRAIN_S)
            try:
                container.remove(force=True)
            except NotFound:
                pass
            except DockerException as exc:
                raise RuntimeBackendError(f"Instance {instance_id} could not be removed: {exc}") from exc
        finally:
            self._stopping.discard(instance_id)
        _position_path(self._dir, instance_id).unlink(missing_ok=True)
        self._gone[instance_id] = _Gone(final, Path(container.labels.get(LABEL_LOG, os.devnull)))
        if len(self._gone) > _GONE_KEPT:
            del self._gone[next(iter(self._gone))]
        _log.info("instance %s stopped: %s", instance_id, final)

    def _inspect(self, instance_id: str) -> InstanceState:
        container = self._container(instance_id)
        if container is not None:
            return _state(container.attrs, stopped_by_us=instance_id in self._stopping)
        if instance_id in self._gone:
            return self._gone[instance_id].state
        raise InstanceNotFound(f"No instance {instance_id}")

    def _list(self, *, follow: bool = True) -> tuple[list[Instance], list[str]]:
        """Our containers: the running ones (re-adopted: their logs followed again), and the ids of the ended."""
        try:
            containers = self._api.client().containers.list(all=True, filters={"label": f"{LABEL_OWNER}={self._owner}"})
        except DockerException as exc:
            raise RuntimeBackendError(f"The container engine could not list instances: {exc}") from exc
        running: list[Instance] = []
        ended: list[str] = []
        for container in containers:
            labels = container.labels
            instance_id = labels.get(LABEL_INSTANCE, "")
            if labels.get(LABEL_OWNER) != self._owner or container.name != self._name(instance_id):
                continue
            if not _state(container.attrs, stopped_by_us=False).running:
                ended.append(instance_id)
                continue
            log_path = Path(labels[LABEL_LOG])
            running.append(
                Instance(
                    instance_id,
                    LOOPBACK,
                    int(labels[LABEL_PORT]),
                    float(labels[LABEL_STARTED]),
                    LimitMechanism.CONTAINER,
                    log_path,
                )
            )
            if follow:
                self._follow(container, log_path)
        return sorted(running, key=lambda instance: instance.started_at), ended

    def _logs(self, instance_id: str, offset: int) -> LogChunk:
        container = self._container(instance_id)
        if container is not None:
            path = Path(container.labels[LABEL_LOG])
        elif instance_id in self._gone:
            path = self._gone[instance_id].log_path
        else:
            raise InstanceNotFound(f"No instance {instance_id}")
        return read_lines(path, offset)

    def _usage(self, instance_id: str) -> InstanceUsage:
        container = self._container(instance_id)
        if container is None or not _state(container.attrs, stopped_by_us=False).running:
            raise InstanceNotFound(f"No running instance {instance_id}")
        try:
            stats = cast(dict[str, Any], container.stats(stream=False))
        except DockerException as exc:
            gone = self._container(instance_id)
            if gone is None or not _state(gone.attrs, stopped_by_us=False).running:  # it ended meanwhile
                raise InstanceNotFound(f"No running instance {instance_id}") from exc
            raise RuntimeBackendError(f"The container engine has no usage of instance {instance_id}: {exc}") from exc
        cpu = stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage", 0)
        memory = stats.get("memory_stats", {})
        extra = memory.get("stats", {})
        inactive = extra.get("total_inactive_file", extra.get("inactive_file", 0))  # cgroups v1 / v2 names
        limit = container.attrs.get("HostConfig", {}).get("Memory") or None
        return InstanceUsage(cpu / 1e9, max(0, int(memory.get("usage", 0)) - int(inactive)), limit)

    def _follow(self, container: Container, log_path: Path) -> None:
        instance_id = container.labels[LABEL_INSTANCE]
        _FOLLOWERS.ensure(container, log_path, _position_path(self._dir, instance_id))


def _state(attrs: dict[str, Any], *, stopped_by_us: bool) -> InstanceState:
    state = attrs.get("State", {})
    if state.get("Running") or state.get("Status") in ("created", "configured", "running", "paused", "restarting"):
        return InstanceState(InstanceStatus.RUNNING)
    code = int(state.get("ExitCode", 0))
    limited = bool(attrs.get("HostConfig", {}).get("Memory"))
    # podman 4.3 (runc, cgroups v1) never sets OOMKilled: a SIGKILL that Runyard did not send is taken as the limit's
    oom = bool(state.get("OOMKilled")) or (limited and code == _SIGKILL_EXIT and not stopped_by_us)
    if 128 < code < 128 + 65:  # the shell convention engines follow: killed by signal (code - 128)
        return InstanceState(InstanceStatus.KILLED, signal=code - 128, oom_killed=oom)
    return InstanceState(InstanceStatus.EXITED, exit_code=code, oom_killed=oom)


def _registry(image: str) -> str:
    first, _, rest = image.partition("/")
    return first if rest and ("." in first or ":" in first or first == "localhost") else "docker.io"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _position_path(state_dir: Path, instance_id: str) -> Path:
    return state_dir / f"{instance_id}.log-position.json"


# Log following: one thread per container for the whole process, whichever backend object asked first.


@dataclass(frozen=True, slots=True)
class _Position:
    """The timestamp of the last line written and how many lines with exactly that timestamp were written."""

    timestamp: tuple[int, int]  # (seconds since the epoch, nanoseconds)
    count: int


def _parse_timestamp(text: str) -> tuple[int, int]:
    """RFC 3339 with optional fraction (podman gives seconds, dockerd nanoseconds) -> (epoch seconds, ns)."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    seconds = int(datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC).timestamp())
    return seconds, int((fraction + "000000000")[:9]) if fraction else 0


class _Follower(threading.Thread):
    def __init__(self, container: Container, log_path: Path, position_path: Path) -> None:
        super().__init__(name=f"logs-{container.name}", daemon=True)
        self.container = container
        self.log_path = log_path
        self.position_path = position_path
        self._stream: CancellableStream[bytes] | None = None
        self._closed = threading.Event()

    def close(self) -> None:
        """End the stream from another thread (the follower then returns; the container runs on)."""
        self._closed.set()
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()

    def run(self) -> None:
        try:
            self._copy()
        except Exception as exc:  # a thread must not die loudly: the engine went away, or the container did
            _log.debug("log follower of %s ended: %s", self.container.name, exc)

    def _copy(self) -> None:
        resumed = self._load_position()
        # `since` has whole seconds and engines differ on whether it is inclusive: start a second early and skip
        # what was written before, by timestamp and by the count of lines that had the last one.
        skip_before, skip_at = (resumed.timestamp, resumed.count) if resumed else ((0, 0), 0)
        since = resumed.timestamp[0] - 1 if resumed else None
        stream: CancellableStream[bytes] = self.container.logs(
            stream=True, follow=True, stdout=True, stderr=True, timestamps=True, since=since
        )
        self._stream = stream
        if self._closed.is_set():  # closed before the stream existed
            stream.close()
        position = resumed
        pending = b""
        with open(self.log_path, "ab") as log:
            for chunk in stream:
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    stamp, _, text = line.partition(b" ")
                    try:
                        timestamp = _parse_timestamp(stamp.decode())
                    except (ValueError, UnicodeDecodeError):
                        log.write(line + b"\n")  # no timestamp to place it by: keep it rather than lose it
                        continue
                    if timestamp < skip_before:
                        continue
                    if timestamp == skip_before and skip_at > 0:
                        skip_at -= 1
                        continue
                    log.write(text + b"\n")
                    position = _advance(position, timestamp)
                log.flush()
                if position is not None and position != resumed:
                    self._save_position(position)
            if pending:
                log.write(pending.partition(b" ")[2] + b"\n")

    def _load_position(self) -> _Position | None:
        try:
            data = json.loads(self.position_path.read_text())
            return _Position((int(data["seconds"]), int(data["nanos"])), int(data["count"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save_position(self, position: _Position) -> None:
        temporary = self.position_path.with_suffix(".tmp")
        seconds, nanos = position.timestamp
        temporary.write_text(json.dumps({"seconds": seconds, "nanos": nanos, "count": position.count}))
        os.replace(temporary, self.position_path)


def _advance(position: _Position | None, timestamp: tuple[int, int]) -> _Position:
    if position is not None and position.timestamp == timestamp:
        return _Position(timestamp, position.count + 1)
    return _Position(timestamp, 1)


class _Followers:
    def __init__(self) -> None:
        self._threads: dict[str, _Follower] = {}
        self._lock = threading.Lock()

    def ensure(self, container: Container, log_path: Path, position_path: Path) -> None:
        name = container.name or container.id or ""
        with self._lock:
            current = self._threads.get(name)
            if current is not None and current.is_alive():
                return
            follower = _Follower(container, log_path, position_path)
            self._threads[name] = follower
            follower.start()

    def close(self, prefix: str) -> None:
        """Stop following the containers whose names start with `prefix` (one Runyard's)."""
        with self._lock:
            names = [name for name in self._threads if name.startswith(prefix)]
            followers = [self._threads.pop(name) for name in names]
        for follower in followers:
            follower.close()
        for follower in followers:
            follower.join(_FOLLOWER_DRAIN_S)

    def drain(self, name: str, timeout: float) -> None:
        """Wait for the follower of a stopped container to write its last lines."""
        with self._lock:
            follower = self._threads.pop(name, None)
        if follower is not None:
            follower.join(timeout)


_FOLLOWERS = _Followers()
