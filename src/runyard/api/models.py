"""botocore's service models: the single source of truth for the wire."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import botocore.session
from botocore.model import OperationModel, ServiceModel

APPRUNNER = "apprunner"
CODECONNECTIONS = "codeconnections"
CODESTAR_CONNECTIONS = "codestar-connections"
CLOUDWATCH = "cloudwatch"
SERVICES = (APPRUNNER, CODECONNECTIONS, CODESTAR_CONNECTIONS, CLOUDWATCH)
# Smithy RPC v2 (CBOR): POST <endpoint path>/service/<targetPrefix>/operation/<Operation>
_RPC_V2_PATH = re.compile(r"(?:.*/)?service/([^/]+)/operation/([^/]+)")


@dataclass(frozen=True, slots=True)
class WireService:
    name: str  # botocore service name
    model: ServiceModel
    target_prefixes: tuple[str, ...]  # every X-Amz-Target prefix form clients send

    @property
    def signing_name(self) -> str:
        return str(self.model.signing_name)

    @property
    def query_compatible(self) -> bool:
        """Errors also carry the code of the service's former query protocol (x-amzn-query-error)."""
        return "awsQueryCompatible" in self.model.metadata

    def operation(self, name: str) -> OperationModel | None:
        if name not in self.model.operation_names:
            return None
        return self.model.operation_model(name)


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def wire_service(name: str) -> WireService:
    model = _session().get_service_model(name)
    full_prefix = str(model.metadata["targetPrefix"])
    # botocore sends the model's targetPrefix; the Go SDK sends only the text after the last '.'.
    prefixes = tuple(dict.fromkeys([full_prefix, full_prefix.rsplit(".", 1)[-1]]))
    return WireService(name=name, model=model, target_prefixes=prefixes)


@cache
def target_table() -> dict[str, WireService]:
    """X-Amz-Target prefix -> service."""
    table: dict[str, WireService] = {}
    for name in SERVICES:
        service = wire_service(name)
        for prefix in service.target_prefixes:
            table[prefix] = service
    return table


def resolve_target(target: str) -> tuple[WireService, str] | None:
    """`AppRunner.CreateService` -> (apprunner, "CreateService"); routed on the text after the last '.'."""
    prefix, dot, operation = target.rpartition(".")
    if not dot:
        return None
    service = target_table().get(prefix)
    if service is None:
        return None
    return service, operation


def resolve_rpc_v2_path(path: str) -> tuple[WireService, str] | None:
    """`/service/GraniteServiceVersion20100801/operation/GetMetricData` -> (cloudwatch, "GetMetricData")."""
    match = _RPC_V2_PATH.fullmatch(path)
    if match is None:
        return None
    service = target_table().get(match.group(1))
    if service is None:
        return None
    return service, match.group(2)
