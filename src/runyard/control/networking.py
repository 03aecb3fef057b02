"""VPC connectors and VPC ingress connections.

Stored and returned faithfully with their lifecycle; Runyard runs no VPCs, so they have no
networking effect (docs/compatibility.md). With no network work to wait for, a new ingress
connection is AVAILABLE at once and a deleted one DELETED at once.
"""

from __future__ import annotations

import dataclasses

from runyard.control.arns import read_arn
from runyard.control.context import Deps, Scope
from runyard.control.model.apprunner import (
    ACTIVE,
    INACTIVE,
    REVISION_TRANSITIONS,
    VPC_INGRESS_DELETABLE,
    VPC_INGRESS_TRANSITIONS,
    VPC_INGRESS_UPDATABLE,
    VpcConnector,
    VpcIngressConnection,
)
from runyard.control.model.service import Service
from runyard.control.ports import Tag, UnitOfWork
from runyard.control.tags import check_new_tags
from runyard.errors import AlreadyExists, InUse, InvalidInput, InvalidState, NotFound, QuotaExceeded
from runyard.ids import apprunner_arn


class VpcConnectors:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def create(
        self, scope: Scope, *, name: str, subnets: list[str], security_groups: list[str], tags: list[Tag]
    ) -> VpcConnector:
        deps = self._deps
        if not subnets:
            raise InvalidInput("Subnets must name at least one subnet.")
        check_new_tags(deps, tags)
        with deps.store.write() as uow:
            repo = uow.repo(VpcConnector)
            live = [c for c in repo.find(account=scope.account, region=scope.region) if c.status == ACTIVE]
            if any(c.name == name for c in live):
                # App Runner supports one active revision per VPC connector name.
                raise AlreadyExists(f"An active VPC connector named {name!r} already exists.")
            if len(live) >= deps.quotas.vpc_connectors:
                raise QuotaExceeded(f"You have reached the quota of {deps.quotas.vpc_connectors} VPC connectors.")
            connector = VpcConnector(
                arn=apprunner_arn(scope.region, scope.account, "vpcconnector", name, 1, deps.ids.hex32()),
                name=name,
                revision=1,
                account=scope.account,
                region=scope.region,
                subnets=tuple(subnets),
                security_groups=tuple(security_groups),
                status=ACTIVE,
                created_at=deps.clock.now(),
            )
            repo.add(connector)
            uow.tags.merge(VpcConnector.KIND, connector.key, tags)
            return connector

    def describe(self, scope: Scope, arn: str) -> VpcConnector:
        with self._deps.store.read() as uow:
            return self.get(uow, scope, arn)

    def delete(self, scope: Scope, arn: str) -> VpcConnector:
        with self._deps.store.write() as uow:
            connector = self.get(uow, scope, arn)
            if connector.status != ACTIVE:
                raise NotFound(f"VPC connector not found: {arn} (it was deleted)")
            users = [
                s.arn
                for s in uow.repo(Service).find(account=scope.account, region=scope.region)
                if s.live and s.vpc_connector_arn == arn
            ]
            if users:
                raise InUse(f"The VPC connector is used by services: {', '.join(users)}.")
            deleted = dataclasses.replace(
                connector,
                status=REVISION_TRANSITIONS.check(connector.status, INACTIVE),
                deleted_at=self._deps.clock.now(),
            )
            uow.repo(VpcConnector).save(deleted)
            return deleted

    def find_all(self, scope: Scope) -> list[VpcConnector]:
        with self._deps.store.read() as uow:
            found = uow.repo(VpcConnector).find(account=scope.account, region=scope.region)
        return [c for c in found if c.status == ACTIVE]

    def get(self, uow: UnitOfWork, scope: Scope, arn: str) -> VpcConnector:
        # VPC connector ARNs must be full: …:vpcconnector/<name>/<revision>/<id>.
        ref = read_arn(scope, arn, "vpcconnector", label="VPC connector")
        connector = uow.repo(VpcConnector).get(arn) if len(ref.parts) == 3 else None
        if connector is None:
            raise NotFound(f"VPC connector not found: {arn}")
        return connector


