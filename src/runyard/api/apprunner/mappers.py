"""Domain objects <-> App Runner wire shapes. The only place App Runner member names are written."""

from __future__ import annotations

from typing import Any

from runyard.control.autoscaling import AutoScalingView
from runyard.control.model.apprunner import Connection, VpcConnector, VpcIngressConnection
from runyard.control.model.operation import Operation
from runyard.control.model.service import (
    CodeSource,
    HealthCheckSpec,
    ImageSource,
    InstanceSpec,
    NetworkSpec,
    ObservabilitySpec,
    Service,
    ServiceSpec,
    ServiceUpdate,
    SourceSpec,
    cpu_units,
    memory_mb,
)
from runyard.control.observability import ObservabilityView
from runyard.control.ports import Tag

Wire = dict[str, Any]


def tags_in(items: list[Wire] | None) -> list[Tag]:
    # App Runner's Tag members are not marked required; a tag without a key is not a tag.
    return [(item["Key"], item.get("Value", "")) for item in items or [] if "Key" in item]


def tags_out(tags: list[Tag]) -> list[Wire]:
    return [{"Key": key, "Value": value} for key, value in tags]


def connection(c: Connection) -> Wire:
    return {
        "ConnectionName": c.name,
        "ConnectionArn": c.arn,
        "ProviderType": c.provider_type,
        "Status": c.status,
        "CreatedAt": c.created_at,
    }


def autoscaling(view: AutoScalingView) -> Wire:
    c = view.config
    return {
        "AutoScalingConfigurationArn": c.arn,
        "AutoScalingConfigurationName": c.name,
        "AutoScalingConfigurationRevision": c.revision,
        "Latest": view.latest,
        # The real service sends these statuses in lower case (api-contract §6.1); Terraform relies on it.
        "Status": c.status.lower(),
        "MaxConcurrency": c.max_concurrency,
        "MinSize": c.min_size,
        "MaxSize": c.max_size,
        "CreatedAt": c.created_at,
        "DeletedAt": c.deleted_at,
        "HasAssociatedService": view.has_associated_service,
        "IsDefault": c.is_default,
    }


def autoscaling_summary(view: AutoScalingView) -> Wire:
    full = autoscaling(view)
    keep = (
        "AutoScalingConfigurationArn",
        "AutoScalingConfigurationName",
        "AutoScalingConfigurationRevision",
        "Status",
        "CreatedAt",
        "HasAssociatedService",
        "IsDefault",
    )
    return {name: full[name] for name in keep}


def observability(view: ObservabilityView) -> Wire:
    c = view.config
    return {
        "ObservabilityConfigurationArn": c.arn,
        "ObservabilityConfigurationName": c.name,
        "TraceConfiguration": {"Vendor": c.trace_vendor} if c.trace_vendor else None,
        "ObservabilityConfigurationRevision": c.revision,
        "Latest": view.latest,
        "Status": c.status,
        "CreatedAt": c.created_at,
        "DeletedAt": c.deleted_at,
    }


def observability_summary(view: ObservabilityView) -> Wire:
    c = view.config
    return {
        "ObservabilityConfigurationArn": c.arn,
        "ObservabilityConfigurationName": c.name,
        "ObservabilityConfigurationRevision": c.revision,
    }


def vpc_connector(c: VpcConnector) -> Wire:
    return {
        "VpcConnectorName": c.name,
        "VpcConnectorArn": c.arn,
        "VpcConnectorRevision": c.revision,
        "Subnets": list(c.subnets),
        "SecurityGroups": list(c.security_groups),
        "Status": c.status,
        "CreatedAt": c.created_at,
        "DeletedAt": c.deleted_at,
    }


def vpc_ingress(c: VpcIngressConnection) -> Wire:
    return {
        "VpcIngressConnectionArn": c.arn,
        "VpcIngressConnectionName": c.name,
        "ServiceArn": c.service_arn,
        "Status": c.status,
        "AccountId": c.account,
        "DomainName": c.domain_name,
        "IngressVpcConfiguration": {"VpcId": c.vpc_id, "VpcEndpointId": c.vpc_endpoint_id},
        "CreatedAt": c.created_at,
        "DeletedAt": c.deleted_at,
    }


def service_summary(s: Service, service_url: str) -> Wire:
    return {
        "ServiceName": s.name,
        "ServiceId": s.service_id,
        "ServiceArn": s.arn,
        "ServiceUrl": service_url,
        "CreatedAt": s.created_at,
        "UpdatedAt": s.updated_at or s.created_at,
        "Status": s.status,
    }


