"""The Service resource: its desired configuration, its status and what it runs now (its revision).

Status changes follow SERVICE_TRANSITIONS; each change is made by the operation that does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from runyard.control.model.transitions import TransitionTable

CREATE_FAILED = "CREATE_FAILED"
RUNNING = "RUNNING"
DELETED = "DELETED"
DELETE_FAILED = "DELETE_FAILED"
PAUSED = "PAUSED"
OPERATION_IN_PROGRESS = "OPERATION_IN_PROGRESS"

LIVE_STATUSES = frozenset({CREATE_FAILED, RUNNING, DELETE_FAILED, PAUSED, OPERATION_IN_PROGRESS})

# A mutating operation moves the service to OPERATION_IN_PROGRESS; the operation's outcome moves it on.
SERVICE_TRANSITIONS = TransitionTable(
    "service",
    {
        OPERATION_IN_PROGRESS: frozenset({RUNNING, CREATE_FAILED, PAUSED, DELETED, DELETE_FAILED}),
        RUNNING: frozenset({OPERATION_IN_PROGRESS}),
        PAUSED: frozenset({OPERATION_IN_PROGRESS}),
        CREATE_FAILED: frozenset({OPERATION_IN_PROGRESS}),
        DELETE_FAILED: frozenset({OPERATION_IN_PROGRESS}),
    },
)


@dataclass(frozen=True, slots=True)
class Revision:
    """A deployed build: the immutable artifact plus how its instances start. Kept for resume and rollback."""

    artifact_id: str
    artifact_path: str
    commit_sha: str
    command: str
    port: int
    port_env_name: str | None = None
    env: tuple[tuple[str, str], ...] = ()  # the user's runtime environment variables
    runtime_env: tuple[tuple[str, str], ...] = ()  # what the managed runtime needs (PATH, LANG ...)
    runtime: str = ""


@dataclass(frozen=True, slots=True)
class Service:
    KIND: ClassVar[str] = "apprunner.service"
    arn: str
    name: str
    service_id: str
    account: str
    region: str
    status: str
    created_at: float
    auto_scaling_configuration_arn: str  # resolved to a full revision ARN
    spec: ServiceSpec
    url_label: str = ""  # the 10 [a-z0-9] characters that start its ServiceUrl
    pool: int = 0  # the data plane backend that serves it
    revision: Revision | None = None
    updated_at: float | None = None
    deleted_at: float | None = None

    @property
    def key(self) -> str:
        return self.arn

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def observability_configuration_arn(self) -> str | None:
        observability = self.spec.observability
        return observability.configuration_arn if observability and observability.enabled else None

    @property
    def vpc_connector_arn(self) -> str | None:
        return self.spec.network.vpc_connector_arn

    @property
    def connection_arn(self) -> str | None:
        return self.spec.source.connection_arn


# -- the desired configuration of a service (CreateService / UpdateService input, in domain form) ----


@dataclass(frozen=True, slots=True)
class CodeSource:
    repository_url: str
    branch: str
    source_directory: str | None = None
    configuration_source: str | None = None  # "API" | "REPOSITORY"
    runtime: str | None = None
    build_command: str | None = None
    start_command: str | None = None
    port: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ImageSource:
    identifier: str
    repository_type: str  # "ECR" | "ECR_PUBLIC"
    port: str | None = None
    start_command: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SourceSpec:
    code: CodeSource | None
    image: ImageSource | None
    auto_deployments: bool | None = None
    connection_arn: str | None = None
    access_role_arn: str | None = None


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    cpu: int = 1024  # CPU units
    memory: int = 2048  # MB
    instance_role_arn: str | None = None


@dataclass(frozen=True, slots=True)
class HealthCheckSpec:
    # Defaults as the real API returns them when unset (api-contract §5), not the model docs' 5/2.
    protocol: str = "TCP"
    path: str = "/"
    interval: int = 10
    timeout: int = 5
    healthy_threshold: int = 1
    unhealthy_threshold: int = 5


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    egress_type: str = "DEFAULT"
    vpc_connector_arn: str | None = None
    publicly_accessible: bool = True
    ip_address_type: str = "IPV4"


@dataclass(frozen=True, slots=True)
class ObservabilitySpec:
    enabled: bool
    configuration_arn: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    source: SourceSpec
    instance: InstanceSpec = InstanceSpec()
    health_check: HealthCheckSpec = HealthCheckSpec()
    network: NetworkSpec = NetworkSpec()
    observability: ObservabilitySpec | None = None
    kms_key: str | None = None
    auto_scaling_configuration_arn: str | None = None


# -- instance sizes -----------------------------------------------------------------------------------

_CPU_UNITS = {"0.25 vCPU": 256, "0.5 vCPU": 512, "1 vCPU": 1024, "2 vCPU": 2048, "4 vCPU": 4096}
_MEMORY_MB = {
    "0.5 GB": 512,
    "1 GB": 1024,
    "2 GB": 2048,
    "3 GB": 3072,
    "4 GB": 4096,
    "6 GB": 6144,
    "8 GB": 8192,
    "10 GB": 10240,
    "12 GB": 12288,
}
# The CPU and memory pairs App Runner offers (developer guide, "App Runner service configuration").
VALID_SIZES: dict[int, frozenset[int]] = {
    256: frozenset({512, 1024}),
    512: frozenset({1024}),
    1024: frozenset({2048, 3072, 4096}),
    2048: frozenset({4096, 6144}),
    4096: frozenset({8192, 10240, 12288}),
}


def cpu_units(text: str) -> int:
    """ "1 vCPU" or "1024" -> 1024 (the model's pattern has already admitted the text)."""
    return _CPU_UNITS[text] if text in _CPU_UNITS else int(text)


def memory_mb(text: str) -> int:
    """ "2 GB" or "2048" -> 2048."""
    return _MEMORY_MB[text] if text in _MEMORY_MB else int(text)
