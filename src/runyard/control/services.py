"""Services: lookups, and the full check of a CreateService request.

Building and running workloads lands with the code-service runtime; until then CreateService
checks everything it can and then answers, naming what is missing, without storing anything.
"""

from __future__ import annotations

from typing import NoReturn

from runyard.control.arns import read_arn
from runyard.control.autoscaling import AutoScaling
from runyard.control.context import Deps, Scope
from runyard.control.model.apprunner import ACTIVE, Connection, VpcConnector
from runyard.control.model.service import VALID_SIZES, Service, ServiceSpec
from runyard.control.observability import Observability
from runyard.control.ports import Tag, UnitOfWork
from runyard.control.tags import check_new_tags
from runyard.errors import AlreadyExists, InvalidInput, NotFound, NotSupported, QuotaExceeded

ECR_PUBLIC_AUTO_DEPLOY = "App Runner doesn't support automatic deployments for an image in an ECR Public repository."
RESERVED_ENV_PREFIX = "AWSAPPRUNNER"
WORKLOADS_MISSING = (
    "Runyard cannot build or run workloads yet: {operation} arrives with the code-service runtime "
    "(see docs/compatibility.md). Nothing was changed."
)


class Services:
    def __init__(self, deps: Deps, autoscaling: AutoScaling, observability: Observability) -> None:
        self._deps = deps
        self._autoscaling = autoscaling
        self._observability = observability

    def create(self, scope: Scope, *, name: str, spec: ServiceSpec, tags: list[Tag]) -> NoReturn:
        check_new_tags(self._deps, tags)
        self._autoscaling.ensure_region(scope)
        with self._deps.store.read() as uow:
            self.check_spec(uow, scope, spec, creating=True)
            services = uow.repo(Service).find(account=scope.account, region=scope.region)
            live = [s for s in services if s.live]
            if any(s.name == name for s in live):
                raise AlreadyExists(f"A service named {name!r} already exists in {scope.region}.")
            if len(live) >= self._deps.quotas.services:
                raise QuotaExceeded(f"You have reached the quota of {self._deps.quotas.services} services.")
        raise NotSupported(WORKLOADS_MISSING.format(operation="CreateService"))

    def get(self, scope: Scope, arn: str) -> Service:
        read_arn(scope, arn, "service", label="Service")
        with self._deps.store.read() as uow:
            service = uow.repo(Service).get(arn)
        if service is None:
            raise NotFound(f"Service not found: {arn}")
        return service

    def find_all(self, scope: Scope) -> list[Service]:
        with self._deps.store.read() as uow:
            return uow.repo(Service).find(account=scope.account, region=scope.region)

    def require_workloads(self, scope: Scope, arn: str, operation: str) -> NoReturn:
        """Operations on a service's workload: the service must exist, and the runtime must be there."""
        service = self.get(scope, arn)
        raise NotSupported(WORKLOADS_MISSING.format(operation=operation) + f" Service: {service.name}")

    def check_spec(self, uow: UnitOfWork, scope: Scope, spec: ServiceSpec, *, creating: bool) -> None:
        """Every rule of a service configuration that the model alone cannot express."""
        source = spec.source
        if (source.code is None) == (source.image is None):
            raise InvalidInput("SourceConfiguration needs exactly one of CodeRepository or ImageRepository.")
        env: tuple[tuple[str, str], ...] = ()
        if source.code is not None:
            code = source.code
            env = code.env
            if creating and code.configuration_source is None:
                raise InvalidInput("CodeRepository.CodeConfiguration is required when you create a service.")
            if code.configuration_source == "API" and code.runtime is None:
                raise InvalidInput(
                    "CodeConfiguration.CodeConfigurationValues is required when ConfigurationSource is API."
                )
            _check_port(code.port)
        if source.image is not None:
            image = source.image
            env = image.env
            if image.repository_type == "ECR_PUBLIC" and source.auto_deployments:
                raise InvalidInput(ECR_PUBLIC_AUTO_DEPLOY)
            if image.repository_type == "ECR" and source.access_role_arn is None:
                raise InvalidInput(
                    "AuthenticationConfiguration.AccessRoleArn is required for an image in a private ECR repository."
                )
            _check_port(image.port)
        reserved = [key for key, _ in env if key.upper().startswith(RESERVED_ENV_PREFIX)]
        if reserved:
            raise InvalidInput(
                f"Environment variable names starting with {RESERVED_ENV_PREFIX} are reserved: {reserved[0]}"
            )
        if source.connection_arn is not None:
            connection = uow.repo(Connection).get(source.connection_arn)
            if connection is None or connection.account != scope.account or connection.region != scope.region:
                raise NotFound(f"Connection not found: {source.connection_arn}")
        instance = spec.instance
        if instance.memory not in VALID_SIZES.get(instance.cpu, frozenset()):
            offered = ", ".join(f"{c} CPU: {sorted(m)}" for c, m in VALID_SIZES.items())
            raise InvalidInput(
                f"Cpu {instance.cpu} with Memory {instance.memory} is not a size App Runner offers ({offered})."
            )
        if spec.health_check.protocol == "TCP" and spec.health_check.path != "/":
            raise InvalidInput("HealthCheckConfiguration.Path applies to the HTTP protocol only.")
        network = spec.network
        if network.egress_type == "VPC":
            if network.vpc_connector_arn is None:
                raise InvalidInput("EgressConfiguration.VpcConnectorArn is required when EgressType is VPC.")
            connector = uow.repo(VpcConnector).get(network.vpc_connector_arn)
            if connector is None or connector.status != ACTIVE or connector.region != scope.region:
                raise NotFound(f"VPC connector not found: {network.vpc_connector_arn}")
        elif network.vpc_connector_arn is not None:
            raise InvalidInput("EgressConfiguration.VpcConnectorArn applies only when EgressType is VPC.")
        observability = spec.observability
        if observability is not None and observability.enabled:
            if observability.configuration_arn is None:
                raise InvalidInput("ObservabilityConfigurationArn is required when ObservabilityEnabled is true.")
            self._observability.resolve(uow, scope, observability.configuration_arn, active_only=True)
        self._autoscaling.resolve_for_service(uow, scope, spec.auto_scaling_configuration_arn)


def _check_port(port: str | None) -> None:
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise InvalidInput(f"Port must be a TCP port number from 1 to 65535, got {port!r}.")
