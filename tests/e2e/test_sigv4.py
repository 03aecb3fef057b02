"""SigV4 at the real endpoint: raw httpx requests signed with botocore's SigV4Auth, and boto3."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import uuid
from typing import Any
from unittest import mock

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.support import ACCESS_KEY, SECRET_KEY, RunyardProcess, unique_region

JSON_1_0 = "application/x-amz-json-1.0"
LIST_SERVICES = "AppRunner.ListServices"


def sign(
    url: str,
    region: str,
    *,
    target: str = LIST_SERVICES,
    body: bytes = b"{}",
    service: str = "apprunner",
    access_key: str = ACCESS_KEY,
    secret: str = SECRET_KEY,
    headers: dict[str, str] | None = None,
    when: datetime.datetime | None = None,
) -> dict[str, str]:
    """Headers (Authorization, X-Amz-Date and every given header, all signed) for a POST of `body` to `url`."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": JSON_1_0, "X-Amz-Target": target, **(headers or {})},
    )
    signer = SigV4Auth(Credentials(access_key, secret), service, region)
    if when is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
    return dict(request.headers.items())


def post(url: str, headers: dict[str, str], body: bytes = b"{}") -> httpx.Response:
    return httpx.post(url, content=body, headers=headers, timeout=10)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(JSON_1_0)
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["x-amzn-requestid"])
    body: dict[str, Any] = response.json()
    assert set(body) == {"__type", "Message"}
    assert body["__type"] == code
    assert isinstance(body["Message"], str) and body["Message"]
    return body


def signed_header_names(headers: dict[str, str]) -> list[str]:
    match = re.search(r"SignedHeaders=([^,]+)", headers["Authorization"])
    assert match
    return match.group(1).split(";")


# -- accepted -------------------------------------------------------------------------------


def test_a_correct_signature_is_accepted(server: RunyardProcess, region: str) -> None:
    response = post(server.endpoint + "/", sign(server.endpoint + "/", region))
    assert response.status_code == 200, response.text
    assert response.json() == {"ServiceSummaryList": []}
    assert response.headers["content-type"].startswith(JSON_1_0)
    assert response.headers["x-amzn-requestid"]


def test_boto3_is_accepted_for_every_service(server: RunyardProcess, region: str) -> None:
    assert server.client("apprunner", region).list_services()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert server.client("codeconnections", region).list_hosts()["Hosts"] == []
    assert server.client("codestar-connections", region).list_hosts()["Hosts"] == []


def test_go_sdk_signed_headers_verify(server: RunyardProcess, region: str) -> None:
    body = b'{"MaxResults":5}'
    headers = sign(
        server.endpoint + "/",
        region,
        body=body,
        headers={
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            "amz-sdk-request": "attempt=1; max=25",
            "Content-Length": str(len(body)),
        },
    )
    assert signed_header_names(headers) == [
        "amz-sdk-invocation-id",
        "amz-sdk-request",
        "content-length",
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-target",
    ]
    headers["User-Agent"] = "aws-sdk-go-v2/1.36.3"  # unsigned extras are ignored
    headers["Accept-Encoding"] = "gzip"
    response = post(server.endpoint + "/", headers, body)
    assert response.status_code == 200, response.text


def test_js_sdk_content_sha256_header_verifies(server: RunyardProcess, region: str) -> None:
    body = b'{"MaxResults":5}'
    headers = sign(
        server.endpoint + "/",
        region,
        body=body,
        headers={
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            "amz-sdk-request": "attempt=1; max=3",
            "Content-Length": str(len(body)),
            "x-amz-content-sha256": hashlib.sha256(body).hexdigest(),
        },
    )
    assert "x-amz-content-sha256" in signed_header_names(headers)
    assert post(server.endpoint + "/", headers, body).status_code == 200


def test_a_content_sha256_that_does_not_match_the_body_is_refused(server: RunyardProcess, region: str) -> None:
    body = b'{"MaxResults":5}'
    headers = sign(
        server.endpoint + "/",
        region,
        body=body,
        headers={"x-amz-content-sha256": hashlib.sha256(b"{}").hexdigest()},  # signed consistently, but wrong
    )
    assert_error(post(server.endpoint + "/", headers, body), 403, "InvalidSignatureException")


