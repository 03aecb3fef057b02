"""Contract: what every runtime backend promises, run against the process backend and the OCI backend.

The app under test is one shell script (busybox httpd serving its environment through CGI), run from an
artifact directory by the process backend and from an image (imported offline from busybox-static) by the OCI
backend, which talks to a podman API service this module starts (or to the engine at
RUNYARD_TEST_CONTAINER_API, e.g. `unix:///path/docker.sock` of a dockerd). Each test drives its backend with
`asyncio.run`; the `backend_factory` fixture stops every instance afterwards, even when a test fails.
Process-only mechanics (cgroups, rlimits, pid records) are in test_runtime_process.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from docker.errors import DockerException

from runyard.runtime.base import (
    Instance,
    InstanceNotFound,
    InstanceSpec,
    InstanceState,
    InstanceStatus,
    InstanceUsage,
    LimitMechanism,
    RuntimeBackend,
    RuntimeBackendError,
)
from runyard.runtime.oci import LABEL_OWNER, OciBackend
from runyard.runtime.podman_service import ContainerApi, PodmanService
from runyard.runtime.process import ProcessBackend
from tests.contract.runtime_support import (
    SECRET_NAME,
    BackendFactory,
    ended,
    eventually,
    fields,
    refused,
    run,
)
from tests.oci_support import busybox_image, podman_usable
from tests.support import free_port

# Serves its environment, logs to both streams, says so on SIGTERM (or ignores it).
APP_SH = """#!/bin/sh
mode="${1:-serve}"
if [ "$mode" = ignore-term ]; then
    trap '' TERM
else
    trap 'echo "app got SIGTERM"; kill "$server" 2>/dev/null; exit 0' TERM
