"""VPC connector and VPC ingress connection operations."""

from __future__ import annotations

from runyard.api.apprunner import mappers
from runyard.api.apprunner.base import ProviderBase
from runyard.api.apprunner.mappers import Wire
from runyard.api.context import RequestContext
from runyard.api.pagination import paginate


class NetworkingOperations(ProviderBase):
    def create_vpc_connector(self, ctx: RequestContext, request: Wire) -> Wire:
        created = self.control.vpc_connectors.create(
            ctx.scope,
            name=request["VpcConnectorName"],
            subnets=request["Subnets"],
            security_groups=request.get("SecurityGroups", []),
            tags=mappers.tags_in(request.get("Tags")),
        )
        return {"VpcConnector": mappers.vpc_connector(created)}

    def describe_vpc_connector(self, ctx: RequestContext, request: Wire) -> Wire:
        found = self.control.vpc_connectors.describe(ctx.scope, request["VpcConnectorArn"])
        return {"VpcConnector": mappers.vpc_connector(found)}

    def delete_vpc_connector(self, ctx: RequestContext, request: Wire) -> Wire:
        deleted = self.control.vpc_connectors.delete(ctx.scope, request["VpcConnectorArn"])
        return {"VpcConnector": mappers.vpc_connector(deleted)}

    def list_vpc_connectors(self, ctx: RequestContext, request: Wire) -> Wire:
        found = self.control.vpc_connectors.find_all(ctx.scope)
        page, token = paginate(
            found,
            key=lambda c: (c.created_at, c.arn),
            max_results=request.get("MaxResults"),
            next_token=request.get("NextToken"),
            query={},
        )
        return {"VpcConnectors": [mappers.vpc_connector(c) for c in page], "NextToken": token}

    def create_vpc_ingress_connection(self, ctx: RequestContext, request: Wire) -> Wire:
        config = request["IngressVpcConfiguration"]
        created = self.control.vpc_ingress.create(
            ctx.scope,
            service_arn=request["ServiceArn"],
            name=request["VpcIngressConnectionName"],
            vpc_id=config.get("VpcId"),
            vpc_endpoint_id=config.get("VpcEndpointId"),
            tags=mappers.tags_in(request.get("Tags")),
        )
        return {"VpcIngressConnection": mappers.vpc_ingress(created)}

    def describe_vpc_ingress_connection(self, ctx: RequestContext, request: Wire) -> Wire:
        found = self.control.vpc_ingress.describe(ctx.scope, request["VpcIngressConnectionArn"])
        return {"VpcIngressConnection": mappers.vpc_ingress(found)}

    def update_vpc_ingress_connection(self, ctx: RequestContext, request: Wire) -> Wire:
        config = request["IngressVpcConfiguration"]
        updated = self.control.vpc_ingress.update(
            ctx.scope,
            request["VpcIngressConnectionArn"],
            vpc_id=config.get("VpcId"),
            vpc_endpoint_id=config.get("VpcEndpointId"),
        )
        return {"VpcIngressConnection": mappers.vpc_ingress(updated)}

    def delete_vpc_ingress_connection(self, ctx: RequestContext, request: Wire) -> Wire:
        deleted = self.control.vpc_ingress.delete(ctx.scope, request["VpcIngressConnectionArn"])
        return {"VpcIngressConnection": mappers.vpc_ingress(deleted)}

    def list_vpc_ingress_connections(self, ctx: RequestContext, request: Wire) -> Wire:
        flt = request.get("Filter") or {}
        service_arn, endpoint = flt.get("ServiceArn"), flt.get("VpcEndpointId")
        found = self.control.vpc_ingress.find_all(ctx.scope, service_arn=service_arn, vpc_endpoint_id=endpoint)
        page, token = paginate(
            found,
            key=lambda c: (c.created_at, c.arn),
            max_results=request.get("MaxResults"),
            next_token=request.get("NextToken"),
            query={"service": service_arn, "endpoint": endpoint},
        )
        return {
            "VpcIngressConnectionSummaryList": [
                {"VpcIngressConnectionArn": c.arn, "ServiceArn": c.service_arn} for c in page
            ],
            "NextToken": token,
        }
