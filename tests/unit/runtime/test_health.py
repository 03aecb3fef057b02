"""Health probes, start-up waits and the monitor against real listeners on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from runyard.runtime.health import USER_AGENT, HealthCheck, HealthMonitor, ProbeResult, probe, wait_ready
from tests.support import free_port

HOST = "127.0.0.1"


@dataclass
class _Responder:
    """A tiny HTTP/1.1 server: answers each request with the next scripted status, then with `status`."""

    status: int = 200
    script: list[int] = field(default_factory=list)
    delay: float = 0.0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (request line, headers)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            line, *header_lines = head.split("\r\n")
            headers = dict(h.split(": ", 1) for h in header_lines if h)
            self.requests.append((line, {k.lower(): v for k, v in headers.items()}))
            status = self.script.pop(0) if self.script else self.status
            await asyncio.sleep(self.delay)
            location = "Location: /elsewhere\r\n" if 300 <= status < 400 else ""
            writer.write(f"HTTP/1.1 {status} X\r\n{location}Content-Length: 2\r\nConnection: close\r\n\r\nhi".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # TCP probes connect and leave
        finally:
            writer.close()


@asynccontextmanager
async def _serving(responder: _Responder) -> AsyncIterator[_Responder]:
    server = await asyncio.start_server(responder.handle, HOST, 0)
    responder.port = server.sockets[0].getsockname()[1]
    try:
        yield responder
    finally:
        server.close()
        await server.wait_closed()


def _http(
    path: str = "/health",
    *,
    interval: float = 10.0,
    timeout: float = 5.0,
    healthy_threshold: int = 1,
    unhealthy_threshold: int = 5,
) -> HealthCheck:
    return HealthCheck("HTTP", path, interval, timeout, healthy_threshold, unhealthy_threshold)


async def _always() -> bool:
    return True


def test_tcp_probe_needs_only_an_open_port() -> None:
    async def scenario() -> None:
        async with _serving(_Responder()) as server:
            assert await probe(HOST, server.port, HealthCheck()) == ProbeResult(True, "TCP connection opened")
            assert server.requests == []  # a TCP check sends nothing
        assert await probe(HOST, free_port(), HealthCheck()) == ProbeResult(False, "connection refused")

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, ProbeResult(True, "HTTP 200")),
        (204, ProbeResult(True, "HTTP 204")),
        (302, ProbeResult(True, "HTTP 302")),
        (404, ProbeResult(False, "HTTP 404 from /health")),
        (500, ProbeResult(False, "HTTP 500 from /health")),
    ],
)
def test_http_probe_judges_the_status(status: int, expected: ProbeResult) -> None:
    async def scenario() -> None:
        async with _serving(_Responder(status=status)) as server:
            assert await probe(HOST, server.port, _http()) == expected
            # One GET of the configured path, redirects never followed, and a recognisable User-Agent.
            [(line, headers)] = server.requests
            assert line == "GET /health HTTP/1.1"
            assert headers["user-agent"] == USER_AGENT
            assert headers["host"] == f"{HOST}:{server.port}"

    asyncio.run(scenario())


def test_http_probe_of_a_closed_port_or_a_slow_app_fails_in_time() -> None:
    async def scenario() -> None:
        assert await probe(HOST, free_port(), _http()) == ProbeResult(False, "connection refused")
        async with _serving(_Responder(delay=5)) as server:
            started = time.monotonic()
            assert await probe(HOST, server.port, _http(timeout=0.2)) == ProbeResult(False, "timed out after 0.2 s")
            assert time.monotonic() - started < 1.5

    asyncio.run(scenario())


def test_http_probe_reports_a_connection_closed_without_an_answer() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(hang_up, HOST, 0)
        try:
            result = await probe(HOST, server.sockets[0].getsockname()[1], _http())
        finally:
            server.close()
            await server.wait_closed()
        assert not result.ok and result.detail  # httpx's words; the point is it is a failure with a reason

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"protocol": "UDP"}, "protocol"),
        ({"path": "health"}, "path"),
        ({"path": "/a b"}, "path"),
        ({"path": "/a\r\nX: y"}, "path"),
        ({"interval": 0}, "interval"),
        ({"timeout": -1}, "timeout"),
        ({"healthy_threshold": 0}, "threshold"),
        ({"unhealthy_threshold": 0}, "threshold"),
    ],
)
def test_health_check_rejects_unusable_settings(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HealthCheck(**overrides)  # type: ignore[arg-type]


def test_wait_ready_needs_consecutive_successes() -> None:
    async def scenario() -> None:
        async with _serving(_Responder(script=[500, 200, 503, 200, 200])) as server:
            check = _http(healthy_threshold=3)
            result = await wait_ready(HOST, server.port, check, deadline=10, alive=_always, poll=0.01)
            assert result == ProbeResult(True, "HTTP 200")
            assert len(server.requests) == 6  # 500, 200, 503 reset the count; 200, 200, 200

    asyncio.run(scenario())


def test_wait_ready_gives_up_at_the_deadline_with_the_last_failure() -> None:
    async def scenario() -> None:
        started = time.monotonic()
        result = await wait_ready(HOST, free_port(), HealthCheck(), deadline=0.3, alive=_always, poll=0.02)
        assert result == ProbeResult(False, "connection refused")
        assert 0.3 <= time.monotonic() - started < 1.5
        # A probe never runs past the deadline, even with a long configured timeout.
        async with _serving(_Responder(delay=5)) as server:
            started = time.monotonic()
            result = await wait_ready(HOST, server.port, _http(timeout=5), deadline=0.3, alive=_always)
            assert not result.ok and result.detail.startswith("timed out after")
            assert time.monotonic() - started < 1.5

    asyncio.run(scenario())


def test_wait_ready_stops_at_once_when_the_process_exits() -> None:
    calls = 0

    async def alive() -> bool:
        nonlocal calls
        calls += 1
        return calls < 3

    async def scenario() -> None:
        started = time.monotonic()
        result = await wait_ready(HOST, free_port(), HealthCheck(), deadline=30, alive=alive, poll=0.01)
        assert result == ProbeResult(False, "the process exited")
        assert time.monotonic() - started < 5

    asyncio.run(scenario())


class _Done(Exception):
    """Ends a monitor's run once its script is played."""


