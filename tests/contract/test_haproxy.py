"""Contract: the data plane against the real haproxy binary, changed only through its runtime API."""

from __future__ import annotations

import asyncio
import http.server
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runyard.dataplane.haproxy import (
    ACTIVATOR_SERVER,
    DEFAULT_BACKEND,
    HAProxyCommandError,
    HAProxyConfigError,
    HAProxyNotFoundError,
    HAProxyProcess,
    HAProxyRuntime,
    HAProxySettings,
    HAProxyStartError,
    SlotAdmin,
    StatRow,
    read_hosts_map,
)
from tests.support import free_port

if not (shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")):
    pytest.skip("haproxy is not installed (`make deps` installs it)", allow_module_level=True)

POOL = "be_pool_0"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so HAProxy pools its connections to the instances
    timeout = 5  # idle keep-alive handler threads end on their own

    def do_GET(self) -> None:
        assert isinstance(self.server, _Backend)
        body = self.server.name.encode()
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Backend(http.server.ThreadingHTTPServer):
    """A tiny instance on a free loopback port that answers its own name."""

    daemon_threads = True

    def __init__(self, name: str, status: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name, self.status = name, status
        self.port = int(self.socket.getsockname()[1])
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # HAProxy's TCP health checks reset their connections

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, _Backend]]:
    servers: dict[str, _Backend] = {}
    try:
        for name, status in (("a", 200), ("b", 200), ("activator", 503)):
            servers[name] = _Backend(name, status)
        yield servers
    finally:
        for server in servers.values():
            server.close()


def _settings(backends: dict[str, _Backend], http_port: int | None = None) -> HAProxySettings:
    return HAProxySettings(
        http_port=http_port or free_port(),
        activator_port=backends["activator"].port,
        pool_size=4,
        slots_per_backend=4,
        check_interval_ms=100,
        check_fall=2,
    )


@pytest.fixture
def make_plane(tmp_path: Path, backends: dict[str, _Backend]) -> Iterator[Callable[..., HAProxyProcess]]:
    """Starts HAProxy processes under tmp_path; every one is stopped at teardown, even on failure."""
    started: list[HAProxyProcess] = []

    def make(settings: HAProxySettings | None = None, name: str = "haproxy") -> HAProxyProcess:
        process = HAProxyProcess(tmp_path / name, settings=settings or _settings(backends))
        started.append(process)
        asyncio.run(process.start())
        return process

    yield make
    for process in started:
        asyncio.run(process.stop(grace=2.0))


@pytest.fixture
def plane(make_plane: Callable[..., HAProxyProcess]) -> HAProxyProcess:
    return make_plane()


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, timeout=5.0)


async def _get(client: httpx.AsyncClient, plane: HAProxyProcess, host: str) -> tuple[int, str]:
    port = plane.settings.http_port
    response = await client.get(f"http://127.0.0.1:{port}/", headers={"Host": f"{host}:{port}"})
    return response.status_code, response.text


async def _answers(client: httpx.AsyncClient, plane: HAProxyProcess, host: str, count: int = 8) -> set[str]:
    return {(await _get(client, plane, host))[1] for _ in range(count)}


def _row(rows: list[StatRow], pxname: str, svname: str) -> StatRow:
    return next(row for row in rows if row.pxname == pxname and row.svname == svname)


async def _served_by_activator(runtime: HAProxyRuntime, pxname: str) -> int:
    return _row(await runtime.stats(pxname), pxname, ACTIVATOR_SERVER).stot


