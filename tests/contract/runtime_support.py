"""Helpers shared by the runtime contract tests (test_runtime_backends.py, test_runtime_process.py)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from runyard.runtime.base import Instance, InstanceSpec, InstanceState, RuntimeBackend

T = TypeVar("T")
BackendFactory = Callable[[], RuntimeBackend]
SECRET_NAME = "RUNYARD_CONTRACT_NOT_FOR_APPS"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (result := await check()) is not None:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def ended(backend: RuntimeBackend, instance_id: str, timeout: float = 10.0) -> InstanceState:
    async def check() -> InstanceState | None:
        state = await backend.inspect(instance_id)
        return None if state.running else state

    return await eventually(check, f"{instance_id} to end", timeout)


def refused(instance: Instance) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((instance.host, instance.port)) != 0


def fields(spec: InstanceSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in InstanceSpec.__dataclass_fields__}
