"""Smithy RPC v2 CBOR (how botocore speaks CloudWatch) against botocore's own serializer and parser."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from starlette.responses import Response

from runyard.api import protocol
from runyard.api.models import CLOUDWATCH, resolve_rpc_v2_path, wire_service
from runyard.api.server import _CBOR_WIRE, _JSON_WIRE

MODEL = botocore.session.get_session().get_service_model("cloudwatch")
START = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


def _request(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    return dict(create_serializer("smithy-rpc-v2-cbor").serialize_to_request(params, MODEL.operation_model(operation)))


def _parse(response: Response, operation: str) -> dict[str, Any]:
    parser = create_parser("smithy-rpc-v2-cbor")
    raw = {"status_code": response.status_code, "headers": dict(response.headers), "body": bytes(response.body)}
    return dict(parser.parse(raw, MODEL.operation_model(operation).output_shape))


def test_requests_route_on_their_path() -> None:
    request = _request("GetMetricData", {"MetricDataQueries": [], "StartTime": START, "EndTime": START})
    assert request["url_path"] == "/service/GraniteServiceVersion20100801/operation/GetMetricData"
    assert request["headers"]["smithy-protocol"] == "rpc-v2-cbor"
    service, operation = resolve_rpc_v2_path("/prefix/kept" + request["url_path"]) or (None, "")
    assert service is wire_service(CLOUDWATCH) and operation == "GetMetricData"
    assert resolve_rpc_v2_path("/service/Nope/operation/GetMetricData") is None
    assert resolve_rpc_v2_path("/") is None


def test_a_request_decodes_and_validates_with_tagged_timestamps() -> None:
    params = {
        "Namespace": "AWS/AppRunner",
        "MetricName": "Requests",
        "Dimensions": [{"Name": "ServiceName", "Value": "web"}],
        "StartTime": START,
        "EndTime": START.replace(hour=9),
        "Period": 60,
        "Statistics": ["Sum", "Average"],
    }
    operation = MODEL.operation_model("GetMetricStatistics")
    parsed = protocol.parse_input(operation, protocol.decode_cbor(_request("GetMetricStatistics", params)["body"]))
    assert parsed == {**params, "StartTime": START.timestamp(), "EndTime": START.timestamp() + 3600}


def test_a_bad_request_is_refused() -> None:
    with pytest.raises(protocol.SerializationError, match="CBOR"):
        protocol.decode_cbor(b"\xff\xff")
    with pytest.raises(protocol.SerializationError, match="map"):
        protocol.decode_cbor(protocol.encode_cbor([1, 2]))  # type: ignore[arg-type]
    operation = MODEL.operation_model("GetMetricStatistics")
    with pytest.raises(protocol.ValidationFailure, match="period"):
        protocol.parse_input(operation, {"Namespace": "x", "MetricName": "y", "StartTime": 1, "EndTime": 2})


def test_a_response_parses_in_botocore_with_datetimes() -> None:
    operation = MODEL.operation_model("GetMetricData")
    result = {
        "MetricDataResults": [
            {
                "Id": "q",
                "Label": "Requests",
                "Timestamps": [START.timestamp(), START.timestamp() + 60],
                "Values": [3.0, 4.5],
                "StatusCode": "Complete",
            }
        ],
        "Messages": [],
    }
    response = _CBOR_WIRE.respond(200, _CBOR_WIRE.serialize(operation, result), "request-1")
    assert response.headers["smithy-protocol"] == "rpc-v2-cbor"
    assert response.headers["content-type"] == "application/cbor"
    parsed = _parse(response, "GetMetricData")
    (data,) = parsed["MetricDataResults"]
    assert data["Timestamps"] == [START, START.replace(minute=1)]
    assert data["Values"] == [3.0, 4.5]
    assert parsed["ResponseMetadata"]["RequestId"] == "request-1"


@pytest.mark.parametrize("wire", [_CBOR_WIRE, _JSON_WIRE], ids=["cbor", "json"])
def test_errors_carry_the_query_code_botocore_maps_to_its_exceptions(wire: Any) -> None:
    query_error = protocol.query_error(list(MODEL.error_shapes), "InvalidParameterValueException")
    assert query_error == "InvalidParameterValue;Sender"
    response = wire.error(400, "InvalidParameterValueException", "bad Period", "request-2", query_error)
    assert response.headers["x-amzn-query-error"] == query_error
    if wire is _CBOR_WIRE:
        error = _parse(response, "GetMetricStatistics")["Error"]
        assert (error["Code"], error["Message"]) == ("InvalidParameterValue", "bad Period")
    client = botocore.session.get_session().create_client(
        "cloudwatch", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    assert client.exceptions.from_code("InvalidParameterValue") is client.exceptions.InvalidParameterValueException
