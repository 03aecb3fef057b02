"""The Service resource: its desired configuration, its status and what it runs now (its revision).

Status changes follow SERVICE_TRANSITIONS; each change is made by the operation that does the work.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    """A deployed build: the immutable artifact plus how its instances start. Kept for resume and rollback.

    A code service's revision is its build artifact (`artifact_*`, from `commit_sha`); on the OCI runtime the
    artifact is also packed into an image (`image`). An image service's revision is the image its tag pointed at
    when the deployment started: `image` pinned by `image_digest`, `artifact_id` is that digest, no artifact path.
    """

    artifact_id: str
    artifact_path: str
    commit_sha: str
    command: str  # "" for an image service without a StartCommand: the image's own CMD runs
    port: int
    port_env_name: str | None = None
    env: tuple[tuple[str, str], ...] = ()  # the user's runtime environment variables
    runtime_env: tuple[tuple[str, str], ...] = ()  # what the managed runtime needs (PATH, LANG ...)
    runtime: str = ""
    image: str | None = None  # the reference instances run, pinned by digest (`registry/repository@sha256:...`)
    image_digest: str | None = None  # the digest of `image`

    @property
    def from_image(self) -> bool:
        """An image service's revision: nothing was built here (no artifact directory)."""
        return self.image is not None and not self.artifact_path


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


def image_port(image: ImageSource) -> int:
    """ImageConfiguration.Port: the port the app listens on inside its container (App Runner's default 8080)."""
    return int(image.port) if image.port and image.port.isdigit() else 8080


def tracked_version(service: Service) -> str | None:
    """What automatic deployments compare: the deployed commit of a code service, the digest of an image service."""
    revision = service.revision
    if revision is None:
        return None
    return revision.image_digest if service.spec.source.image is not None else revision.commit_sha


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


# -- UpdateService ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceUpdate:
    """The parts of a configuration an UpdateService names; None keeps the current part."""

    source: SourceSpec | None = None
    instance: InstanceSpec | None = None
    health_check: HealthCheckSpec | None = None
    network: NetworkSpec | None = None
    observability: ObservabilitySpec | None = None
    auto_scaling_configuration_arn: str | None = None

    def applied_to(self, spec: ServiceSpec) -> ServiceSpec:
        return replace(
            spec,
            source=_merged_source(spec.source, self.source) if self.source else spec.source,
            instance=self.instance or spec.instance,
            health_check=self.health_check or spec.health_check,
            network=self.network or spec.network,
            observability=self.observability or spec.observability,
            auto_scaling_configuration_arn=self.auto_scaling_configuration_arn or spec.auto_scaling_configuration_arn,
        )


def _merged_source(current: SourceSpec, new: SourceSpec) -> SourceSpec:
    code = new.code
    if code is not None and code.configuration_source is None and current.code is not None:
        # UpdateService may leave CodeConfiguration out: the current one stays.
        old = current.code
        code = replace(
            code,
            configuration_source=old.configuration_source,
            runtime=old.runtime,
            build_command=old.build_command,
            start_command=old.start_command,
            port=old.port,
            env=old.env,
            secrets=old.secrets,
        )
    auto = new.auto_deployments if new.auto_deployments is not None else current.auto_deployments
    return replace(new, code=code, auto_deployments=auto)


def needs_build(current: ServiceSpec, new: ServiceSpec) -> bool:
    """Whether a new configuration changes what is built (else the deployed artifact runs with new settings)."""
    old_image, image = current.source.image, new.source.image
    if old_image is not None and image is not None:
        # Another image (or registry type) is resolved and pulled again; run settings alone are a rerun.
        return (old_image.identifier, old_image.repository_type) != (image.identifier, image.repository_type)
    old, code = current.source.code, new.source.code
    if old is None or code is None:
        return old is not code
    built = ("repository_url", "branch", "configuration_source", "runtime", "build_command")
    if any(getattr(old, name) != getattr(code, name) for name in built):
        return True
    # DescribeService shows an unset SourceDirectory as "/", and clients send back what they read.
    return (old.source_directory or "/").strip("/") != (code.source_directory or "/").strip("/")


def rerun(revision: Revision, spec: ServiceSpec) -> Revision:
    """The deployed build with the run settings of `spec` (API configuration); a file's settings are the build's."""
    image = spec.source.image
    if image is not None and revision.from_image:
        return replace(revision, command=image.start_command or "", port=image_port(image), env=image.env)
    code = spec.source.code
    if code is None or code.configuration_source != "API":
        return revision
    return replace(revision, command=code.start_command or revision.command, env=code.env)


def needs_new_instances(service: Service, spec: ServiceSpec, revision: Revision) -> bool:
    """Whether deploying `spec` with `revision` changes the instances (else auto scaling or observability only)."""
    current = service.spec
    return (
        revision != service.revision
        or spec.instance != current.instance
        or spec.health_check != current.health_check
        or spec.network != current.network
    )


def updated(service: Service, spec: ServiceSpec) -> Service:
    """The service as it is once `spec` is deployed."""
    arn = spec.auto_scaling_configuration_arn or service.auto_scaling_configuration_arn
    return replace(service, spec=spec, auto_scaling_configuration_arn=arn)
