"""Contract, process backend only: what test_runtime_backends.py cannot check on every backend (process groups,
cgroups v1 and rlimit mechanics, the pid records that survive a restart), with a Python test app.

Each test drives its backend with `asyncio.run`; the `backend_factory` fixture stops every instance afterwards,
even when a test fails, so no app outlives the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runyard.runtime.base import (
    Instance,
    InstanceNotFound,
    InstanceSpec,
    InstanceStatus,
    LimitMechanism,
    RuntimeBackend,
    RuntimeBackendError,
)
from runyard.runtime.process import ProcessBackend
from tests.contract.runtime_support import SECRET_NAME, BackendFactory, ended, eventually, fields, run

# The app under test: answers with its environment, logs to both streams, leaves a marker on SIGTERM.
APP = """
import http.server, json, os, signal, subprocess, sys

mode = sys.argv[1]

def on_term(signum, frame):
    with open(os.environ["MARKER"], "w") as marker:
        marker.write("SIGTERM")
    os._exit(0)

signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore-term" else on_term)
if mode == "spawn-child":
    child = subprocess.Popen([sys.executable, "-c", CHILD])
    with open(os.environ["MARKER"] + ".child", "w") as pid_file:
        pid_file.write(str(child.pid))

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(dict(os.environ)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
print("app listening", flush=True)
print("app stderr line", file=sys.stderr, flush=True)
server.serve_forever()
""".replace("CHILD", repr("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"))

HOG = """
print("hog started", flush=True)
chunks = [b"x" * (1 << 20) for _ in range(1024)]
print("hog survived", flush=True)
"""


async def get_env(instance: Instance) -> dict[str, str]:
    async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:

        async def attempt() -> dict[str, str] | None:
            try:
                response = await client.get(f"http://{instance.address}/")
            except httpx.TransportError:
                return None
            return dict(response.json())

        return await eventually(attempt, f"{instance.instance_id} to answer on {instance.address}")


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


class Apps:
    """Writes the test apps into an artifact directory and makes specs for them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "artifact"
        self.dir.mkdir()
        (self.dir / "app.py").write_text(APP)
        (self.dir / "hog.py").write_text(HOG)

    def spec(self, mode: str = "serve", *, command: str | None = None, memory_mb: int = 512) -> InstanceSpec:
        instance_id = f"i-{mode}-{uuid.uuid4().hex[:12]}"
        return InstanceSpec(
            instance_id=instance_id,
            working_dir=self.dir,
            command=command or f"{shlex.quote(sys.executable)} app.py {mode}",
            env={"GREETING": "hello", "MARKER": str(self.marker(instance_id))},
            port_env_names=("PORT", "MY_APP_PORT"),
            cpu_units=1024,
            memory_mb=memory_mb,
            log_path=self.root / "logs" / f"{instance_id}.log",
        )

    def marker(self, instance_id: str) -> Path:
        return self.root / f"{instance_id}.marker"


@pytest.fixture
def backend_factory(tmp_path: Path) -> Iterator[BackendFactory]:
    """Makes backends that share one state (a new one stands for Runyard after a restart)."""
    state_dir = tmp_path / "state"
    made: list[RuntimeBackend] = []

    def factory() -> RuntimeBackend:
        made.append(ProcessBackend(state_dir))
        return made[-1]

    yield factory

    async def stop_all() -> None:
        for backend in made:
            for instance in await backend.instances():
                await backend.stop(instance.instance_id, grace=0.5)

    try:
        run(stop_all())
    finally:  # only records the backend failed to clean up are left
        for record in state_dir.glob("*.json"):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(json.loads(record.read_text())["pgid"], signal.SIGKILL)


@pytest.fixture
def backend(backend_factory: BackendFactory) -> RuntimeBackend:
    return backend_factory()


@pytest.fixture
def apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Apps:
    monkeypatch.setenv(SECRET_NAME, "must not leak")
    return Apps(tmp_path)


def test_processes_the_app_spawned_are_stopped_too(backend: RuntimeBackend, apps: Apps) -> None:
    async def scenario() -> None:
        spec = apps.spec("spawn-child")
        instance = await backend.start(spec)
        await get_env(instance)
        child_pid = int(Path(f"{apps.marker(spec.instance_id)}.child").read_text())
        assert pid_alive(child_pid)
        await backend.stop(instance.instance_id, grace=0.5)  # the app exits at once; its child ignores SIGTERM
        assert not pid_alive(child_pid)

    run(scenario())


def test_a_missing_working_directory_is_refused(backend: RuntimeBackend, apps: Apps) -> None:
    async def scenario() -> None:
        with pytest.raises(RuntimeBackendError):
            await backend.start(InstanceSpec(**{**fields(apps.spec()), "working_dir": apps.root / "missing"}))
        assert await backend.instances() == []

    run(scenario())


def test_process_cgroup_limits_are_set_and_removed(tmp_path: Path, apps: Apps) -> None:
    async def scenario() -> None:
        backend = ProcessBackend(tmp_path / "state")
        spec = apps.spec(memory_mb=300)
        memory = Path("/sys/fs/cgroup/memory/runyard") / spec.instance_id
        cpu = Path("/sys/fs/cgroup/cpu/runyard") / spec.instance_id
        instance = await backend.start(spec)
        try:
            if instance.limits is not LimitMechanism.CGROUP_V1:
                pytest.skip("cgroups v1 are not writable here")
            assert (memory / "memory.limit_in_bytes").read_text().strip() == str(300 * 1024 * 1024)
            assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "100000"
            assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
        finally:
            await backend.stop(spec.instance_id, grace=2)
        assert not memory.exists() and not cpu.exists()

    run(scenario())


def test_process_rlimit_fallback_stops_a_memory_hog(tmp_path: Path, apps: Apps) -> None:
    async def scenario() -> None:
        backend = ProcessBackend(tmp_path / "state", cgroup_root=None)
        spec = apps.spec("hog", command=f"{shlex.quote(sys.executable)} hog.py", memory_mb=256)
        try:
            instance = await backend.start(spec)
            assert instance.limits is LimitMechanism.RLIMIT
            state = await ended(backend, spec.instance_id)
        finally:
            await backend.stop(spec.instance_id, grace=1)
        log = spec.log_path.read_text()
        assert "hog started" in log and "MemoryError" in log and "hog survived" not in log
        assert state.status is InstanceStatus.EXITED and state.exit_code not in (None, 0)

    run(scenario())


def test_process_a_recycled_pid_is_not_adopted(tmp_path: Path, apps: Apps) -> None:
    state_dir = tmp_path / "state"
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:

        async def scenario() -> None:
            backend = ProcessBackend(state_dir)
            spec = apps.spec()
            await backend.start(spec)
            record = json.loads((state_dir / f"{spec.instance_id}.json").read_text())
            await backend.stop(spec.instance_id, grace=2)
            # A record whose pid now belongs to another process: same number, different start time.
            stat = Path(f"/proc/{stranger.pid}/stat").read_text()
            ticks = int(stat[stat.rindex(")") + 2 :].split()[19]) + 1
            ghost = {
                **record,
                "instance_id": "i-ghost",
                "pid": stranger.pid,
                "pgid": stranger.pid,
                "start_ticks": ticks,
            }
            (state_dir / "i-ghost.json").write_text(json.dumps(ghost))
            assert await ProcessBackend(state_dir).instances() == []
            assert not (state_dir / "i-ghost.json").exists()
            assert stranger.poll() is None, "the stranger must not be signalled"

        run(scenario())
    finally:
        stranger.kill()
        stranger.wait()


BUSY = """
import time
ballast = bytearray(64 << 20)  # touched below, so it is resident
for i in range(0, len(ballast), 4096):
    ballast[i] = 1
deadline = time.process_time() + 0.6
while time.process_time() < deadline:
    pass
print("busy done", flush=True)
time.sleep(60)
"""


def test_usage_without_cgroups_reports_cpu_time_and_resident_memory(
    backend_factory: BackendFactory, apps: Apps, tmp_path: Path
) -> None:
    """(With cgroups: test_runtime_backends.py.) Without, memory is the processes' resident set."""
    (apps.dir / "busy.py").write_text(BUSY)
    backend_factory()  # the same state directory: the fixture cleans up after the backends made here too

    def make() -> RuntimeBackend:
        return ProcessBackend(tmp_path / "state", cgroup_root=None)

    backend = make()
    spec = apps.spec("busy", command=f"{shlex.quote(sys.executable)} busy.py")

    async def scenario() -> None:
        instance = await backend.start(spec)

        async def done() -> bool | None:
            return True if "busy done" in (await backend.logs(spec.instance_id)).lines else None

        await eventually(done, "the app to burn its CPU", timeout=20)
        usage = await backend.usage(spec.instance_id)
        assert usage.cpu_seconds >= 0.5
        assert 64 << 20 <= usage.memory_bytes < spec.memory_mb << 20
        assert instance.limits is LimitMechanism.RLIMIT
        assert usage.memory_limit_bytes is None
        # Runyard restarted: the re-adopted instance is measured the same way, and its CPU time never goes back.
        again = await make().usage(spec.instance_id)
        assert again.cpu_seconds >= usage.cpu_seconds and again.memory_bytes >= 64 << 20
        await backend.stop(spec.instance_id, grace=0.5)
        with pytest.raises(InstanceNotFound):
            await backend.usage(spec.instance_id)
        with pytest.raises(InstanceNotFound):
            await backend.usage("never-started")

    run(scenario())
