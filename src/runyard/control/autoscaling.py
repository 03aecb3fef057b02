"""Auto scaling configurations: revisions per name, one default per region, usage by services."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from runyard.control import revisions
from runyard.control.arns import read_arn
from runyard.control.context import Deps, Scope
from runyard.control.model.apprunner import (
    ACTIVE,
    INACTIVE,
    REVISION_TRANSITIONS,
    AutoScalingConfiguration,
    RegionSeed,
)
from runyard.control.model.service import Service
from runyard.control.ports import Tag, UnitOfWork
from runyard.control.tags import check_new_tags
from runyard.errors import InUse, InvalidInput, NotFound
from runyard.ids import apprunner_arn

DEFAULT_NAME = "DefaultConfiguration"
DEFAULT_MAX_CONCURRENCY = 100
DEFAULT_MIN_SIZE = 1
DEFAULT_MAX_SIZE = 25
_LABEL = "Auto scaling configuration"


@dataclass(frozen=True, slots=True)
class AutoScalingView:
    """A configuration with the facts computed from its neighbours."""

    config: AutoScalingConfiguration
    latest: bool
    has_associated_service: bool


class AutoScaling:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    # -- provided resources -------------------------------------------------------------------

    def ensure_region(self, scope: Scope) -> None:
        """Create the region's DefaultConfiguration (revision 1) the first time the region is used."""
        with self._deps.store.read() as uow:
            if uow.repo(RegionSeed).get(RegionSeed(scope.account, scope.region, 0).key) is not None:
                return
        with self._deps.store.write() as uow:
            self.seed(uow, scope)

    def seed(self, uow: UnitOfWork, scope: Scope) -> None:
        seeds = uow.repo(RegionSeed)
        now = self._deps.clock.now()
        marker = RegionSeed(scope.account, scope.region, now)
        if seeds.get(marker.key) is not None:
            return
        seeds.add(marker)
        uow.repo(AutoScalingConfiguration).add(
            AutoScalingConfiguration(
                arn=apprunner_arn(
                    scope.region,
                    scope.account,
                    "autoscalingconfiguration",
                    DEFAULT_NAME,
                    1,
                    self._deps.ids.hex32(),
                ),
                name=DEFAULT_NAME,
                revision=1,
                generation=1,
                account=scope.account,
                region=scope.region,
                max_concurrency=DEFAULT_MAX_CONCURRENCY,
                min_size=DEFAULT_MIN_SIZE,
                max_size=DEFAULT_MAX_SIZE,
                status=ACTIVE,
                created_at=now,
                is_default=True,
            )
        )

    # -- commands -------------------------------------------------------------------------------

    def create(
        self,
        scope: Scope,
        *,
        name: str,
        max_concurrency: int | None,
        min_size: int | None,
        max_size: int | None,
        tags: list[Tag],
    ) -> AutoScalingView:
        deps = self._deps
        concurrency = DEFAULT_MAX_CONCURRENCY if max_concurrency is None else max_concurrency
        low = DEFAULT_MIN_SIZE if min_size is None else min_size
        high = DEFAULT_MAX_SIZE if max_size is None else max_size
        if high > deps.quotas.max_instances:
            raise InvalidInput(f"MaxSize must be at most {deps.quotas.max_instances}, got {high}.")
        if low > high:
            raise InvalidInput(f"MinSize ({low}) must not be greater than MaxSize ({high}).")
        check_new_tags(deps, tags)
        self.ensure_region(scope)
        with deps.store.write() as uow:
            repo = uow.repo(AutoScalingConfiguration)
            everything = repo.find(account=scope.account, region=scope.region)
            generation, revision = revisions.plan_revision(
                everything,
                name,
                names_quota=deps.quotas.auto_scaling_names,
                revisions_quota=deps.quotas.auto_scaling_revisions,
                label="auto scaling configuration",
                provided=frozenset({DEFAULT_NAME}),
            )
            config = AutoScalingConfiguration(
                arn=apprunner_arn(
                    scope.region, scope.account, "autoscalingconfiguration", name, revision, deps.ids.hex32()
                ),
                name=name,
                revision=revision,
                generation=generation,
                account=scope.account,
                region=scope.region,
                max_concurrency=concurrency,
                min_size=low,
                max_size=high,
                status=ACTIVE,
                created_at=deps.clock.now(),
            )
            repo.add(config)
            uow.tags.merge(AutoScalingConfiguration.KIND, config.key, tags)
            return self._view(uow, scope, config)

    def describe(self, scope: Scope, arn: str) -> AutoScalingView:
        self.ensure_region(scope)
        with self._deps.store.read() as uow:
            return self._view(uow, scope, self._resolve(uow, scope, arn))

    def set_default(self, scope: Scope, arn: str) -> AutoScalingView:
        self.ensure_region(scope)
        with self._deps.store.write() as uow:
            repo = uow.repo(AutoScalingConfiguration)
            target = self._resolve(uow, scope, arn, active_only=True)
            for config in repo.find(account=scope.account, region=scope.region):
                if config.is_default and config.arn != target.arn:
                    repo.save(dataclasses.replace(config, is_default=False))
            target = dataclasses.replace(target, is_default=True)
            repo.save(target)
            return self._view(uow, scope, target)

    def delete(self, scope: Scope, arn: str, *, all_revisions: bool) -> AutoScalingView:
        self.ensure_region(scope)
        ref = read_arn(scope, arn, "autoscalingconfiguration", label=_LABEL)
        if all_revisions and len(ref.parts) != 1:
            raise InvalidInput(
                "DeleteAllRevisions requires an auto scaling configuration ARN that ends with the name "
                "(…:autoscalingconfiguration/<name>), without a revision."
            )
        with self._deps.store.write() as uow:
            repo = uow.repo(AutoScalingConfiguration)
            if all_revisions:
                same_name = repo.find(account=scope.account, region=scope.region, name=ref.parts[0])
                doomed = sorted(revisions.active(same_name), key=lambda c: c.revision)
                if not doomed:
                    self._resolve(uow, scope, arn, active_only=True)  # raises NotFound
            else:
                doomed = [self._resolve(uow, scope, arn, active_only=True)]
            for config in doomed:
                self._check_deletable(uow, scope, config)
            now = self._deps.clock.now()
            deleted = [
                dataclasses.replace(c, status=REVISION_TRANSITIONS.check(c.status, INACTIVE), deleted_at=now)
                for c in doomed
            ]
            for config in deleted:
                repo.save(config)
            return self._view(uow, scope, deleted[-1])

    # -- queries --------------------------------------------------------------------------------

    def find_all(self, scope: Scope, *, name: str | None, latest_only: bool) -> list[AutoScalingView]:
        self.ensure_region(scope)
        with self._deps.store.read() as uow:
            everything = uow.repo(AutoScalingConfiguration).find(account=scope.account, region=scope.region)
            users = self._users_by_config(uow, scope)
        return [
            AutoScalingView(config, latest, bool(users.get(config.arn)))
            for config, latest in revisions.listing(everything, name=name, latest_only=latest_only)
        ]

    def services_using(self, scope: Scope, arn: str) -> list[str]:
        self.ensure_region(scope)
        with self._deps.store.read() as uow:
            config = self._resolve(uow, scope, arn)
            return self._users_by_config(uow, scope).get(config.arn, [])

    def resolve_for_service(self, uow: UnitOfWork, scope: Scope, arn: str | None) -> AutoScalingConfiguration:
        """The active configuration a new service gets: the given ARN (partial allowed) or the default."""
        if arn is not None:
            return self._resolve(uow, scope, arn, active_only=True)
        configs = uow.repo(AutoScalingConfiguration).find(account=scope.account, region=scope.region)
        default = next((c for c in revisions.active(configs) if c.is_default), None)
        if default is None:
            raise InvalidInput("There is no default auto scaling configuration; set one first.")
        return default

    # -- helpers --------------------------------------------------------------------------------

    def _resolve(
        self, uow: UnitOfWork, scope: Scope, arn: str, *, active_only: bool = False
    ) -> AutoScalingConfiguration:
        ref = read_arn(scope, arn, "autoscalingconfiguration", label=_LABEL)
        same_name = uow.repo(AutoScalingConfiguration).find(
            account=scope.account, region=scope.region, name=ref.parts[0]
        )
        found = revisions.resolve(ref, same_name, label=_LABEL)
        if active_only and found.status != ACTIVE:
            raise NotFound(f"{_LABEL} not found: {arn} (it was deleted)")
        return found

    def _users_by_config(self, uow: UnitOfWork, scope: Scope) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for service in uow.repo(Service).find(account=scope.account, region=scope.region):
            if service.live:
                users.setdefault(service.auto_scaling_configuration_arn, []).append(service.arn)
        return users

    def _view(self, uow: UnitOfWork, scope: Scope, config: AutoScalingConfiguration) -> AutoScalingView:
        same_name = uow.repo(AutoScalingConfiguration).find(
            account=scope.account, region=scope.region, name=config.name
        )
        latest = config.arn in revisions.latest_arns(same_name)
        used = bool(self._users_by_config(uow, scope).get(config.arn))
        return AutoScalingView(config, latest, used)

    def _check_deletable(self, uow: UnitOfWork, scope: Scope, config: AutoScalingConfiguration) -> None:
        if config.is_default:
            raise InvalidInput(
                f"{config.arn} is the default auto scaling configuration; make another one the default first."
            )
        users = self._users_by_config(uow, scope).get(config.arn)
        if users:
            raise InUse(f"{config.arn} is used by services: {', '.join(users)}.")