def test_an_endpoint_with_a_path_prefix_works_with_boto3(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region, endpoint_url=server.endpoint + "/prefix/x")
    created = client.create_connection(ConnectionName="prefixed", ProviderType="GITHUB")["Connection"]
    assert [c["ConnectionArn"] for c in client.list_connections()["ConnectionSummaryList"]] == [
        created["ConnectionArn"]
    ]
    codeconnections = server.client("codeconnections", region, endpoint_url=server.endpoint + "/prefix/x")
    assert codeconnections.list_hosts()["Hosts"] == []


def test_the_signed_path_must_be_the_requested_path(server: RunyardProcess, region: str) -> None:
    headers = sign(server.endpoint + "/prefix/x", region)
    assert post(server.endpoint + "/prefix/x", headers).status_code == 200
    assert_error(post(server.endpoint + "/other", headers), 403, "InvalidSignatureException")


# -- refused --------------------------------------------------------------------------------


def test_a_wrong_secret_is_refused(server: RunyardProcess, region: str) -> None:
    headers = sign(server.endpoint + "/", region, secret="not-the-secret")
    assert_error(post(server.endpoint + "/", headers), 403, "InvalidSignatureException")

    client = server.client("apprunner", region, aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as exc:
        client.list_services()
    assert exc.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_unknown_access_key_is_refused(server: RunyardProcess, region: str) -> None:
    headers = sign(server.endpoint + "/", region, access_key="AKIAUNKNOWNKEY000000")
    assert_error(post(server.endpoint + "/", headers), 403, "UnrecognizedClientException")

    client = server.client("codeconnections", region, aws_access_key_id="AKIAUNKNOWNKEY000000")
    with pytest.raises(ClientError) as exc:
        client.list_connections()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_request_without_authorization_is_refused(server: RunyardProcess) -> None:
    response = post(server.endpoint + "/", {"Content-Type": JSON_1_0, "X-Amz-Target": LIST_SERVICES})
    assert_error(response, 403, "MissingAuthenticationTokenException")


def test_a_malformed_authorization_header_is_refused(server: RunyardProcess, region: str) -> None:
    headers = sign(server.endpoint + "/", region)
    headers["Authorization"] = headers["Authorization"].replace("Signature=", "Sig=")
    response = post(server.endpoint + "/", headers)
    assert response.status_code == 403
    assert response.json()["__type"] in {"IncompleteSignatureException", "InvalidSignatureException"}


@pytest.mark.parametrize("minutes", [-20, 20])
def test_a_signature_outside_the_time_window_is_refused(server: RunyardProcess, region: str, minutes: int) -> None:
    when = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(minutes=minutes)
    headers = sign(server.endpoint + "/", region, when=when)
    assert headers["X-Amz-Date"] == when.strftime("%Y%m%dT%H%M%SZ")
    body = assert_error(post(server.endpoint + "/", headers), 403, "InvalidSignatureException")
    assert "expired" in body["Message"].lower()


def test_an_impossible_date_is_refused_not_a_crash(server: RunyardProcess, region: str) -> None:
    headers = sign(server.endpoint + "/", region)
    today = headers["X-Amz-Date"][:8]
    headers["X-Amz-Date"] = "20261399T000000Z"  # the right shape, but month 13
    headers["Authorization"] = headers["Authorization"].replace(f"/{today}/", "/20261399/")
    response = post(server.endpoint + "/", headers)
    assert response.status_code == 403, response.text
    assert response.json()["__type"] in {"IncompleteSignatureException", "InvalidSignatureException"}


def test_an_unparsable_host_is_refused_not_a_crash(server: RunyardProcess, region: str) -> None:
    headers = sign(server.endpoint + "/", region)
    headers["Host"] = "[::1"
    assert_error(post(server.endpoint + "/", headers), 403, "InvalidSignatureException")


def test_a_signature_a_few_minutes_old_is_accepted(server: RunyardProcess, region: str) -> None:
    when = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=5)
    assert post(server.endpoint + "/", sign(server.endpoint + "/", region, when=when)).status_code == 200


