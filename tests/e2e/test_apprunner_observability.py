"""Observability configurations end to end: revisions, Latest, tracing, deletion, partial ARNs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from tests.support import RunyardProcess

ACCOUNT = "000000000000"


def base_arn(region: str, name: str) -> str:
    return f"arn:aws:apprunner:{region}:{ACCOUNT}:observabilityconfiguration/{name}"


def create(client: Any, name: str, **kwargs: Any) -> dict[str, Any]:
    config: dict[str, Any] = client.create_observability_configuration(ObservabilityConfigurationName=name, **kwargs)[
        "ObservabilityConfiguration"
    ]
    return config


def describe(client: Any, arn: str) -> dict[str, Any]:
    config: dict[str, Any] = client.describe_observability_configuration(ObservabilityConfigurationArn=arn)[
        "ObservabilityConfiguration"
    ]
    return config


def delete(client: Any, arn: str) -> dict[str, Any]:
    config: dict[str, Any] = client.delete_observability_configuration(ObservabilityConfigurationArn=arn)[
        "ObservabilityConfiguration"
    ]
    return config


def listed(client: Any, **kwargs: Any) -> list[tuple[str, int]]:
    return [
        (s["ObservabilityConfigurationName"], s["ObservabilityConfigurationRevision"])
        for s in client.list_observability_configurations(**kwargs)["ObservabilityConfigurationSummaryList"]
    ]


def test_a_new_region_has_none(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    page = client.list_observability_configurations()
    assert page["ObservabilityConfigurationSummaryList"] == []
    assert "NextToken" not in page


def test_create_with_tracing(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    created = create(client, "xray-traces", TraceConfiguration={"Vendor": "AWSXRAY"})

    assert created["ObservabilityConfigurationName"] == "xray-traces"
    assert created["ObservabilityConfigurationRevision"] == 1
    assert created["Latest"] is True
    assert created["Status"] == "ACTIVE"
    assert created["TraceConfiguration"] == {"Vendor": "AWSXRAY"}
    assert isinstance(created["CreatedAt"], datetime)
    assert "DeletedAt" not in created
    assert re.fullmatch(
        rf"{re.escape(base_arn(region, 'xray-traces'))}/1/[0-9a-f]{{32}}", created["ObservabilityConfigurationArn"]
    )
    assert describe(client, created["ObservabilityConfigurationArn"]) == created

    summaries = client.list_observability_configurations()["ObservabilityConfigurationSummaryList"]
    assert summaries == [
        {
            "ObservabilityConfigurationArn": created["ObservabilityConfigurationArn"],
            "ObservabilityConfigurationName": "xray-traces",
            "ObservabilityConfigurationRevision": 1,
        }
    ]


def test_create_without_tracing(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    created = create(client, "no-traces")

    assert "TraceConfiguration" not in created
    assert "TraceConfiguration" not in describe(client, created["ObservabilityConfigurationArn"])
    assert created["Status"] == "ACTIVE"


def test_revisions_and_latest(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    first = create(client, "obs-revs")
    second = create(client, "obs-revs", TraceConfiguration={"Vendor": "AWSXRAY"})
    create(client, "obs-other")

    assert second["ObservabilityConfigurationRevision"] == 2
    assert second["Latest"] is True
    assert describe(client, first["ObservabilityConfigurationArn"])["Latest"] is False
    assert describe(client, second["ObservabilityConfigurationArn"])["Latest"] is True
    assert "TraceConfiguration" not in describe(client, first["ObservabilityConfigurationArn"])

    assert sorted(listed(client)) == [("obs-other", 1), ("obs-revs", 2)]
    assert sorted(listed(client, LatestOnly=False)) == [("obs-other", 1), ("obs-revs", 1), ("obs-revs", 2)]
    assert listed(client, ObservabilityConfigurationName="obs-revs", LatestOnly=False) == [
        ("obs-revs", 1),
        ("obs-revs", 2),
    ]
    assert listed(client, ObservabilityConfigurationName="obs-revs") == [("obs-revs", 2)]


def test_delete_marks_inactive(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    first = create(client, "obs-delete")
    second = create(client, "obs-delete")

    deleted = delete(client, second["ObservabilityConfigurationArn"])
    assert deleted["Status"] == "INACTIVE"
    assert isinstance(deleted["DeletedAt"], datetime)
    assert deleted["ObservabilityConfigurationArn"] == second["ObservabilityConfigurationArn"]

    described = describe(client, second["ObservabilityConfigurationArn"])
    assert described["Status"] == "INACTIVE"
    assert described["DeletedAt"] == deleted["DeletedAt"]
    # The remaining revision is now the latest one.
    assert describe(client, first["ObservabilityConfigurationArn"])["Latest"] is True
    assert listed(client, LatestOnly=False) == [("obs-delete", 1)]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        delete(client, second["ObservabilityConfigurationArn"])

    delete(client, first["ObservabilityConfigurationArn"])
    assert listed(client, LatestOnly=False) == []
    # Every revision is gone: numbering starts again at 1.
    reborn = create(client, "obs-delete")
    assert reborn["ObservabilityConfigurationRevision"] == 1
    assert reborn["ObservabilityConfigurationArn"] != first["ObservabilityConfigurationArn"]


def test_default_configuration_name_is_reserved(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    create(client, "obs-existing")

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        create(client, "DefaultConfiguration", TraceConfiguration={"Vendor": "AWSXRAY"})
    assert "DefaultConfiguration" in raised.value.response["Error"]["Message"]
    assert listed(client, LatestOnly=False) == [("obs-existing", 1)]


def test_unknown_vendor_is_rejected(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        create(client, "obs-vendor", TraceConfiguration={"Vendor": "DATADOG"})
    assert raised.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'DATADOG' at 'traceConfiguration.vendor' failed to satisfy "
        "constraint: Member must satisfy enum value set: [AWSXRAY]"
    )
    assert listed(client, LatestOnly=False) == []


def test_partial_arns(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    first = create(client, "obs-partial")
    second = create(client, "obs-partial", TraceConfiguration={"Vendor": "AWSXRAY"})
    name_arn = base_arn(region, "obs-partial")

    assert describe(client, name_arn) == second
    assert describe(client, f"{name_arn}/1")["ObservabilityConfigurationArn"] == first["ObservabilityConfigurationArn"]
    for missing in (f"{name_arn}/3", base_arn(region, "obs-nothing"), f"{name_arn}/1/{'f' * 32}"):
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            describe(client, missing)

    # `…/name` deletes the latest active revision.
    assert delete(client, name_arn)["ObservabilityConfigurationArn"] == second["ObservabilityConfigurationArn"]
    assert describe(client, name_arn)["ObservabilityConfigurationArn"] == first["ObservabilityConfigurationArn"]
    assert delete(client, f"{name_arn}/1")["ObservabilityConfigurationArn"] == first["ObservabilityConfigurationArn"]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        delete(client, name_arn)
    # A deleted revision is still describable by number.
    assert describe(client, f"{name_arn}/2")["Status"] == "INACTIVE"


def test_arns_of_another_region_are_not_found(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    arn = create(client, "obs-scoped")["ObservabilityConfigurationArn"]

    elsewhere = server.client("apprunner", region + "o")
    with pytest.raises(elsewhere.exceptions.ResourceNotFoundException):
        describe(elsewhere, arn)
    with pytest.raises(elsewhere.exceptions.ResourceNotFoundException):
        delete(elsewhere, arn)
    assert describe(client, arn)["Status"] == "ACTIVE"


def test_pagination(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    expected = {create(client, f"obs-page-{i}")["ObservabilityConfigurationArn"] for i in range(5)}

    first = client.list_observability_configurations(MaxResults=2)
    second = client.list_observability_configurations(MaxResults=2, NextToken=first["NextToken"])
    third = client.list_observability_configurations(MaxResults=2, NextToken=second["NextToken"])
    pages = [first, second, third]
    assert [len(p["ObservabilityConfigurationSummaryList"]) for p in pages] == [2, 2, 1]
    assert "NextToken" not in third
    assert {s["ObservabilityConfigurationArn"] for p in pages for s in p["ObservabilityConfigurationSummaryList"]} == (
        expected
    )
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.list_observability_configurations(MaxResults=2, NextToken=first["NextToken"], LatestOnly=False)
