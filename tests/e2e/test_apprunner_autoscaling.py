"""Auto scaling configurations end to end: the provided default, revisions, partial ARNs, deletion,
the default switch, quotas and pagination."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from tests.support import RunyardProcess

ACCOUNT = "000000000000"
DEFAULT = "DefaultConfiguration"


def base_arn(region: str, name: str) -> str:
    return f"arn:aws:apprunner:{region}:{ACCOUNT}:autoscalingconfiguration/{name}"


def create(client: Any, name: str, **kwargs: Any) -> dict[str, Any]:
    config: dict[str, Any] = client.create_auto_scaling_configuration(AutoScalingConfigurationName=name, **kwargs)[
        "AutoScalingConfiguration"
    ]
    return config


def describe(client: Any, arn: str) -> dict[str, Any]:
    config: dict[str, Any] = client.describe_auto_scaling_configuration(AutoScalingConfigurationArn=arn)[
        "AutoScalingConfiguration"
    ]
    return config


def summaries(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = client.list_auto_scaling_configurations(**kwargs)[
        "AutoScalingConfigurationSummaryList"
    ]
    return listed


def revisions(client: Any, **kwargs: Any) -> list[tuple[str, int]]:
    return [
        (s["AutoScalingConfigurationName"], s["AutoScalingConfigurationRevision"])
        for s in summaries(client, LatestOnly=False, **kwargs)
    ]


def default_names(client: Any) -> list[tuple[str, int]]:
    return [
        (s["AutoScalingConfigurationName"], s["AutoScalingConfigurationRevision"])
        for s in summaries(client, LatestOnly=False)
        if s["IsDefault"]
    ]


# -- the provided default -------------------------------------------------------------------------------


def test_a_new_region_has_the_default_configuration(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)

    listed = summaries(client)
    assert len(listed) == 1
    summary = listed[0]
    assert summary["AutoScalingConfigurationName"] == DEFAULT
    assert summary["AutoScalingConfigurationRevision"] == 1
    assert summary["Status"] == "active"
    assert summary["IsDefault"] is True
    assert summary["HasAssociatedService"] is False
    arn = summary["AutoScalingConfigurationArn"]
    assert re.fullmatch(rf"{re.escape(base_arn(region, DEFAULT))}/1/[0-9a-f]{{32}}", arn)

    full = describe(client, arn)
    assert full["MaxConcurrency"] == 100
    assert full["MinSize"] == 1
    assert full["MaxSize"] == 25
    assert full["Latest"] is True
    assert full["IsDefault"] is True
    assert full["Status"] == "active"
    assert full["HasAssociatedService"] is False
    assert "DeletedAt" not in full
    assert isinstance(full["CreatedAt"], datetime)
    # The same one, every time: it is provided once per region.
    assert summaries(client) == listed
    assert describe(client, base_arn(region, DEFAULT))["AutoScalingConfigurationArn"] == arn


# -- revisions ------------------------------------------------------------------------------------------


def test_revisions_count_up_and_latest_moves(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    first = create(client, "scale-web")
    second = create(client, "scale-web", MaxConcurrency=50, MinSize=2, MaxSize=10)
    other = create(client, "scale-api", MaxSize=3)

    assert (first["AutoScalingConfigurationRevision"], second["AutoScalingConfigurationRevision"]) == (1, 2)
    assert other["AutoScalingConfigurationRevision"] == 1
    assert re.fullmatch(
        rf"{re.escape(base_arn(region, 'scale-web'))}/2/[0-9a-f]{{32}}", second["AutoScalingConfigurationArn"]
    )
    # Defaults 100/1/25 when not given; given values are kept.
    assert (first["MaxConcurrency"], first["MinSize"], first["MaxSize"]) == (100, 1, 25)
    assert (second["MaxConcurrency"], second["MinSize"], second["MaxSize"]) == (50, 2, 10)
    assert (other["MaxConcurrency"], other["MinSize"], other["MaxSize"]) == (100, 1, 3)
    for config in (first, second, other):
        assert config["Status"] == "active"
        assert config["Latest"] is True
        assert config["IsDefault"] is False
        assert config["HasAssociatedService"] is False
        assert "DeletedAt" not in config

    assert describe(client, first["AutoScalingConfigurationArn"])["Latest"] is False
    assert describe(client, second["AutoScalingConfigurationArn"])["Latest"] is True
    assert describe(client, other["AutoScalingConfigurationArn"])["Latest"] is True


def test_latest_only_is_the_default(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    create(client, "alpha-cfg")
    create(client, "alpha-cfg")
    create(client, "bravo-cfg")

    latest = [(s["AutoScalingConfigurationName"], s["AutoScalingConfigurationRevision"]) for s in summaries(client)]
    assert sorted(latest) == [("DefaultConfiguration", 1), ("alpha-cfg", 2), ("bravo-cfg", 1)]
    assert sorted(revisions(client)) == [
        ("DefaultConfiguration", 1),
        ("alpha-cfg", 1),
        ("alpha-cfg", 2),
        ("bravo-cfg", 1),
    ]
    assert revisions(client, AutoScalingConfigurationName="alpha-cfg") == [("alpha-cfg", 1), ("alpha-cfg", 2)]
    by_name = summaries(client, AutoScalingConfigurationName="alpha-cfg", LatestOnly=True)
    assert [s["AutoScalingConfigurationRevision"] for s in by_name] == [2]
    assert summaries(client, AutoScalingConfigurationName="charlie-cfg") == []
    for summary in summaries(client, LatestOnly=False):
        assert set(summary) == {
            "AutoScalingConfigurationArn",
            "AutoScalingConfigurationName",
            "AutoScalingConfigurationRevision",
            "Status",
            "CreatedAt",
            "HasAssociatedService",
            "IsDefault",
        }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"MinSize": 5, "MaxSize": 3}, "MinSize (5) must not be greater than MaxSize (3)."),
        ({"MinSize": 2, "MaxSize": 1}, "MinSize (2) must not be greater than MaxSize (1)."),
        ({"MaxSize": 26}, "MaxSize must be at most 25, got 26."),
        ({"MaxSize": 1000}, "MaxSize must be at most 25, got 1000."),
    ],
    ids=["min-above-max", "min-above-max-by-one", "max-above-25", "max-far-above-25"],
)
def test_sizes_are_checked(server: RunyardProcess, region: str, kwargs: dict[str, Any], message: str) -> None:
    client = server.client("apprunner", region)
    create(client, "present-cfg")
    before = summaries(client, LatestOnly=False)

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        create(client, "sized-cfg", **kwargs)
    assert raised.value.response["Error"]["Message"] == message
    assert summaries(client, LatestOnly=False) == before


def test_sizes_at_the_limits_are_accepted(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    low = create(client, "limits-cfg", MinSize=1, MaxSize=1, MaxConcurrency=1)
    high = create(client, "limits-cfg", MinSize=25, MaxSize=25, MaxConcurrency=200)
    min_only = create(client, "limits-cfg", MinSize=20)

    assert (low["MinSize"], low["MaxSize"], low["MaxConcurrency"]) == (1, 1, 1)
    assert (high["MinSize"], high["MaxSize"], high["MaxConcurrency"]) == (25, 25, 200)
    assert (min_only["MinSize"], min_only["MaxSize"], min_only["MaxConcurrency"]) == (20, 25, 100)


@pytest.mark.parametrize(
    ("kwargs", "member", "constraint"),
    [
        ({"MinSize": 26}, "minSize", "Member must have value less than or equal to 25"),
        ({"MaxConcurrency": 201}, "maxConcurrency", "Member must have value less than or equal to 200"),
        (
            {"AutoScalingConfigurationName": "a" * 33},
            "autoScalingConfigurationName",
            "Member must have length less than or equal to 32",
        ),
        (
            {"AutoScalingConfigurationName": "bad name"},
            "autoScalingConfigurationName",
            r"Member must satisfy regular expression pattern: [A-Za-z0-9][A-Za-z0-9\-_]{3,31}",
        ),
    ],
    ids=["min-size-max", "concurrency-max", "name-max-length", "name-pattern"],
)
def test_model_constraints_write_nothing(
    server: RunyardProcess, region: str, kwargs: dict[str, Any], member: str, constraint: str
) -> None:
    client = server.client("apprunner", region)
    create(client, "present-cfg")
    before = summaries(client, LatestOnly=False)
    request = {"AutoScalingConfigurationName": "valid-cfg", **kwargs}

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_auto_scaling_configuration(**request)
    message = raised.value.response["Error"]["Message"]
    assert re.match(r"\d validation errors? detected: ", message)
    assert f"at '{member}' failed to satisfy constraint: {constraint}" in message
    assert summaries(client, LatestOnly=False) == before


# -- partial ARNs ---------------------------------------------------------------------------------------


def test_partial_arns(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    first = create(client, "partial-cfg", MaxConcurrency=10)
    second = create(client, "partial-cfg", MaxConcurrency=20)
    third = create(client, "partial-cfg", MaxConcurrency=30)
    name_arn = base_arn(region, "partial-cfg")

    assert describe(client, name_arn) == third
    assert describe(client, f"{name_arn}/2")["AutoScalingConfigurationArn"] == second["AutoScalingConfigurationArn"]
    assert describe(client, f"{name_arn}/1")["MaxConcurrency"] == 10
    for missing in (f"{name_arn}/4", base_arn(region, "nothing-cfg"), f"{name_arn}/2/{'0' * 32}"):
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            describe(client, missing)

    listed = client.list_services_for_auto_scaling_configuration(AutoScalingConfigurationArn=name_arn)
    assert listed["ServiceArnList"] == []
    assert "NextToken" not in listed
    assert (
        client.list_services_for_auto_scaling_configuration(AutoScalingConfigurationArn=f"{name_arn}/1")[
            "ServiceArnList"
        ]
        == []
    )
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_services_for_auto_scaling_configuration(AutoScalingConfigurationArn=f"{name_arn}/9")

    made_default = client.update_default_auto_scaling_configuration(AutoScalingConfigurationArn=f"{name_arn}/2")[
        "AutoScalingConfiguration"
    ]
    assert made_default["AutoScalingConfigurationArn"] == second["AutoScalingConfigurationArn"]
    assert made_default["IsDefault"] is True
    assert default_names(client) == [("partial-cfg", 2)]

    # `…/name` deletes the latest active revision; the one before becomes the latest.
    deleted = client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=name_arn)["AutoScalingConfiguration"]
    assert deleted["AutoScalingConfigurationArn"] == third["AutoScalingConfigurationArn"]
    assert deleted["Status"] == "inactive"
    assert describe(client, name_arn)["AutoScalingConfigurationArn"] == second["AutoScalingConfigurationArn"]
    assert describe(client, f"{name_arn}/2")["Latest"] is True

    deleted_first = client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=f"{name_arn}/1")[
        "AutoScalingConfiguration"
    ]
    assert deleted_first["AutoScalingConfigurationArn"] == first["AutoScalingConfigurationArn"]
    assert revisions(client, AutoScalingConfigurationName="partial-cfg") == [("partial-cfg", 2)]


def test_arns_from_another_region_or_type_are_not_found(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    mine = create(client, "scoped-cfg")["AutoScalingConfigurationArn"]
    elsewhere = mine.replace(f":{region}:", ":eu-west-1:")
    wrong_type = mine.replace(":autoscalingconfiguration/", ":observabilityconfiguration/")
    other_account = mine.replace(f":{ACCOUNT}:", ":123456789012:")

    for arn in (elsewhere, wrong_type, other_account):
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            describe(client, arn)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=arn)
    assert describe(client, mine)["Status"] == "active"


# -- the default ----------------------------------------------------------------------------------------


def test_update_default_moves_is_default(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    provided = summaries(client)[0]["AutoScalingConfigurationArn"]
    mine = create(client, "my-default")

    updated = client.update_default_auto_scaling_configuration(
        AutoScalingConfigurationArn=mine["AutoScalingConfigurationArn"]
    )["AutoScalingConfiguration"]
    assert updated["IsDefault"] is True
    assert updated["AutoScalingConfigurationArn"] == mine["AutoScalingConfigurationArn"]
    assert describe(client, provided)["IsDefault"] is False
    assert default_names(client) == [("my-default", 1)]
    # Setting it again is harmless; exactly one default remains.
    client.update_default_auto_scaling_configuration(AutoScalingConfigurationArn=base_arn(region, "my-default"))
    assert default_names(client) == [("my-default", 1)]

    # The current default cannot be deleted; the former one now can.
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=mine["AutoScalingConfigurationArn"])
    assert describe(client, mine["AutoScalingConfigurationArn"])["Status"] == "active"
    gone = client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=provided)["AutoScalingConfiguration"]
    assert gone["Status"] == "inactive"
    assert [s["AutoScalingConfigurationName"] for s in summaries(client)] == ["my-default"]

    # Back to the provided name is impossible once deleted: an inactive revision cannot become the default.
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.update_default_auto_scaling_configuration(AutoScalingConfigurationArn=provided)
    assert default_names(client) == [("my-default", 1)]


def test_the_provided_default_cannot_be_deleted(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    provided = summaries(client)[0]["AutoScalingConfigurationArn"]

    for arn in (provided, base_arn(region, DEFAULT), f"{base_arn(region, DEFAULT)}/1"):
        with pytest.raises(client.exceptions.InvalidRequestException) as raised:
            client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=arn)
        assert "default" in raised.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.delete_auto_scaling_configuration(
            AutoScalingConfigurationArn=base_arn(region, DEFAULT), DeleteAllRevisions=True
        )
    assert describe(client, provided)["Status"] == "active"
    assert default_names(client) == [(DEFAULT, 1)]


# -- deletion -------------------------------------------------------------------------------------------


def test_delete_marks_inactive_and_stays_describable(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    config = create(client, "short-lived")
    arn = config["AutoScalingConfigurationArn"]

    deleted = client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=arn)["AutoScalingConfiguration"]
    assert deleted["Status"] == "inactive"
    assert isinstance(deleted["DeletedAt"], datetime)
    assert deleted["DeletedAt"] >= deleted["CreatedAt"]
    assert deleted["AutoScalingConfigurationArn"] == arn

    described = describe(client, arn)
    assert described["Status"] == "inactive"
    assert described["DeletedAt"] == deleted["DeletedAt"]
    assert (described["MaxConcurrency"], described["MinSize"], described["MaxSize"]) == (100, 1, 25)
    assert revisions(client, AutoScalingConfigurationName="short-lived") == []
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=arn)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        describe(client, base_arn(region, "short-lived"))  # no active revision is left


def test_delete_all_revisions(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    made = [create(client, "all-revs", MaxSize=n) for n in (5, 6, 7)]
    create(client, "bystander")
    name_arn = base_arn(region, "all-revs")

    for arn in (made[0]["AutoScalingConfigurationArn"], f"{name_arn}/2"):
        with pytest.raises(client.exceptions.InvalidRequestException) as raised:
            client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=arn, DeleteAllRevisions=True)
        assert "DeleteAllRevisions" in raised.value.response["Error"]["Message"]
    assert len(revisions(client, AutoScalingConfigurationName="all-revs")) == 3

    result = client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=name_arn, DeleteAllRevisions=True)[
        "AutoScalingConfiguration"
    ]
    assert result["AutoScalingConfigurationName"] == "all-revs"
    assert result["Status"] == "inactive"
    for config in made:
        assert describe(client, config["AutoScalingConfigurationArn"])["Status"] == "inactive"
    assert revisions(client, AutoScalingConfigurationName="all-revs") == []
    assert revisions(client, AutoScalingConfigurationName="bystander") == [("bystander", 1)]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=name_arn, DeleteAllRevisions=True)

    # Every revision is gone, so numbering starts again at 1 under a new ARN.
    reborn = create(client, "all-revs")
    assert reborn["AutoScalingConfigurationRevision"] == 1
    assert reborn["AutoScalingConfigurationArn"] != made[0]["AutoScalingConfigurationArn"]
    assert reborn["Latest"] is True
    assert describe(client, made[0]["AutoScalingConfigurationArn"])["Status"] == "inactive"
    assert describe(client, f"{name_arn}/1")["AutoScalingConfigurationArn"] == reborn["AutoScalingConfigurationArn"]


def test_numbering_continues_while_a_revision_is_active(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    one = create(client, "counting")
    two = create(client, "counting")
    client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=two["AutoScalingConfigurationArn"])
    assert create(client, "counting")["AutoScalingConfigurationRevision"] == 3

    client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=one["AutoScalingConfigurationArn"])
    client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=base_arn(region, "counting"))
    assert revisions(client, AutoScalingConfigurationName="counting") == []
    assert create(client, "counting")["AutoScalingConfigurationRevision"] == 1


# -- quotas ---------------------------------------------------------------------------------------------


def test_name_and_revision_quotas(fresh_server: RunyardProcess, region: str) -> None:
    fresh_server.extra_env["RUNYARD_QUOTA_AUTO_SCALING_NAMES"] = "2"
    fresh_server.extra_env["RUNYARD_QUOTA_AUTO_SCALING_REVISIONS"] = "3"
    client = fresh_server.start().client("apprunner", region)

    for _ in range(3):
        create(client, "quota-one")
    with pytest.raises(client.exceptions.ServiceQuotaExceededException):
        create(client, "quota-one")
    # The provided DefaultConfiguration is not one of "the names you create".
    create(client, "quota-two")
    with pytest.raises(client.exceptions.ServiceQuotaExceededException):
        create(client, "quota-three")
    assert sorted(revisions(client)) == [
        (DEFAULT, 1),
        ("quota-one", 1),
        ("quota-one", 2),
        ("quota-one", 3),
        ("quota-two", 1),
    ]

    # Deleting frees room: a revision for a revision, a whole name for a name.
    client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=f"{base_arn(region, 'quota-one')}/1")
    assert create(client, "quota-one")["AutoScalingConfigurationRevision"] == 4
    client.delete_auto_scaling_configuration(
        AutoScalingConfigurationArn=base_arn(region, "quota-two"), DeleteAllRevisions=True
    )
    assert create(client, "quota-three")["AutoScalingConfigurationRevision"] == 1


def test_default_quotas_are_ten_names(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    for i in range(10):
        create(client, f"name-{i:02d}")
    with pytest.raises(client.exceptions.ServiceQuotaExceededException):
        create(client, "name-10")
    assert len(summaries(client)) == 11  # ten of ours and the provided default


def test_default_quota_is_ten_revisions(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    for i in range(10):
        assert create(client, "many-revs")["AutoScalingConfigurationRevision"] == i + 1
    with pytest.raises(client.exceptions.ServiceQuotaExceededException):
        create(client, "many-revs")
    assert len(revisions(client, AutoScalingConfigurationName="many-revs")) == 10


# -- pagination -----------------------------------------------------------------------------------------


def test_list_pages_and_tokens(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    for i in range(6):
        create(client, f"paged-{i}")
    expected = {s["AutoScalingConfigurationArn"] for s in summaries(client)}
    assert len(expected) == 7

    first = client.list_auto_scaling_configurations(MaxResults=3)
    second = client.list_auto_scaling_configurations(MaxResults=3, NextToken=first["NextToken"])
    third = client.list_auto_scaling_configurations(MaxResults=3, NextToken=second["NextToken"])
    pages = [first, second, third]
    assert [len(p["AutoScalingConfigurationSummaryList"]) for p in pages] == [3, 3, 1]
    assert "NextToken" not in third
    seen = [s["AutoScalingConfigurationArn"] for p in pages for s in p["AutoScalingConfigurationSummaryList"]]
    assert len(seen) == 7
    assert set(seen) == expected

    with pytest.raises(client.exceptions.InvalidRequestException):
        client.list_auto_scaling_configurations(MaxResults=3, NextToken=first["NextToken"], LatestOnly=False)
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.list_auto_scaling_configurations(
            MaxResults=3, NextToken=first["NextToken"], AutoScalingConfigurationName="paged-1"
        )
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.list_auto_scaling_configurations(NextToken="not-a-token")
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.list_auto_scaling_configurations(MaxResults=101)
