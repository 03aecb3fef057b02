"""Auto scaling configuration operations."""

from __future__ import annotations

from runyard.api.apprunner import mappers
from runyard.api.apprunner.base import ProviderBase
from runyard.api.apprunner.mappers import Wire
from runyard.api.context import RequestContext
from runyard.api.pagination import paginate


class AutoScalingOperations(ProviderBase):
    def create_auto_scaling_configuration(self, ctx: RequestContext, request: Wire) -> Wire:
        view = self.control.autoscaling.create(
            ctx.scope,
            name=request["AutoScalingConfigurationName"],
            max_concurrency=request.get("MaxConcurrency"),
            min_size=request.get("MinSize"),
            max_size=request.get("MaxSize"),
            tags=mappers.tags_in(request.get("Tags")),
        )
        return {"AutoScalingConfiguration": mappers.autoscaling(view)}

    def describe_auto_scaling_configuration(self, ctx: RequestContext, request: Wire) -> Wire:
        view = self.control.autoscaling.describe(ctx.scope, request["AutoScalingConfigurationArn"])
        return {"AutoScalingConfiguration": mappers.autoscaling(view)}

    def delete_auto_scaling_configuration(self, ctx: RequestContext, request: Wire) -> Wire:
        view = self.control.autoscaling.delete(
            ctx.scope,
            request["AutoScalingConfigurationArn"],
            all_revisions=bool(request.get("DeleteAllRevisions", False)),
        )
        return {"AutoScalingConfiguration": mappers.autoscaling(view)}

    def update_default_auto_scaling_configuration(self, ctx: RequestContext, request: Wire) -> Wire:
        view = self.control.autoscaling.set_default(ctx.scope, request["AutoScalingConfigurationArn"])
        return {"AutoScalingConfiguration": mappers.autoscaling(view)}

    def list_auto_scaling_configurations(self, ctx: RequestContext, request: Wire) -> Wire:
        name = request.get("AutoScalingConfigurationName")
        latest_only = request.get("LatestOnly", True)
        views = self.control.autoscaling.find_all(ctx.scope, name=name, latest_only=latest_only)
        page, token = paginate(
            views,
            key=lambda v: (v.config.name, v.config.revision),
            max_results=request.get("MaxResults"),
            next_token=request.get("NextToken"),
            query={"name": name, "latest": latest_only},
        )
        return {
            "AutoScalingConfigurationSummaryList": [mappers.autoscaling_summary(v) for v in page],
            "NextToken": token,
        }

    def list_services_for_auto_scaling_configuration(self, ctx: RequestContext, request: Wire) -> Wire:
        arn = request["AutoScalingConfigurationArn"]
        services = self.control.autoscaling.services_using(ctx.scope, arn)
        page: list[str]
        page, token = paginate(
            services,
            key=lambda s: (s,),
            max_results=request.get("MaxResults"),
            next_token=request.get("NextToken"),
            query={"arn": arn},
        )
        return {"ServiceArnList": page, "NextToken": token}
