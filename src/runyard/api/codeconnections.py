"""The CodeConnections provider, serving both `codeconnections` and `codestar-connections`.

One store, two namespaces: each answers with ARNs in its own service name and accepts either form.
"""

from __future__ import annotations

from typing import Any

from runyard.api.context import RequestContext
from runyard.api.pagination import paginate
from runyard.control.model.codeconnections import CodeConnection, Host, VpcSettings
from runyard.control.plane import ControlPlane
from runyard.control.ports import Tag
from runyard.errors import NotSupported
from runyard.ids import Arn

Wire = dict[str, Any]

_NOT_YET = (
    "Runyard does not support {what} yet ({operation}); connections and hosts are supported "
    "(see docs/compatibility.md)."
)


def _tags_in(items: list[Wire] | None) -> list[Tag]:
    return [(item["Key"], item["Value"]) for item in items or []]


def _tags_out(tags: list[Tag]) -> list[Wire]:
    return [{"Key": key, "Value": value} for key, value in tags]


def _vpc_in(wire: Wire | None) -> VpcSettings | None:
    if not wire:
        return None
    return VpcSettings(
        vpc_id=wire["VpcId"],
        subnet_ids=tuple(wire["SubnetIds"]),
        security_group_ids=tuple(wire["SecurityGroupIds"]),
        tls_certificate=wire.get("TlsCertificate"),
    )


def _vpc_out(vpc: VpcSettings | None) -> Wire | None:
    if vpc is None:
        return None
    return {
        "VpcId": vpc.vpc_id,
        "SubnetIds": list(vpc.subnet_ids),
        "SecurityGroupIds": list(vpc.security_group_ids),
        "TlsCertificate": vpc.tls_certificate,
    }