async def _play(
    server: _Responder, check: HealthCheck, on_change: Callable[[bool, ProbeResult], Awaitable[None]]
) -> tuple[HealthMonitor, list[float]]:
    """Run a monitor against `server` until every scripted answer is given; the injected sleep never waits."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        if not server.script:
            raise _Done
        slept.append(seconds)

    async with _serving(server):
        monitor = HealthMonitor(HOST, server.port, check, on_change, sleep=sleep)
        assert monitor.healthy  # it follows a successful wait_ready
        with pytest.raises(_Done):
            await monitor.run()
    return monitor, slept


def test_monitor_reports_changes_only_after_the_thresholds() -> None:
    changes: list[tuple[bool, ProbeResult, int]] = []
    script = [200, 500, 500, 200, 500, 500, 500, 500, 200, 500, 200, 200, 200]
    server = _Responder(script=list(script))

    async def on_change(healthy: bool, result: ProbeResult) -> None:
        changes.append((healthy, result, len(server.requests)))

    check = _http(path="/", interval=7, unhealthy_threshold=3, healthy_threshold=2)
    monitor, slept = asyncio.run(_play(server, check, on_change))
    assert changes == [
        (False, ProbeResult(False, "HTTP 500 from /"), 7),  # the 3rd failure in a row (probes 5-7)
        (True, ProbeResult(True, "HTTP 200"), 12),  # the 2nd success in a row (11-12); probe 10 broke a run
    ]
    assert monitor.healthy
    assert slept == [7] * len(script)  # one interval before each probe


def test_monitor_retries_a_change_it_could_not_report() -> None:
    attempts: list[bool] = []

    async def on_change(healthy: bool, result: ProbeResult) -> None:
        attempts.append(healthy)
        if len(attempts) == 1:
            raise ConnectionError("the data plane is restarting")

    server = _Responder(script=[500, 500, 500, 500])
    monitor, _ = asyncio.run(_play(server, _http(unhealthy_threshold=2), on_change))
    assert attempts == [False, False]  # probe 2 failed to report; probe 3 reported again; probe 4 was quiet
    assert not monitor.healthy


def test_monitor_counts_a_refused_connection_as_a_failure() -> None:
    changes: list[bool] = []
    sleeps = 0

    async def on_change(healthy: bool, result: ProbeResult) -> None:
        assert result == ProbeResult(False, "connection refused")
        changes.append(healthy)

    async def sleep(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        if sleeps > 3:
            raise _Done

    async def scenario() -> None:
        with pytest.raises(_Done):
            await monitor.run()

    monitor = HealthMonitor(HOST, free_port(), HealthCheck(unhealthy_threshold=2), on_change, sleep=sleep)
    asyncio.run(scenario())
    assert changes == [False] and not monitor.healthy
