"""Tags on every resource: one set of rules, two ARN families (App Runner and CodeConnections)."""

from __future__ import annotations

from runyard.control.arns import read_arn
from runyard.control.context import Deps, Scope
from runyard.control.model.apprunner import (
    AutoScalingConfiguration,
    Connection,
    ObservabilityConfiguration,
    VpcConnector,
    VpcIngressConnection,
)
from runyard.control.model.service import Service
from runyard.control.ports import Repository, Tag, UnitOfWork
from runyard.errors import InvalidInput, NotFound, TagLimitExceeded
from runyard.ids import parse_arn

# The App Runner resource types that carry tags, by the type named in their ARN.
Taggable = (
    Service | Connection | AutoScalingConfiguration | ObservabilityConfiguration | VpcConnector | VpcIngressConnection
)
APPRUNNER_TAGGABLE: dict[str, type[Taggable]] = {
    "service": Service,
    "connection": Connection,
    "autoscalingconfiguration": AutoScalingConfiguration,
    "observabilityconfiguration": ObservabilityConfiguration,
    "vpcconnector": VpcConnector,
    "vpcingressconnection": VpcIngressConnection,
}


def check_new_tags(deps: Deps, tags: list[Tag], *, existing: list[Tag] | None = None) -> None:
    """Reserved prefix, duplicates in one request, and the per-resource limit."""
    keys = [key for key, _ in tags]
    for key in keys:
        if key.lower().startswith("aws:"):
            raise InvalidInput(f"Tag keys starting with 'aws:' are reserved for AWS use: {key!r}")
    if len(set(keys)) != len(keys):
        raise InvalidInput("The request contains the same tag key more than once.")
    total = {key for key, _ in existing or []} | set(keys)
    limit = deps.quotas.tags_per_resource
    if len(total) > limit:
        raise TagLimitExceeded(f"A resource can have at most {limit} tags; this request would leave {len(total)}.")


def apprunner_target(uow: UnitOfWork, scope: Scope, arn_text: str) -> tuple[str, str]:
    """(kind, key) of the existing App Runner resource an ARN names, else NotFound."""
    arn = parse_arn(arn_text)
    resource_type = arn.resource_type if arn else ""
    cls = APPRUNNER_TAGGABLE.get(resource_type)
    if cls is None:
        raise NotFound(f"Resource not found: {arn_text}")
    read_arn(scope, arn_text, resource_type, label="Resource")
    repo: Repository[Taggable] = uow.repo(cls)
    if repo.get(arn_text) is None:
        raise NotFound(f"Resource not found: {arn_text}")
    return cls.KIND, arn_text


class Tagging:
    """TagResource / UntagResource / ListTagsForResource over a resolved (kind, key)."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def get(self, uow: UnitOfWork, target: tuple[str, str]) -> list[Tag]:
        return uow.tags.get(*target)

    def tag(self, uow: UnitOfWork, target: tuple[str, str], tags: list[Tag]) -> None:
        check_new_tags(self._deps, tags, existing=uow.tags.get(*target))
        uow.tags.merge(*target, tags)

    def untag(self, uow: UnitOfWork, target: tuple[str, str], keys: list[str]) -> None:
        uow.tags.remove(*target, keys)
