"""App Runner resources that need no running workload."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from runyard.control.model.transitions import TransitionTable

ACTIVE = "ACTIVE"
INACTIVE = "INACTIVE"

CONNECTION_TRANSITIONS = TransitionTable(
    "connection",
    {
        "PENDING_HANDSHAKE": frozenset({"AVAILABLE", "ERROR", "DELETED"}),
        "AVAILABLE": frozenset({"ERROR", "DELETED"}),
        "ERROR": frozenset({"AVAILABLE", "DELETED"}),
    },
)

# Revisioned configurations (auto scaling, observability, VPC connector) only ever get deleted.
REVISION_TRANSITIONS = TransitionTable("configuration", {ACTIVE: frozenset({INACTIVE})})

VPC_INGRESS_TRANSITIONS = TransitionTable(
    "VPC ingress connection",
    {
        "PENDING_CREATION": frozenset({"AVAILABLE", "FAILED_CREATION"}),
        "AVAILABLE": frozenset({"PENDING_UPDATE", "PENDING_DELETION"}),
        "PENDING_UPDATE": frozenset({"AVAILABLE", "FAILED_UPDATE"}),
        "PENDING_DELETION": frozenset({"DELETED", "FAILED_DELETION"}),
        "FAILED_CREATION": frozenset({"PENDING_UPDATE", "PENDING_DELETION"}),
        "FAILED_UPDATE": frozenset({"PENDING_UPDATE", "PENDING_DELETION"}),
        "FAILED_DELETION": frozenset({"PENDING_DELETION"}),
    },
)
VPC_INGRESS_UPDATABLE = frozenset({"AVAILABLE", "FAILED_CREATION", "FAILED_UPDATE"})
VPC_INGRESS_DELETABLE = frozenset({"AVAILABLE", "FAILED_CREATION", "FAILED_UPDATE", "FAILED_DELETION"})


@dataclass(frozen=True, slots=True)
class Connection:
    KIND: ClassVar[str] = "apprunner.connection"
    arn: str
    name: str
    account: str
    region: str
    provider_type: str
    status: str
    created_at: float
    provider_account: str | None = None  # the provider user the handshake verified
    status_message: str | None = None  # why the connection is in ERROR

    @property
    def key(self) -> str:
        return self.arn


@dataclass(frozen=True, slots=True)
class AutoScalingConfiguration:
    KIND: ClassVar[str] = "apprunner.autoscaling"
    arn: str
    name: str
    revision: int
    # Revision numbers restart at 1 once every revision of a name is deleted: each restart is a generation.
    generation: int
    account: str
    region: str
    max_concurrency: int
    min_size: int
    max_size: int
    status: str
    created_at: float
    is_default: bool = False
    deleted_at: float | None = None

    @property
    def key(self) -> str:
        return self.arn


@dataclass(frozen=True, slots=True)
class ObservabilityConfiguration:
    KIND: ClassVar[str] = "apprunner.observability"
    arn: str
    name: str
    revision: int
    generation: int
    account: str
    region: str
    status: str
    created_at: float
    trace_vendor: str | None = None
    deleted_at: float | None = None

    @property
    def key(self) -> str:
        return self.arn


@dataclass(frozen=True, slots=True)
class VpcConnector:
    KIND: ClassVar[str] = "apprunner.vpcconnector"
    arn: str
    name: str
    revision: int
    account: str
    region: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    status: str
    created_at: float
    deleted_at: float | None = None

    @property
    def key(self) -> str:
        return self.arn


@dataclass(frozen=True, slots=True)
class VpcIngressConnection:
    KIND: ClassVar[str] = "apprunner.vpcingress"
    arn: str
    name: str
    account: str
    region: str
    service_arn: str
    vpc_id: str
    vpc_endpoint_id: str
    domain_name: str
    status: str
    created_at: float
    deleted_at: float | None = None

    @property
    def key(self) -> str:
        return self.arn


@dataclass(frozen=True, slots=True)
class RegionSeed:
    """Marks that a region's provided resources (DefaultConfiguration) were created once."""

    KIND: ClassVar[str] = "apprunner.regionseed"
    account: str
    region: str
    created_at: float
    status: str = "SEEDED"

    @property
    def key(self) -> str:
        return f"{self.account}/{self.region}"

    @property
    def name(self) -> str:
        return self.region
