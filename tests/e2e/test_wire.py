"""AWS JSON 1.0 on the wire: raw signed httpx requests against a real server."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support import ACCESS_KEY, SECRET_KEY, RunyardProcess

JSON_1_0 = "application/x-amz-json-1.0"
CC = "com.amazonaws.codeconnections.CodeConnections_20231201"
CS = "com.amazonaws.codestar.connections.CodeStar_connections_20191201"
REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def call(
    server: RunyardProcess,
    region: str,
    target: str | None,
    body: bytes | dict[str, Any] = b"",
    *,
    service: str = "apprunner",
) -> httpx.Response:
    """POST `body` with X-Amz-Target `target` (None: no such header), signed for `service` in `region`."""
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {"Content-Type": JSON_1_0}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=raw, headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service, region).add_auth(request)
    return httpx.post(server.endpoint + "/", content=raw, headers=dict(request.headers.items()), timeout=10)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_1_0
    assert REQUEST_ID.fullmatch(response.headers["x-amzn-requestid"])
    body: dict[str, Any] = response.json()
    assert_no_nulls(body)
    return body


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON_1_0
    assert REQUEST_ID.fullmatch(response.headers["x-amzn-requestid"])
    body = response.json()
    assert body["__type"] == code, body
    message: str = body["Message"]
    assert 0 < len(message) <= 600
    return message


def assert_no_nulls(value: Any, path: str = "") -> None:
    """Absent members are omitted, never sent as null."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert item is not None, f"{path}.{key} is null"
            assert_no_nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_no_nulls(item, f"{path}[{i}]")


# -- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "service", "arn_service"),
    [
        (f"{CC}.CreateHost", "codeconnections", "codeconnections"),
        ("CodeConnections_20231201.CreateHost", "codeconnections", "codeconnections"),
        (f"{CS}.CreateHost", "codestar-connections", "codestar-connections"),
        ("CodeStar_connections_20191201.CreateHost", "codestar-connections", "codestar-connections"),
    ],
)
def test_codeconnections_target_forms_route_to_their_namespace(
    server: RunyardProcess, region: str, target: str, service: str, arn_service: str
) -> None:
    body = {"Name": "routed", "ProviderType": "GitLabSelfManaged", "ProviderEndpoint": "https://gl.example"}
    created = ok(call(server, region, target, body, service=service))
    assert created["HostArn"].startswith(f"arn:aws:{arn_service}:{region}:")
    listed = ok(call(server, region, target.replace("CreateHost", "ListHosts"), b"{}", service=service))
    assert [h["HostArn"] for h in listed["Hosts"]] == [created["HostArn"]]


def test_apprunner_target_routes(server: RunyardProcess, region: str) -> None:
    first, second = (call(server, region, "AppRunner.ListServices", b"{}") for _ in range(2))
    assert ok(first) == ok(second) == {"ServiceSummaryList": []}
    assert first.headers["x-amzn-requestid"] != second.headers["x-amzn-requestid"]
    created = ok(
        call(server, region, "AppRunner.CreateConnection", {"ConnectionName": "wire", "ProviderType": "GITHUB"})
    )
    assert created["Connection"]["ConnectionArn"].startswith(f"arn:aws:apprunner:{region}:")


@pytest.mark.parametrize(
    "target",
    [
        "AppRunner.NoSuchOperation",
        "AppRunner.",
        "NoSuchService.ListServices",
        "AppRunner_20200515.ListServices",
        f"{CC}.CreateService",  # a real operation, but of another service
        "ListServices",
        "",
        None,
    ],
)
def test_unknown_or_missing_targets_are_unknown_operations(
    server: RunyardProcess, region: str, target: str | None
) -> None:
    error(call(server, region, target, b"{}"), 400, "UnknownOperationException")


# -- request bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"text"',
        b"42",
        b"\xff\xfe",
        b'{"MaxResults": 5',
        b"[" * 100_000,  # deeper than the decoder's recursion limit
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    ],
    ids=["not-json", "array", "string", "number", "not-utf8", "truncated", "deep-array", "deep-object"],
)
def test_malformed_bodies_are_serialization_errors(server: RunyardProcess, region: str, body: bytes) -> None:
    error(call(server, region, "AppRunner.ListServices", body), 400, "SerializationException")


def test_an_empty_body_is_an_empty_object(server: RunyardProcess, region: str) -> None:
    assert ok(call(server, region, "AppRunner.ListServices", b"")) == {"ServiceSummaryList": []}
    assert ok(call(server, region, f"{CC}.ListHosts", b"", service="codeconnections")) == {"Hosts": []}
    # ... which still lacks required members where the operation has some.
    message = error(call(server, region, "AppRunner.CreateConnection", b""), 400, "InvalidRequestException")
    assert "connectionName" in message