def service(s: Service, service_url: str, autoscaling: AutoScalingView) -> Wire:
    spec = s.spec
    wire: Wire = {
        **service_summary(s, service_url),
        "DeletedAt": s.deleted_at,
        "SourceConfiguration": source_out(spec.source),
        # Cpu and Memory go back as numbers of units and MB, whatever form they came in (api-contract §5).
        "InstanceConfiguration": {
            "Cpu": str(spec.instance.cpu),
            "Memory": str(spec.instance.memory),
            "InstanceRoleArn": spec.instance.instance_role_arn,
        },
        "EncryptionConfiguration": {"KmsKey": spec.kms_key} if spec.kms_key else None,
        "HealthCheckConfiguration": health_check_out(spec.health_check),
        "AutoScalingConfigurationSummary": autoscaling_summary(autoscaling),
        "NetworkConfiguration": network_out(spec.network),
    }
    if spec.observability is not None:  # omitted when never configured (api-contract §5)
        wire["ObservabilityConfiguration"] = {
            "ObservabilityEnabled": spec.observability.enabled,
            "ObservabilityConfigurationArn": spec.observability.configuration_arn,
        }
    return wire


def source_out(source: SourceSpec) -> Wire:
    wire: Wire = {"AutoDeploymentsEnabled": _auto_deployments(source)}
    if source.code is not None:
        code = source.code
        configuration: Wire = {"ConfigurationSource": code.configuration_source or "REPOSITORY"}
        if code.configuration_source == "API":
            configuration["CodeConfigurationValues"] = {
                "Runtime": code.runtime,
                "BuildCommand": code.build_command,
                "StartCommand": code.start_command,
                "Port": code.port or "8080",
                "RuntimeEnvironmentVariables": dict(code.env),
                "RuntimeEnvironmentSecrets": dict(code.secrets),
            }
        wire["CodeRepository"] = {
            "RepositoryUrl": code.repository_url,
            "SourceCodeVersion": {"Type": "BRANCH", "Value": code.branch},
            "CodeConfiguration": configuration,
            "SourceDirectory": code.source_directory or "/",
        }
    if source.image is not None:
        image = source.image
        wire["ImageRepository"] = {
            "ImageIdentifier": image.identifier,
            "ImageRepositoryType": image.repository_type,
            "ImageConfiguration": {
                "Port": image.port or "8080",
                "StartCommand": image.start_command,
                "RuntimeEnvironmentVariables": dict(image.env),
                "RuntimeEnvironmentSecrets": dict(image.secrets),
            },
        }
    if source.connection_arn or source.access_role_arn:
        wire["AuthenticationConfiguration"] = {
            "ConnectionArn": source.connection_arn,
            "AccessRoleArn": source.access_role_arn,
        }
    return wire


def _auto_deployments(source: SourceSpec) -> bool:
    if source.auto_deployments is not None:
        return source.auto_deployments
    # App Runner's default: off for ECR Public images, on otherwise (api-contract §5).
    return not (source.image is not None and source.image.repository_type == "ECR_PUBLIC")


def health_check_out(h: HealthCheckSpec) -> Wire:
    return {
        "Protocol": h.protocol,
        "Path": h.path,
        "Interval": h.interval,
        "Timeout": h.timeout,
        "HealthyThreshold": h.healthy_threshold,
        "UnhealthyThreshold": h.unhealthy_threshold,
    }


def network_out(n: NetworkSpec) -> Wire:
    return {
        "EgressConfiguration": {"EgressType": n.egress_type, "VpcConnectorArn": n.vpc_connector_arn},
        "IngressConfiguration": {"IsPubliclyAccessible": n.publicly_accessible},
        "IpAddressType": n.ip_address_type,
    }


def operation_summary(op: Operation) -> Wire:
    return {
        "Id": op.id,
        "Type": op.type,
        "Status": op.status,
        "TargetArn": op.target_arn,
        "StartedAt": op.started_at if op.started_at is not None else op.created_at,
        "EndedAt": op.ended_at,
        "UpdatedAt": op.updated_at or op.created_at,
    }


# -- CreateService / UpdateService input -----------------------------------------------------------


