"""EventBridge event patterns: the spec's examples, every matcher both ways, and patterns that are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runyard.observe.patterns import PatternError, matches, parse_pattern

ARN = "arn:aws:apprunner:us-east-2:123456789012:service/my-app/8fe1e10304f84fd2b0df550fe98a71fa"

# The spec's two example events ("App Runner event examples").
STATUS_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Service Status Change",
    "source": "aws.apprunner",
    "account": "111122223333",
    "time": "2021-04-29T11:54:23Z",
    "region": "us-east-2",
    "resources": [ARN],
    "detail": {
        "PreviousStatus": "OPERATION_IN_PROGRESS",
        "CurrentStatus": "RUNNING",
        "ServiceName": "my-app",
        "ServiceId": "8fe1e10304f84fd2b0df550fe98a71fa",
        "Message": "Service status is set to RUNNING.",
        "Severity": "INFO",
    },
}
OPERATION_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Service Operation Status Change",
    "source": "aws.apprunner",
    "account": "111122223333",
    "time": "2021-04-29T18:43:48Z",
    "region": "us-east-2",
    "resources": [ARN],
    "detail": {
        "Status": "UpdateServiceCompletedSuccessfully",
        "ServiceName": "my-app",
        "ServiceId": "8fe1e10304f84fd2b0df550fe98a71fa",
        "Message": "Service update completed successfully. New application and configuration is deployed.",
        "Severity": "INFO",
    },
}

# The spec's two example patterns ("App Runner event pattern examples").
NO_LONGER_RUNNING = """{
  "detail-type": [ "Service Status Change" ],
  "source": [ "aws.apprunner" ],
  "account": [ "111122223333" ],
  "detail": {
    "PreviousStatus": [ "RUNNING" ]
  }
}"""
OPERATION_FAILED = """{
  "detail-type": [ "Service Operation Status Change" ],
  "source": [ "aws.apprunner" ],
  "account": [ "111122223333" ],
  "detail": {
    "Status": [
      "CreateServiceFailed",
      "DeleteServiceFailed",
      "UpdateServiceFailed",
      "DeploymentFailed",
      "PauseServiceFailed",
      "ResumeServiceFailed"
    ]
  }
}"""


def with_detail(event: dict[str, Any], **detail: str) -> dict[str, Any]:
    return {**event, "detail": {**event["detail"], **detail}}


def test_the_spec_patterns_against_the_spec_events() -> None:
    no_longer_running = parse_pattern(NO_LONGER_RUNNING)
    failed = parse_pattern(OPERATION_FAILED)
    # The spec's events are a service becoming RUNNING and an update that succeeded: neither pattern matches.
    assert not matches(no_longer_running, STATUS_EVENT)
    assert not matches(failed, OPERATION_EVENT)
    leaving = with_detail(STATUS_EVENT, PreviousStatus="RUNNING", CurrentStatus="OPERATION_IN_PROGRESS")
    assert matches(no_longer_running, leaving)
    assert not matches(no_longer_running, {**leaving, "account": "444455556666"})
    assert not matches(failed, leaving)  # another detail-type
    for status in ("DeploymentFailed", "PauseServiceFailed"):
        assert matches(failed, with_detail(OPERATION_EVENT, Status=status))
    assert not matches(no_longer_running, with_detail(OPERATION_EVENT, Status="DeploymentFailed"))


def match(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return matches(parse_pattern(json.dumps(pattern)), event)


def test_exact_values_are_case_sensitive_and_typed() -> None:
    assert match({"a": ["x"]}, {"a": "x"})
    assert not match({"a": ["x"]}, {"a": "X"})
    assert match({"a": [5]}, {"a": 5.0})
    assert not match({"a": [5]}, {"a": "5"})
    assert not match({"a": [1]}, {"a": True})
    assert match({"a": [True]}, {"a": True}) and not match({"a": [True]}, {"a": 1})
    assert match({"a": [None]}, {"a": None})
    assert not match({"a": [None]}, {})  # null matches a null value, not an absent field
    assert match({"a": [""]}, {"a": ""}) and not match({"a": [""]}, {"a": None})


def test_and_across_fields_or_within_a_leaf_and_nested_objects() -> None:
    pattern = {"source": ["aws.apprunner"], "detail": {"Severity": ["ERROR", "WARNING"]}}
    assert match(pattern, {"source": "aws.apprunner", "detail": {"Severity": "WARNING"}})
    assert not match(pattern, {"source": "aws.apprunner", "detail": {"Severity": "INFO"}})
    assert not match(pattern, {"source": "aws.ec2", "detail": {"Severity": "ERROR"}})
    assert not match(pattern, {"source": "aws.apprunner", "detail": "ERROR"})  # not an object
    assert not match(pattern, {"source": "aws.apprunner"})


def test_an_array_in_the_event_matches_when_any_element_does() -> None:
    assert match({"resources": [ARN]}, STATUS_EVENT)
    assert match({"resources": [{"prefix": "arn:aws:apprunner:"}]}, {"resources": ["other", ARN]})
    assert not match({"resources": ["other"]}, STATUS_EVENT)
    # Arrays of objects: every field must be matched by the same element.
    event = {"items": [{"k": "a", "v": 1}, {"k": "b", "v": 2}]}
    assert match({"items": {"k": ["b"], "v": [2]}}, event)
    assert not match({"items": {"k": ["a"], "v": [2]}}, event)


def test_prefix_and_suffix() -> None:
    assert match({"time": [{"prefix": "2021-04-29"}]}, STATUS_EVENT)
    assert not match({"time": [{"prefix": "2021-04-30"}]}, STATUS_EVENT)
    assert match({"detail": {"Status": [{"suffix": "Failed"}]}}, {"detail": {"Status": "DeploymentFailed"}})
    assert not match({"detail": {"Status": [{"suffix": "Failed"}]}}, OPERATION_EVENT)
    assert not match({"a": [{"prefix": "1"}]}, {"a": 12})  # strings only
    assert match({"a": [{"prefix": {"equals-ignore-case": "SERVICE"}}]}, {"a": "service x"})
    assert match({"a": [{"suffix": {"equals-ignore-case": "FAILED"}}]}, {"a": "DeploymentFailed"})
    assert not match({"a": [{"prefix": "SERVICE"}]}, {"a": "service x"})


def test_equals_ignore_case() -> None:
    assert match({"a": [{"equals-ignore-case": "running"}]}, {"a": "RUNNING"})
    assert not match({"a": [{"equals-ignore-case": "running"}]}, {"a": "RUNNING!"})
    assert not match({"a": [{"equals-ignore-case": "1"}]}, {"a": 1})


def test_anything_but() -> None:
    assert match({"a": [{"anything-but": "RUNNING"}]}, {"a": "PAUSED"})
    assert not match({"a": [{"anything-but": "RUNNING"}]}, {"a": "RUNNING"})
    assert not match({"a": [{"anything-but": "RUNNING"}]}, {})  # an absent field never matches
    assert match({"a": [{"anything-but": ["RUNNING", "PAUSED"]}]}, {"a": "DELETED"})
    assert not match({"a": [{"anything-but": ["RUNNING", "PAUSED"]}]}, {"a": "PAUSED"})
    assert match({"a": [{"anything-but": 5}]}, {"a": 6}) and not match({"a": [{"anything-but": 5}]}, {"a": 5})
    assert match({"a": [{"anything-but": {"prefix": "us-"}}]}, {"a": "eu-west-1"})
    assert not match({"a": [{"anything-but": {"prefix": "us-"}}]}, {"a": "us-east-2"})
    assert not match({"a": [{"anything-but": {"suffix": ".png"}}]}, {"a": "x.png"})
    assert not match({"a": [{"anything-but": {"equals-ignore-case": ["x", "y"]}}]}, {"a": "Y"})
    assert match({"a": [{"anything-but": {"equals-ignore-case": ["x", "y"]}}]}, {"a": "z"})


def test_exists() -> None:
    assert match({"detail": {"Severity": [{"exists": True}]}}, STATUS_EVENT)
    assert not match({"detail": {"Severity": [{"exists": False}]}}, STATUS_EVENT)
    assert match({"detail": {"Reason": [{"exists": False}]}}, STATUS_EVENT)
    assert not match({"detail": {"Reason": [{"exists": True}]}}, STATUS_EVENT)
    assert match({"missing": {"deeper": [{"exists": False}]}}, STATUS_EVENT)
    assert not match({"detail": [{"exists": True}]}, STATUS_EVENT)  # only leaves exist; detail is an object
    assert match({"a": [{"exists": True}]}, {"a": None})


def test_numeric() -> None:
    assert match({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 5})
    assert not match({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 0})
    assert not match({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 5.5})
    assert match({"n": [{"numeric": ["=", 3.0]}]}, {"n": 3})
    assert match({"n": [{"numeric": [">=", 10]}]}, {"n": 10}) and not match({"n": [{"numeric": ["<", 10]}]}, {"n": 10})
    assert not match({"n": [{"numeric": [">", 0]}]}, {"n": "7"})  # numbers only
    assert not match({"n": [{"numeric": [">", 0]}]}, {"n": True})
    assert not match({"n": [{"numeric": [">", 0]}]}, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "is a JSON object, not an array"),
        ("{}", "at least one field"),
        (
            '{"a": "x"}',
            'at a: a pattern field is an array of values or matchers (or an object), not a string; write ["x"]',
        ),
        ('{"a": []}', "at a: a leaf is a non-empty array"),
        ('{"detail": {}}', "at detail: an object in a pattern needs at least one field"),
        ('{"a": [["x"]]}', "at a[0]: arrays cannot be nested"),
        ('{"a": [{"wildcard": "x*"}]}', "at a[0]: unknown matcher 'wildcard'"),
        ('{"a": [{"prefix": "x", "suffix": "y"}]}', "exactly one of"),
        ('{"a": [{"prefix": 1}]}', "at a[0].prefix: expected a string, not a number"),
        ('{"a": [{"exists": "yes"}]}', "exists takes true or false"),
        ('{"a": [{"anything-but": []}]}', "at least one value"),
        ('{"a": [{"anything-but": ["x", 1]}]}', "only strings or only numbers"),
        ('{"a": [{"anything-but": {"wildcard": "x"}}]}', "one of prefix, suffix or equals-ignore-case"),
        ('{"a": [{"numeric": [">", "1"]}]}', "> needs a number, not a string"),
        ('{"a": [{"numeric": ["!=", 1]}]}', '"!=" is not a numeric operator'),
        ('{"a": [{"numeric": ["<", 1, ">", 0]}]}', "a numeric range is"),
        ('{"a": [{"numeric": [">", 5, "<", 1]}]}', "lower bound 5 is above its upper bound 1"),
        ('{"a": [{"numeric": [">", 1, "<"]}]}', "numeric takes"),
        ('{"a": ["x"], "a": ["y"]}', "names the field 'a' twice"),
        ('{"a": [NaN]}', "NaN"),
        ('{"$or": [{"a": ["x"]}]}', "the operator '$or' is not supported"),
        (
            '{"detail": {"Status": [{"prefix": {"x": "y"}}]}}',
            'at detail.Status[0].prefix: expected a string or {"equals',
        ),
    ],
)
def test_invalid_patterns_say_where(text: str, message: str) -> None:
    with pytest.raises(PatternError, match=None) as caught:
        parse_pattern(text)
    assert message in str(caught.value)