def test_unknown_members_are_ignored(server: RunyardProcess, region: str) -> None:
    body = {"ConnectionName": "extra", "ProviderType": "GITHUB", "Surprise": {"x": [1, 2]}, "connectionname": 1}
    created = ok(call(server, region, "AppRunner.CreateConnection", body))["Connection"]
    assert created["ConnectionName"] == "extra"
    assert "Surprise" not in created


def test_json_null_is_treated_as_absent(server: RunyardProcess, region: str) -> None:
    body = {"ConnectionName": "nulls", "ProviderType": "BITBUCKET", "Tags": None}
    ok(call(server, region, "AppRunner.CreateConnection", body))
    listed = ok(call(server, region, "AppRunner.ListConnections", {"MaxResults": None, "NextToken": None}))
    assert [c["ConnectionName"] for c in listed["ConnectionSummaryList"]] == ["nulls"]
    # A null required member is a missing one.
    message = error(
        call(server, region, "AppRunner.CreateConnection", {"ConnectionName": None, "ProviderType": "GITHUB"}),
        400,
        "InvalidRequestException",
    )
    assert "connectionName" in message


def test_wrong_member_types_are_validation_errors(server: RunyardProcess, region: str) -> None:
    message = error(call(server, region, "AppRunner.ListServices", {"MaxResults": "5"}), 400, "InvalidRequestException")
    assert "maxResults" in message
    error(call(server, region, "AppRunner.ListServices", {"MaxResults": 21}), 400, "InvalidRequestException")
    error(call(server, region, "AppRunner.ListServices", {"MaxResults": True}), 400, "InvalidRequestException")


# -- responses --------------------------------------------------------------------------------


def test_timestamps_are_json_numbers(server: RunyardProcess, region: str) -> None:
    created = ok(
        call(server, region, "AppRunner.CreateConnection", {"ConnectionName": "stamp", "ProviderType": "GITHUB"})
    )
    stamp = created["Connection"]["CreatedAt"]
    assert isinstance(stamp, int | float) and not isinstance(stamp, bool)
    assert stamp > 1_600_000_000

    asc = ok(
        call(server, region, "AppRunner.CreateAutoScalingConfiguration", {"AutoScalingConfigurationName": "stamp"})
    )
    assert isinstance(asc["AutoScalingConfiguration"]["CreatedAt"], int | float)
    assert "DeletedAt" not in asc["AutoScalingConfiguration"]


def test_absent_members_are_omitted(server: RunyardProcess, region: str) -> None:
    created = ok(
        call(
            server,
            region,
            f"{CC}.CreateConnection",
            {"ConnectionName": "plain", "ProviderType": "GitHub"},
            service="codeconnections",
        )
    )
    assert set(created) == {"ConnectionArn"}  # no "Tags": null
    try:
        connection = ok(
            call(
                server,
                region,
                f"{CC}.GetConnection",
                {"ConnectionArn": created["ConnectionArn"]},
                service="codeconnections",
            )
        )["Connection"]
        assert "HostArn" not in connection
        host = ok(
            call(
                server,
                region,
                f"{CC}.CreateHost",
                {"Name": "novpc", "ProviderType": "GitHubEnterpriseServer", "ProviderEndpoint": "https://g.example"},
                service="codeconnections",
            )
        )
        got = ok(call(server, region, f"{CC}.GetHost", {"HostArn": host["HostArn"]}, service="codeconnections"))
        assert "VpcConfiguration" not in got
        listed = ok(call(server, region, f"{CC}.ListHosts", b"{}", service="codeconnections"))
        assert "StatusMessage" not in listed["Hosts"][0]
        assert "NextToken" not in listed
    finally:
        ok(
            call(
                server,
                region,
                f"{CC}.DeleteConnection",
                {"ConnectionArn": created["ConnectionArn"]},
                service="codeconnections",
            )
        )