def _pairs(mapping: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple((mapping or {}).items())


def _code_source(wire: Wire) -> CodeSource:
    config = wire.get("CodeConfiguration") or {}
    values = config.get("CodeConfigurationValues") or {}
    version = wire["SourceCodeVersion"]
    return CodeSource(
        repository_url=wire["RepositoryUrl"],
        branch=version["Value"],
        source_directory=wire.get("SourceDirectory"),
        configuration_source=config.get("ConfigurationSource"),
        runtime=values.get("Runtime"),
        build_command=values.get("BuildCommand"),
        start_command=values.get("StartCommand"),
        port=values.get("Port"),
        env=_pairs(values.get("RuntimeEnvironmentVariables")),
        secrets=_pairs(values.get("RuntimeEnvironmentSecrets")),
    )


def _image_source(wire: Wire) -> ImageSource:
    config = wire.get("ImageConfiguration") or {}
    return ImageSource(
        identifier=wire["ImageIdentifier"],
        repository_type=wire["ImageRepositoryType"],
        port=config.get("Port"),
        start_command=config.get("StartCommand"),
        env=_pairs(config.get("RuntimeEnvironmentVariables")),
        secrets=_pairs(config.get("RuntimeEnvironmentSecrets")),
    )


def source_spec(wire: Wire) -> SourceSpec:
    auth = wire.get("AuthenticationConfiguration") or {}
    code, image = wire.get("CodeRepository"), wire.get("ImageRepository")
    return SourceSpec(
        code=_code_source(code) if code else None,
        image=_image_source(image) if image else None,
        auto_deployments=wire.get("AutoDeploymentsEnabled"),
        connection_arn=auth.get("ConnectionArn"),
        access_role_arn=auth.get("AccessRoleArn"),
    )


def instance_spec(wire: Wire | None) -> InstanceSpec:
    wire = wire or {}
    default = InstanceSpec()
    return InstanceSpec(
        cpu=cpu_units(wire["Cpu"]) if "Cpu" in wire else default.cpu,
        memory=memory_mb(wire["Memory"]) if "Memory" in wire else default.memory,
        instance_role_arn=wire.get("InstanceRoleArn"),
    )


def health_check_spec(wire: Wire | None) -> HealthCheckSpec:
    wire = wire or {}
    default = HealthCheckSpec()
    return HealthCheckSpec(
        protocol=wire.get("Protocol", default.protocol),
        path=wire.get("Path", default.path),
        interval=wire.get("Interval", default.interval),
        timeout=wire.get("Timeout", default.timeout),
        healthy_threshold=wire.get("HealthyThreshold", default.healthy_threshold),
        unhealthy_threshold=wire.get("UnhealthyThreshold", default.unhealthy_threshold),
    )


def network_spec(wire: Wire | None) -> NetworkSpec:
    wire = wire or {}
    egress = wire.get("EgressConfiguration") or {}
    ingress = wire.get("IngressConfiguration")
    return NetworkSpec(
        egress_type=egress.get("EgressType", "DEFAULT"),
        vpc_connector_arn=egress.get("VpcConnectorArn"),
        # A missing IngressConfiguration means public; a present one without the member means private
        # (the Go SDK drops false booleans: api-contract §1).
        publicly_accessible=True if ingress is None else bool(ingress.get("IsPubliclyAccessible", False)),
        ip_address_type=wire.get("IpAddressType", "IPV4"),
    )


def observability_spec(wire: Wire | None) -> ObservabilitySpec | None:
    if not wire:
        return None
    return ObservabilitySpec(
        enabled=wire["ObservabilityEnabled"], configuration_arn=wire.get("ObservabilityConfigurationArn")
    )


def service_spec(request: Wire) -> ServiceSpec:
    encryption = request.get("EncryptionConfiguration")
    return ServiceSpec(
        source=source_spec(request["SourceConfiguration"]),
        instance=instance_spec(request.get("InstanceConfiguration")),
        health_check=health_check_spec(request.get("HealthCheckConfiguration")),
        network=network_spec(request.get("NetworkConfiguration")),
        observability=observability_spec(request.get("ObservabilityConfiguration")),
        kms_key=encryption["KmsKey"] if encryption else None,
        auto_scaling_configuration_arn=request.get("AutoScalingConfigurationArn"),
    )


def service_update(request: Wire) -> ServiceUpdate:
    """UpdateService: only the parts the request names; the rest of the configuration stays."""
    source = request.get("SourceConfiguration")
    return ServiceUpdate(
        source=source_spec(source) if source else None,
        instance=instance_spec(request["InstanceConfiguration"]) if "InstanceConfiguration" in request else None,
        health_check=(
            health_check_spec(request["HealthCheckConfiguration"]) if "HealthCheckConfiguration" in request else None
        ),
        network=network_spec(request["NetworkConfiguration"]) if "NetworkConfiguration" in request else None,
        observability=observability_spec(request.get("ObservabilityConfiguration")),
        auto_scaling_configuration_arn=request.get("AutoScalingConfigurationArn"),
    )
