"""CreateService's checks end to end: every invalid request gets its own error and stores nothing; image
services are checked fully and then refused on the process runtime, naming `--runtime oci`; every operation
on a service that does not exist is ResourceNotFound. Running code services: test_code_services.py."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config

from tests.support import RunyardProcess

ACCOUNT = "000000000000"
# The session server runs the process runtime (no container API is reachable by default): images need `--runtime oci`.
WORKLOADS_MISSING = "Image-based services (ImageRepository) run on the OCI runtime"
ECR_PUBLIC_AUTO_DEPLOY = "App Runner doesn't support automatic deployments for an image in an ECR Public repository."


def image_request(name: str = "image-svc") -> dict[str, Any]:
    return {
        "ServiceName": name,
        "SourceConfiguration": {
            "ImageRepository": {
                "ImageIdentifier": "public.ecr.aws/nginx/nginx:latest",
                "ImageRepositoryType": "ECR_PUBLIC",
                "ImageConfiguration": {"Port": "80", "RuntimeEnvironmentVariables": {"APP_NAME": "demo"}},
            },
            "AutoDeploymentsEnabled": False,
        },
    }


def code_request(connection_arn: str, name: str = "code-svc") -> dict[str, Any]:
    return {
        "ServiceName": name,
        "SourceConfiguration": {
            "CodeRepository": {
                "RepositoryUrl": "https://github.com/example/python-hello",
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {
                    "ConfigurationSource": "API",
                    "CodeConfigurationValues": {
                        "Runtime": "PYTHON_311",
                        "BuildCommand": "pip install -r requirements.txt",
                        "StartCommand": "python server.py",
                        "Port": "8080",
                    },
                },
            },
            "AutoDeploymentsEnabled": True,
            "AuthenticationConfiguration": {"ConnectionArn": connection_arn},
        },
    }


def unknown_service(region: str) -> str:
    return f"arn:aws:apprunner:{region}:{ACCOUNT}:service/ghost-svc/{'c' * 32}"


def service_names(client: Any) -> list[str]:
    return [s["ServiceName"] for s in client.list_services()["ServiceSummaryList"]]


# -- a valid request gets as far as the missing runtime -------------------------------------------------


def test_valid_image_service_is_checked_then_refused(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    request = image_request()
    request["InstanceConfiguration"] = {"Cpu": "1 vCPU", "Memory": "2 GB"}
    request["HealthCheckConfiguration"] = {"Protocol": "HTTP", "Path": "/health"}
    request["NetworkConfiguration"] = {"IngressConfiguration": {"IsPubliclyAccessible": False}}
    request["Tags"] = [{"Key": "team", "Value": "web"}]

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_service(**request)
    message = raised.value.response["Error"]["Message"]
    assert message.startswith(WORKLOADS_MISSING)
    assert "ImageRepository" in message
    assert service_names(client) == []


def test_valid_code_service_is_checked_then_refused(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    connection = client.create_connection(ConnectionName="code-conn", ProviderType="GITHUB")["Connection"]

    # A connection whose handshake is not complete cannot read a repository yet; the answer says so.
    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_service(**code_request(connection["ConnectionArn"]))
    assert raised.value.response["Error"]["Message"].startswith("Connection code-conn is PENDING_HANDSHAKE")

    # With a connection that does not exist, that is what it says instead.
    missing = connection["ConnectionArn"].replace("code-conn", "gone-conn")
    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_service(**code_request(missing))
    assert raised.value.response["Error"]["Message"] == f"Connection not found: {missing}"
    assert service_names(client) == []


def test_custom_auto_scaling_and_observability_are_accepted(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    client.create_auto_scaling_configuration(AutoScalingConfigurationName="svc-scaling", MaxSize=4)
    observability = client.create_observability_configuration(
        ObservabilityConfigurationName="svc-tracing", TraceConfiguration={"Vendor": "AWSXRAY"}
    )["ObservabilityConfiguration"]
    connector = client.create_vpc_connector(VpcConnectorName="svc-connector", Subnets=["subnet-0123456789abcdef0"])
    request = image_request()
    # A name-only ARN means the latest revision.
    request["AutoScalingConfigurationArn"] = (
        f"arn:aws:apprunner:{region}:{ACCOUNT}:autoscalingconfiguration/svc-scaling"
    )
    request["ObservabilityConfiguration"] = {
        "ObservabilityEnabled": True,
        "ObservabilityConfigurationArn": observability["ObservabilityConfigurationArn"],
    }
    request["NetworkConfiguration"] = {
        "EgressConfiguration": {"EgressType": "VPC", "VpcConnectorArn": connector["VpcConnector"]["VpcConnectorArn"]}
    }

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_service(**request)
    assert raised.value.response["Error"]["Message"].startswith(WORKLOADS_MISSING)
    assert service_names(client) == []


# -- each invalid request gets its own error first ------------------------------------------------------

Mutation = Callable[[dict[str, Any], str], None]


def _both_sources(r: dict[str, Any], region: str) -> None:
    r["SourceConfiguration"]["CodeRepository"] = code_request("x")["SourceConfiguration"]["CodeRepository"]


def _code_without_configuration(r: dict[str, Any], region: str) -> None:
    code = code_request("x")["SourceConfiguration"]["CodeRepository"]
    del code["CodeConfiguration"]
    r["SourceConfiguration"] = {"CodeRepository": code}


def _api_without_values(r: dict[str, Any], region: str) -> None:
    code = code_request("x")["SourceConfiguration"]["CodeRepository"]
    del code["CodeConfiguration"]["CodeConfigurationValues"]
    r["SourceConfiguration"] = {"CodeRepository": code}


def _ecr_public_auto_deploy(r: dict[str, Any], region: str) -> None:
    r["SourceConfiguration"]["AutoDeploymentsEnabled"] = True


def _private_ecr_without_role(r: dict[str, Any], region: str) -> None:
    image = r["SourceConfiguration"]["ImageRepository"]
    image["ImageIdentifier"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:latest"
    image["ImageRepositoryType"] = "ECR"


def _bad_size_pair(r: dict[str, Any], region: str) -> None:
    r["InstanceConfiguration"] = {"Cpu": "4 vCPU", "Memory": "2 GB"}


def _unknown_auto_scaling(r: dict[str, Any], region: str) -> None:
    r["AutoScalingConfigurationArn"] = f"arn:aws:apprunner:{region}:{ACCOUNT}:autoscalingconfiguration/nope-scaling"


def _reserved_env_name(r: dict[str, Any], region: str) -> None:
    r["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]["RuntimeEnvironmentVariables"] = {
        "AWSAPPRUNNER_SECRET": "x"
    }


def _vpc_egress_without_connector(r: dict[str, Any], region: str) -> None:
    r["NetworkConfiguration"] = {"EgressConfiguration": {"EgressType": "VPC"}}


def _connector_without_vpc_egress(r: dict[str, Any], region: str) -> None:
    arn = f"arn:aws:apprunner:{region}:{ACCOUNT}:vpcconnector/x-conn/1/{'d' * 32}"
    r["NetworkConfiguration"] = {"EgressConfiguration": {"EgressType": "DEFAULT", "VpcConnectorArn": arn}}


def _unknown_vpc_connector(r: dict[str, Any], region: str) -> None:
    arn = f"arn:aws:apprunner:{region}:{ACCOUNT}:vpcconnector/x-conn/1/{'d' * 32}"
    r["NetworkConfiguration"] = {"EgressConfiguration": {"EgressType": "VPC", "VpcConnectorArn": arn}}


def _tracing_without_configuration(r: dict[str, Any], region: str) -> None:
    r["ObservabilityConfiguration"] = {"ObservabilityEnabled": True}


def _bad_port(r: dict[str, Any], region: str) -> None:
    r["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]["Port"] = "70000"


def _path_with_tcp(r: dict[str, Any], region: str) -> None:
    r["HealthCheckConfiguration"] = {"Protocol": "TCP", "Path": "/health"}


def _reserved_tag(r: dict[str, Any], region: str) -> None:
    r["Tags"] = [{"Key": "AWS:stack", "Value": "x"}]


INVALID: list[tuple[str, Mutation, str]] = [
    ("both-sources", _both_sources, "SourceConfiguration needs exactly one of CodeRepository or ImageRepository."),
    (
        "code-without-code-configuration",
        _code_without_configuration,
        "CodeRepository.CodeConfiguration is required when you create a service.",
    ),
    (
        "api-without-values",
        _api_without_values,
        "CodeConfiguration.CodeConfigurationValues is required when ConfigurationSource is API.",
    ),
    ("ecr-public-auto-deploy", _ecr_public_auto_deploy, ECR_PUBLIC_AUTO_DEPLOY),
    (
        "private-ecr-without-role",
        _private_ecr_without_role,
        "AuthenticationConfiguration.AccessRoleArn is required for an image in a private ECR repository.",
    ),
    ("cpu-memory-pair", _bad_size_pair, "Cpu 4096 with Memory 2048 is not a size App Runner offers"),
    ("unknown-auto-scaling", _unknown_auto_scaling, "Auto scaling configuration not found: "),
    ("reserved-env-name", _reserved_env_name, "Environment variable names starting with AWSAPPRUNNER are reserved"),
    (
        "vpc-egress-without-connector",
        _vpc_egress_without_connector,
        "EgressConfiguration.VpcConnectorArn is required when EgressType is VPC.",
    ),
    (
        "connector-without-vpc-egress",
        _connector_without_vpc_egress,
        "EgressConfiguration.VpcConnectorArn applies only when EgressType is VPC.",
    ),
    ("unknown-vpc-connector", _unknown_vpc_connector, "VPC connector not found: "),
    (
        "tracing-without-configuration",
        _tracing_without_configuration,
        "ObservabilityConfigurationArn is required when ObservabilityEnabled is true.",
    ),
    ("bad-port", _bad_port, "Port must be a TCP port number from 1 to 65535"),
    ("path-with-tcp", _path_with_tcp, "HealthCheckConfiguration.Path applies to the HTTP protocol only."),
    ("reserved-tag", _reserved_tag, "Tag keys starting with 'aws:' are reserved"),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_service_gets_its_own_error(
    server: RunyardProcess, region: str, mutate: Mutation, expected: str
) -> None:
    client = server.client("apprunner", region)
    request = copy.deepcopy(image_request())
    mutate(request, region)

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_service(**request)
    message = raised.value.response["Error"]["Message"]
    assert message.startswith(expected)
    assert WORKLOADS_MISSING not in message
    assert service_names(client) == []


def test_ecr_public_auto_deploy_message_is_exact(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    request = image_request()
    request["SourceConfiguration"]["AutoDeploymentsEnabled"] = True

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_service(**request)
    assert raised.value.response["Error"]["Message"] == ECR_PUBLIC_AUTO_DEPLOY


@pytest.mark.parametrize(
    ("change", "member"),
    [
        ({"ServiceName": "ab cd"}, "serviceName"),
        ({"ServiceName": "s" * 41}, "serviceName"),
        ({"InstanceConfiguration": {"Cpu": "3 vCPU"}}, "instanceConfiguration.cpu"),
        ({"InstanceConfiguration": {"Memory": "5 GB"}}, "instanceConfiguration.memory"),
        ({"HealthCheckConfiguration": {"Interval": 21}}, "healthCheckConfiguration.interval"),
        ({"NetworkConfiguration": {"IpAddressType": "IPV6"}}, "networkConfiguration.ipAddressType"),
        ({"EncryptionConfiguration": {"KmsKey": "not-a-key"}}, "encryptionConfiguration.kmsKey"),
    ],
    ids=["name-pattern", "name-max-length", "cpu", "memory", "interval", "ip-type", "kms-key"],
)
def test_model_constraints_on_create_service(
    server: RunyardProcess, region: str, change: dict[str, Any], member: str
) -> None:
    client = server.client("apprunner", region)
    request = {**image_request(), **change}

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_service(**request)
    assert f"at '{member}' failed to satisfy constraint" in raised.value.response["Error"]["Message"]
    assert service_names(client) == []


def test_required_members_of_create_service(server: RunyardProcess, region: str) -> None:
    client = server.client(
        "apprunner",
        region,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=False),
    )
    request = image_request()
    del request["SourceConfiguration"]["ImageRepository"]["ImageRepositoryType"]

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_service(**request)
    assert raised.value.response["Error"]["Message"] == (
        "1 validation error detected: Value null at 'sourceConfiguration.imageRepository.imageRepositoryType' "
        "failed to satisfy constraint: Member must not be null"
    )
    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_service(ServiceName="no-source")
    assert "Value null at 'sourceConfiguration'" in raised.value.response["Error"]["Message"]
    assert service_names(client) == []


# -- operations on a service that does not exist --------------------------------------------------------

ON_A_SERVICE: list[tuple[str, dict[str, Any]]] = [
    ("describe_service", {}),
    ("delete_service", {}),
    ("pause_service", {}),
    ("resume_service", {}),
    ("start_deployment", {}),
    ("list_operations", {}),
    ("update_service", {"InstanceConfiguration": {"Cpu": "2 vCPU", "Memory": "4 GB"}}),
    ("describe_custom_domains", {}),
    ("disassociate_custom_domain", {"DomainName": "example.com"}),
]


@pytest.mark.parametrize(("operation", "extra"), ON_A_SERVICE, ids=[o for o, _ in ON_A_SERVICE])
def test_unknown_service_is_not_found(
    server: RunyardProcess, region: str, operation: str, extra: dict[str, Any]
) -> None:
    client = server.client("apprunner", region)
    arn = unknown_service(region)

    with pytest.raises(client.exceptions.ResourceNotFoundException) as raised:
        getattr(client, operation)(ServiceArn=arn, **extra)
    assert arn in raised.value.response["Error"]["Message"]


def test_associate_custom_domain_with_an_unknown_service(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    arn = unknown_service(region)

    # AssociateCustomDomain models no ResourceNotFoundException: the missing service is an invalid request.
    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.associate_custom_domain(ServiceArn=arn, DomainName="example.com")
    assert raised.value.response["Error"]["Message"] == f"Service not found: {arn}"


def test_service_arns_of_other_regions_or_types_are_not_found(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    for arn in (
        unknown_service("us-east-1"),
        f"arn:aws:apprunner:{region}:{ACCOUNT}:connection/ghost-svc/{'c' * 32}",
        f"arn:aws:apprunner:{region}:123456789012:service/ghost-svc/{'c' * 32}",
    ):
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.describe_service(ServiceArn=arn)


# -- listing --------------------------------------------------------------------------------------------


def test_list_services_is_empty_and_pages_are_checked(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)

    page = client.list_services(MaxResults=20)
    assert page["ServiceSummaryList"] == []
    assert "NextToken" not in page
    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.list_services(MaxResults=21)
    assert raised.value.response["Error"]["Message"] == (
        "1 validation error detected: Value '21' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 20"
    )
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.list_services(NextToken="garbage")