def test_hosts_route_to_ready_slots_and_nothing_reloads(plane: HAProxyProcess, backends: dict[str, _Backend]) -> None:
    a, b = backends["a"], backends["b"]

    async def scenario() -> None:
        runtime = plane.runtime()
        master, worker = plane.pid, (await runtime.info())["Pid"]
        assert master is not None and plane.pid_path.read_text().strip() == str(master)
        async with _client() as client:
            await runtime.set_host("app.test", POOL)
            await runtime.enable_slot(POOL, 1, "127.0.0.1", a.port, weight=100, maxconn=10)
            assert await _get(client, plane, "App.Test") == (200, "a")  # case and port do not matter
            await runtime.enable_slot(POOL, 2, "127.0.0.1", b.port, weight=100, maxconn=10)
            assert await _answers(client, plane, "app.test", count=12) == {"a", "b"}
            await runtime.drain_slot(POOL, 1)
            assert await _answers(client, plane, "app.test") == {"b"}
            await runtime.disable_slot(POOL, 1)
            assert await _answers(client, plane, "app.test") == {"b"}
            await runtime.disable_slot(POOL, 2)
            assert await _get(client, plane, "app.test") == (503, "activator")
            # It was the pool's backup server that answered, not the default backend.
            assert await _served_by_activator(runtime, POOL) == 1
            assert await _served_by_activator(runtime, DEFAULT_BACKEND) == 0
        assert plane.running and plane.pid == master
        assert (await runtime.info())["Pid"] == worker  # a reload would have forked a new worker

    asyncio.run(scenario())


def test_unknown_and_removed_hosts_reach_the_default_backend(
    plane: HAProxyProcess, backends: dict[str, _Backend]
) -> None:
    async def scenario() -> None:
        runtime = plane.runtime()
        async with _client() as client:
            await runtime.set_host("app.test", POOL)
            await runtime.enable_slot(POOL, 1, "127.0.0.1", backends["a"].port, weight=100, maxconn=0)
            assert await _get(client, plane, "app.test") == (200, "a")
            assert await _get(client, plane, "nobody.test") == (503, "activator")
            assert await _served_by_activator(runtime, DEFAULT_BACKEND) == 1
            await runtime.remove_host("app.test")
            assert await _get(client, plane, "app.test") == (503, "activator")
            assert await _served_by_activator(runtime, DEFAULT_BACKEND) == 2
            await runtime.remove_host("app.test")  # removing twice is not an error
        assert "app.test" not in read_hosts_map(plane.hosts_map)

    asyncio.run(scenario())


def test_stats_and_slot_states_follow_the_traffic(plane: HAProxyProcess, backends: dict[str, _Backend]) -> None:
    a, b = backends["a"], backends["b"]

    async def scenario() -> None:
        runtime = plane.runtime()
        await runtime.set_host("app.test", POOL)
        await runtime.enable_slot(POOL, 1, "127.0.0.1", a.port, weight=100, maxconn=5)
        await runtime.enable_slot(POOL, 2, "127.0.0.1", b.port, weight=100, maxconn=0)
        before = await runtime.stats(POOL)
        async with _client() as client:
            assert await _answers(client, plane, "app.test", count=10) == {"a", "b"}
        # Counters are updated when each stream ends, which can be just after the client has its answer.
        for _ in range(50):
            after = await runtime.stats()
            used = [_row(after, POOL, f"inst{slot}").stot - _row(before, POOL, f"inst{slot}").stot for slot in (1, 2)]
            if sum(used) >= 10 and _row(after, POOL, "BACKEND").hrsp_2xx >= 10:
                break
            await asyncio.sleep(0.05)
        assert all(count > 0 for count in used) and sum(used) == 10
        assert _row(after, POOL, "BACKEND").hrsp_2xx == 10
        assert _row(after, "fe_http", "FRONTEND").req_tot >= 10

        slot1, slot2, slot3, _ = await runtime.slot_states(POOL)
        assert (slot1.admin, slot1.up, slot1.address, slot1.port, slot1.stats.slim) == (
            SlotAdmin.READY,
            True,
            "127.0.0.1",
            a.port,
            5,
        )
        assert slot2.stats.slim is None and slot2.port == b.port and slot2.stats.stot == used[1]
        assert (slot3.admin, slot3.up) == (SlotAdmin.MAINT, False)
        await runtime.set_slot_maxconn(POOL, 2, 7)
        await runtime.drain_slot(POOL, 1)
        slot1, slot2, *_ = await runtime.slot_states(POOL)
        assert (slot1.admin, slot2.stats.slim) == (SlotAdmin.DRAIN, 7)
        await runtime.disable_slot(POOL, 1)
        assert (await runtime.slot_states(POOL))[0].admin == SlotAdmin.MAINT

    asyncio.run(scenario())


