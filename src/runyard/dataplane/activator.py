"""The activator: HAProxy's backup server in every pool backend and its default backend.

It only sees a request when the service behind the host has no ready instance, or when the host is unknown,
and answers with a status page that says why. It never proxies: HAProxy sends traffic to instances directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import html
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

ACTIVATOR_HEADER = "X-Runyard-Activator"
UNKNOWN_HOST = "unknown-host"
LOOKUP_ERROR = "error"
_RETRY_AFTER_S = "5"
_MAX_SHOWN_HOST = 255  # the Host header is attacker-controlled; a page never echoes more than a hostname's worth


class HostState(enum.StrEnum):
    STARTING = "starting"
    UNAVAILABLE = "unavailable"  # running, but no healthy instance right now
    PAUSED = "paused"
    FAILED = "failed"  # create failed
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class HostInfo:
    service_name: str
    state: HostState


# Called with the host lower-cased and its port stripped, exactly the key HAProxy looks up in its host map.
Lookup = Callable[[str], Awaitable[HostInfo | None]]


@dataclass(frozen=True, slots=True)
class _Page:
    status: int
    title: str
    message: str  # plain text; escaped when rendered as HTML
    retry: bool = False


def _page(info: HostInfo) -> _Page:
    name = info.service_name
    match info.state:
        case HostState.STARTING:
            return _Page(503, "Service starting", f"{name} is starting. Try again in a few seconds.", retry=True)
        case HostState.UNAVAILABLE:
            message = f"{name} has no healthy instance right now. Try again in a few seconds."
            return _Page(503, "Service unavailable", message, retry=True)
        case HostState.PAUSED:
            return _Page(503, "Service paused", f"{name} is paused. Its owner can resume it.")
        case HostState.FAILED:
            message = f"{name} failed to deploy. Its owner can fix it and deploy again."
            return _Page(503, "Service failed", message)
        case HostState.DELETED:
            # 404, not 503: the service is gone for good, so there is nothing to retry. Not 410 either: the
            # same host may serve a new service later, and 410 is cacheable by default.
            return _Page(404, "Service deleted", f"{name} has been deleted.")


_LOOKUP_FAILED = _Page(503, "Temporarily unavailable", "This service is temporarily unavailable.", retry=True)


def _unknown(shown: str) -> _Page:
    return _Page(404, "No such service", f"No service is configured at {shown}.")


def _host_key(header: str) -> str:
    """Lower-case, port stripped: the same key HAProxy derives (`lower,word(1,:)`) for names and IPv4."""
    host = header.strip().lower()
    if host.startswith("["):  # an IPv6 literal keeps its colons
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


def _accepts_html(accept: str) -> bool:
    """True when the client lists text/html (with a non-zero q); `*/*` alone (curl, SDKs) gets plain text."""
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if media.lower() != "text/html":
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def _render(request: Request, page: _Page, state: str) -> Response:
    headers = {"Cache-Control": "no-store", ACTIVATOR_HEADER: state}
    if page.retry:
        headers["Retry-After"] = _RETRY_AFTER_S
    if _accepts_html(request.headers.get("accept", "")):
        title, message = html.escape(page.title), html.escape(page.message)
        text = (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{title}</title></head>\n<body><h1>{title}</h1>\n<p>{message}</p></body></html>\n"
        )
        media_type = "text/html; charset=utf-8"
    else:
        text, media_type = f"{page.message}\n", "text/plain; charset=utf-8"
    body = text.encode()
    headers["Content-Type"] = media_type
    if request.method == "HEAD":
        # Same headers as a GET, no body: h11 rejects a body on a HEAD response.
        headers["Content-Length"] = str(len(body))
        body = b""
    return Response(body, status_code=page.status, headers=headers)


def activator_app(lookup: Lookup, *, lookup_timeout: float = 2.0) -> ASGIApp:
    """Every method and path: a page for the host's state, 404 for a host no service uses.

    A lookup that fails or takes longer than `lookup_timeout` gets a 503 rather than a hung or dropped request.
    """
    # An ASGI endpoint rather than a request function: Starlette then routes every method to it (a function
    # endpoint would take GET and HEAD only and answer anything else with its own 405).
    return Starlette(routes=[Route("/{path:path}", _Endpoint(lookup, lookup_timeout))])


class _Endpoint:
    def __init__(self, lookup: Lookup, lookup_timeout: float) -> None:
        self._lookup = lookup
        self._lookup_timeout = lookup_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._answer(Request(scope, receive))
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        host = _host_key(request.headers.get("host", ""))
        shown = host[:_MAX_SHOWN_HOST] or "this address"
        if not host:
            return _render(request, _unknown(shown), UNKNOWN_HOST)
        try:
            async with asyncio.timeout(self._lookup_timeout):
                info = await self._lookup(host)
        except TimeoutError:
            logger.error("looking up host %r took longer than %g s", shown, self._lookup_timeout)
            return _render(request, _LOOKUP_FAILED, LOOKUP_ERROR)
        except Exception:
            logger.exception("looking up host %r failed", shown)
            return _render(request, _LOOKUP_FAILED, LOOKUP_ERROR)
        if info is None:
            return _render(request, _unknown(shown), UNKNOWN_HOST)
        return _render(request, _page(info), info.state.value)


class ActivatorStartError(RuntimeError):
    """The activator could not listen on its address (usually: the port is taken)."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Runyard's own process owns SIGINT/SIGTERM; the activator is stopped through `stop()`.
        yield


class ActivatorServer:
    """The activator app on its own port, served by uvicorn inside the caller's event loop."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        if not 0 <= port < 65536:
            raise ValueError(f"port {port} is outside 0-65535")
        # An IP address, as HAProxy's configuration needs it; 0 as the port picks a free one.
        self._family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        self.host = host
        self._requested_port = port
        self._config = uvicorn.Config(
            app,
            lifespan="off",
            access_log=False,
            log_config=None,  # leave the process's logging configuration alone
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (the chosen one when started with port 0)."""
        if self._port is None:
            raise RuntimeError("the activator is not started")
        return self._port

    async def start(self) -> None:
        """Listen and serve; returns once connections are accepted."""
        if self._task is not None:
            raise ActivatorStartError("the activator is already started")
        # Binding here rather than inside uvicorn turns a taken port into an exception instead of sys.exit.
        try:
            sock = socket.create_server((self.host, self._requested_port), family=self._family)
        except OSError as error:
            reason = error.strerror or str(error)
            raise ActivatorStartError(
                f"the activator cannot listen on {self.host}:{self._requested_port}: {reason}"
            ) from error
        self._port = int(sock.getsockname()[1])
        server = _Server(self._config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name=f"activator:{self._port}")
        self._server, self._task = server, task
        try:
            while not server.started:
                if task.done():
                    self._server = self._task = None
                    sock.close()
                    failure = task.exception() if not task.cancelled() else None
                    raise ActivatorStartError(f"the activator stopped while starting: {failure!r}") from failure
                await asyncio.sleep(0.005)
        except asyncio.CancelledError:
            await self.stop()  # a cancelled start leaves nothing listening
            raise
        logger.info("activator listening on %s:%d", self.host, self._port)

    async def stop(self) -> None:
        """Stop accepting, close idle connections and let in-flight answers finish (at most a few seconds)."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await task
        finally:
            self._server = self._task = None
