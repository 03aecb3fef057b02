"""The autoscaler's view of the fleet: running services, their concurrency in HAProxy, and scaling them.

Concurrency is what HAProxy holds for the service right now: requests in flight on its slots plus those queued
(per slot and in the backend queue, where requests wait while every instance is at MaxConcurrency).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from runyard.autoscale.decider import Decision, ScalingPolicy
from runyard.autoscale.scaler import Target
from runyard.control.model.apprunner import AutoScalingConfiguration
from runyard.control.model.service import RUNNING, Service
from runyard.control.ports import Store
from runyard.dataplane.haproxy import SLOT_PREFIX, HAProxyError, HAProxyRuntime, pool_backend
from runyard.workloads.fleet import Fleet

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScalingTuning:
    """Knative-style knobs App Runner does not expose; operators may change them in Settings."""

    stable_window: float = 60.0
    scale_down_delay: float = 0.0
    target_utilization: float = 0.7


class FleetScaling:
    def __init__(
        self, *, fleet: Fleet, router: HAProxyRuntime, store: Store, account: str, tuning: ScalingTuning
    ) -> None:
        self._fleet = fleet
        self._router = router
        self._store = store
        self._account = account
        self._tuning = tuning
        self._services: dict[str, Service] = {}

    async def targets(self) -> list[Target]:
        with self._store.read() as uow:
            found = uow.repo(Service).find(account=self._account)
            services = [s for s in found if s.status == RUNNING and s.revision is not None]
            scaling = uow.repo(AutoScalingConfiguration)
            configs = {s.arn: scaling.get(s.auto_scaling_configuration_arn) for s in services}
        targets: list[Target] = []
        self._services = {}
        for service in services:
            config = configs[service.arn]
            if config is None or self._fleet.busy(service):
                continue
            provisioned, active = self._fleet.counts(service)
            if provisioned == 0:
                continue  # instances are being replaced; self-healing owns the service for now
            self._services[service.arn] = service
            targets.append(Target(service.arn, self._policy(config), provisioned, active))
        return targets

    def _policy(self, config: AutoScalingConfiguration) -> ScalingPolicy:
        capacity = self._fleet.capacity
        max_size = max(1, min(config.max_size, capacity))
        return ScalingPolicy(
            max_concurrency=config.max_concurrency,
            min_size=min(config.min_size, max_size),
            max_size=max_size,
            target_utilization=self._tuning.target_utilization,
            stable_window=self._tuning.stable_window,
            scale_down_delay=self._tuning.scale_down_delay,
        )

    async def concurrency(self, target: Target) -> float | None:
        service = self._services.get(target.key)
        if service is None:
            return None
        backend = pool_backend(service.pool)
        try:
            rows = await self._router.stats(backend)
        except (HAProxyError, OSError):
            return None  # HAProxy is restarting: no sample rather than a false zero
        total = 0
        stale_limit = False
        for row in rows:
            if row.svname == "BACKEND":
                total += row.qcur
            elif row.svname.startswith(SLOT_PREFIX):
                total += row.scur + row.qcur
                serving = not row.status.startswith("MAINT")
                if serving and row.slim not in (None, target.policy.max_concurrency):
                    stale_limit = True
        if stale_limit:
            await self._fleet.set_max_concurrency(service, target.policy.max_concurrency)
        return float(total)

    async def apply(self, target: Target, decision: Decision) -> None:
        service = self._services.get(target.key)
        if service is not None:
            await self._fleet.scale(service, decision.desired, decision.active, decision.reason)