def test_a_reused_slot_reaches_its_new_instance(plane: HAProxyProcess, backends: dict[str, _Backend]) -> None:
    async def scenario() -> None:
        runtime = plane.runtime()
        await runtime.set_host("app.test", POOL)
        async with _client() as client:
            await runtime.enable_slot(POOL, 1, "127.0.0.1", backends["a"].port, weight=100, maxconn=0)
            assert await _answers(client, plane, "app.test", count=3) == {"a"}  # leaves pooled connections
            await runtime.disable_slot(POOL, 1)
            await runtime.enable_slot(POOL, 1, "127.0.0.1", backends["b"].port, weight=100, maxconn=0)
            assert await _answers(client, plane, "app.test") == {"b"}

    asyncio.run(scenario())


def test_health_takes_a_dead_slot_out_of_service(plane: HAProxyProcess, backends: dict[str, _Backend]) -> None:
    async def scenario() -> None:
        runtime = plane.runtime()
        await runtime.set_host("app.test", POOL)
        async with _client() as client:
            # HAProxy's own TCP check: nothing listens on the port, so the slot goes down.
            await runtime.enable_slot(POOL, 1, "127.0.0.1", free_port(), weight=100, maxconn=0)
            deadline = time.monotonic() + 5
            for _ in range(100):
                if not (await runtime.slot_states(POOL))[0].up or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert not (await runtime.slot_states(POOL))[0].up
            assert await _get(client, plane, "app.test") == (503, "activator")
            await runtime.disable_slot(POOL, 1)
            # Health driven from outside HAProxy (checks disabled on the slot).
            await runtime.enable_slot(POOL, 2, "127.0.0.1", backends["a"].port, weight=1, maxconn=0, health_check=False)
            assert await _get(client, plane, "app.test") == (200, "a")
            await runtime.set_slot_health(POOL, 2, up=False)
            assert await _get(client, plane, "app.test") == (503, "activator")
            await runtime.set_slot_health(POOL, 2, up=True)
            assert await _get(client, plane, "app.test") == (200, "a")

    asyncio.run(scenario())


def test_bad_commands_raise_with_haproxy_text(plane: HAProxyProcess) -> None:
    async def scenario() -> None:
        runtime = plane.runtime()
        with pytest.raises(HAProxyCommandError) as unknown:
            await runtime.execute("frobnicate everything")
        assert unknown.value.message.startswith("Unknown command")
        with pytest.raises(HAProxyCommandError, match=r"No such server\."):
            await runtime.enable_slot(POOL, 99, "127.0.0.1", 8080, weight=1, maxconn=1)
        with pytest.raises(HAProxyCommandError, match="No such backend"):
            await runtime.drain_slot("be_missing", 1)
        # Input that would smuggle a second command never reaches the socket, and changes nothing.
        with pytest.raises(ValueError, match="host"):
            await runtime.set_host("app.test;show info", POOL)
        with pytest.raises(ValueError, match="single line"):
            await runtime.execute("show info\nshow stat")
        assert read_hosts_map(plane.hosts_map) == {}
        assert (await runtime.info())["Name"] == "HAProxy"

    asyncio.run(scenario())


def test_routes_survive_a_restart_through_the_map_file(
    make_plane: Callable[..., HAProxyProcess], backends: dict[str, _Backend]
) -> None:
    first = make_plane()

    async def before_restart() -> int | None:
        runtime = first.runtime()
        await runtime.set_host("app.test", "be_pool_1")
        await runtime.set_host("other.test", POOL)
        await runtime.set_host("app.test", POOL)  # an update replaces the entry, it does not add one
        await runtime.enable_slot(POOL, 1, "127.0.0.1", backends["a"].port, weight=100, maxconn=0)
        pid = first.pid
        await first.stop()
        return pid

    old_pid = asyncio.run(before_restart())
    assert old_pid is not None and not first.running
    with pytest.raises(ProcessLookupError):
        os.kill(old_pid, 0)
    assert read_hosts_map(first.hosts_map) == {"app.test": POOL, "other.test": POOL}

    second = make_plane(first.settings)  # same directory, same port

    async def after_restart() -> None:
        runtime = second.runtime()
        async with _client() as client:
            # Routed to the pool at once; its slots are runtime state, so the backup answers until re-enabled.
            assert await _get(client, second, "app.test") == (503, "activator")
            assert await _served_by_activator(runtime, POOL) == 1
            await runtime.enable_slot(POOL, 1, "127.0.0.1", backends["a"].port, weight=100, maxconn=0)
            assert await _get(client, second, "app.test") == (200, "a")

    asyncio.run(after_restart())