fi
busybox httpd -f -vv -p "$BIND:$PORT" -h www &
server=$!
echo "app listening"
echo "app stderr line" >&2
wait "$server"
"""
ENV_CGI = '#!/bin/sh\necho "Content-Type: text/plain"\necho\nenv\n'
FILES = {"app.sh": APP_SH, "www/cgi-bin/env": ENV_CGI}
CONTAINER_PORT = 9090  # not the default 8080: the spec's port must be the one used

# Allocates past a 64 MB limit: tail keeps its whole newline-free input.
HOG = "echo hog started; busybox head -c 209715200 /dev/zero | busybox tail >/dev/null && echo hog survived"
# Burns CPU, then holds about 80 MB until it is stopped.
BUSY = (
    "busybox head -c 400000000 /dev/zero | busybox md5sum >/dev/null; echo busy done; "
    "{ busybox head -c 83886080 /dev/zero; busybox sleep 60; } | busybox tail >/dev/null"
)


class Apps:
    """Makes specs of the test app for one kind of backend."""

    def __init__(self, kind: str, root: Path, image: str | None) -> None:
        self.kind = kind
        self.root = root
        self.image = image
        self.dir = root / "artifact"
        for name, text in FILES.items():
            path = self.dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o755)

    def spec(self, mode: str = "serve", *, command: str | None = None, memory_mb: int = 512) -> InstanceSpec:
        instance_id = f"i-{mode}-{uuid.uuid4().hex[:12]}"
        oci = self.kind == "oci"
        if command is None:  # the image's own CMD serves; an explicit command overrides it
            command = "" if oci and mode == "serve" else f"sh app.sh {mode}"
        return InstanceSpec(
            instance_id=instance_id,
            working_dir=self.dir,
            command=command,
            env={"GREETING": "hello", "BIND": "0.0.0.0" if oci else "127.0.0.1"},
            port_env_names=("PORT", "MY_APP_PORT"),
            cpu_units=1024,
            memory_mb=memory_mb,
            log_path=self.root / "logs" / f"{instance_id}.log",
            image=self.image if oci else None,
            container_port=CONTAINER_PORT if oci else None,
        )

    def inner_port(self, instance: Instance) -> int:
        """The port the app is told to listen on."""
        return CONTAINER_PORT if self.kind == "oci" else instance.port

    def unrunnable(self) -> InstanceSpec:
        """A spec this kind of backend must refuse: an image for processes, no image for containers."""
        spec = fields(self.spec())
        if self.kind == "oci":
            return InstanceSpec(**{**spec, "image": None, "command": "sh app.sh serve"})
        return InstanceSpec(**{**spec, "image": "localhost/anything:1"})


@dataclass(frozen=True)
class Engine:
    api: ContainerApi
    base_url: str
    image: str  # the test app's
    podman_env: dict[str, str]  # for the podman commands of the tests (their containers.conf)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """podman's API service, started here as `runyard serve --runtime oci` does; or the Docker-compatible API at
    RUNYARD_TEST_CONTAINER_API (e.g. a dockerd), with the test image loaded into it."""
    if reason := podman_usable():  # the test image is made with podman either way
        pytest.skip(reason)
    service = PodmanService(tmp_path_factory.mktemp("podman"))
    service.write_conf()
    endpoint = os.environ.get("RUNYARD_TEST_CONTAINER_API")
    api = ContainerApi(endpoint) if endpoint else ContainerApi(service=service)
    try:
        api.client()
    except RuntimeBackendError as exc:
        pytest.skip(f"no container engine can run here: {exc.message}")
    try:
        image = busybox_image(
            "runyard-test/app",
            {f"app/{name}": text for name, text in FILES.items()},
            cmd=["/bin/sh", "app.sh", "serve"],
            workdir="/app",
            podman_env=service.environment(),
        )
        if endpoint:
            archive = tmp_path_factory.mktemp("image") / "app.tar"
            save = ["podman", "save", "--format", "docker-archive", "-o", str(archive), image]
            subprocess.run(save, env=service.environment(), check=True, capture_output=True, timeout=120)
            api.client().images.load(archive.read_bytes())
        yield Engine(api, endpoint or service.base_url, image, service.environment())
    finally:
        api.close()


@pytest.fixture(params=["process", "oci"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def apps(kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Apps:
    monkeypatch.setenv(SECRET_NAME, "must not leak")
    image = request.getfixturevalue("engine").image if kind == "oci" else None
    return Apps(kind, tmp_path, image)


@pytest.fixture
def backend_factory(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendFactory]:
    """Makes backends that share one state (a new one stands for Runyard after a restart)."""
    state_dir = tmp_path / "state"
    made: list[RuntimeBackend] = []
    api: ContainerApi | None = request.getfixturevalue("engine").api if kind == "oci" else None
    owner = str(tmp_path)

    def factory() -> RuntimeBackend:
        made.append(ProcessBackend(state_dir) if api is None else OciBackend(api, state_dir, owner=owner))
        return made[-1]

    yield factory

    async def stop_all() -> None:
        for backend in made:
            for instance in await backend.instances():
                await backend.stop(instance.instance_id, grace=0.5)

    try:
        run(stop_all())
    finally:  # last resort: whatever the backend failed to clean up
        if api is None:
            for record in state_dir.glob("*.json"):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(json.loads(record.read_text())["pgid"], signal.SIGKILL)
        else:
            with contextlib.suppress(DockerException):
                for container in api.client().containers.list(all=True, filters={"label": f"{LABEL_OWNER}={owner}"}):
                    container.remove(force=True)


@pytest.fixture
def backend(backend_factory: BackendFactory) -> RuntimeBackend:
    return backend_factory()


async def get_env(instance: Instance) -> dict[str, str]:
    async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:

        async def attempt() -> dict[str, str] | None:
            try:
                response = await client.get(f"http://{instance.address}/cgi-bin/env")
            except httpx.TransportError:
                return None
            if response.status_code != 200:
                return None
            return dict(line.split("=", 1) for line in response.text.splitlines() if "=" in line)

        return await eventually(attempt, f"{instance.instance_id} to answer on {instance.address}", timeout=20)


async def logged(backend: RuntimeBackend, instance_id: str, text: str) -> tuple[str, ...]:
    async def check() -> tuple[str, ...] | None:
        lines = (await backend.logs(instance_id)).lines
        return lines if any(text in line for line in lines) else None

    return await eventually(check, f"{text!r} in the log of {instance_id}")


def test_app_answers_on_the_port_with_an_explicit_environment(backend: RuntimeBackend, apps: Apps) -> None:
    async def scenario() -> None:
        instance = await backend.start(apps.spec())
        assert instance.host == "127.0.0.1"
        env = await get_env(instance)
        assert instance.address == f"{instance.host}:{instance.port}"
        assert env["PORT"] == env["MY_APP_PORT"] == str(apps.inner_port(instance))
        assert env["GREETING"] == "hello"
        assert SECRET_NAME not in env
        assert (await backend.inspect(instance.instance_id)).running
        assert instance.instance_id in {i.instance_id for i in await backend.instances()}

    run(scenario())


def test_stdout_and_stderr_land_in_the_log(backend: RuntimeBackend, apps: Apps) -> None:
    async def scenario() -> None:
        spec = apps.spec()
        instance = await backend.start(spec)
        await get_env(instance)
        lines = await logged(backend, instance.instance_id, "/cgi-bin/env")  # httpd -vv logs each request
        assert "app listening" in lines
        assert "app stderr line" in lines
        text = spec.log_path.read_text()
        assert "app listening" in text and "/cgi-bin/env" in text
        chunk = await backend.logs(instance.instance_id)
        assert (await backend.logs(instance.instance_id, offset=chunk.next_offset)).lines == ()

    run(scenario())


def test_stop_sends_sigterm_and_frees_the_port(backend: RuntimeBackend, apps: Apps) -> None:
    async def scenario() -> None:
        spec = apps.spec()
        instance = await backend.start(spec)
        await get_env(instance)
        began = time.monotonic()
        await backend.stop(instance.instance_id, grace=10)
        assert time.monotonic() - began < 5, "a graceful app must not wait out the grace period"
        assert "app got SIGTERM" in spec.log_path.read_text()
        assert refused(instance)
        assert await backend.inspect(instance.instance_id) == InstanceState(InstanceStatus.EXITED, exit_code=0)
        assert instance.instance_id not in {i.instance_id for i in await backend.instances()}
        await backend.stop(instance.instance_id, grace=1)  # stopping again is not an error

    run(scenario())


def test_an_app_ignoring_sigterm_is_killed_after_the_grace_period(backend: RuntimeBackend, apps: Apps) -> None:
    async def scenario() -> None:
        instance = await backend.start(apps.spec("ignore-term"))
        await get_env(instance)
        began = time.monotonic()
        await backend.stop(instance.instance_id, grace=0.5)
        assert time.monotonic() - began >= 0.5
        state = await backend.inspect(instance.instance_id)
        assert state == InstanceState(InstanceStatus.KILLED, signal=signal.SIGKILL)  # not taken for out of memory
        assert refused(instance)

    run(scenario())


def test_a_crashing_command_reports_its_exit_code(backend: RuntimeBackend, apps: Apps) -> None:
    async def scenario() -> None:
        spec = apps.spec("crash", command="echo boom; exit 3")
        await backend.start(spec)
        state = await ended(backend, spec.instance_id, timeout=20)
        assert state == InstanceState(InstanceStatus.EXITED, exit_code=3)
        await logged(backend, spec.instance_id, "boom")
        assert spec.instance_id not in {i.instance_id for i in await backend.instances()}
        assert "boom" in spec.log_path.read_text()
        await backend.stop(spec.instance_id, grace=1)

    run(scenario())


def test_a_new_backend_readopts_running_instances(backend_factory: BackendFactory, apps: Apps) -> None:
    async def scenario() -> None:
        spec = apps.spec()
        instance = await backend_factory().start(spec)
        await get_env(instance)
        restarted = backend_factory()
        assert [i for i in await restarted.instances() if i.instance_id == spec.instance_id] == [instance]
        assert (await restarted.inspect(spec.instance_id)).running
        await restarted.stop(spec.instance_id, grace=5)
        assert spec.log_path.read_text().count("app got SIGTERM") == 1
        assert spec.log_path.read_text().count("app listening") == 1, "a re-adopted log is not written twice"
        assert refused(instance)
        assert await restarted.instances() == []

    run(scenario())


def test_an_app_allocating_past_its_memory_is_killed_for_it(backend: RuntimeBackend, apps: Apps) -> None:
    async def scenario() -> None:
        spec = apps.spec("hog", command=HOG, memory_mb=64)
        instance = await backend.start(spec)
        if instance.limits is LimitMechanism.NONE:
            pytest.skip("this backend could apply no memory limit here (no writable cgroups, no rlimits)")
        state = await ended(backend, spec.instance_id, timeout=30)
        await logged(backend, spec.instance_id, "hog started")
        assert "hog survived" not in spec.log_path.read_text()
        assert state.status is not InstanceStatus.RUNNING and state.exit_code != 0
        if instance.limits in (LimitMechanism.CGROUP_V1, LimitMechanism.CONTAINER):
            assert state.oom_killed, state

    run(scenario())


def test_unknown_and_invalid_instances(backend: RuntimeBackend, apps: Apps) -> None:
    async def scenario() -> None:
        await backend.stop("i-never-started", grace=1)
        with pytest.raises(InstanceNotFound):
            await backend.inspect("i-never-started")
        with pytest.raises(InstanceNotFound):
            await backend.usage("i-never-started")
        with pytest.raises(RuntimeBackendError):
            await backend.start(InstanceSpec(**{**fields(apps.spec()), "instance_id": "../escape"}))
        with pytest.raises(RuntimeBackendError):
            await backend.start(apps.unrunnable())
        assert await backend.instances() == []

    run(scenario())


def test_usage_reports_cpu_time_and_memory(backend_factory: BackendFactory, apps: Apps) -> None:
    backend = backend_factory()
    spec = apps.spec("busy", command=BUSY)

    async def scenario() -> None:
        instance = await backend.start(spec)
        await logged(backend, spec.instance_id, "busy done")

        async def holding() -> InstanceUsage | None:
            usage = await backend.usage(spec.instance_id)
            return usage if usage.memory_bytes >= 64 << 20 else None

        usage = await eventually(holding, "the app to hold its memory", timeout=20)
        assert usage.cpu_seconds >= 0.5
        assert usage.memory_bytes < spec.memory_mb << 20
        limited = instance.limits in (LimitMechanism.CGROUP_V1, LimitMechanism.CONTAINER)
        assert usage.memory_limit_bytes == (spec.memory_mb << 20 if limited else None)
        # Runyard restarted: the re-adopted instance is measured the same way, and its CPU time never goes back.
        again = await backend_factory().usage(spec.instance_id)
        assert again.cpu_seconds >= usage.cpu_seconds and again.memory_bytes >= 64 << 20
        await backend.stop(spec.instance_id, grace=0.5)
        with pytest.raises(InstanceNotFound):
            await backend.usage(spec.instance_id)

    run(scenario())


# OCI only: images that are not there yet.


def test_oci_pulls_an_absent_image_from_a_plain_http_registry(engine: Engine, tmp_path: Path) -> None:
    """A registry on loopback speaks plain HTTP (as Runyard's own does): the backend pulls without TLS."""
    api, image, env = engine.api, engine.image, engine.podman_env
    port = free_port()
    remote = f"127.0.0.1:{port}/contract/app:{uuid.uuid4().hex[:8]}"
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'registry'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    registry = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        subprocess.run(["podman", "tag", image, remote], env=env, check=True)
        deadline = time.monotonic() + 10
        while subprocess.run(
            ["podman", "push", "--tls-verify=false", remote], env=env, capture_output=True, check=False
        ).returncode:
            assert time.monotonic() < deadline, "the registry did not take the push"
            time.sleep(0.2)
        subprocess.run(["podman", "rmi", remote], env=env, check=True, capture_output=True)
        backend = OciBackend(api, tmp_path / "state", owner=str(tmp_path))
        spec = InstanceSpec(**{**fields(Apps("oci", tmp_path, image).spec()), "image": remote})

        async def scenario() -> None:
            instance = await backend.start(spec)
            try:
                assert (await get_env(instance))["GREETING"] == "hello"
            finally:
                await backend.stop(spec.instance_id, grace=1)

        run(scenario())
    finally:
        registry.terminate()
        registry.wait()
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["podman", "rmi", "--force", remote], env=env, check=True, capture_output=True)