def test_a_body_changed_after_signing_is_refused(server: RunyardProcess, region: str) -> None:
    headers = sign(server.endpoint + "/", region, body=b'{"MaxResults":5}')
    assert_error(post(server.endpoint + "/", headers, b'{"MaxResults":6}'), 403, "InvalidSignatureException")


def test_a_signed_header_changed_after_signing_is_refused(server: RunyardProcess, region: str) -> None:
    headers = sign(server.endpoint + "/", region)
    headers["X-Amz-Target"] = "AppRunner.ListConnections"
    assert_error(post(server.endpoint + "/", headers), 403, "InvalidSignatureException")


def test_a_signed_header_missing_from_the_request_is_refused(server: RunyardProcess, region: str) -> None:
    headers = sign(server.endpoint + "/", region, headers={"amz-sdk-request": "attempt=1; max=3"})
    del headers["amz-sdk-request"]
    assert_error(post(server.endpoint + "/", headers), 403, "InvalidSignatureException")


def test_a_signature_for_another_service_is_refused(server: RunyardProcess, region: str) -> None:
    headers = sign(server.endpoint + "/", region, service="codeconnections")
    assert_error(post(server.endpoint + "/", headers), 403, "InvalidSignatureException")

    # And the other way round: apprunner credentials scope on a CodeConnections target.
    headers = sign(
        server.endpoint + "/",
        region,
        service="apprunner",
        target="com.amazonaws.codeconnections.CodeConnections_20231201.ListHosts",
    )
    assert_error(post(server.endpoint + "/", headers), 403, "InvalidSignatureException")


def test_a_region_in_the_signature_but_not_the_scope_is_refused(server: RunyardProcess, region: str) -> None:
    headers = sign(server.endpoint + "/", region)
    headers["Authorization"] = headers["Authorization"].replace(f"/{region}/", "/us-west-2/")
    assert_error(post(server.endpoint + "/", headers), 403, "InvalidSignatureException")


def test_error_responses_carry_type_message_and_request_id(server: RunyardProcess, region: str) -> None:
    client = server.client("apprunner", region)
    with pytest.raises(ClientError) as exc:
        client.describe_auto_scaling_configuration(
            AutoScalingConfigurationArn=f"arn:aws:apprunner:{region}:000000000000:autoscalingconfiguration/none/1/"
            + "0" * 32
        )
    response = exc.value.response
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    assert response["Error"]["Message"]
    assert re.fullmatch(r"[0-9a-f-]{36}", response["ResponseMetadata"]["RequestId"])

    raw = post(server.endpoint + "/", sign(server.endpoint + "/", region, secret="wrong"))
    body = assert_error(raw, 403, "InvalidSignatureException")
    assert json.loads(raw.content) == body


# -- the signed region scopes resources -------------------------------------------------------


def test_apprunner_resources_are_scoped_by_the_signed_region(server: RunyardProcess, region: str) -> None:
    here = server.client("apprunner", region)
    other_region = unique_region()
    there = server.client("apprunner", other_region)

    arn = here.create_connection(ConnectionName="scoped", ProviderType="GITHUB")["Connection"]["ConnectionArn"]
    assert f":{region}:" in arn
    assert [c["ConnectionArn"] for c in here.list_connections()["ConnectionSummaryList"]] == [arn]
    assert there.list_connections()["ConnectionSummaryList"] == []
    with pytest.raises(ClientError) as exc:
        there.delete_connection(ConnectionArn=arn)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"

    # The same name is free in the other region.
    other = there.create_connection(ConnectionName="scoped", ProviderType="GITHUB")["Connection"]["ConnectionArn"]
    assert f":{other_region}:" in other
    assert [c["ConnectionArn"] for c in here.list_connections()["ConnectionSummaryList"]] == [arn]
