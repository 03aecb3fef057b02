"""Samples App Runner's metrics every interval from HAProxy's stats and the runtime, and stores them.

Service metrics come from the service's pool backend: its BACKEND row counts every request the service's host
received, including the ones the activator answered (503 while paused or starting), as App Runner counts them.
RequestLatency is HAProxy's per-server average total time (over its last 1024 requests) weighted by the requests
each server answered in the interval: the closest HAProxy's counters get to a per-request latency.
ActiveInstances is the number of the service's slots that are READY and up (standby slots are DRAIN).
CPUUtilization and MemoryUtilization are per instance, against the service's InstanceConfiguration.

HAProxy's counters are cumulative since it started: each interval stores the difference. A counter that went
down means HAProxy restarted, and its value is what was counted since. A pool backend keeps counting when a
later service takes it over, so the counters are followed per backend and every interval goes to the service
that owns the backend then. The collector starts right after HAProxy (a fresh HAProxy counts from zero) and
collects once more when it stops, so a graceful restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass, field

from runyard.clock import Clock
from runyard.control.context import Scope
from runyard.control.model.instance import InstanceRecord
from runyard.control.model.service import Service
from runyard.control.ports import Store
from runyard.dataplane.haproxy import POOL_PREFIX, HAProxyRuntime, SlotAdmin, StatRow, pool_backend
from runyard.observe import metrics as m
from runyard.observe.prometheus import InstanceSample, ServiceSample, Snapshot
from runyard.runtime.base import InstanceNotFound, RuntimeBackend

log = logging.getLogger(__name__)
_BACKEND_ROW = 1
_SERVER_ROW = 2
_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    account: str
    interval: float = 10.0  # seconds; the 10 s resolution needs one sample per bucket
    retention: m.Retention = field(default_factory=m.Retention)
    prune_every: float = 600.0


@dataclass(frozen=True, slots=True)
class _Counters:
    requests: int
    status_2xx: int
    status_4xx: int
    status_5xx: int

    @classmethod
    def of(cls, row: StatRow) -> _Counters:
        return cls(row.req_tot, row.hrsp_2xx, row.hrsp_4xx, row.hrsp_5xx)

    def since(self, before: _Counters | None) -> _Counters:
        """The increase since `before`; a counter that went down restarted from zero."""
        if before is None:
            return self

        def delta(now: int, then: int) -> int:
            return now - then if now >= then else now

        return _Counters(
            delta(self.requests, before.requests),
            delta(self.status_2xx, before.status_2xx),
            delta(self.status_4xx, before.status_4xx),
            delta(self.status_5xx, before.status_5xx),
        )


@dataclass
class _ServiceTotals:
    """Counters since Runyard started, for /metrics (Prometheus expects counters to reset on restarts)."""

    requests: int = 0
    status_2xx: int = 0
    status_4xx: int = 0
    status_5xx: int = 0
    latency_ms_sum: float = 0.0
    latency_count: int = 0


class MetricsCollector:
    def __init__(
        self,
        *,
        store: Store,
        metrics: m.MetricStore,
        router: HAProxyRuntime,
        backend: RuntimeBackend,
        clock: Clock,
        settings: CollectorSettings,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._router = router
        self._backend = backend
        self._clock = clock
        self._settings = settings
        # Baselines: zero for everything HAProxy counts, as it was just started.
        self._counters: dict[tuple[str, str], _Counters] = {}  # (backend, server or BACKEND)
        self._cpu: dict[str, tuple[float, float]] = {}  # instance id -> (cpu seconds, when)
        self._totals: dict[str, _ServiceTotals] = {}  # service ARN
        self._snapshot = Snapshot()
        self._last: float | None = None
        self._last_prune = 0.0
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._stop.clear()
        self._last = self._clock.now()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop sampling after one last collection of the interval so far."""
        if self._task is None:
            return
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        interval = self._settings.interval
        while True:
            now = self._clock.now()
            # Ticks on whole multiples of the interval: each interval fills exactly one 10 s bucket.
            delay = (math.floor(now / interval) + 1) * interval - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            try:
                await self.collect()
            except Exception:
                log.exception("metrics collection failed; trying again next interval")
            if self._stop.is_set():
                return

    def snapshot(self) -> Snapshot:
        """The latest values for /metrics."""
        return self._snapshot

    # -- one interval --------------------------------------------------------------------------------

    async def collect(self) -> int:
        """Sample everything once, store the interval's points in one transaction; return how many."""
        async with self._lock:
            now = self._clock.now()
            started = self._last if self._last is not None else now
            services = await asyncio.to_thread(self._live_services)
            rows = await self._router.stats()
            by_backend: dict[str, list[StatRow]] = {}
            for row in rows:
                if row.pxname.startswith(POOL_PREFIX):
                    by_backend.setdefault(row.pxname, []).append(row)
            owners = {pool_backend(service.pool): (service, instances) for service, instances in services}
            points: list[m.Point] = []
            counters: dict[tuple[str, str], _Counters] = {}
            service_samples: list[ServiceSample] = []
            instance_samples: list[InstanceSample] = []
            cpu: dict[str, tuple[float, float]] = {}
            for backend, backend_rows in by_backend.items():
                deltas: dict[str, _Counters] = {}
                for row in backend_rows:
                    if row.type not in (_BACKEND_ROW, _SERVER_ROW):
                        continue
                    key = (backend, row.svname)
                    counters[key] = _Counters.of(row)
                    deltas[row.svname] = counters[key].since(self._counters.get(key))
                owner = owners.get(backend)
                if owner is None:
                    continue  # a free backend: nobody's requests (its baselines are still followed)
                service, instances = owner
                scope = Scope(service.account, service.region)
                dims = m.service_dimensions(service.name, service.service_id)
                bucket_time = started
                total = deltas.get("BACKEND", _Counters(0, 0, 0, 0))
                observed = {
                    m.REQUESTS: total.requests,
                    m.STATUS_2XX: total.status_2xx,
                    m.STATUS_4XX: total.status_4xx,
                    m.STATUS_5XX: total.status_5xx,
                }
                for metric, value in observed.items():
                    points += m.points_for(scope, metric, dims, bucket_time, m.Aggregate.of(float(value)))
                latency = m.merge_all(
                    m.Aggregate.weighted(float(row.ttime), float(deltas[row.svname].requests))
                    for row in backend_rows
                    if row.type == _SERVER_ROW and deltas[row.svname].requests > 0
                )
                if latency is not None:
                    points += m.points_for(scope, m.REQUEST_LATENCY, dims, bucket_time, latency)
                slots = await self._router.slot_states(backend)
                active = sum(1 for slot in slots if slot.admin is SlotAdmin.READY and slot.up)
                points += m.points_for(scope, m.ACTIVE_INSTANCES, dims, bucket_time, m.Aggregate.of(float(active)))
                totals = self._totals.setdefault(service.arn, _ServiceTotals())
                service_samples.append(self._service_sample(service, total, latency, active, totals))
                for record in instances:
                    sample = await self._instance(service, record, now, cpu)
                    if sample is None:
                        continue
                    instance_samples.append(sample)
                    idims = m.instance_dimensions(service.name, service.service_id, record.instance_id)
                    if sample.cpu_percent is not None:
                        aggregate = m.Aggregate.of(sample.cpu_percent)
                        points += m.points_for(scope, m.CPU_UTILIZATION, idims, bucket_time, aggregate)
                    aggregate = m.Aggregate.of(sample.memory_percent)
                    points += m.points_for(scope, m.MEMORY_UTILIZATION, idims, bucket_time, aggregate)
            await asyncio.to_thread(self._metrics.add, points)
            # Only once the points are stored do the baselines move on: a failed write is counted again.
            self._counters = counters
            self._cpu = cpu
            self._last = now
            live = {service.arn for service, _ in services}
            self._totals = {arn: totals for arn, totals in self._totals.items() if arn in live}
            self._snapshot = Snapshot(tuple(service_samples), tuple(instance_samples))
            if now - self._last_prune >= self._settings.prune_every:
                self._last_prune = now
                removed = await asyncio.to_thread(self._metrics.prune, self._settings.retention.cutoffs(now))
                if removed:
                    log.debug("pruned %d metric buckets past their retention", removed)
            return len(points)

    def _live_services(self) -> list[tuple[Service, list[InstanceRecord]]]:
        with self._store.read() as uow:
            services = [s for s in uow.repo(Service).find(account=self._settings.account) if s.live]
            return [
                (s, uow.repo(InstanceRecord).find(account=s.account, region=s.region, name=s.arn)) for s in services
            ]

    def _service_sample(
        self, service: Service, delta: _Counters, latency: m.Aggregate | None, active: int, totals: _ServiceTotals
    ) -> ServiceSample:
        totals.requests += delta.requests
        totals.status_2xx += delta.status_2xx
        totals.status_4xx += delta.status_4xx
        totals.status_5xx += delta.status_5xx
        if latency is not None:
            totals.latency_ms_sum += latency.total
            totals.latency_count += int(latency.count)
        return ServiceSample(
            region=service.region,
            service_name=service.name,
            service_id=service.service_id,
            requests=totals.requests,
            status_2xx=totals.status_2xx,
            status_4xx=totals.status_4xx,
            status_5xx=totals.status_5xx,
            latency_ms_sum=totals.latency_ms_sum,
            latency_count=totals.latency_count,
            active_instances=active,
        )

    async def _instance(
        self, service: Service, record: InstanceRecord, now: float, cpu: dict[str, tuple[float, float]]
    ) -> InstanceSample | None:
        try:
            usage = await self._backend.usage(record.instance_id)
        except InstanceNotFound:
            return None  # not started yet, or already stopped
        cpu[record.instance_id] = (usage.cpu_seconds, now)
        before = self._cpu.get(record.instance_id)
        cpu_percent = None
        if before is not None and now > before[1] and usage.cpu_seconds >= before[0]:
            vcpus = service.spec.instance.cpu / 1024
            cpu_percent = 100.0 * (usage.cpu_seconds - before[0]) / ((now - before[1]) * vcpus)
        memory_percent = 100.0 * usage.memory_bytes / (service.spec.instance.memory * _MIB)
        return InstanceSample(
            region=service.region,
            service_name=service.name,
            service_id=service.service_id,
            instance_id=record.instance_id,
            cpu_percent=cpu_percent,
            memory_percent=memory_percent,
        )
