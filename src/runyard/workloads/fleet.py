"""A service's instances: started on the runtime backend, health-checked, and routed through HAProxy's runtime API.

Each service owns one pool backend of the data plane; each instance takes one server slot of it. Slots are
changed only through the runtime API (no reload). Runyard runs the health checks itself, because HAProxy 2.6
cannot give each server its own check type, path and timings at runtime, and pushes the result to the slot.
Instance records in the store say which instance holds which slot, so a restart can re-adopt them.

Provisioned and active instances (App Runner's terms): every running instance is provisioned; the active ones take
requests. Standby instances are drained slots: they run and are health-checked, and activating one is a single
runtime-API command, so capacity returns in milliseconds. The autoscaler decides both numbers (`scale`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from runyard.clock import Clock
from runyard.control.model.apprunner import AutoScalingConfiguration
from runyard.control.model.instance import ACTIVE, STARTING, InstanceRecord
from runyard.control.model.service import RUNNING, Revision, Service
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
EXIT_POLL = 0.5  # seconds between checks that a routed instance still runs
DRAIN_POLL = 0.05
STABLE_AFTER = 60.0  # seconds without a replacement that end a crash loop
MAX_BACKOFF = 60.0


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
        notify: Callable[[Service, str], None],
    ) -> None:
        self._backend = backend
        self._router = router
        self._store = store
        self._clock = clock
        self._ids = ids
        self._logs = logs
        self._settings = settings
        self._notify = notify  # a line in the service's events stream
        self._monitors: dict[str, asyncio.Task[None]] = {}  # by instance id: health monitor and exit watch
        self._locks: dict[str, asyncio.Lock] = {}  # by service ARN: deployments, pauses and healing take turns
        self._healing: set[asyncio.Task[None]] = set()
        self._failures: dict[str, tuple[int, float]] = {}  # by service ARN: replacements in a row, and when
        self._standby: set[str] = set()  # instance ids provisioned but not serving (drained slots)

    def host(self, service: Service) -> str:
        return f"{service.url_label}.{service.region}.{self._settings.domain_suffix}"

    # -- deploying ---------------------------------------------------------------------------------

    async def deploy(self, service: Service, revision: Revision, log_line: DeploymentLog) -> None:
        """Replace whatever runs for the service by healthy instances of `revision`, then route to them."""
        async with self._lock(service):
            await self._stop_all(service)  # left over from an attempt a restart interrupted
            await self._router.set_host(self.host(service), pool_backend(service.pool))
            await self._start_set(service, revision, list(range(1, self._wanted(service) + 1)), log_line)

    async def roll(self, service: Service, revision: Revision, log_line: DeploymentLog) -> None:
        """Blue/green inside the service's backend: new instances in free slots, then drain and stop the old."""
        async with self._lock(service):
            old = self._records(service)
            taken = {record.slot for record in old}
            free = [slot for slot in range(1, self._settings.slots_per_backend + 1) if slot not in taken]
            count = max(self._wanted(service), len(old))  # the capacity the service has scaled to
            if len(free) < count:
                raise DeploymentFailed(
                    f"No room for {count} new instances beside the {len(old)} running ones "
                    f"({self._settings.slots_per_backend} slots per service)."
                )
            log_line(f"[AppRunner] Starting {count} instance(s) of the new version beside the current one(s).")
            await self._start_set(service, revision, free[:count], log_line)
            log_line("[AppRunner] Traffic goes to the new version. Draining the previous instances.")
            await asyncio.gather(*(self._retire(service, record, drain=True) for record in old))
            log_line("[AppRunner] The previous instances finished their requests and stopped.")

    async def _start_set(self, service: Service, revision: Revision, slots: list[int], log_line: DeploymentLog) -> None:
        """Start one instance per slot; all healthy and routed, or none left behind."""
        check = _health_check(service)
        port_text = f"[Port: '{revision.port}']"
        log_line(f"[AppRunner] Performing health check on protocol `{check.protocol}` {port_text}.")
        results = await asyncio.gather(
            *(self._start_one(service, revision, slot, check, log_line) for slot in slots),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            for record in self._records(service):
                if record.slot in slots:
                    await self._retire(service, record)
            raise failures[0]
        log_line(f"[AppRunner] Health check on protocol `{check.protocol}` {port_text} is successful.")

    def _wanted(self, service: Service) -> int:
        return max(1, min(self._scaling(service).min_size, self.capacity))

    @property
    def capacity(self) -> int:
        """Instances a service may have: half the slots, as a deployment runs the new ones beside the old."""
        return self._settings.slots_per_backend // 2

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
            image=revision.image,  # set when instances run in containers (OCI runtime)
            container_port=revision.port if revision.image is not None else None,
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
        self._standby.discard(record.instance_id)  # a routed slot serves until the autoscaler says otherwise
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
        self._monitors[record.instance_id] = asyncio.ensure_future(self._supervise(service, record, monitor))

    async def _supervise(self, service: Service, record: InstanceRecord, monitor: HealthMonitor) -> None:
        """Watch one routed instance: it is replaced when it exits or fails UnhealthyThreshold checks in a row."""
        checks = asyncio.ensure_future(monitor.run())
        try:
            while True:
                await asyncio.sleep(EXIT_POLL)
                state = await self._state(record.instance_id)
                if not state.running:
                    self._heal(service.arn, record.instance_id, _ended(state))
                    return
                if not monitor.healthy:
                    self._heal(service.arn, record.instance_id, "it failed its health check")
                    return
        finally:
            checks.cancel()

    def _heal(self, service_arn: str, instance_id: str, why: str) -> None:
        task = asyncio.ensure_future(self._replace(service_arn, instance_id, why))
        self._healing.add(task)
        task.add_done_callback(self._healing.discard)

    async def _replace(self, service_arn: str, instance_id: str, why: str) -> None:
        """Self-healing: retire the instance, start another of the same revision; crash loops back off."""
        with self._store.read() as uow:
            service = uow.repo(Service).get(service_arn)
            record = uow.repo(InstanceRecord).get(instance_id) if instance_id else None
        if service is None or service.revision is None or service.status != RUNNING:
            return  # an operation owns the service now (deploying, pausing, deleting): it decides
        if instance_id and record is None:
            return  # already retired
        count, last = self._failures.get(service_arn, (0, 0.0))
        now = self._clock.now()
        count = 1 if now - last > STABLE_AFTER else count + 1
        self._failures[service_arn] = (count, now)
        delay = min(MAX_BACKOFF, 2.0 ** (count - 1)) if count > 1 else 0.0
        self._notify(
            service,
            f"Instance {instance_id} stopped serving: {why}. Replacing it"
            + (f" in {delay:.0f} s (attempt {count}: backing off from a crash loop)." if delay else "."),
        )
        if record is not None:
            async with self._lock(service):
                await self._retire(service, record)
        await asyncio.sleep(delay)
        async with self._lock(service):
            with self._store.read() as uow:
                current = uow.repo(Service).get(service_arn)
            if current is None or current.status != RUNNING or current.revision is None:
                return
            taken = {r.slot for r in self._records(current)}
            slot = next(s for s in range(1, self._settings.slots_per_backend + 1) if s not in taken)
            try:
                await self._start_one(current, current.revision, slot, _health_check(current), _discard)
            except DeploymentFailed as failure:
                for stale in self._records(current):
                    if stale.slot == slot:
                        await self._retire(current, stale)
                self._notify(current, f"The replacement instance did not start: {failure.message}")
                self._heal(service_arn, "", "its replacement did not start")
                return
        self._notify(current, "A replacement instance is healthy and serving.")

    # -- scaling -----------------------------------------------------------------------------------

    def busy(self, service: Service) -> bool:
        """A deployment, pause, replacement or scaling step holds the service."""
        return self._lock(service).locked()

    def counts(self, service: Service) -> tuple[int, int]:
        """(provisioned, active) instances of the service."""
        records = self._records(service)
        return len(records), sum(1 for r in records if r.instance_id not in self._standby)

    async def scale(self, service: Service, provisioned: int, active: int, reason: str) -> None:
        """Run `provisioned` instances of the deployed revision, `active` of them serving (the rest on standby)."""
        if self.busy(service):
            return  # whatever holds the service changes its instances; the autoscaler decides again after
        async with self._lock(service):
            with self._store.read() as uow:
                current = uow.repo(Service).get(service.arn)
            if current is None or current.status != RUNNING or current.revision is None:
                return
            provisioned = max(1, min(provisioned, self.capacity))
            active = max(1, min(active, provisioned))
            records = self._records(current)
            if provisioned > len(records):
                await self._scale_out(current, current.revision, provisioned - len(records), reason)
            elif provisioned < len(records):
                await self._scale_in(current, records, len(records) - provisioned, reason)
            await self._activate(current, active)

    async def _scale_out(self, service: Service, revision: Revision, count: int, reason: str) -> None:
        before = len(self._records(service))
        taken = {r.slot for r in self._records(service)}
        slots = [s for s in range(1, self._settings.slots_per_backend + 1) if s not in taken][:count]
        self._notify(service, f"Scaling out from {before} to {before + len(slots)} instances ({reason}).")
        check = _health_check(service)
        results = await asyncio.gather(
            *(self._start_one(service, revision, slot, check, _discard) for slot in slots), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        for record in self._records(service):
            if record.slot in slots and record.status != ACTIVE:
                await self._retire(service, record)  # a start that failed leaves nothing behind
        if failures:
            detail = failures[0].message if isinstance(failures[0], DeploymentFailed) else str(failures[0])
            self._notify(service, f"{len(failures)} new instance(s) did not start: {detail}")
        else:
            self._notify(service, f"Scaled out: {before + len(slots)} instances are healthy and provisioned.")

    async def _scale_in(self, service: Service, records: list[InstanceRecord], count: int, reason: str) -> None:
        # Standby instances go first (they serve nothing), then the newest.
        order = sorted(records, key=lambda r: (r.instance_id not in self._standby, -r.slot))
        surplus = order[:count]
        self._notify(service, f"Scaling in from {len(records)} to {len(records) - count} instances ({reason}).")
        await asyncio.gather(*(self._retire(service, record, drain=True) for record in surplus))

    async def _activate(self, service: Service, active: int) -> None:
        """The first `active` instances (by slot, healthy ones first) serve; the others stand by."""
        backend = pool_backend(service.pool)
        up = {state.slot: state.up for state in await self._router.slot_states(backend)}
        records = sorted(self._records(service), key=lambda r: (not up.get(r.slot, False), r.slot))
        serving, standby = records[:active], records[active:]
        changed = 0
        for record in serving:
            if record.instance_id in self._standby:
                await self._router.activate_slot(backend, record.slot)
                self._standby.discard(record.instance_id)
                changed += 1
        for record in standby:
            if record.instance_id not in self._standby:
                await self._router.drain_slot(backend, record.slot)
                self._standby.add(record.instance_id)
                changed += 1
        if changed:
            self._notify(
                service, f"{len(serving)} of {len(records)} provisioned instances active, {len(standby)} on standby."
            )

    async def set_max_concurrency(self, service: Service, max_concurrency: int) -> None:
        """A new MaxConcurrency takes effect on the running instances at once."""
        backend = pool_backend(service.pool)
        for record in self._records(service):
            await self._router.set_slot_maxconn(backend, record.slot, max_concurrency)

    # -- stopping ----------------------------------------------------------------------------------

    async def stop_service(self, service: Service) -> None:
        """Drain every instance of the service (in-flight requests finish), then stop it and forget it."""
        async with self._lock(service):
            await self._stop_all(service, drain=True)

    async def remove_service(self, service: Service) -> None:
        async with self._lock(service):
            await self._stop_all(service, drain=True)
            await self._router.remove_host(self.host(service))
        self._locks.pop(service.arn, None)

    async def _stop_all(self, service: Service, *, drain: bool = False) -> None:
        await asyncio.gather(*(self._retire(service, r, drain=drain) for r in self._records(service)))

    async def _retire(self, service: Service, record: InstanceRecord, *, drain: bool = False) -> None:
        self._cancel_monitor(record.instance_id)
        self._standby.discard(record.instance_id)
        backend = pool_backend(service.pool)
        with contextlib.suppress(Exception):  # the slot may never have been enabled
            if drain:
                await self._router.drain_slot(backend, record.slot)
                await self._drained(backend, record.slot)
            await self._router.disable_slot(backend, record.slot)
        await self._backend.stop(record.instance_id, grace=self._settings.stop_grace)
        with self._store.write() as uow:
            uow.repo(InstanceRecord).remove(record.instance_id)

    async def _drained(self, backend: str, slot: int) -> None:
        """Wait (at most stop_grace) until the slot has no request in progress or queued."""
        deadline = self._clock.now() + self._settings.stop_grace
        while self._clock.now() < deadline:
            states = {state.slot: state for state in await self._router.slot_states(backend)}
            state = states.get(slot)
            if state is None or (state.stats.scur == 0 and state.stats.qcur == 0):
                return
            await asyncio.sleep(DRAIN_POLL)

    async def close(self) -> None:
        """Runyard stops: stop monitoring and every instance; the records stay, so restore() restarts them."""
        for instance_id in list(self._monitors):
            self._cancel_monitor(instance_id)
        for task in list(self._healing):
            task.cancel()
        with self._store.read() as uow:
            records = uow.repo(InstanceRecord).find(account=self._settings.account)
        await asyncio.gather(
            *(self._backend.stop(r.instance_id, grace=self._settings.stop_grace) for r in records),
            return_exceptions=True,
        )

    # -- after a restart ---------------------------------------------------------------------------

    async def restore(self, service: Service, revision: Revision) -> None:
        """Re-adopt the service's instances that still run; replace the others (same slot, same revision)."""
        async with self._lock(service):
            await self._restore(service, revision)

    async def _restore(self, service: Service, revision: Revision) -> None:
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
        wanted = self._wanted(service)
        taken = {r.slot for r in self._records(service)}
        for slot in [s for s in range(1, self._settings.slots_per_backend + 1) if s not in taken][
            : max(0, wanted - len(taken))
        ]:
            await self._start_one(service, revision, slot, check, _discard)

    # -- helpers -----------------------------------------------------------------------------------

    def _lock(self, service: Service) -> asyncio.Lock:
        return self._locks.setdefault(service.arn, asyncio.Lock())

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


def _ended(state: InstanceState) -> str:
    if state.oom_killed:
        return "it ran out of memory"
    if state.signal is not None:
        return f"it was killed by signal {state.signal}"
    if state.exit_code is not None:
        return f"it exited with code {state.exit_code}"
    return "it exited"


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
