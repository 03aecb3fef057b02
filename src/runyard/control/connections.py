"""App Runner connections (GITHUB, BITBUCKET): created PENDING_HANDSHAKE, deleted outright."""

from __future__ import annotations

import dataclasses

from runyard.control.arns import read_arn
from runyard.control.context import Deps, Scope
from runyard.control.model.apprunner import CONNECTION_TRANSITIONS, Connection
from runyard.control.model.service import Service
from runyard.control.ports import Tag
from runyard.control.tags import check_new_tags
from runyard.errors import AlreadyExists, InUse, NotFound, QuotaExceeded
from runyard.ids import apprunner_arn


class Connections:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def create(self, scope: Scope, *, name: str, provider_type: str, tags: list[Tag]) -> Connection:
        deps = self._deps
        check_new_tags(deps, tags)
        with deps.store.write() as uow:
            repo = uow.repo(Connection)
            existing = repo.find(account=scope.account, region=scope.region)
            if any(c.name == name for c in existing):
                raise AlreadyExists(f"A connection named {name!r} already exists in {scope.region}.")
            if len(existing) >= deps.quotas.connections:
                raise QuotaExceeded(
                    f"You have reached the quota of {deps.quotas.connections} connections in {scope.region}. "
                    "Delete a connection before you create another."
                )
            connection = Connection(
                arn=apprunner_arn(scope.region, scope.account, "connection", name, deps.ids.hex32()),
                name=name,
                account=scope.account,
                region=scope.region,
                provider_type=provider_type,
                status="PENDING_HANDSHAKE",
                created_at=deps.clock.now(),
            )
            repo.add(connection)
            uow.tags.merge(Connection.KIND, connection.key, tags)
            return connection

    def find_all(self, scope: Scope, *, name: str | None = None) -> list[Connection]:
        with self._deps.store.read() as uow:
            return uow.repo(Connection).find(account=scope.account, region=scope.region, name=name)

    def get(self, scope: Scope, arn: str) -> Connection:
        read_arn(scope, arn, "connection", label="Connection")
        with self._deps.store.read() as uow:
            connection = uow.repo(Connection).get(arn)
        if connection is None:
            raise NotFound(f"Connection not found: {arn}")
        return connection

    def delete(self, scope: Scope, arn: str) -> Connection:
        read_arn(scope, arn, "connection", label="Connection")
        with self._deps.store.write() as uow:
            repo = uow.repo(Connection)
            connection = repo.get(arn)
            if connection is None:
                raise NotFound(f"Connection not found: {arn}")
            users = [
                s.name
                for s in uow.repo(Service).find(account=scope.account, region=scope.region)
                if s.live and s.connection_arn == arn
            ]
            if users:
                raise InUse(f"The connection is used by services {', '.join(users)}; delete them first.")
            repo.remove(arn)
            return dataclasses.replace(connection, status=CONNECTION_TRANSITIONS.check(connection.status, "DELETED"))
