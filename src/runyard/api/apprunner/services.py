"""Service operations. Those that need deployments, pause/resume or custom domains name what is missing."""

from __future__ import annotations

from runyard.api.apprunner import mappers
from runyard.api.apprunner.base import ProviderBase
from runyard.api.apprunner.mappers import Wire
from runyard.api.context import RequestContext
from runyard.api.pagination import paginate
from runyard.control.context import Scope
from runyard.control.model.service import Service


class ServiceOperations(ProviderBase):
    def create_service(self, ctx: RequestContext, request: Wire) -> Wire:
        service, operation_id = self.control.services.create(
            ctx.scope,
            name=request["ServiceName"],
            spec=mappers.service_spec(request),
            tags=mappers.tags_in(request.get("Tags")),
        )
        return {"Service": self._service(ctx.scope, service), "OperationId": operation_id}

    def describe_service(self, ctx: RequestContext, request: Wire) -> Wire:
        return {"Service": self._service(ctx.scope, self.control.services.get(ctx.scope, request["ServiceArn"]))}

    def delete_service(self, ctx: RequestContext, request: Wire) -> Wire:
        service, operation_id = self.control.services.delete(ctx.scope, request["ServiceArn"])
        return {"Service": self._service(ctx.scope, service), "OperationId": operation_id}

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

    def list_operations(self, ctx: RequestContext, request: Wire) -> Wire:
        arn = request["ServiceArn"]
        found = self.control.services.operations(ctx.scope, arn)  # newest first
        position = {op.id: index for index, op in enumerate(found)}
        page, token = paginate(
            found,
            key=lambda op: (position[op.id], op.id),
            max_results=request.get("MaxResults"),
            next_token=request.get("NextToken"),
            query={"ServiceArn": arn},
        )
        return {"OperationSummaryList": [mappers.operation_summary(op) for op in page], "NextToken": token}

    def _service(self, scope: Scope, service: Service) -> Wire:
        autoscaling = self.control.autoscaling.describe(scope, service.auto_scaling_configuration_arn)
        return mappers.service(service, self.service_url(service.url_label, service.region), autoscaling)

    def start_deployment(self, ctx: RequestContext, request: Wire) -> Wire:
        return {"OperationId": self.control.services.start_deployment(ctx.scope, request["ServiceArn"])}

    def pause_service(self, ctx: RequestContext, request: Wire) -> Wire:
        service, operation_id = self.control.services.pause(ctx.scope, request["ServiceArn"])
        return {"Service": self._service(ctx.scope, service), "OperationId": operation_id}

    def resume_service(self, ctx: RequestContext, request: Wire) -> Wire:
        service, operation_id = self.control.services.resume(ctx.scope, request["ServiceArn"])
        return {"Service": self._service(ctx.scope, service), "OperationId": operation_id}

    def update_service(self, ctx: RequestContext, request: Wire) -> Wire:
        service, operation_id = self.control.services.update(
            ctx.scope, request["ServiceArn"], mappers.service_update(request)
        )
        return {"Service": self._service(ctx.scope, service), "OperationId": operation_id}

    def _not_yet(self, ctx: RequestContext, request: Wire) -> Wire:
        self.control.services.not_yet(ctx.scope, request["ServiceArn"], ctx.operation)

    associate_custom_domain = _not_yet
    disassociate_custom_domain = _not_yet
    describe_custom_domains = _not_yet
