"""TagResource / UntagResource / ListTagsForResource on every App Runner resource that exists today."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support import RunyardProcess

ACCOUNT = "000000000000"

Creator = Callable[[Any, str, list[dict[str, str]]], str]


def _connection(client: Any, name: str, tags: list[dict[str, str]]) -> str:
    created = client.create_connection(ConnectionName=name, ProviderType="GITHUB", Tags=tags)
    return str(created["Connection"]["ConnectionArn"])


def _auto_scaling(client: Any, name: str, tags: list[dict[str, str]]) -> str:
    created = client.create_auto_scaling_configuration(AutoScalingConfigurationName=name, Tags=tags)
    return str(created["AutoScalingConfiguration"]["AutoScalingConfigurationArn"])


def _observability(client: Any, name: str, tags: list[dict[str, str]]) -> str:
    created = client.create_observability_configuration(ObservabilityConfigurationName=name, Tags=tags)
    return str(created["ObservabilityConfiguration"]["ObservabilityConfigurationArn"])


def _vpc_connector(client: Any, name: str, tags: list[dict[str, str]]) -> str:
    created = client.create_vpc_connector(VpcConnectorName=name, Subnets=["subnet-0123456789abcdef0"], Tags=tags)
    return str(created["VpcConnector"]["VpcConnectorArn"])


CREATORS: dict[str, Creator] = {
    "connection": _connection,
    "autoscaling": _auto_scaling,
    "observability": _observability,
    "vpcconnector": _vpc_connector,
}


def tags_of(client: Any, arn: str) -> dict[str, str]:
    tags = client.list_tags_for_resource(ResourceArn=arn)["Tags"]
    as_dict = {t["Key"]: t["Value"] for t in tags}
    assert len(as_dict) == len(tags), "a key is listed twice"
    return as_dict


def many(count: int, prefix: str = "k") -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{i}", "Value": f"v{i}"} for i in range(count)]


@pytest.fixture(params=sorted(CREATORS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_tags_given_at_create_are_listed(server: RunyardProcess, region: str, kind: str) -> None:
    client = server.client("apprunner", region)
    arn = CREATORS[kind](client, "tagged-one", [{"Key": "team", "Value": "web"}, {"Key": "env", "Value": ""}])
    untagged = CREATORS[kind](client, "untagged-one", [])

    assert tags_of(client, arn) == {"team": "web", "env": ""}
    assert client.list_tags_for_resource(ResourceArn=untagged)["Tags"] == []


def test_tag_and_untag(server: RunyardProcess, region: str, kind: str) -> None:
    client = server.client("apprunner", region)
    arn = CREATORS[kind](client, "retag-me", [{"Key": "team", "Value": "web"}])
    neighbour = CREATORS[kind](client, "neighbour", [{"Key": "team", "Value": "ops"}])

    client.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "api"}, {"Key": "cost", "Value": "42"}])
    assert tags_of(client, arn) == {"team": "api", "cost": "42"}

    client.untag_resource(ResourceArn=arn, TagKeys=["team", "not-there"])
    assert tags_of(client, arn) == {"cost": "42"}
    client.untag_resource(ResourceArn=arn, TagKeys=["cost"])
    assert tags_of(client, arn) == {}
    assert tags_of(client, neighbour) == {"team": "ops"}


def test_reserved_aws_prefix(server: RunyardProcess, region: str, kind: str) -> None:
    client = server.client("apprunner", region)
    arn = CREATORS[kind](client, "reserved-tags", [{"Key": "keep", "Value": "1"}])

    for key in ("aws:owner", "AWS:owner"):
        with pytest.raises(client.exceptions.InvalidRequestException) as raised:
            client.tag_resource(ResourceArn=arn, Tags=[{"Key": "fine", "Value": "x"}, {"Key": key, "Value": "x"}])
        assert key in raised.value.response["Error"]["Message"]
    assert tags_of(client, arn) == {"keep": "1"}

    with pytest.raises(client.exceptions.InvalidRequestException):
        CREATORS[kind](client, "reserved-at-create", [{"Key": "aws:cloudformation:stack", "Value": "x"}])
    assert "aws:" not in str(client.list_tags_for_resource(ResourceArn=arn))


def test_at_most_fifty_tags(server: RunyardProcess, region: str, kind: str) -> None:
    client = server.client("apprunner", region)
    arn = CREATORS[kind](client, "fifty-tags", many(45))

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.tag_resource(ResourceArn=arn, Tags=many(6, prefix="new"))
    assert "50" in raised.value.response["Error"]["Message"]
    assert tags_of(client, arn) == {t["Key"]: t["Value"] for t in many(45)}

    # Overwriting existing keys does not count twice; exactly 50 is fine.
    client.tag_resource(ResourceArn=arn, Tags=many(45) + many(5, prefix="new"))
    assert len(tags_of(client, arn)) == 50
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.tag_resource(ResourceArn=arn, Tags=[{"Key": "one-too-many", "Value": ""}])
    assert len(tags_of(client, arn)) == 50


def test_more_than_fifty_tags_at_create(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)

    # A tag limit is a limit of the request, not an account quota: the same error as TagResource gives.
    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        _connection(client, "too-many-tags", many(51))
    assert "50" in raised.value.response["Error"]["Message"]
    assert client.list_connections()["ConnectionSummaryList"] == []
    _connection(client, "just-enough-tags", many(50))
    assert [c["ConnectionName"] for c in client.list_connections()["ConnectionSummaryList"]] == ["just-enough-tags"]


def test_a_key_twice_in_one_request(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    arn = _connection(client, "dup-tag-keys", [])

    with pytest.raises(client.exceptions.InvalidRequestException):
        client.tag_resource(ResourceArn=arn, Tags=[{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}])
    assert tags_of(client, arn) == {}


def test_tag_value_constraints(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    arn = _connection(client, "long-tag-values", [])

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.tag_resource(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v" * 257}])
    assert "Member must have length less than or equal to 256" in raised.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.tag_resource(ResourceArn=arn, Tags=[{"Key": "k" * 129, "Value": "v"}])
    assert tags_of(client, arn) == {}
    client.tag_resource(ResourceArn=arn, Tags=[{"Key": "k" * 128, "Value": "v" * 256}])
    assert tags_of(client, arn) == {"k" * 128: "v" * 256}


def test_unknown_arns_are_not_found(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    real = _connection(client, "real-connection", [{"Key": "a", "Value": "b"}])
    unknown = [
        f"arn:aws:apprunner:{region}:{ACCOUNT}:connection/ghost/{'0' * 32}",
        f"arn:aws:apprunner:{region}:{ACCOUNT}:autoscalingconfiguration/ghost/1/{'0' * 32}",
        f"arn:aws:apprunner:{region}:{ACCOUNT}:observabilityconfiguration/ghost/1/{'0' * 32}",
        f"arn:aws:apprunner:{region}:{ACCOUNT}:vpcconnector/ghost/1/{'0' * 32}",
        f"arn:aws:apprunner:{region}:{ACCOUNT}:vpcingressconnection/ghost/{'0' * 32}",
        f"arn:aws:apprunner:{region}:{ACCOUNT}:service/ghost/{'0' * 32}",
        f"arn:aws:apprunner:{region}:{ACCOUNT}:widget/ghost",
        real.replace(f":{region}:", ":ap-south-1:"),
    ]

    for arn in unknown:
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.list_tags_for_resource(ResourceArn=arn)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "b"}])
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert tags_of(client, real) == {"a": "b"}


def test_deleted_connection_has_no_tags_to_list(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    arn = _connection(client, "tagged-then-gone", [{"Key": "a", "Value": "b"}])
    client.delete_connection(ConnectionArn=arn)

    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_tags_for_resource(ResourceArn=arn)
    # A new connection of the same name starts without the old tags.
    again = _connection(client, "tagged-then-gone", [])
    assert tags_of(client, again) == {}


def test_over_long_tag_list_is_rejected_by_codeconnections(server: RunyardProcess, region: str) -> None:
    """App Runner's lists have no size limit in the model; CodeConnections' TagList has max 200."""
    client = server.client("codeconnections", region)
    arn = client.create_connection(ConnectionName=f"cc-{region}"[:32], ProviderType="GitHub", Tags=many(2))[
        "ConnectionArn"
    ]
    before = client.list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert len(before) == 2

    with pytest.raises(client.exceptions.ClientError) as raised:
        client.tag_resource(ResourceArn=arn, Tags=many(201))
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert (
        "at 'tags' failed to satisfy constraint: Member must have length less than or equal to 200"
        in (error["Message"])
    )
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == before
    client.delete_connection(ConnectionArn=arn)