def test_empty_outputs_are_empty_objects(server: RunyardProcess, region: str) -> None:
    arn = ok(call(server, region, "AppRunner.CreateConnection", {"ConnectionName": "tagme", "ProviderType": "GITHUB"}))[
        "Connection"
    ]["ConnectionArn"]
    tag = call(server, region, "AppRunner.TagResource", {"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "v"}]})
    assert ok(tag) == {}
    assert ok(call(server, region, "AppRunner.UntagResource", {"ResourceArn": arn, "TagKeys": ["k"]})) == {}


def test_next_token_is_omitted_on_the_last_page(server: RunyardProcess, region: str) -> None:
    for name in ("page-a", "page-b", "page-c"):
        ok(call(server, region, "AppRunner.CreateConnection", {"ConnectionName": name, "ProviderType": "GITHUB"}))

    everything = ok(call(server, region, "AppRunner.ListConnections", b"{}"))
    assert len(everything["ConnectionSummaryList"]) == 3
    assert "NextToken" not in everything

    first = ok(call(server, region, "AppRunner.ListConnections", {"MaxResults": 2}))
    assert len(first["ConnectionSummaryList"]) == 2
    assert isinstance(first["NextToken"], str) and first["NextToken"]
    last = ok(call(server, region, "AppRunner.ListConnections", {"MaxResults": 2, "NextToken": first["NextToken"]}))
    assert len(last["ConnectionSummaryList"]) == 1
    assert "NextToken" not in last
    names = [c["ConnectionName"] for c in first["ConnectionSummaryList"] + last["ConnectionSummaryList"]]
    assert sorted(names) == ["page-a", "page-b", "page-c"]

    exact = ok(call(server, region, "AppRunner.ListConnections", {"MaxResults": 3}))
    assert len(exact["ConnectionSummaryList"]) == 3
    assert "NextToken" not in exact


def test_a_foreign_next_token_is_refused(server: RunyardProcess, region: str) -> None:
    error(call(server, region, "AppRunner.ListConnections", {"NextToken": "garbage"}), 400, "InvalidRequestException")


# -- errors -----------------------------------------------------------------------------------


def test_error_messages_stay_short_for_huge_bad_input(server: RunyardProcess, region: str) -> None:
    body = {
        "ConnectionName": "x" * 100_000,
        "ProviderType": "Y" * 50_000,
        "Tags": [{"Key": "aws:" + "k" * 1000, "Value": "v" * 5000} for _ in range(300)],
    }
    message = error(call(server, region, "AppRunner.CreateConnection", body), 400, "InvalidRequestException")
    assert len(message) <= 600
    assert "x" * 100 not in message
    assert ok(call(server, region, "AppRunner.ListConnections", b"{}"))["ConnectionSummaryList"] == []

    cc_message = error(
        call(
            server,
            region,
            f"{CC}.CreateConnection",
            {"ConnectionName": "n" * 100_000, "ProviderType": "P" * 100_000},
            service="codeconnections",
        ),
        400,
        "ValidationException",
    )
    assert len(cc_message) <= 600


def _code_service(runtime: str, build: str, start: str) -> dict[str, Any]:
    values = {"Runtime": runtime, "BuildCommand": build, "StartCommand": start}
    return {
        "ServiceName": "leaky",
        "SourceConfiguration": {
            "CodeRepository": {
                "RepositoryUrl": "https://github.com/o/r",
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {"ConfigurationSource": "API", "CodeConfigurationValues": values},
            }
        },
    }


def test_a_sensitive_member_is_never_echoed(server: RunyardProcess, region: str) -> None:
    secret = "s3cr3t-token-value"
    # A newline breaks the commands' pattern: the message names the member but not its value.
    body = _code_service("PYTHON_3", f"curl -H {secret}\nmake", f"run {secret}\r")
    response = call(server, region, "AppRunner.CreateService", body)
    message = error(response, 400, "InvalidRequestException")
    assert "buildCommand" in message
    assert secret not in response.text

    # Sensitive and valid, with another member invalid: still never echoed.
    response = call(
        server, region, "AppRunner.CreateService", _code_service("COBOL", f"make {secret}", f"run {secret}")
    )
    assert "runtime" in error(response, 400, "InvalidRequestException")
    assert secret not in response.text


def test_codeconnections_errors_carry_their_modelled_status(server: RunyardProcess, region: str) -> None:
    missing = f"arn:aws:codeconnections:{region}:000000000000:connection/00000000-0000-4000-8000-000000000000"
    response = call(server, region, f"{CC}.GetConnection", {"ConnectionArn": missing}, service="codeconnections")
    assert missing in error(response, 404, "ResourceNotFoundException")
    response = call(server, region, f"{CS}.GetConnection", {"ConnectionArn": missing}, service="codestar-connections")
    error(response, 400, "ResourceNotFoundException")  # codestar's model has no status codes


def test_health(server: RunyardProcess) -> None:
    response = httpx.get(server.endpoint + "/health", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["status"] == "ok"
