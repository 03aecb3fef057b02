"""TagResource, UntagResource, ListTagsForResource for every App Runner resource type."""

from __future__ import annotations

from runyard.api.apprunner import mappers
from runyard.api.apprunner.base import ProviderBase
from runyard.api.apprunner.mappers import Wire
from runyard.api.context import RequestContext
from runyard.control.tags import apprunner_target


class TagOperations(ProviderBase):
    def list_tags_for_resource(self, ctx: RequestContext, request: Wire) -> Wire:
        with self.control.deps.store.read() as uow:
            target = apprunner_target(uow, ctx.scope, request["ResourceArn"])
            return {"Tags": mappers.tags_out(self.control.tagging.get(uow, target))}

    def tag_resource(self, ctx: RequestContext, request: Wire) -> Wire:
        with self.control.deps.store.write() as uow:
            target = apprunner_target(uow, ctx.scope, request["ResourceArn"])
            self.control.tagging.tag(uow, target, mappers.tags_in(request["Tags"]))
        return {}

    def untag_resource(self, ctx: RequestContext, request: Wire) -> Wire:
        with self.control.deps.store.write() as uow:
            target = apprunner_target(uow, ctx.scope, request["ResourceArn"])
            self.control.tagging.untag(uow, target, request["TagKeys"])
        return {}
