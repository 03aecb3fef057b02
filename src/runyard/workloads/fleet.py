"""A service's instances: started on the runtime backend, health-checked, and routed through HAProxy's runtime API.

Each service owns one pool backend of the data plane; each instance takes one server slot of it. Slots are
changed only through the runtime API (no reload). Runyard runs the health checks itself, because HAProxy 2.6
cannot give each server its own check type, path and timings at runtime, and pushes the result to the slot.
Instance records in the store say which instance holds which slot, so a restart can re-adopt them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from runyard.clock import Clock
from runyard.control.model.apprunner import AutoScalingConfiguration
from runyard.control.model.instance import ACTIVE, STARTING, InstanceRecord
from runyard.control.model.service import Revision, Service
from runyard.control.ports import DeploymentLog, Store
from runyard.dataplane.haproxy import HAProxyRuntime, pool_backend
from runyard.errors import DeploymentFailed
from runyard.ids import IdSource
from runyard.observe.logs import LogStore, application_log_group, instance_stream
from runyard.runtime.base import Instance, InstanceNotFound, InstanceState, InstanceStatus, RuntimeBackend
from runyard.runtime.base import InstanceSpec as RuntimeSpec
from runyard.runtime.health import HealthCheck, HealthMonitor, ProbeResult, wait_ready

log = logging.getLogger(__name__)
LOG_TAIL_LINES = 15


@dataclass(frozen=True, slots=True)
class FleetSettings:
    account: str
    domain_suffix: str
    slots_per_backend: int
    start_timeout: float
    stop_grace: float


class Fleet:
    def __init__(
        self,
        *,
        backend: RuntimeBackend,
        router: HAProxyRuntime,
        store: Store,
        clock: Clock,
        ids: IdSource,
        logs: LogStore,
        settings: FleetSettings,
    ) -> None:
        self._backend = backend
        self._router = router
        self._store = store
        self._clock = clock
        self._ids = ids
        self._logs = logs
        self._settings = settings
        self._monitors: dict[str, asyncio.Task[None]] = {}

    def host(self, service: Service) -> str:
        return f"{service.url_label}.{service.region}.{self._settings.domain_suffix}"

    # -- deploying ---------------------------------------------------------------------------------

    async def deploy(self, service: Service, revision: Revision, log_line: DeploymentLog) -> None:
        """Replace whatever runs for the service by healthy instances of `revision`, then route to them."""
        await self.stop_service(service)  # left over from an attempt a restart interrupted
        await self._router.set_host(self.host(service), pool_backend(service.pool))
        scaling = self._scaling(service)
        count = max(1, min(scaling.min_size, self._settings.slots_per_backend))
        check = _health_check(service)
        port_text = f"[Port: '{revision.port}']"
        log_line(f"[AppRunner] Performing health check on protocol `{check.protocol}` {port_text}.")
        results = await asyncio.gather(
            *(self._start_one(service, revision, slot, check, log_line) for slot in range(1, count + 1)),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.stop_service(service)
            raise failures[0]
        log_line(f"[AppRunner] Health check on protocol `{check.protocol}` {port_text} is successful.")

    async def _start_one(
        self, service: Service, revision: Revision, slot: int, check: HealthCheck, log_line: DeploymentLog
    ) -> None:
        instance_id = self._ids.hex32()
        record = InstanceRecord(
            instance_id=instance_id,
            service_arn=service.arn,
            account=service.account,
            region=service.region,
            status=STARTING,
            created_at=self._clock.now(),
            artifact_id=revision.artifact_id,
            slot=slot,
        )
        with self._store.write() as uow:
            uow.repo(InstanceRecord).add(record)
        instance = await self._spawn(service, revision, instance_id)
        record = self._save(replace(record, host=instance.host, port=instance.port))

        async def alive() -> bool:
            return (await self._state(instance_id)).running

        result = await wait_ready(
            instance.host, instance.port, check, deadline=self._settings.start_timeout, alive=alive
        )
        if not result.ok:
            raise DeploymentFailed(await self._start_failure(instance_id, result, log_line))
        await self._route(service, record, instance)
        self._save(replace(record, status=ACTIVE))

    async def _spawn(self, service: Service, revision: Revision, instance_id: str) -> Instance:
        env = dict(revision.runtime_env)
        env.update(revision.env)
        port_names = ("PORT",) if revision.port_env_name in (None, "PORT") else ("PORT", str(revision.port_env_name))
        spec = RuntimeSpec(
            instance_id=instance_id,
            working_dir=Path(revision.artifact_path),
            command=revision.command,
            env=env,
            port_env_names=port_names,
            cpu_units=service.spec.instance.cpu,
            memory_mb=service.spec.instance.memory,
            log_path=self._logs.raw_path(
                application_log_group(service.name, service.service_id), instance_stream(instance_id)
            ),
        )
        return await self._backend.start(spec)

    async def _start_failure(self, instance_id: str, result: ProbeResult, log_line: DeploymentLog) -> str:
        state = await self._state(instance_id)
        tail = (await self._backend.logs(instance_id)).lines[-LOG_TAIL_LINES:]
        if tail:
            log_line("[AppRunner] Last lines of the application's output:")
            for line in tail:
                log_line(f"[AppRunner] | {line}")
        if not state.running:
            ended = f"with exit code {state.exit_code}" if state.exit_code is not None else "unexpectedly"
            if state.signal is not None:
                ended = f"on signal {state.signal}"
            memory = " (it ran out of memory)" if state.oom_killed else ""
            return f"The start command exited {ended}{memory} before the health check passed."
        return f"Health check failed: {result.detail}. Make sure the application listens on the port in $PORT."

    async def _route(self, service: Service, record: InstanceRecord, instance: Instance) -> None:
        backend = pool_backend(service.pool)
        scaling = self._scaling(service)
        await self._router.enable_slot(
            backend,
            record.slot,
            instance.host,
            instance.port,
            weight=100,
            maxconn=scaling.max_concurrency,
            health_check=False,
        )
        check = _health_check(service)

        async def on_change(healthy: bool, result: ProbeResult) -> None:
            await self._router.set_slot_health(backend, record.slot, up=healthy)
            verdict = "passes its health check again" if healthy else f"failed its health check ({result.detail})"
            log.info("instance %s of %s %s", record.instance_id, service.arn, verdict)

        monitor = HealthMonitor(instance.host, instance.port, check, on_change)
        self._cancel_monitor(record.instance_id)
        self._monitors[record.instance_id] = asyncio.ensure_future(monitor.run())

    # -- stopping ----------------------------------------------------------------------------------

    async def stop_service(self, service: Service) -> None:
        """Take every instance of the service out of the data plane, then stop it and forget it."""
        for record in self._records(service):
            await self._retire(service, record)

    async def remove_service(self, service: Service) -> None:
        await self.stop_service(service)
        await self._router.remove_host(self.host(service))

    async def _retire(self, service: Service, record: InstanceRecord) -> None:
        self._cancel_monitor(record.instance_id)
        with contextlib.suppress(Exception):  # the slot may never have been enabled
            await self._router.disable_slot(pool_backend(service.pool), record.slot)
        await self._backend.stop(record.instance_id, grace=self._settings.stop_grace)
        with self._store.write() as uow:
            uow.repo(InstanceRecord).remove(record.instance_id)

    async def close(self) -> None:
        """Runyard stops: stop monitoring and every instance; the records stay, so restore() restarts them."""
        for instance_id in list(self._monitors):
            self._cancel_monitor(instance_id)
        with self._store.read() as uow:
            records = uow.repo(InstanceRecord).find(account=self._settings.account)
        await asyncio.gather(
            *(self._backend.stop(r.instance_id, grace=self._settings.stop_grace) for r in records),
            return_exceptions=True,
        )

    # -- after a restart ---------------------------------------------------------------------------

    async def restore(self, service: Service, revision: Revision) -> None:
        """Re-adopt the service's instances that still run; replace the others (same slot, same revision)."""
        await self._router.set_host(self.host(service), pool_backend(service.pool))
        running = {instance.instance_id: instance for instance in await self._backend.instances()}
        check = _health_check(service)
        records = self._records(service)
        for record in records:
            instance = running.get(record.instance_id)
            if instance is not None and record.status == ACTIVE and record.artifact_id == revision.artifact_id:
                await self._route(service, record, instance)
                continue
            await self._retire(service, record)
            await self._start_one(service, revision, record.slot, check, _discard)
        wanted = max(1, min(self._scaling(service).min_size, self._settings.slots_per_backend))
        taken = {r.slot for r in self._records(service)}
        for slot in [s for s in range(1, self._settings.slots_per_backend + 1) if s not in taken][
            : max(0, wanted - len(taken))
        ]:
            await self._start_one(service, revision, slot, check, _discard)

    # -- helpers -----------------------------------------------------------------------------------

    def _records(self, service: Service) -> list[InstanceRecord]:
        with self._store.read() as uow:
            return uow.repo(InstanceRecord).find(account=service.account, region=service.region, name=service.arn)

    def _save(self, record: InstanceRecord) -> InstanceRecord:
        with self._store.write() as uow:
            uow.repo(InstanceRecord).save(record)
        return record

    def _scaling(self, service: Service) -> AutoScalingConfiguration:
        with self._store.read() as uow:
            config = uow.repo(AutoScalingConfiguration).get(service.auto_scaling_configuration_arn)
        if config is None:
            raise DeploymentFailed(f"Auto scaling configuration not found: {service.auto_scaling_configuration_arn}")
        return config

    async def _state(self, instance_id: str) -> InstanceState:
        try:
            return await self._backend.inspect(instance_id)
        except InstanceNotFound:
            return InstanceState(InstanceStatus.EXITED)

    def _cancel_monitor(self, instance_id: str) -> None:
        task = self._monitors.pop(instance_id, None)
        if task is not None:
            task.cancel()


def _discard(_: str) -> None:
    """Re-adoption after a restart has no deployment log to write to."""


def _health_check(service: Service) -> HealthCheck:
    h = service.spec.health_check
    return HealthCheck(
        protocol="HTTP" if h.protocol == "HTTP" else "TCP",
        path=h.path,
        interval=float(h.interval),
        timeout=float(h.timeout),
        healthy_threshold=h.healthy_threshold,
        unhealthy_threshold=h.unhealthy_threshold,
    )
