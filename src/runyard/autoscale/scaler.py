"""The scaling loop: observe each service's concurrency every tick, ask its decider, apply what changed.

    every `interval` s:  targets() ──▶ concurrency(key) ──▶ Decider.record / decide ──▶ apply(key, decision)

The loop knows nothing of HAProxy or instances: the port below reads the data plane and drives the fleet. A
service's changes are applied in the background, one at a time, so a slow instance start never stalls the
observation of the other services (or of this one: its samples keep arriving while it scales).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from runyard.autoscale.decider import Decider, Decision, ScalingPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    """A service that can scale now: its policy and how many instances it has (provisioned) and serve (active)."""

    key: str
    policy: ScalingPolicy
    provisioned: int
    active: int


class ScalingPort(Protocol):
    async def targets(self) -> list[Target]:
        """The services that scale now (running, nothing else under way)."""
        ...

    async def concurrency(self, target: Target) -> float | None:
        """Requests in flight plus queued for the service; None when it cannot be read this tick."""
        ...

    async def apply(self, target: Target, decision: Decision) -> None:
        """Reach `decision.desired` provisioned instances with `decision.active` of them serving."""
        ...


class Scaler:
    def __init__(self, port: ScalingPort, *, now: Callable[[], float], interval: float = 1.0) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._port = port
        self._now = now
        self._interval = interval
        self._deciders: dict[str, Decider] = {}
        self._applying: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        tasks = [task for task in (self._loop, *self._applying.values()) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop = None
        self._applying.clear()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("auto scaling tick failed")
            await asyncio.sleep(self._interval)

    async def tick(self) -> None:
        targets = await self._port.targets()
        keys = {target.key for target in targets}
        for key in [key for key in self._deciders if key not in keys]:
            del self._deciders[key]  # deleted, paused or redeploying: its history no longer describes it
        for target in targets:
            await self._observe(target)

    async def _observe(self, target: Target) -> None:
        decider = self._deciders.get(target.key)
        if decider is None:
            decider = self._deciders[target.key] = Decider(target.policy)
        elif decider.policy != target.policy:
            decider.update(target.policy)  # UpdateService and configuration changes apply at once
        concurrency = await self._port.concurrency(target)
        now = self._now()
        if concurrency is not None:
            decider.record(now, concurrency)
        decision = decider.decide(now, ready=target.active)
        if (decision.desired, decision.active) == (target.provisioned, target.active):
            return
        running = self._applying.get(target.key)
        if running is not None and not running.done():
            return  # the previous change is still under way; the next tick decides again
        self._applying[target.key] = asyncio.ensure_future(self._apply(target, decision))

    async def _apply(self, target: Target, decision: Decision) -> None:
        try:
            await self._port.apply(target, decision)
        except Exception:
            log.exception("scaling %s to %d failed", target.key, decision.desired)
