"""The shape walker against botocore's own serializer and parser (the cheapest compatibility proof)."""

from __future__ import annotations

import json
import re
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from runyard.api import protocol
from runyard.api.models import resolve_target, wire_service

MODEL = botocore.session.get_session().get_service_model("apprunner")

CREATE_SERVICE: dict[str, Any] = {
    "ServiceName": "python-hello",
    "SourceConfiguration": {
        "CodeRepository": {
            "RepositoryUrl": "https://example.com/repo.git",
            "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
            "CodeConfiguration": {
                "ConfigurationSource": "API",
                "CodeConfigurationValues": {
                    "Runtime": "PYTHON_3",
                    "BuildCommand": "pip install -r requirements.txt",
                    "StartCommand": "python server.py",
                    "Port": "8080",
                    "RuntimeEnvironmentVariables": {"NAME": "Jane"},
                },
            },
            "SourceDirectory": "/",
        },
        "AutoDeploymentsEnabled": False,
    },
    "InstanceConfiguration": {"Cpu": "1 vCPU", "Memory": "2 GB"},
    "HealthCheckConfiguration": {"Protocol": "HTTP", "Path": "/", "Interval": 5},
    "Tags": [{"Key": "team", "Value": "web"}],
}


def _botocore_body(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    serializer = create_serializer("json")
    request = serializer.serialize_to_request(params, MODEL.operation_model(operation))
    body = request["body"]
    return dict(json.loads(body)) if body else {}


def test_botocore_serialized_request_parses_back_to_the_same_params() -> None:
    operation = MODEL.operation_model("CreateService")
    parsed = protocol.parse_input(operation, _botocore_body("CreateService", CREATE_SERVICE))
    assert parsed == CREATE_SERVICE


def test_serialized_output_parses_with_botocore() -> None:
    operation = MODEL.operation_model("CreateAutoScalingConfiguration")
    result = {
        "AutoScalingConfiguration": {
            "AutoScalingConfigurationArn": "arn:aws:apprunner:us-east-1:000000000000:autoscalingconfiguration/a/1/x",
            "AutoScalingConfigurationName": "a",
            "AutoScalingConfigurationRevision": 1,
            "Latest": True,
            "Status": "active",
            "CreatedAt": 1700000000.5,
            "DeletedAt": None,
        }
    }
    body = protocol.serialize_output(operation, result)
    assert "DeletedAt" not in body["AutoScalingConfiguration"]  # absent members are omitted, never null
    parsed = create_parser("json").parse(
        {"body": json.dumps(body).encode(), "headers": {}, "status_code": 200}, operation.output_shape
    )
    config = parsed["AutoScalingConfiguration"]
    assert config["CreatedAt"].timestamp() == 1700000000.5
    assert config["Status"] == "active"


def test_serializer_refuses_unmodelled_members() -> None:
    operation = MODEL.operation_model("ListConnections")
    with pytest.raises(protocol.UnmodelledMember, match="Secret"):
        protocol.serialize_output(operation, {"ConnectionSummaryList": [], "Secret": "x"})


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "Value null at 'connectionName' failed to satisfy constraint: Member must not be null"),
        ({"ConnectionName": "abc", "ProviderType": "GITHUB"}, "length greater than or equal to 4"),
        ({"ConnectionName": "a" * 33, "ProviderType": "GITHUB"}, "length less than or equal to 32"),
        ({"ConnectionName": "ab cd", "ProviderType": "GITHUB"}, "regular expression pattern"),
        ({"ConnectionName": "abcd", "ProviderType": "GITLAB"}, "enum value set: [GITHUB, BITBUCKET]"),
        ({"ConnectionName": 1234, "ProviderType": "GITHUB"}, "Member must be of type String"),
        ({"ConnectionName": "abcd", "ProviderType": "GITHUB", "Tags": {}}, "Member must be a list"),
        ({"ConnectionName": "abcd", "ProviderType": "GITHUB", "Tags": [{"Key": "aws:x"}]}, "tags.1.member.key"),
    ],
)
def test_each_rule_class_is_enforced(params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(protocol.ValidationFailure) as failure:
        protocol.parse_input(MODEL.operation_model("CreateConnection"), params)
    assert fragment in failure.value.message
    assert re.match(r"[12] validation errors? detected: ", failure.value.message)


def test_integer_range_and_type() -> None:
    operation = MODEL.operation_model("CreateAutoScalingConfiguration")
    for value, fragment in [(0, "greater than or equal to 1"), (201, "less than or equal to 200"), (True, "Integer")]:
        with pytest.raises(protocol.ValidationFailure, match=fragment):
            protocol.parse_input(operation, {"AutoScalingConfigurationName": "abcd", "MaxConcurrency": value})
    assert protocol.parse_input(operation, {"AutoScalingConfigurationName": "abcd", "MaxConcurrency": 5.0}) == {
        "AutoScalingConfigurationName": "abcd",
        "MaxConcurrency": 5,
    }


@pytest.mark.parametrize(
    ("identifier", "admitted"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:latest", True),  # the model's own pattern
        ("public.ecr.aws/nginx/nginx:latest", True),
        ("127.0.0.1:5000/app:1", True),  # a self-hoster's registry: admitted as a valid OCI reference
        ("registry.example.com/team/app@sha256:" + "a" * 64, True),
        ("not a reference", False),
        ("127.0.0.1:5000/App:1", False),
    ],
)
def test_image_identifier_is_the_models_pattern_or_an_oci_reference(identifier: str, admitted: bool) -> None:
    params = {
        "ServiceName": "image-svc",
        "SourceConfiguration": {
            "ImageRepository": {"ImageIdentifier": identifier, "ImageRepositoryType": "ECR"},
        },
    }
    operation = MODEL.operation_model("CreateService")
    if admitted:
        parsed = protocol.parse_input(operation, params)
        assert parsed["SourceConfiguration"]["ImageRepository"]["ImageIdentifier"] == identifier
    else:
        with pytest.raises(protocol.ValidationFailure, match="imageIdentifier"):
            protocol.parse_input(operation, params)


def test_all_problems_are_reported_and_sensitive_values_never_echoed() -> None:
    params = json.loads(json.dumps(CREATE_SERVICE))
    values = params["SourceConfiguration"]["CodeRepository"]["CodeConfiguration"]["CodeConfigurationValues"]
    values["BuildCommand"] = "echo s3cr3t\nrm -rf /"
    params["ServiceName"] = "x"
    with pytest.raises(protocol.ValidationFailure) as failure:
        protocol.parse_input(MODEL.operation_model("CreateService"), params)
    message = failure.value.message
    # ServiceName fails length and pattern; BuildCommand fails its pattern
    assert message.startswith("3 validation errors detected: ")
    assert "s3cr3t" not in message
    assert (
        "Value at 'sourceConfiguration.codeRepository.codeConfiguration.codeConfigurationValues.buildCommand'"
        in message
    )


def test_messages_are_capped_at_600_characters() -> None:
    operation = MODEL.operation_model("TagResource")
    tags = [{"Key": "k" * 200, "Value": "v" * 300} for _ in range(20)]
    with pytest.raises(protocol.ValidationFailure) as failure:
        protocol.parse_input(operation, {"ResourceArn": "bad", "Tags": tags})
    assert len(failure.value.message) <= 600


def test_null_members_are_absent_and_unknown_members_ignored() -> None:
    operation = MODEL.operation_model("ListConnections")
    assert protocol.parse_input(operation, {"ConnectionName": None, "Bogus": 1}) == {}


@pytest.mark.parametrize("body", [b"[]", b"{", b'"x"', b"\xff"])
def test_bodies_that_are_not_json_objects(body: bytes) -> None:
    with pytest.raises(protocol.SerializationError):
        protocol.decode_body(body)


def test_every_target_prefix_form_resolves() -> None:
    for target, service in [
        ("AppRunner.ListServices", "apprunner"),
        ("com.amazonaws.codeconnections.CodeConnections_20231201.ListHosts", "codeconnections"),
        ("CodeConnections_20231201.ListHosts", "codeconnections"),
        ("com.amazonaws.codestar.connections.CodeStar_connections_20191201.ListHosts", "codestar-connections"),
        ("CodeStar_connections_20191201.ListHosts", "codestar-connections"),
    ]:
        resolved = resolve_target(target)
        assert resolved is not None and resolved[0].name == service
    assert resolve_target("Nope.ListServices") is None
    assert resolve_target("ListServices") is None
    assert wire_service("apprunner").operation("NoSuchOperation") is None