class CodeConnectionsProvider:
    """Implements botocore's `codeconnections` 2023-12-01 and `codestar-connections` 2019-12-01."""

    def __init__(self, control: ControlPlane) -> None:
        self.control = control

    # -- ARNs in the caller's namespace -----------------------------------------------------------

    @staticmethod
    def connection_arn(ctx: RequestContext, c: CodeConnection) -> str:
        return str(Arn(ctx.service, c.region, c.account, f"connection/{c.connection_id}"))

    @staticmethod
    def host_arn(ctx: RequestContext, region: str, account: str, host_id: str) -> str:
        return str(Arn(ctx.service, region, account, f"host/{host_id}"))

    def _connection(self, ctx: RequestContext, c: CodeConnection) -> Wire:
        return {
            "ConnectionName": c.name,
            "ConnectionArn": self.connection_arn(ctx, c),
            "ProviderType": c.provider_type,
            "OwnerAccountId": c.account,
            "ConnectionStatus": c.status,
            "HostArn": self.host_arn(ctx, c.host.region, c.account, c.host.host_id) if c.host else None,
        }

    def _host(self, ctx: RequestContext, h: Host) -> Wire:
        return {
            "Name": h.name,
            "HostArn": self.host_arn(ctx, h.region, h.account, h.host_id),
            "ProviderType": h.provider_type,
            "ProviderEndpoint": h.provider_endpoint,
            "VpcConfiguration": _vpc_out(h.vpc),
            "Status": h.status,
            "StatusMessage": h.status_message,
        }

    # -- connections ----------------------------------------------------------------------------

    def create_connection(self, ctx: RequestContext, request: Wire) -> Wire:
        tags = _tags_in(request.get("Tags"))
        created = self.control.codeconnections.create_connection(
            ctx.scope,
            name=request["ConnectionName"],
            provider_type=request.get("ProviderType"),
            host_arn=request.get("HostArn"),
            tags=tags,
        )
        return {"ConnectionArn": self.connection_arn(ctx, created), "Tags": _tags_out(tags) if tags else None}

    def get_connection(self, ctx: RequestContext, request: Wire) -> Wire:
        found = self.control.codeconnections.get_connection(ctx.scope, request["ConnectionArn"])
        return {"Connection": self._connection(ctx, found)}

    def list_connections(self, ctx: RequestContext, request: Wire) -> Wire:
        provider, host = request.get("ProviderTypeFilter"), request.get("HostArnFilter")
        found = self.control.codeconnections.list_connections(ctx.scope, provider_type=provider, host_arn=host)
        page, token = paginate(
            found,
            key=lambda c: (c.created_at, c.connection_id),
            max_results=request.get("MaxResults"),
            next_token=request.get("NextToken"),
            query={"provider": provider, "host": host},
        )
        return {"Connections": [self._connection(ctx, c) for c in page], "NextToken": token}

    def delete_connection(self, ctx: RequestContext, request: Wire) -> Wire:
        self.control.codeconnections.delete_connection(ctx.scope, request["ConnectionArn"])
        return {}

    # -- hosts ----------------------------------------------------------------------------------

    def create_host(self, ctx: RequestContext, request: Wire) -> Wire:
        tags = _tags_in(request.get("Tags"))
        host = self.control.codeconnections.create_host(
            ctx.scope,
            name=request["Name"],
            provider_type=request["ProviderType"],
            provider_endpoint=request["ProviderEndpoint"],
            vpc=_vpc_in(request.get("VpcConfiguration")),
            tags=tags,
        )
        return {
            "HostArn": self.host_arn(ctx, host.region, host.account, host.host_id),
            "Tags": _tags_out(tags) if tags else None,
        }

    def get_host(self, ctx: RequestContext, request: Wire) -> Wire:
        host = self.control.codeconnections.get_host(ctx.scope, request["HostArn"])
        wire = self._host(ctx, host)
        return {name: wire[name] for name in ("Name", "Status", "ProviderType", "ProviderEndpoint", "VpcConfiguration")}

    def list_hosts(self, ctx: RequestContext, request: Wire) -> Wire:
        found = self.control.codeconnections.list_hosts(ctx.scope)
        page, token = paginate(
            found,
            key=lambda h: (h.created_at, h.host_id),
            max_results=request.get("MaxResults"),
            next_token=request.get("NextToken"),
            query={},
        )
        return {"Hosts": [self._host(ctx, h) for h in page], "NextToken": token}

    def update_host(self, ctx: RequestContext, request: Wire) -> Wire:
        self.control.codeconnections.update_host(
            ctx.scope,
            request["HostArn"],
            provider_endpoint=request.get("ProviderEndpoint"),
            vpc=_vpc_in(request.get("VpcConfiguration")),
        )
        return {}

    def delete_host(self, ctx: RequestContext, request: Wire) -> Wire:
        self.control.codeconnections.delete_host(ctx.scope, request["HostArn"])
        return {}

    # -- tags -----------------------------------------------------------------------------------

    def list_tags_for_resource(self, ctx: RequestContext, request: Wire) -> Wire:
        with self.control.deps.store.read() as uow:
            target = self.control.codeconnections.tag_target(uow, ctx.scope, request["ResourceArn"])
            return {"Tags": _tags_out(self.control.tagging.get(uow, target))}

    def tag_resource(self, ctx: RequestContext, request: Wire) -> Wire:
        with self.control.deps.store.write() as uow:
            target = self.control.codeconnections.tag_target(uow, ctx.scope, request["ResourceArn"])
            self.control.tagging.tag(uow, target, _tags_in(request["Tags"]))
        return {}

    def untag_resource(self, ctx: RequestContext, request: Wire) -> Wire:
        with self.control.deps.store.write() as uow:
            target = self.control.codeconnections.tag_target(uow, ctx.scope, request["ResourceArn"])
            self.control.tagging.untag(uow, target, request["TagKeys"])
        return {}

    # -- repository links and sync configurations: not yet ----------------------------------------

    def _repository_links(self, ctx: RequestContext, request: Wire) -> Wire:
        raise NotSupported(_NOT_YET.format(what="repository links", operation=ctx.operation))

    def _sync_configurations(self, ctx: RequestContext, request: Wire) -> Wire:
        raise NotSupported(_NOT_YET.format(what="sync configurations", operation=ctx.operation))

    create_repository_link = _repository_links
    get_repository_link = _repository_links
    list_repository_links = _repository_links
    update_repository_link = _repository_links
    delete_repository_link = _repository_links
    get_repository_sync_status = _sync_configurations
    list_repository_sync_definitions = _sync_configurations
    create_sync_configuration = _sync_configurations
    get_sync_configuration = _sync_configurations
    list_sync_configurations = _sync_configurations
    update_sync_configuration = _sync_configurations
    delete_sync_configuration = _sync_configurations
    get_resource_sync_status = _sync_configurations
    get_sync_blocker_summary = _sync_configurations
    update_sync_blocker = _sync_configurations