class VpcIngressConnections:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def create(
        self,
        scope: Scope,
        *,
        service_arn: str,
        name: str,
        vpc_id: str | None,
        vpc_endpoint_id: str | None,
        tags: list[Tag],
    ) -> VpcIngressConnection:
        deps = self._deps
        if not vpc_id or not vpc_endpoint_id:
            raise InvalidInput("IngressVpcConfiguration needs both VpcId and VpcEndpointId.")
        check_new_tags(deps, tags)
        read_arn(scope, service_arn, "service", label="Service")
        with deps.store.write() as uow:
            service = uow.repo(Service).get(service_arn)
            if service is None or not service.live:
                raise NotFound(f"Service not found: {service_arn}")
            repo = uow.repo(VpcIngressConnection)
            live = [c for c in repo.find(account=scope.account, region=scope.region) if c.status != "DELETED"]
            if any(c.name == name for c in live):
                raise AlreadyExists(f"A VPC ingress connection named {name!r} already exists.")
            if len(live) >= deps.quotas.vpc_ingress_connections:
                raise QuotaExceeded(
                    f"You have reached the quota of {deps.quotas.vpc_ingress_connections} VPC ingress connections."
                )
            connection = VpcIngressConnection(
                arn=apprunner_arn(scope.region, scope.account, "vpcingressconnection", name, deps.ids.hex32()),
                name=name,
                account=scope.account,
                region=scope.region,
                service_arn=service_arn,
                vpc_id=vpc_id,
                vpc_endpoint_id=vpc_endpoint_id,
                domain_name=f"{deps.ids.label(10)}.{vpc_endpoint_id}.{scope.region}.{deps.domain_suffix}",
                status=VPC_INGRESS_TRANSITIONS.check("PENDING_CREATION", "AVAILABLE"),
                created_at=deps.clock.now(),
            )
            repo.add(connection)
            uow.tags.merge(VpcIngressConnection.KIND, connection.key, tags)
            return connection

    def describe(self, scope: Scope, arn: str) -> VpcIngressConnection:
        with self._deps.store.read() as uow:
            return self._get(uow, scope, arn)

    def update(
        self, scope: Scope, arn: str, *, vpc_id: str | None, vpc_endpoint_id: str | None
    ) -> VpcIngressConnection:
        if not vpc_id or not vpc_endpoint_id:
            raise InvalidInput("IngressVpcConfiguration needs both VpcId and VpcEndpointId.")
        with self._deps.store.write() as uow:
            connection = self._get(uow, scope, arn)
            if connection.status not in VPC_INGRESS_UPDATABLE:
                raise InvalidState(f"A VPC ingress connection in status {connection.status} cannot be updated.")
            pending = VPC_INGRESS_TRANSITIONS.check(connection.status, "PENDING_UPDATE")
            updated = dataclasses.replace(
                connection,
                vpc_id=vpc_id,
                vpc_endpoint_id=vpc_endpoint_id,
                status=VPC_INGRESS_TRANSITIONS.check(pending, "AVAILABLE"),
            )
            uow.repo(VpcIngressConnection).save(updated)
            return updated

    def delete(self, scope: Scope, arn: str) -> VpcIngressConnection:
        with self._deps.store.write() as uow:
            connection = self._get(uow, scope, arn)
            if connection.status not in VPC_INGRESS_DELETABLE:
                raise InvalidState(f"A VPC ingress connection in status {connection.status} cannot be deleted.")
            pending = VPC_INGRESS_TRANSITIONS.check(connection.status, "PENDING_DELETION")
            deleted = dataclasses.replace(
                connection,
                status=VPC_INGRESS_TRANSITIONS.check(pending, "DELETED"),
                deleted_at=self._deps.clock.now(),
            )
            uow.repo(VpcIngressConnection).save(deleted)
            return deleted

    def find_all(
        self, scope: Scope, *, service_arn: str | None, vpc_endpoint_id: str | None
    ) -> list[VpcIngressConnection]:
        with self._deps.store.read() as uow:
            found = uow.repo(VpcIngressConnection).find(account=scope.account, region=scope.region)
        return [
            c
            for c in found
            if c.status != "DELETED"
            and (service_arn is None or c.service_arn == service_arn)
            and (vpc_endpoint_id is None or c.vpc_endpoint_id == vpc_endpoint_id)
        ]

    def _get(self, uow: UnitOfWork, scope: Scope, arn: str) -> VpcIngressConnection:
        read_arn(scope, arn, "vpcingressconnection", label="VPC ingress connection")
        connection = uow.repo(VpcIngressConnection).get(arn)
        if connection is None:
            raise NotFound(f"VPC ingress connection not found: {arn}")
        return connection
