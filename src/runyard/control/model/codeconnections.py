"""CodeConnections resources: connections (global per account) and hosts (per region).

One store serves both API namespaces (codeconnections and codestar-connections); ARNs are
rendered per namespace at the edge, so these records keep ids, not ARNs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from runyard.control.model.transitions import TransitionTable

CLOUD_PROVIDERS = frozenset({"Bitbucket", "GitHub", "GitLab", "AzureDevOps"})
INSTALLED_PROVIDERS = frozenset({"GitHubEnterpriseServer", "GitLabSelfManaged"})

CONNECTION_TRANSITIONS = TransitionTable(
    "connection",
    {
        "PENDING": frozenset({"AVAILABLE", "ERROR"}),
        "AVAILABLE": frozenset({"ERROR"}),
        "ERROR": frozenset({"AVAILABLE"}),
    },
)
HOST_TRANSITIONS = TransitionTable(
    "host",
    {"PENDING": frozenset({"AVAILABLE"}), "AVAILABLE": frozenset({"PENDING"})},
)


@dataclass(frozen=True, slots=True)
class HostRef:
    region: str
    host_id: str  # "<name>-<8 hex>", the ARN's resource id


@dataclass(frozen=True, slots=True)
class CodeConnection:
    KIND: ClassVar[str] = "codeconnections.connection"
    connection_id: str  # a dashed UUID: never reused
    name: str
    account: str
    region: str  # where it was created; the connection itself is global
    provider_type: str
    status: str
    created_at: float
    host: HostRef | None = None
    provider_account: str | None = None  # the provider user the handshake verified
    status_message: str | None = None  # why the connection is in ERROR

    @property
    def key(self) -> str:
        return f"{self.account}/{self.connection_id}"


@dataclass(frozen=True, slots=True)
class VpcSettings:
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    tls_certificate: str | None = None


@dataclass(frozen=True, slots=True)
class Host:
    KIND: ClassVar[str] = "codeconnections.host"
    host_id: str
    name: str
    account: str
    region: str
    provider_type: str
    provider_endpoint: str
    status: str
    created_at: float
    vpc: VpcSettings | None = None
    status_message: str | None = None

    @property
    def key(self) -> str:
        return host_key(self.account, self.region, self.host_id)


def host_key(account: str, region: str, host_id: str) -> str:
    return f"{account}/{region}/{host_id}"


def connection_key(account: str, connection_id: str) -> str:
    return f"{account}/{connection_id}"
