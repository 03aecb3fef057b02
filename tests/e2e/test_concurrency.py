"""Concurrent writers against one server: uniqueness and numbering hold, and nothing is lost."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support import RunyardProcess

T = TypeVar("T")


def threaded_client(server: RunyardProcess, region: str) -> Any:
    """One client shared by every thread (botocore clients are thread-safe), with room for all of them."""
    return server.client(
        "apprunner", region, config=Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=32)
    )


def all_at_once(count: int, call: Callable[[int], T]) -> list[T | ClientError]:
    """Run `call(i)` for i in range(count) on `count` threads released together; errors are returned."""
    barrier = threading.Barrier(count)

    def run(i: int) -> T | ClientError:
        barrier.wait(timeout=30)
        try:
            return call(i)
        except ClientError as error:
            return error

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_one_winner_for_one_connection_name(server: RunyardProcess, region: str) -> None:
    client = threaded_client(server, region)

    results = all_at_once(
        20, lambda _: client.create_connection(ConnectionName="contended", ProviderType="GITHUB")["Connection"]
    )

    winners = [r for r in results if not isinstance(r, ClientError)]
    losers = [r for r in results if isinstance(r, ClientError)]
    assert len(winners) == 1
    assert len(losers) == 19
    assert {e.response["Error"]["Code"] for e in losers} == {"InvalidRequestException"}
    listed = client.list_connections()["ConnectionSummaryList"]
    assert listed == winners


def test_concurrent_revisions_are_numbered_without_gaps(server: RunyardProcess, region: str) -> None:
    client = threaded_client(server, region)

    results = all_at_once(
        10,
        lambda i: client.create_auto_scaling_configuration(
            AutoScalingConfigurationName="contended-asc", MaxConcurrency=i + 1
        )["AutoScalingConfiguration"],
    )

    errors = [r for r in results if isinstance(r, ClientError)]
    assert errors == []
    created = [r for r in results if not isinstance(r, ClientError)]
    assert sorted(c["AutoScalingConfigurationRevision"] for c in created) == list(range(1, 11))
    assert len({c["AutoScalingConfigurationArn"] for c in created}) == 10
    listed = client.list_auto_scaling_configurations(AutoScalingConfigurationName="contended-asc", LatestOnly=False)[
        "AutoScalingConfigurationSummaryList"
    ]
    assert sorted(s["AutoScalingConfigurationRevision"] for s in listed) == list(range(1, 11))
    assert {s["AutoScalingConfigurationArn"] for s in listed} == {c["AutoScalingConfigurationArn"] for c in created}
    # Each request's values went into its own revision, and only the highest is the latest.
    by_arn = {c["AutoScalingConfigurationArn"]: c for c in created}
    for arn, config in by_arn.items():
        described = client.describe_auto_scaling_configuration(AutoScalingConfigurationArn=arn)[
            "AutoScalingConfiguration"
        ]
        assert described["MaxConcurrency"] == config["MaxConcurrency"]
        assert described["Latest"] is (described["AutoScalingConfigurationRevision"] == 10)


def test_concurrent_creates_of_different_names_lose_nothing(server: RunyardProcess, region: str) -> None:
    client = threaded_client(server, region)

    def create_all(i: int) -> list[str]:
        return [
            client.create_connection(ConnectionName=f"parallel-conn-{i}", ProviderType="GITHUB")["Connection"][
                "ConnectionArn"
            ],
            client.create_observability_configuration(ObservabilityConfigurationName=f"parallel-obs-{i}")[
                "ObservabilityConfiguration"
            ]["ObservabilityConfigurationArn"],
            client.create_vpc_connector(VpcConnectorName=f"parallel-vpc-{i}", Subnets=["subnet-0123456789abcdef0"])[
                "VpcConnector"
            ]["VpcConnectorArn"],
            client.create_auto_scaling_configuration(AutoScalingConfigurationName=f"parallel-asc-{i}")[
                "AutoScalingConfiguration"
            ]["AutoScalingConfigurationArn"],
        ]

    results = all_at_once(10, create_all)

    assert [r for r in results if isinstance(r, ClientError)] == []
    made = [arns for arns in results if not isinstance(arns, ClientError)]
    connections = {c["ConnectionArn"] for c in client.list_connections()["ConnectionSummaryList"]}
    observability = {
        o["ObservabilityConfigurationArn"]
        for o in client.list_observability_configurations()["ObservabilityConfigurationSummaryList"]
    }
    connectors = {v["VpcConnectorArn"] for v in client.list_vpc_connectors()["VpcConnectors"]}
    scaling = {
        s["AutoScalingConfigurationArn"]
        for s in client.list_auto_scaling_configurations()["AutoScalingConfigurationSummaryList"]
        if s["AutoScalingConfigurationName"] != "DefaultConfiguration"
    }
    assert connections == {arns[0] for arns in made}
    assert observability == {arns[1] for arns in made}
    assert connectors == {arns[2] for arns in made}
    assert scaling == {arns[3] for arns in made}
    assert len(connections) == len(observability) == len(connectors) == len(scaling) == 10


def test_concurrent_tagging_of_one_resource_keeps_every_tag(server: RunyardProcess, region: str) -> None:
    client = threaded_client(server, region)
    arn = client.create_connection(ConnectionName="tag-target", ProviderType="GITHUB")["Connection"]["ConnectionArn"]

    results = all_at_once(
        10, lambda i: client.tag_resource(ResourceArn=arn, Tags=[{"Key": f"key-{i}", "Value": str(i)}])
    )

    assert [r for r in results if isinstance(r, ClientError)] == []
    tags = {t["Key"]: t["Value"] for t in client.list_tags_for_resource(ResourceArn=arn)["Tags"]}
    assert tags == {f"key-{i}": str(i) for i in range(10)}
