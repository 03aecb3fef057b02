"""The activator's answers, in-process through ASGI and over a real socket through uvicorn."""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import pytest

from runyard.dataplane.activator import (
    ActivatorServer,
    ActivatorStartError,
    HostInfo,
    HostState,
    Lookup,
    activator_app,
)

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # what a browser sends
SERVICES = {
    "starting.test": HostInfo("web-starting", HostState.STARTING),
    "unavailable.test": HostInfo("web-unavailable", HostState.UNAVAILABLE),
    "paused.test": HostInfo("web-paused", HostState.PAUSED),
    "failed.test": HostInfo("web-failed", HostState.FAILED),
    "deleted.test": HostInfo("web-deleted", HostState.DELETED),
    "xss.test": HostInfo("<b>&amp;</b>", HostState.PAUSED),
}


def _lookup(seen: list[str] | None = None) -> Lookup:
    async def lookup(host: str) -> HostInfo | None:
        if seen is not None:
            seen.append(host)
        return SERVICES.get(host)

    return lookup


async def _request(
    lookup: Lookup, host: str, *, method: str = "GET", path: str = "/", accept: str = "*/*", content: bytes = b""
) -> httpx.Response:
    transport = httpx.ASGITransport(app=activator_app(lookup, lookup_timeout=0.2))
    async with httpx.AsyncClient(transport=transport, base_url="http://activator") as client:
        return await client.request(method, path, headers={"Host": host, "Accept": accept}, content=content)


def _ask(host: str, **kwargs: str) -> httpx.Response:
    return asyncio.run(_request(_lookup(), host, **kwargs))


def test_an_unknown_host_gets_404_naming_it() -> None:
    response = _ask("nobody.test")
    assert response.status_code == 404
    assert response.text == "No service is configured at nobody.test.\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-runyard-activator"] == "unknown-host"
    assert response.headers["cache-control"] == "no-store"
    assert "retry-after" not in response.headers


def test_the_lookup_gets_the_host_as_haproxy_keys_it() -> None:
    seen: list[str] = []
    response = asyncio.run(_request(_lookup(seen), "Paused.TEST:9080"))
    assert seen == ["paused.test"]
    assert (response.status_code, response.headers["x-runyard-activator"]) == (503, "paused")


@pytest.mark.parametrize(
    ("host", "status", "text", "retry_after"),
    [
        ("starting.test", 503, "web-starting is starting.", "5"),
        ("unavailable.test", 503, "web-unavailable has no healthy instance right now.", "5"),
        ("paused.test", 503, "web-paused is paused. Its owner can resume it.", None),
        ("failed.test", 503, "web-failed failed to deploy.", None),
        ("deleted.test", 404, "web-deleted has been deleted.", None),
    ],
)
def test_each_state_has_its_page(host: str, status: int, text: str, retry_after: str | None) -> None:
    response = _ask(host)
    assert response.status_code == status
    assert response.text.startswith(text)
    assert response.headers.get("retry-after") == retry_after
    assert response.headers["x-runyard-activator"] == SERVICES[host].state.value
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("accept", "html"),
    [(HTML, True), ("text/html", True), ("*/*", False), ("application/json", False), ("text/html;q=0", False)],
)
def test_browsers_get_html_and_everyone_else_plain_text(accept: str, html: bool) -> None:
    response = _ask("starting.test", accept=accept)
    assert response.headers["content-type"] == ("text/html" if html else "text/plain") + "; charset=utf-8"
    assert ("<title>Service starting</title>" in response.text) is html
    assert "web-starting is starting." in response.text


def test_names_and_hosts_are_escaped_in_html() -> None:
    response = _ask("xss.test", accept=HTML)
    assert "&lt;b&gt;&amp;amp;&lt;/b&gt; is paused." in response.text and "<b>" not in response.text
    response = _ask('<script>alert("x")</script>', accept=HTML)
    assert response.status_code == 404
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in response.text and "<script>" not in response.text


def test_head_gets_the_headers_without_a_body() -> None:
    get, head = _ask("starting.test"), _ask("starting.test", method="HEAD")
    assert (head.status_code, head.content) == (503, b"")
    assert head.headers["content-length"] == str(len(get.content))
    for name in ("content-type", "retry-after", "cache-control", "x-runyard-activator"):
        assert head.headers[name] == get.headers[name]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_every_method_and_path_gets_the_same_answer(method: str) -> None:
    response = asyncio.run(
        _request(_lookup(), "paused.test", method=method, path="/api/v1/items?page=2", content=b'{"a": 1}')
    )
    assert (response.status_code, response.headers["x-runyard-activator"]) == (503, "paused")
    assert response.text.startswith("web-paused is paused.")


def test_a_missing_host_header_is_an_unknown_host() -> None:
    seen: list[str] = []
    response = asyncio.run(_request(_lookup(seen), ""))
    assert (response.status_code, response.headers["x-runyard-activator"]) == (404, "unknown-host")
    assert seen == []


def test_a_failing_lookup_answers_503_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(host: str) -> HostInfo | None:
        raise RuntimeError("database is locked")

    async def hanging(host: str) -> HostInfo | None:
        await asyncio.sleep(30)
        return None

    for lookup in (broken, hanging):
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="runyard.dataplane.activator"):
            response = asyncio.run(_request(lookup, "app.test", accept=HTML))
        assert response.status_code == 503
        assert "temporarily unavailable" in response.text
        assert (response.headers["x-runyard-activator"], response.headers["retry-after"]) == ("error", "5")
        assert "app.test" in caplog.text


def test_server_answers_over_a_real_socket_and_frees_its_port() -> None:
    async def scenario() -> None:
        server = ActivatorServer(activator_app(_lookup()), "127.0.0.1", 0)
        await server.start()
        port = server.port
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
                url = f"http://127.0.0.1:{port}/"
                get = await client.get(url, headers={"Host": "starting.test"})
                head = await client.head(url, headers={"Host": "starting.test"})
                missing = await client.get(url, headers={"Host": "nobody.test"})
            assert (get.status_code, get.text) == (503, "web-starting is starting. Try again in a few seconds.\n")
            assert (head.status_code, head.content, head.headers["content-length"]) == (
                503,
                b"",
                str(len(get.content)),
            )
            assert "server" not in get.headers  # no software banner for the world
            assert missing.status_code == 404
            with pytest.raises(ActivatorStartError, match="already started"):
                await server.start()
        finally:
            await server.stop()
        await server.stop()  # stopping twice is harmless
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # the port is free again

    asyncio.run(scenario())


def test_server_on_a_taken_port_raises_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ActivatorServer(activator_app(_lookup()), "127.0.0.1", port)
        with pytest.raises(ActivatorStartError, match=rf"cannot listen on 127\.0\.0\.1:{port}: .*in use"):
            asyncio.run(server.start())
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port
    with pytest.raises(ValueError):
        ActivatorServer(activator_app(_lookup()), "localhost", 0)  # HAProxy's configuration needs an address
