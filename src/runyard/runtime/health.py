"""Active health checks run by Runyard itself.

HAProxy 2.6 cannot change a check's type, path, interval or thresholds per server at runtime, so Runyard
probes each instance with the service's HealthCheckConfiguration and pushes the verdict to the data plane
(`set server ... health up|down`). Start-up uses a fast poll so a deployment waits seconds, not intervals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal

import httpx

logger = logging.getLogger(__name__)

USER_AGENT = "Runyard-HealthChecker"
# A request target: no whitespace or control characters, which would break the request line.
_PATH = re.compile(r"/[\x21-\x7e]*")


@dataclass(frozen=True, slots=True)
class HealthCheck:
    protocol: Literal["TCP", "HTTP"] = "TCP"
    path: str = "/"  # HTTP only
    interval: float = 10.0  # seconds
    timeout: float = 5.0
    healthy_threshold: int = 1
    unhealthy_threshold: int = 5

    def __post_init__(self) -> None:
        if self.protocol not in ("TCP", "HTTP"):
            raise ValueError(f"protocol must be TCP or HTTP, not {self.protocol!r}")
        if not _PATH.fullmatch(self.path):
            raise ValueError(f"path must start with '/' and contain no spaces or control characters: {self.path!r}")
        if self.interval <= 0 or self.timeout <= 0:
            raise ValueError("interval and timeout must be positive")
        if self.healthy_threshold < 1 or self.unhealthy_threshold < 1:
            raise ValueError("healthy_threshold and unhealthy_threshold must be at least 1")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    detail: str  # for people: deployment logs and events quote it


async def probe(host: str, port: int, check: HealthCheck) -> ProbeResult:
    """One check of an instance, finished (or failed) within `check.timeout` seconds."""
    try:
        async with asyncio.timeout(check.timeout):
            if check.protocol == "TCP":
                return await _probe_tcp(host, port)
            return await _probe_http(host, port, check)
    except (TimeoutError, httpx.TimeoutException):
        return ProbeResult(False, f"timed out after {check.timeout:.3g} s")
    except (OSError, httpx.HTTPError) as error:
        return ProbeResult(False, _describe(error))


async def _probe_tcp(host: str, port: int) -> ProbeResult:
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(True, "TCP connection opened")


async def _probe_http(host: str, port: int, check: HealthCheck) -> ProbeResult:
    authority = f"[{host}]" if ":" in host else host
    # A client per probe keeps probes independent of any event loop or pooled connection; without
    # certificate loading it costs little. trust_env=False: a proxy from the environment must not
    # stand between Runyard and its own instances.
    async with (
        httpx.AsyncClient(
            verify=False,
            trust_env=False,
            follow_redirects=False,
            timeout=check.timeout,
            headers={"User-Agent": USER_AGENT},
        ) as client,
        client.stream("GET", f"http://{authority}:{port}{check.path}") as response,
    ):
        status = response.status_code  # the body is never read: only the status matters
    if 200 <= status < 400:
        return ProbeResult(True, f"HTTP {status}")
    return ProbeResult(False, f"HTTP {status} from {check.path}")


def _describe(error: BaseException) -> str:
    """A short reason: the OS error under httpx's wrappers when there is one."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return f"invalid HTTP response: {error}"
    return str(error) or type(error).__name__


async def wait_ready(
    host: str,
    port: int,
    check: HealthCheck,
    *,
    deadline: float,
    alive: Callable[[], Awaitable[bool]],
    poll: float = 0.1,
) -> ProbeResult:
    """Probe every `poll` seconds until `healthy_threshold` successes in a row.

    Gives up with the last failure once `deadline` seconds have passed, and at once when `alive()` says the
    instance's process has exited (no point waiting for a dead process to listen).
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    last = ProbeResult(False, "not probed yet")
    successes = 0
    while True:
        if not await alive():
            return ProbeResult(False, "the process exited")
        remaining = end - loop.time()
        if remaining <= 0:
            return ProbeResult(False, last.detail)
        # A probe never outlives the deadline, even with a long configured timeout.
        last = await probe(host, port, replace(check, timeout=min(check.timeout, remaining)))
        successes = successes + 1 if last.ok else 0
        if successes >= check.healthy_threshold:
            return last
        await asyncio.sleep(min(poll, max(end - loop.time(), 0)))


class HealthMonitor:
    """Probes one running instance every `check.interval` and reports changes of its health.

    Starts healthy (it follows a successful `wait_ready`). `on_change(False, result)` comes after
    `unhealthy_threshold` failures in a row, `on_change(True, result)` after `healthy_threshold` successes in
    a row while down. An `on_change` that raises is logged and the change is not taken: the next probe that
    agrees reports it again, so a briefly unreachable data plane does not leave a dead instance in service.
    """

    def __init__(
        self,
        host: str,
        port: int,
        check: HealthCheck,
        on_change: Callable[[bool, ProbeResult], Awaitable[None]],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.host = host
        self.port = port
        self.check = check
        self._on_change = on_change
        self._sleep = sleep
        self._healthy = True
        self._streak = 0  # probes in a row that disagree with the current state

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def run(self) -> None:
        """Forever; cancel the task to stop."""
        while True:
            await self._sleep(self.check.interval)
            try:
                result = await probe(self.host, self.port, self.check)
            except Exception as error:  # a bug in probing counts as a failed probe, not a dead monitor
                logger.exception("health probe of %s:%d raised", self.host, self.port)
                result = ProbeResult(False, f"probe error: {error}")
            await self._record(result)

    async def _record(self, result: ProbeResult) -> None:
        if result.ok == self._healthy:
            self._streak = 0
            return
        self._streak += 1
        threshold = self.check.healthy_threshold if result.ok else self.check.unhealthy_threshold
        if self._streak < threshold:
            return
        try:
            await self._on_change(result.ok, result)
        except Exception:
            logger.exception("reporting %s:%d as %s failed", self.host, self.port, "up" if result.ok else "down")
            return
        logger.info("instance %s:%d is %s: %s", self.host, self.port, "up" if result.ok else "down", result.detail)
        self._healthy = result.ok
        self._streak = 0
