"""Services: CreateService and DeleteService as operations, the queries, and the full check of a configuration.

A mutating call stores the desired state and an Operation in one transaction and returns at once; the
operation engine does the work. Operations other than create and delete arrive with deployments.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NoReturn

from runyard.control.arns import read_arn
from runyard.control.autoscaling import AutoScaling
from runyard.control.context import Deps, Scope
from runyard.control.engine import SERVICE_STATUS_CHANGE, OperationEngine, status_detail
from runyard.control.model.apprunner import ACTIVE, Connection, VpcConnector
from runyard.control.model.operation import (
    CREATE_SERVICE,
    DELETE_SERVICE,
    PAUSE_SERVICE,
    PENDING,
    RESUME_SERVICE,
    START_DEPLOYMENT,
    UPDATE_SERVICE,
    Operation,
)
from runyard.control.model.service import (
    DELETED,
    OPERATION_IN_PROGRESS,
    PAUSED,
    RUNNING,
    SERVICE_TRANSITIONS,
    VALID_SIZES,
    Service,
    ServiceSpec,
    ServiceUpdate,
    updated,
)
from runyard.control.observability import Observability
from runyard.control.ports import ServiceEvents, Tag, UnitOfWork, Workloads
from runyard.control.tags import check_new_tags
from runyard.errors import AlreadyExists, InvalidInput, InvalidState, NotFound, NotSupported, QuotaExceeded
from runyard.ids import apprunner_arn

ECR_PUBLIC_AUTO_DEPLOY = "App Runner doesn't support automatic deployments for an image in an ECR Public repository."
RESERVED_ENV_PREFIX = "AWSAPPRUNNER"
NOT_YET = (
    "Runyard cannot run {operation} yet: it arrives with custom domains (see docs/compatibility.md). "
    "Nothing was changed."
)
URL_LABEL_LENGTH = 10


class Services:
    def __init__(
        self,
        deps: Deps,
        autoscaling: AutoScaling,
        observability: Observability,
        workloads: Workloads,
        engine: OperationEngine,
        events: ServiceEvents,
        *,
        pool_size: int,
    ) -> None:
        self._deps = deps
        self._autoscaling = autoscaling
        self._observability = observability
        self._workloads = workloads
        self._engine = engine
        self._events = events
        self._pool_size = pool_size

    def create(self, scope: Scope, *, name: str, spec: ServiceSpec, tags: list[Tag]) -> tuple[Service, str]:
        """Store the service and its CREATE_SERVICE operation; the engine builds and starts it."""
        check_new_tags(self._deps, tags)
        self._autoscaling.ensure_region(scope)
        deps = self._deps
        now = deps.clock.now()
        with deps.store.write() as uow:
            self.check_spec(uow, scope, spec, creating=True)
            self._workloads.check_source(spec)
            services = uow.repo(Service).find(account=scope.account, region=None)
            live = [s for s in services if s.live and s.region == scope.region]
            if any(s.name == name for s in live):
                raise AlreadyExists(f"A service named {name!r} already exists in {scope.region}.")
            if len(live) >= deps.quotas.services:
                raise QuotaExceeded(f"You have reached the quota of {deps.quotas.services} services.")
            service_id = deps.ids.hex32()
            service = Service(
                arn=apprunner_arn(scope.region, scope.account, "service", name, service_id),
                name=name,
                service_id=service_id,
                account=scope.account,
                region=scope.region,
                status=OPERATION_IN_PROGRESS,
                created_at=now,
                updated_at=now,
                auto_scaling_configuration_arn=self._autoscaling.resolve_for_service(
                    uow, scope, spec.auto_scaling_configuration_arn
                ).arn,
                spec=spec,
                url_label=self._new_label(services),
                pool=self._free_pool(services),
            )
            operation = self._new_operation(service, CREATE_SERVICE, now)
            uow.repo(Service).add(service)
            uow.repo(Operation).add(operation)
            uow.tags.merge(Service.KIND, service.arn, tags)
        self._engine.submit(operation.id)
        return service, operation.id

    def delete(self, scope: Scope, arn: str) -> tuple[Service, str]:
        """Start DELETE_SERVICE: the engine stops the instances and removes routing and artifacts."""
        return self._begin(scope, arn, DELETE_SERVICE, allowed=None)

    def start_deployment(self, scope: Scope, arn: str) -> str:
        """Start START_DEPLOYMENT: the branch head is built and rolled out; a failure rolls back."""
        return self._begin(scope, arn, START_DEPLOYMENT, allowed=frozenset({RUNNING}))[1]

    def pause(self, scope: Scope, arn: str) -> tuple[Service, str]:
        return self._begin(scope, arn, PAUSE_SERVICE, allowed=frozenset({RUNNING}))

    def resume(self, scope: Scope, arn: str) -> tuple[Service, str]:
        return self._begin(scope, arn, RESUME_SERVICE, allowed=frozenset({PAUSED}))

    def update(self, scope: Scope, arn: str, update: ServiceUpdate) -> tuple[Service, str]:
        """Start UPDATE_SERVICE. The answer shows the new configuration; the service takes it once it is deployed."""
        read_arn(scope, arn, "service", label="Service")
        with self._deps.store.read() as uow:
            current = self._live(uow, arn)
            spec = update.applied_to(current.spec)
            if (current.spec.source.code is None) != (spec.source.code is None):
                raise InvalidInput(
                    "UpdateService can't change the source type of a service (code repository <-> image repository)."
                )
            self.check_spec(uow, scope, spec, creating=False)
            self._workloads.check_source(spec)
            if update.auto_scaling_configuration_arn is not None:
                resolved = self._autoscaling.resolve_for_service(uow, scope, update.auto_scaling_configuration_arn)
                spec = replace(spec, auto_scaling_configuration_arn=resolved.arn)
        service, operation_id = self._begin(scope, arn, UPDATE_SERVICE, allowed=frozenset({RUNNING}), spec=spec)
        return updated(service, spec), operation_id

    def _begin(
        self,
        scope: Scope,
        arn: str,
        operation_type: str,
        *,
        allowed: frozenset[str] | None,
        spec: ServiceSpec | None = None,
    ) -> tuple[Service, str]:
        """Store the operation and move the service to OPERATION_IN_PROGRESS, or refuse as App Runner does."""
        read_arn(scope, arn, "service", label="Service")
        deps = self._deps
        now = deps.clock.now()
        with deps.store.write() as uow:
            service = self._live(uow, arn)
            if service.status == OPERATION_IN_PROGRESS:
                raise InvalidState(
                    f"Service {service.name} has an operation in progress; wait until it finishes, then retry."
                )
            if allowed is not None and service.status not in allowed:
                raise InvalidState(_refusal(service, operation_type))
            SERVICE_TRANSITIONS.check(service.status, OPERATION_IN_PROGRESS)
            previous = service.status
            service = replace(service, status=OPERATION_IN_PROGRESS, updated_at=now)
            operation = replace(self._new_operation(service, operation_type, now), spec=spec)
            uow.repo(Service).save(service)
            uow.repo(Operation).add(operation)
        self._events.publish(service, SERVICE_STATUS_CHANGE, status_detail(service, previous, OPERATION_IN_PROGRESS))
        self._engine.submit(operation.id)
        return service, operation.id

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

    def operations(self, scope: Scope, arn: str) -> list[Operation]:
        """The service's operations, newest first (ListOperations)."""
        service = self.get(scope, arn)
        with self._deps.store.read() as uow:
            found = uow.repo(Operation).find(account=scope.account, region=scope.region, name=service.arn)
        # The store lists in creation order; reversed first, so that equal timestamps keep newest first.
        return sorted(reversed(found), key=lambda op: op.created_at, reverse=True)

    def not_yet(self, scope: Scope, arn: str, operation: str) -> NoReturn:
        """Operations that arrive with deployments: the service must exist, then the answer names what is missing."""
        service = self.get(scope, arn)
        raise NotSupported(NOT_YET.format(operation=operation) + f" Service: {service.name}")

    def _new_operation(self, service: Service, operation_type: str, now: float) -> Operation:
        return Operation(
            id=self._deps.ids.uuid(),
            account=service.account,
            region=service.region,
            target_arn=service.arn,
            type=operation_type,
            status=PENDING,
            created_at=now,
            updated_at=now,
        )

    def _live(self, uow: UnitOfWork, arn: str) -> Service:
        service = uow.repo(Service).get(arn)
        if service is None or service.status == DELETED:
            raise NotFound(f"Service not found: {arn}")
        return service

    def _new_label(self, services: list[Service]) -> str:
        taken = {s.url_label for s in services}
        while True:
            label = self._deps.ids.label(URL_LABEL_LENGTH)
            if label not in taken:
                return label

    def _free_pool(self, services: list[Service]) -> int:
        used = {s.pool for s in services if s.status != DELETED}
        free = next((index for index in range(self._pool_size) if index not in used), None)
        if free is None:
            raise QuotaExceeded(
                f"This Runyard serves at most {self._pool_size} services at a time (data plane pool size)."
            )
        return free

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


def _refusal(service: Service, operation_type: str) -> str:
    action = {
        START_DEPLOYMENT: "StartDeployment",
        PAUSE_SERVICE: "PauseService",
        RESUME_SERVICE: "ResumeService",
        UPDATE_SERVICE: "UpdateService",
    }.get(operation_type, operation_type)
    if service.status == PAUSED:
        return (
            f"Service {service.name} is paused: resume it before {action} (only reads, tags and deletion are allowed)."
        )
    return f"Service {service.name} is {service.status}; {action} needs it to be " + (
        "PAUSED." if operation_type == RESUME_SERVICE else "RUNNING."
    )


def _check_port(port: str | None) -> None:
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise InvalidInput(f"Port must be a TCP port number from 1 to 65535, got {port!r}.")
