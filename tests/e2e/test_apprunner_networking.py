"""VPC connectors and VPC ingress connections end to end."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from tests.support import RunyardProcess

ACCOUNT = "000000000000"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
SECURITY_GROUPS = ["sg-0123456789abcdef0"]


def create_connector(client: Any, name: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("Subnets", SUBNETS)
    connector: dict[str, Any] = client.create_vpc_connector(VpcConnectorName=name, **kwargs)["VpcConnector"]
    return connector


def connector_arns(client: Any) -> list[str]:
    return [c["VpcConnectorArn"] for c in client.list_vpc_connectors()["VpcConnectors"]]


def service_arn(region: str) -> str:
    return f"arn:aws:apprunner:{region}:{ACCOUNT}:service/no-such-service/{'a' * 32}"


def ingress_arn(region: str) -> str:
    return f"arn:aws:apprunner:{region}:{ACCOUNT}:vpcingressconnection/no-such-ingress/{'b' * 32}"


# -- VPC connectors -------------------------------------------------------------------------------------


def test_create_vpc_connector(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    created = create_connector(client, "my-connector", SecurityGroups=SECURITY_GROUPS)

    assert created["VpcConnectorName"] == "my-connector"
    assert created["VpcConnectorRevision"] == 1
    assert created["Status"] == "ACTIVE"
    assert created["Subnets"] == SUBNETS
    assert created["SecurityGroups"] == SECURITY_GROUPS
    assert isinstance(created["CreatedAt"], datetime)
    assert "DeletedAt" not in created
    assert re.fullmatch(
        rf"arn:aws:apprunner:{region}:{ACCOUNT}:vpcconnector/my-connector/1/[0-9a-f]{{32}}",
        created["VpcConnectorArn"],
    )
    assert client.describe_vpc_connector(VpcConnectorArn=created["VpcConnectorArn"])["VpcConnector"] == created
    page = client.list_vpc_connectors()
    assert page["VpcConnectors"] == [created]
    assert "NextToken" not in page


def test_a_second_active_connector_with_the_same_name_is_rejected(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    first = create_connector(client, "dup-connector")

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        create_connector(client, "dup-connector", Subnets=["subnet-11111111"])
    assert "dup-connector" in raised.value.response["Error"]["Message"]
    assert connector_arns(client) == [first["VpcConnectorArn"]]


def test_subnets_must_not_be_empty(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)

    with pytest.raises(client.exceptions.InvalidRequestException):
        create_connector(client, "no-subnets", Subnets=[])
    assert connector_arns(client) == []


def test_describe_needs_the_full_arn(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    arn = create_connector(client, "full-arn-only")["VpcConnectorArn"]
    name_arn = f"arn:aws:apprunner:{region}:{ACCOUNT}:vpcconnector/full-arn-only"

    for partial in (name_arn, f"{name_arn}/1", f"{name_arn}/1/{'0' * 32}", arn.replace(f":{region}:", ":us-east-2:")):
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.describe_vpc_connector(VpcConnectorArn=partial)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.delete_vpc_connector(VpcConnectorArn=partial)
    assert client.describe_vpc_connector(VpcConnectorArn=arn)["VpcConnector"]["Status"] == "ACTIVE"


def test_delete_vpc_connector(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    doomed = create_connector(client, "doomed-connector")
    kept = create_connector(client, "kept-connector")

    deleted = client.delete_vpc_connector(VpcConnectorArn=doomed["VpcConnectorArn"])["VpcConnector"]
    assert deleted["Status"] == "INACTIVE"
    assert isinstance(deleted["DeletedAt"], datetime)
    assert deleted["VpcConnectorArn"] == doomed["VpcConnectorArn"]
    assert deleted["Subnets"] == SUBNETS

    described = client.describe_vpc_connector(VpcConnectorArn=doomed["VpcConnectorArn"])["VpcConnector"]
    assert described["Status"] == "INACTIVE"
    assert described["DeletedAt"] == deleted["DeletedAt"]
    # Only active connectors are listed.
    assert connector_arns(client) == [kept["VpcConnectorArn"]]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_vpc_connector(VpcConnectorArn=doomed["VpcConnectorArn"])

    # With no active one left, the name can be used again.
    again = create_connector(client, "doomed-connector")
    assert again["Status"] == "ACTIVE"
    assert again["VpcConnectorArn"] != doomed["VpcConnectorArn"]
    assert sorted(connector_arns(client)) == sorted([kept["VpcConnectorArn"], again["VpcConnectorArn"]])


def test_vpc_connector_pagination(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    expected = {create_connector(client, f"paged-connector-{i}")["VpcConnectorArn"] for i in range(5)}

    first = client.list_vpc_connectors(MaxResults=4)
    second = client.list_vpc_connectors(MaxResults=4, NextToken=first["NextToken"])
    assert [len(first["VpcConnectors"]), len(second["VpcConnectors"])] == [4, 1]
    assert "NextToken" not in second
    assert {c["VpcConnectorArn"] for c in first["VpcConnectors"] + second["VpcConnectors"]} == expected
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.list_vpc_connectors(MaxResults=4, NextToken=first["NextToken"][:-3])


def test_vpc_connector_name_pattern(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        create_connector(client, "bad connector")
    assert "at 'vpcConnectorName' failed to satisfy constraint" in raised.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.InvalidRequestException):
        create_connector(client, "c" * 41)
    assert connector_arns(client) == []


# -- VPC ingress connections ----------------------------------------------------------------------------


def test_ingress_connection_needs_an_existing_service(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)

    # The operation models no ResourceNotFoundException, so the missing service is an invalid request.
    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_vpc_ingress_connection(
            ServiceArn=service_arn(region),
            VpcIngressConnectionName="my-ingress",
            IngressVpcConfiguration={"VpcId": "vpc-0123456789abcdef0", "VpcEndpointId": "vpce-0123456789abcdef0"},
        )
    assert "Service not found" in raised.value.response["Error"]["Message"]
    page = client.list_vpc_ingress_connections()
    assert page["VpcIngressConnectionSummaryList"] == []
    assert "NextToken" not in page


def test_unknown_ingress_connection_is_not_found(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    arn = ingress_arn(region)

    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_vpc_ingress_connection(VpcIngressConnectionArn=arn)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_vpc_ingress_connection(VpcIngressConnectionArn=arn)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.update_vpc_ingress_connection(
            VpcIngressConnectionArn=arn,
            IngressVpcConfiguration={"VpcId": "vpc-0123456789abcdef0", "VpcEndpointId": "vpce-0123456789abcdef0"},
        )
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_vpc_ingress_connection(VpcIngressConnectionArn=arn.replace("vpcingressconnection", "service"))


def test_ingress_connections_list_is_empty(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)

    assert client.list_vpc_ingress_connections()["VpcIngressConnectionSummaryList"] == []
    filtered = client.list_vpc_ingress_connections(
        Filter={"ServiceArn": service_arn(region), "VpcEndpointId": "vpce-0123456789abcdef0"}, MaxResults=5
    )
    assert filtered["VpcIngressConnectionSummaryList"] == []
    assert "NextToken" not in filtered
