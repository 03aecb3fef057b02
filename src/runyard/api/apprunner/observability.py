"""Observability configuration operations."""

from __future__ import annotations

from runyard.api.apprunner import mappers
from runyard.api.apprunner.base import ProviderBase
from runyard.api.apprunner.mappers import Wire
from runyard.api.context import RequestContext
from runyard.api.pagination import paginate


class ObservabilityOperations(ProviderBase):
    def create_observability_configuration(self, ctx: RequestContext, request: Wire) -> Wire:
        trace = request.get("TraceConfiguration") or {}
        view = self.control.observability.create(
            ctx.scope,
            name=request["ObservabilityConfigurationName"],
            trace_vendor=trace.get("Vendor"),
            tags=mappers.tags_in(request.get("Tags")),
        )
        return {"ObservabilityConfiguration": mappers.observability(view)}

    def describe_observability_configuration(self, ctx: RequestContext, request: Wire) -> Wire:
        view = self.control.observability.describe(ctx.scope, request["ObservabilityConfigurationArn"])
        return {"ObservabilityConfiguration": mappers.observability(view)}

    def delete_observability_configuration(self, ctx: RequestContext, request: Wire) -> Wire:
        view = self.control.observability.delete(ctx.scope, request["ObservabilityConfigurationArn"])
        return {"ObservabilityConfiguration": mappers.observability(view)}

    def list_observability_configurations(self, ctx: RequestContext, request: Wire) -> Wire:
        name = request.get("ObservabilityConfigurationName")
        latest_only = request.get("LatestOnly", True)
        views = self.control.observability.find_all(ctx.scope, name=name, latest_only=latest_only)
        page, token = paginate(
            views,
            key=lambda v: (v.config.name, v.config.revision),
            max_results=request.get("MaxResults"),
            next_token=request.get("NextToken"),
            query={"name": name, "latest": latest_only},
        )
        return {
            "ObservabilityConfigurationSummaryList": [mappers.observability_summary(v) for v in page],
            "NextToken": token,
        }
