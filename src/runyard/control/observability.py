"""Observability configurations: revisioned like auto scaling, tracing vendor only.

They are stored and returned faithfully; Runyard does not export traces yet (docs/compatibility.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from runyard.control import revisions
from runyard.control.arns import read_arn
from runyard.control.context import Deps, Scope
from runyard.control.model.apprunner import ACTIVE, INACTIVE, REVISION_TRANSITIONS, ObservabilityConfiguration
from runyard.control.model.service import Service
from runyard.control.ports import Tag, UnitOfWork
from runyard.control.tags import check_new_tags
from runyard.errors import InUse, InvalidInput, NotFound
from runyard.ids import apprunner_arn

RESERVED_NAME = "DefaultConfiguration"
_LABEL = "Observability configuration"


@dataclass(frozen=True, slots=True)
class ObservabilityView:
    config: ObservabilityConfiguration
    latest: bool


class Observability:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def create(self, scope: Scope, *, name: str, trace_vendor: str | None, tags: list[Tag]) -> ObservabilityView:
        deps = self._deps
        if name == RESERVED_NAME:
            raise InvalidInput(f"The name {RESERVED_NAME!r} is reserved by App Runner.")
        check_new_tags(deps, tags)
        with deps.store.write() as uow:
            repo = uow.repo(ObservabilityConfiguration)
            everything = repo.find(account=scope.account, region=scope.region)
            generation, revision = revisions.plan_revision(
                everything,
                name,
                names_quota=deps.quotas.observability_names,
                revisions_quota=deps.quotas.observability_revisions,
                label="observability configuration",
            )
            config = ObservabilityConfiguration(
                arn=apprunner_arn(
                    scope.region,
                    scope.account,
                    "observabilityconfiguration",
                    name,
                    revision,
                    deps.ids.hex32(),
                ),
                name=name,
                revision=revision,
                generation=generation,
                account=scope.account,
                region=scope.region,
                status=ACTIVE,
                created_at=deps.clock.now(),
                trace_vendor=trace_vendor,
            )
            repo.add(config)
            uow.tags.merge(ObservabilityConfiguration.KIND, config.key, tags)
            return ObservabilityView(config, latest=True)

    def describe(self, scope: Scope, arn: str) -> ObservabilityView:
        with self._deps.store.read() as uow:
            return self._view(uow, scope, self.resolve(uow, scope, arn))

    def delete(self, scope: Scope, arn: str) -> ObservabilityView:
        with self._deps.store.write() as uow:
            config = self.resolve(uow, scope, arn, active_only=True)
            users = [
                s.arn
                for s in uow.repo(Service).find(account=scope.account, region=scope.region)
                if s.live and s.observability_configuration_arn == config.arn
            ]
            if users:
                raise InUse(f"{config.arn} is used by services: {', '.join(users)}.")
            deleted = dataclasses.replace(
                config,
                status=REVISION_TRANSITIONS.check(config.status, INACTIVE),
                deleted_at=self._deps.clock.now(),
            )
            uow.repo(ObservabilityConfiguration).save(deleted)
            return self._view(uow, scope, deleted)

    def find_all(self, scope: Scope, *, name: str | None, latest_only: bool) -> list[ObservabilityView]:
        with self._deps.store.read() as uow:
            everything = uow.repo(ObservabilityConfiguration).find(account=scope.account, region=scope.region)
        return [
            ObservabilityView(config, latest)
            for config, latest in revisions.listing(everything, name=name, latest_only=latest_only)
        ]

    def resolve(
        self, uow: UnitOfWork, scope: Scope, arn: str, *, active_only: bool = False
    ) -> ObservabilityConfiguration:
        ref = read_arn(scope, arn, "observabilityconfiguration", label=_LABEL)
        same_name = uow.repo(ObservabilityConfiguration).find(
            account=scope.account, region=scope.region, name=ref.parts[0]
        )
        found = revisions.resolve(ref, same_name, label=_LABEL)
        if active_only and found.status != ACTIVE:
            raise NotFound(f"{_LABEL} not found: {arn} (it was deleted)")
        return found

    def _view(self, uow: UnitOfWork, scope: Scope, config: ObservabilityConfiguration) -> ObservabilityView:
        same_name = uow.repo(ObservabilityConfiguration).find(
            account=scope.account, region=scope.region, name=config.name
        )
        return ObservabilityView(config, config.arn in revisions.latest_arns(same_name))
