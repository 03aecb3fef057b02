"""CreateConnection, ListConnections, DeleteConnection."""

from __future__ import annotations

from runyard.api.apprunner import mappers
from runyard.api.apprunner.base import ProviderBase
from runyard.api.apprunner.mappers import Wire
from runyard.api.context import RequestContext
from runyard.api.pagination import paginate


class ConnectionOperations(ProviderBase):
    def create_connection(self, ctx: RequestContext, request: Wire) -> Wire:
        created = self.control.connections.create(
            ctx.scope,
            name=request["ConnectionName"],
            provider_type=request["ProviderType"],
            tags=mappers.tags_in(request.get("Tags")),
        )
        return {"Connection": mappers.connection(created)}

    def list_connections(self, ctx: RequestContext, request: Wire) -> Wire:
        name = request.get("ConnectionName")
        found = self.control.connections.find_all(ctx.scope, name=name)
        page, token = paginate(
            found,
            key=lambda c: (c.created_at, c.arn),
            max_results=request.get("MaxResults"),
            next_token=request.get("NextToken"),
            query={"name": name},
        )
        return {"ConnectionSummaryList": [mappers.connection(c) for c in page], "NextToken": token}

    def delete_connection(self, ctx: RequestContext, request: Wire) -> Wire:
        deleted = self.control.connections.delete(ctx.scope, request["ConnectionArn"])
        return {"Connection": mappers.connection(deleted)}