def test_oci_logs_resume_after_a_restart_without_repeating_lines(engine: Engine, tmp_path: Path) -> None:
    """A Runyard that stops closes its log streams; the next one resumes where the last line was written."""
    apps = Apps("oci", tmp_path, engine.image)
    spec = apps.spec()
    first_api = ContainerApi(engine.base_url)  # a Runyard of its own: closing it leaves the engine running
    first = OciBackend(first_api, tmp_path / "state", owner=str(tmp_path))
    second_api = ContainerApi(engine.base_url)
    second = OciBackend(second_api, tmp_path / "state", owner=str(tmp_path))

    async def scenario() -> None:
        instance = await first.start(spec)
        await get_env(instance)
        await logged(first, spec.instance_id, "/cgi-bin/env")
        await asyncio.to_thread(first_api.close)  # Runyard stopped; the container runs on
        await get_env(instance)  # logged while no Runyard follows
        assert [i.instance_id for i in await second.instances()] == [spec.instance_id]  # re-adopted
        await get_env(instance)

        async def three_requests() -> str | None:
            text = spec.log_path.read_text()
            return text if text.count("/cgi-bin/env") >= 3 else None

        text = await eventually(three_requests, "the requests after the restart in the log")
        await second.stop(spec.instance_id, grace=5)
        text = spec.log_path.read_text()
        assert text.count("app listening") == 1 and text.count("/cgi-bin/env") == 3, text

    try:
        run(scenario())
    finally:
        with contextlib.suppress(DockerException):
            for container in second_api.client().containers.list(
                all=True, filters={"label": f"{LABEL_OWNER}={tmp_path}"}
            ):
                container.remove(force=True)
        second_api.close()