def test_check_config_returns_haproxy_message(tmp_path: Path, backends: dict[str, _Backend]) -> None:
    process = HAProxyProcess(tmp_path, settings=HAProxySettings(http_port=free_port(), activator_port=1))
    process.write_files()  # the default pool (64 backends of 32 slots) is a valid configuration
    asyncio.run(process.check_config())
    with process.config_path.open("a") as config:
        config.write("\nbackend be_broken\n    frobnicate-keyword 1\n")
    with pytest.raises(HAProxyConfigError, match="frobnicate-keyword"):
        asyncio.run(process.check_config())


def test_start_failure_reports_haproxy_output(tmp_path: Path, backends: dict[str, _Backend]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = HAProxyProcess(tmp_path, settings=_settings(backends, http_port=taken.getsockname()[1]))
        with pytest.raises(HAProxyStartError, match="cannot bind"):
            asyncio.run(process.start())
    assert not process.running


def test_missing_binary_is_named(tmp_path: Path, backends: dict[str, _Backend]) -> None:
    process = HAProxyProcess(tmp_path, "runyard-no-such-haproxy", settings=_settings(backends))
    with pytest.raises(HAProxyNotFoundError, match=r"'runyard-no-such-haproxy'.*make deps"):
        asyncio.run(process.start())
    assert not process.running and not process.config_path.exists()


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5

    def do_GET(self) -> None:
        time.sleep(0.6)
        self.send_response(200)
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"slow")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_queue_is_bounded_and_concurrency_is_visible(
    make_plane: Callable[..., HAProxyProcess], backends: dict[str, _Backend]
) -> None:
    """MaxConcurrency 1 and room for 2 waiting: of 6 simultaneous requests 3 are served, 3 refused at once."""
    slow = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    slow.daemon_threads = True
    threading.Thread(target=slow.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        settings = HAProxySettings(
            http_port=free_port(),
            activator_port=backends["activator"].port,
            pool_size=1,
            slots_per_backend=2,
            max_queue=2,
        )
        plane = make_plane(settings)

        async def scenario() -> None:
            runtime = plane.runtime()
            await runtime.set_host("slow.test", POOL)
            await runtime.enable_slot(POOL, 1, "127.0.0.1", int(slow.server_address[1]), weight=100, maxconn=1)
            async with _client() as client:
                first = asyncio.ensure_future(_get(client, plane, "slow.test"))
                await asyncio.sleep(0.1)
                queued = [asyncio.ensure_future(_get(client, plane, "slow.test")) for _ in range(2)]
                await asyncio.sleep(0.1)
                rows = await runtime.stats(POOL)
                # What the autoscaler reads: in flight on the slot, waiting in the backend.
                assert _row(rows, POOL, "inst1").scur == 1
                assert _row(rows, POOL, "BACKEND").qcur == 2
                refused = [await _get(client, plane, "slow.test") for _ in range(3)]
                assert refused == [(429, "Too many requests are waiting for this service. Try again shortly.")] * 3
                served = await asyncio.gather(first, *queued)
                assert served == [(200, "slow")] * 3

        asyncio.run(scenario())
    finally:
        slow.shutdown()
        slow.server_close()


def test_a_drained_slot_takes_requests_again_once_activated(
    plane: HAProxyProcess, backends: dict[str, _Backend]
) -> None:
    a, b = backends["a"], backends["b"]

    async def scenario() -> None:
        runtime = plane.runtime()
        await runtime.set_host("standby.test", POOL)
        await runtime.enable_slot(POOL, 1, "127.0.0.1", a.port, weight=100, maxconn=0)
        await runtime.enable_slot(POOL, 2, "127.0.0.1", b.port, weight=100, maxconn=0)
        await runtime.drain_slot(POOL, 2)  # standby: running, not serving
        async with _client() as client:
            assert await _answers(client, plane, "standby.test") == {"a"}
            await runtime.activate_slot(POOL, 2)
            assert (await runtime.slot_states(POOL))[1].admin == SlotAdmin.READY
            assert await _answers(client, plane, "standby.test") == {"a", "b"}

    asyncio.run(scenario())
