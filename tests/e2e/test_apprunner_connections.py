"""App Runner connections end to end: lifecycle, names, quotas, request validation and pagination."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from botocore.config import Config

from tests.support import RunyardProcess

ACCOUNT = "000000000000"
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9\-_]{3,31}"


def connection_names(client: Any) -> list[str]:
    return sorted(c["ConnectionName"] for c in client.list_connections()["ConnectionSummaryList"])


def unchecked_client(server: RunyardProcess, region: str) -> Any:
    """A client that sends whatever it is given: botocore's own checks are off."""
    return server.client(
        "apprunner",
        region,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=False),
    )


# -- lifecycle ------------------------------------------------------------------------------------------


def test_create_connection_is_pending_handshake_and_listed(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    created = client.create_connection(ConnectionName="my-github", ProviderType="GITHUB")["Connection"]

    assert created["ConnectionName"] == "my-github"
    assert created["ProviderType"] == "GITHUB"
    assert created["Status"] == "PENDING_HANDSHAKE"
    assert isinstance(created["CreatedAt"], datetime)
    assert re.fullmatch(
        rf"arn:aws:apprunner:{region}:{ACCOUNT}:connection/my-github/[0-9a-f]{{32}}", created["ConnectionArn"]
    )
    assert client.list_connections()["ConnectionSummaryList"] == [created]


def test_list_connections_by_name_returns_exactly_that_one(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    arns = {
        name: client.create_connection(ConnectionName=name, ProviderType=provider)["Connection"]["ConnectionArn"]
        for name, provider in [("conn-a", "GITHUB"), ("conn-ab", "BITBUCKET"), ("xconn-a", "GITHUB")]
    }

    listed = client.list_connections(ConnectionName="conn-a")["ConnectionSummaryList"]
    assert [c["ConnectionArn"] for c in listed] == [arns["conn-a"]]
    bitbucket = client.list_connections(ConnectionName="conn-ab")["ConnectionSummaryList"]
    assert [(c["ConnectionName"], c["ProviderType"]) for c in bitbucket] == [("conn-ab", "BITBUCKET")]
    assert client.list_connections(ConnectionName="conn-zz")["ConnectionSummaryList"] == []
    assert connection_names(client) == ["conn-a", "conn-ab", "xconn-a"]


def test_delete_connection_returns_deleted_then_it_is_gone(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    created = client.create_connection(ConnectionName="doomed", ProviderType="GITHUB")["Connection"]
    kept = client.create_connection(ConnectionName="kept", ProviderType="GITHUB")["Connection"]

    deleted = client.delete_connection(ConnectionArn=created["ConnectionArn"])["Connection"]
    assert deleted["Status"] == "DELETED"
    assert deleted["ConnectionArn"] == created["ConnectionArn"]
    assert deleted["ConnectionName"] == "doomed"

    assert client.list_connections(ConnectionName="doomed")["ConnectionSummaryList"] == []
    assert client.list_connections()["ConnectionSummaryList"] == [kept]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_connection(ConnectionArn=created["ConnectionArn"])

    # The name is free again, under a new ARN.
    again = client.create_connection(ConnectionName="doomed", ProviderType="BITBUCKET")["Connection"]
    assert again["ConnectionArn"] != created["ConnectionArn"]
    assert again["Status"] == "PENDING_HANDSHAKE"


def test_delete_unknown_connection_is_not_found(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    created = client.create_connection(ConnectionName="mine", ProviderType="GITHUB")["Connection"]
    unknown = f"arn:aws:apprunner:{region}:{ACCOUNT}:connection/mine/{'0' * 32}"
    other_region = created["ConnectionArn"].replace(f":{region}:", ":us-west-2:")

    for arn in (unknown, other_region):
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.delete_connection(ConnectionArn=arn)
    assert client.list_connections()["ConnectionSummaryList"] == [created]


def test_connections_are_scoped_by_region(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    elsewhere = server.client("apprunner", region + "x")
    client.create_connection(ConnectionName="regional", ProviderType="GITHUB")

    assert elsewhere.list_connections()["ConnectionSummaryList"] == []
    created = elsewhere.create_connection(ConnectionName="regional", ProviderType="GITHUB")["Connection"]
    assert f":{region}x:" in created["ConnectionArn"]
    assert connection_names(client) == ["regional"]


def test_duplicate_connection_name_is_rejected(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    first = client.create_connection(ConnectionName="same-name", ProviderType="GITHUB")["Connection"]

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_connection(ConnectionName="same-name", ProviderType="BITBUCKET")
    assert "same-name" in raised.value.response["Error"]["Message"]
    assert client.list_connections()["ConnectionSummaryList"] == [first]


# -- quota ---------------------------------------------------------------------------------------------


def test_ten_connections_per_region(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    arns = [
        client.create_connection(ConnectionName=f"quota-{i:02d}", ProviderType="GITHUB")["Connection"]["ConnectionArn"]
        for i in range(10)
    ]

    with pytest.raises(client.exceptions.ServiceQuotaExceededException):
        client.create_connection(ConnectionName="quota-10", ProviderType="GITHUB")
    assert len(connection_names(client)) == 10

    # Other regions have their own quota; freeing one makes room again.
    server.client("apprunner", region + "q").create_connection(ConnectionName="quota-10", ProviderType="GITHUB")
    client.delete_connection(ConnectionArn=arns[0])
    client.create_connection(ConnectionName="quota-10", ProviderType="GITHUB")
    assert connection_names(client) == [f"quota-{i:02d}" for i in range(1, 11)]


def test_connection_quota_is_configurable(fresh_server: RunyardProcess, region: str) -> None:
    fresh_server.extra_env["RUNYARD_QUOTA_CONNECTIONS"] = "2"
    client = fresh_server.start().client("apprunner", region)
    client.create_connection(ConnectionName="first", ProviderType="GITHUB")
    client.create_connection(ConnectionName="second", ProviderType="GITHUB")

    with pytest.raises(client.exceptions.ServiceQuotaExceededException) as raised:
        client.create_connection(ConnectionName="third", ProviderType="GITHUB")
    assert "2" in raised.value.response["Error"]["Message"]
    assert connection_names(client) == ["first", "second"]


# -- validation: every rule class, and nothing written --------------------------------------------------

VALIDATION_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "required",
        {"ConnectionName": "needs-provider"},
        "1 validation error detected: Value null at 'providerType' failed to satisfy constraint: "
        "Member must not be null",
    ),
    (
        "type",
        {"ConnectionName": 12345, "ProviderType": "GITHUB"},
        "1 validation error detected: Value '12345' at 'connectionName' failed to satisfy constraint: "
        "Member must be of type String",
    ),
    (
        "min-length",
        {"ConnectionName": "abc", "ProviderType": "GITHUB"},
        # Too short is also a pattern failure: AWS reports every failed constraint.
        "2 validation errors detected: Value 'abc' at 'connectionName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 4; Value 'abc' at 'connectionName' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {NAME_PATTERN}",
    ),
    (
        "max-length",
        {"ConnectionName": "a" * 33, "ProviderType": "GITHUB"},
        f"2 validation errors detected: Value '{'a' * 33}' at 'connectionName' failed to satisfy constraint: "
        f"Member must have length less than or equal to 32; Value '{'a' * 33}' at 'connectionName' failed to "
        f"satisfy constraint: Member must satisfy regular expression pattern: {NAME_PATTERN}",
    ),
    (
        "enum",
        {"ConnectionName": "gitlab-conn", "ProviderType": "GITLAB"},
        "1 validation error detected: Value 'GITLAB' at 'providerType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [GITHUB, BITBUCKET]",
    ),
    (
        "pattern-full-match",
        {"ConnectionName": "ab cd", "ProviderType": "GITHUB"},
        "1 validation error detected: Value 'ab cd' at 'connectionName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {NAME_PATTERN}",
    ),
    (
        "pattern-substring-is-not-enough",
        {"ConnectionName": "abcd efgh", "ProviderType": "GITHUB"},
        "1 validation error detected: Value 'abcd efgh' at 'connectionName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {NAME_PATTERN}",
    ),
    (
        "pattern-first-character",
        {"ConnectionName": "-abcd", "ProviderType": "GITHUB"},
        "1 validation error detected: Value '-abcd' at 'connectionName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {NAME_PATTERN}",
    ),
]


@pytest.mark.parametrize(
    ("request_body", "message"), [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES]
)
def test_create_connection_validation_writes_nothing(
    server: RunyardProcess, region: str, request_body: dict[str, Any], message: str
) -> None:
    client = unchecked_client(server, region)
    client.create_connection(ConnectionName="existing", ProviderType="GITHUB")
    before = client.list_connections()["ConnectionSummaryList"]

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_connection(**request_body)
    assert raised.value.response["Error"]["Message"] == message
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert client.list_connections()["ConnectionSummaryList"] == before


def test_every_failed_constraint_is_reported(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.create_connection(ConnectionName="ab cd", ProviderType="GITLAB")
    message = raised.value.response["Error"]["Message"]
    assert message.startswith("2 validation errors detected: ")
    assert "at 'connectionName'" in message
    assert "at 'providerType'" in message
    assert client.list_connections()["ConnectionSummaryList"] == []


@pytest.mark.parametrize(
    ("max_results", "constraint"),
    [(0, "greater than or equal to 1"), (101, "less than or equal to 100"), (-5, "greater than or equal to 1")],
)
def test_list_connections_max_results_range(
    server: RunyardProcess, region: str, max_results: int, constraint: str
) -> None:
    client = unchecked_client(server, region)

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.list_connections(MaxResults=max_results)
    assert raised.value.response["Error"]["Message"] == (
        f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy constraint: "
        f"Member must have value {constraint}"
    )
    assert len(client.list_connections(MaxResults=100)["ConnectionSummaryList"]) == 0


def test_list_connections_max_results_must_be_an_integer(server: RunyardProcess, region: str) -> None:
    client = unchecked_client(server, region)
    client.create_connection(ConnectionName="typed", ProviderType="GITHUB")

    with pytest.raises(client.exceptions.InvalidRequestException) as raised:
        client.list_connections(MaxResults="three")
    assert raised.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'three' at 'maxResults' failed to satisfy constraint: "
        "Member must be of type Integer"
    )
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.list_connections(MaxResults=True)
    assert connection_names(client) == ["typed"]


def test_delete_connection_needs_an_arn(server: RunyardProcess, region: str) -> None:
    client = unchecked_client(server, region)
    created = client.create_connection(ConnectionName="survivor", ProviderType="GITHUB")["Connection"]

    for bad in ("", "survivor", "arn:aws:apprunner:nowhere"):
        with pytest.raises(client.exceptions.InvalidRequestException) as raised:
            client.delete_connection(ConnectionArn=bad)
        assert "at 'connectionArn'" in raised.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.delete_connection()
    assert client.list_connections()["ConnectionSummaryList"] == [created]


# -- pagination -----------------------------------------------------------------------------------------


def test_list_connections_pages(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    expected = {
        client.create_connection(ConnectionName=f"page-{i}", ProviderType="GITHUB")["Connection"]["ConnectionArn"]
        for i in range(7)
    }

    pages: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"MaxResults": 3}
        if token:
            kwargs["NextToken"] = token
        page = client.list_connections(**kwargs)
        pages.append(page)
        token = page.get("NextToken")
        if token is None:
            break
        assert len(pages) < 5, "pagination does not end"

    assert [len(p["ConnectionSummaryList"]) for p in pages] == [3, 3, 1]
    assert "NextToken" in pages[0]
    assert "NextToken" in pages[1]
    assert "NextToken" not in pages[-1]
    seen = [c["ConnectionArn"] for p in pages for c in p["ConnectionSummaryList"]]
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == expected

    # Without MaxResults everything comes back at once, with no token at all.
    everything = client.list_connections()
    assert "NextToken" not in everything
    assert {c["ConnectionArn"] for c in everything["ConnectionSummaryList"]} == expected
    # An exact page leaves nothing for a next page.
    assert "NextToken" not in client.list_connections(MaxResults=7)


def test_list_connections_rejects_bad_tokens(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    for i in range(4):
        client.create_connection(ConnectionName=f"token-{i}", ProviderType="GITHUB")
    token = client.list_connections(MaxResults=2)["NextToken"]

    for garbage in ("garbage", "bm90IGEgdG9rZW4", "e30"):
        with pytest.raises(client.exceptions.InvalidRequestException):
            client.list_connections(MaxResults=2, NextToken=garbage)
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.list_connections(MaxResults=2, NextToken=token, ConnectionName="token-3")
    # The token still works with the parameters it was made for.
    rest = client.list_connections(MaxResults=2, NextToken=token)
    assert [c["ConnectionName"] for c in rest["ConnectionSummaryList"]] == ["token-2", "token-3"]
    assert "NextToken" not in rest