def test_oci_a_podman_service_that_died_is_started_again(engine: Engine, tmp_path: Path) -> None:
    """Containers outlive podman's service (conmon keeps them); the backend starts the service again."""
    if os.environ.get("RUNYARD_TEST_CONTAINER_API"):
        pytest.skip("about the podman service Runyard starts")
    service = PodmanService(tmp_path / "podman")
    api = ContainerApi(service=service)
    backend = OciBackend(api, tmp_path / "state", owner=str(tmp_path))
    spec = Apps("oci", tmp_path, engine.image).spec()

    async def scenario() -> None:
        instance = await backend.start(spec)
        await get_env(instance)
        os.kill(int((service.directory / "service.pid").read_text()), signal.SIGKILL)

        async def died() -> bool | None:
            return None if service.running else True

        await eventually(died, "the podman service to die")
        assert [i.instance_id for i in await backend.instances()] == [spec.instance_id]
        assert service.running
        await get_env(instance)
        await backend.stop(spec.instance_id, grace=5)
        assert "app got SIGTERM" in spec.log_path.read_text()

    try:
        run(scenario())
    finally:
        with contextlib.suppress(DockerException):
            for container in api.client().containers.list(all=True, filters={"label": f"{LABEL_OWNER}={tmp_path}"}):
                container.remove(force=True)
        api.close()
