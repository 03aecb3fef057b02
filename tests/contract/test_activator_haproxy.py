"""Contract: the Python activator behind a real HAProxy, as the pools' backup server and the default backend."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from runyard.dataplane.activator import ActivatorServer, HostInfo, HostState, activator_app
from runyard.dataplane.haproxy import (
    ACTIVATOR_SERVER,
    DEFAULT_BACKEND,
    HAProxyProcess,
    HAProxyRuntime,
    HAProxySettings,
)
from tests.support import free_port

if not (shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")):
    pytest.skip("haproxy is not installed (`make deps` installs it)", allow_module_level=True)

POOL = "be_pool_0"


async def _instance(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A tiny app instance: answers every request on the connection with 200 "instance"."""
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\ninstance")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the client (HAProxy) closed its pooled connection
    finally:
        writer.close()


@asynccontextmanager
async def _plane(directory: Path, services: dict[str, HostInfo]) -> AsyncIterator[tuple[HAProxyProcess, int]]:
    """The activator on a free port, HAProxy pointing at it, and an instance to route to."""

    async def lookup(host: str) -> HostInfo | None:
        return services.get(host)

    activator = ActivatorServer(activator_app(lookup), "127.0.0.1", 0)
    await activator.start()
    instance = await asyncio.start_server(_instance, "127.0.0.1", 0)
    settings = HAProxySettings(
        http_port=free_port(), activator_port=activator.port, pool_size=2, slots_per_backend=2, check_interval_ms=100
    )
    haproxy = HAProxyProcess(directory, settings=settings)
    try:
        await haproxy.start()
        yield haproxy, instance.sockets[0].getsockname()[1]
    finally:
        await haproxy.stop(grace=2.0)
        instance.close()
        await instance.wait_closed()
        await activator.stop()


async def _get(client: httpx.AsyncClient, haproxy: HAProxyProcess, host: str, accept: str = "*/*") -> httpx.Response:
    port = haproxy.settings.http_port
    return await client.get(f"http://127.0.0.1:{port}/some/path", headers={"Host": f"{host}:{port}", "Accept": accept})


async def _activator_answers(runtime: HAProxyRuntime, backend: str) -> int:
    rows = await runtime.stats(backend)
    return next(row.stot for row in rows if row.svname == ACTIVATOR_SERVER)


def test_the_activator_answers_for_hosts_without_a_ready_instance(tmp_path: Path) -> None:
    services = {"app.test": HostInfo("my-web", HostState.STARTING)}

    async def scenario() -> None:
        async with (
            _plane(tmp_path, services) as (haproxy, instance_port),
            httpx.AsyncClient(trust_env=False, timeout=5) as client,
        ):
            runtime = haproxy.runtime()
            await runtime.set_host("app.test", POOL)

            # Routed to a pool with no ready slot: the pool's backup server, the activator, answers for the host.
            response = await _get(client, haproxy, "App.Test")
            assert response.status_code == 503
            assert response.text == "my-web is starting. Try again in a few seconds.\n"
            assert response.headers["x-runyard-activator"] == "starting"
            assert response.headers["retry-after"] == "5"
            assert await _activator_answers(runtime, POOL) == 1

            # A host no one maps reaches the default backend, which is the activator too.
            response = await _get(client, haproxy, "nobody.test", accept="text/html")
            assert response.status_code == 404
            assert "No service is configured at nobody.test." in response.text
            assert response.headers["x-runyard-activator"] == "unknown-host"
            assert await _activator_answers(runtime, DEFAULT_BACKEND) == 1

            # A ready, healthy instance takes the traffic; the activator sees none of it.
            await runtime.enable_slot(POOL, 1, "127.0.0.1", instance_port, weight=100, maxconn=0, health_check=False)
            response = await _get(client, haproxy, "app.test")
            assert (response.status_code, response.text) == (200, "instance")
            assert "x-runyard-activator" not in response.headers

            # Runyard's own health check marks it down: the activator answers again, with the state it reports.
            services["app.test"] = HostInfo("my-web", HostState.UNAVAILABLE)
            await runtime.set_slot_health(POOL, 1, up=False)
            response = await _get(client, haproxy, "app.test")
            assert response.status_code == 503
            assert response.headers["x-runyard-activator"] == "unavailable"
            assert "my-web has no healthy instance right now" in response.text
            assert await _activator_answers(runtime, POOL) == 2

            await runtime.set_slot_health(POOL, 1, up=True)
            assert (await _get(client, haproxy, "app.test")).text == "instance"

    asyncio.run(scenario())


def test_paused_and_deleted_services_through_haproxy(tmp_path: Path) -> None:
    services = {
        "paused.test": HostInfo("sleepy", HostState.PAUSED),
        "gone.test": HostInfo("old-web", HostState.DELETED),
    }

    async def scenario() -> None:
        async with _plane(tmp_path, services) as (haproxy, _), httpx.AsyncClient(trust_env=False, timeout=5) as client:
            runtime = haproxy.runtime()
            await runtime.set_host("paused.test", POOL)
            paused = await _get(client, haproxy, "paused.test", accept="text/html")
            assert paused.status_code == 503 and "sleepy is paused" in paused.text
            assert paused.headers["content-type"] == "text/html; charset=utf-8"
            port = haproxy.settings.http_port
            head = await client.head(f"http://127.0.0.1:{port}/", headers={"Host": "paused.test"})
            assert (head.status_code, head.content, head.headers["x-runyard-activator"]) == (503, b"", "paused")
            gone = await _get(client, haproxy, "gone.test")  # its route was removed, its name is still known
            assert (gone.status_code, gone.headers["x-runyard-activator"]) == (404, "deleted")

    asyncio.run(scenario())
