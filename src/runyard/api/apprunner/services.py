"""Service operations. Those that act on a workload name what is missing until the runtime lands."""

from __future__ import annotations

from runyard.api.apprunner import mappers
from runyard.api.apprunner.base import ProviderBase
from runyard.api.apprunner.mappers import Wire
from runyard.api.context import RequestContext
from runyard.api.pagination import paginate


class ServiceOperations(ProviderBase):
    def create_service(self, ctx: RequestContext, request: Wire) -> Wire:
        self.control.services.create(
            ctx.scope,
            name=request["ServiceName"],
            spec=mappers.service_spec(request),
            tags=mappers.tags_in(request.get("Tags")),
        )

    def list_services(self, ctx: RequestContext, request: Wire) -> Wire:
        found = self.control.services.find_all(ctx.scope)
        page, token = paginate(
            found,
            key=lambda s: (s.created_at, s.arn),
            max_results=request.get("MaxResults"),
            next_token=request.get("NextToken"),
            query={},
        )
        return {
            "ServiceSummaryList": [mappers.service_summary(s, self.service_url(s.url_label, s.region)) for s in page],
            "NextToken": token,
        }

    def _workload(self, ctx: RequestContext, request: Wire) -> Wire:
        self.control.services.require_workloads(ctx.scope, request["ServiceArn"], ctx.operation)

    describe_service = _workload
    update_service = _workload
    delete_service = _workload
    pause_service = _workload
    resume_service = _workload
    start_deployment = _workload
    list_operations = _workload
    associate_custom_domain = _workload
    disassociate_custom_domain = _workload
    describe_custom_domains = _workload
