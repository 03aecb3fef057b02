"""docs/compatibility.md lists exactly the models' operations, and what it calls supported is implemented."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

from runyard.api.apprunner import AppRunnerProvider
from runyard.api.cloudwatch import CloudWatchProvider
from runyard.api.codeconnections import CodeConnectionsProvider

DOC = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"
SUPPORTED = "supported"
STATUSES = frozenset(
    {
        SUPPORTED,
        "InvalidRequestException (not yet)",
        "UnsupportedOperationException (not yet)",
        "InvalidAction (not implemented)",  # CloudWatch: no provider method; the endpoint answers InvalidAction
    }
)
# The provider stubs behind the operations that are not (fully) there yet.
NOT_YET_STUBS = frozenset({"_not_yet", "_repository_links", "_sync_configurations"})
# Implemented, with one part (named by its status) not there yet.
PARTLY: frozenset[str] = frozenset()
_SECTION = re.compile(r"^## .*\(`(?P<service>[a-z-]+)`", re.MULTILINE)
_ROW = re.compile(r"^\| `(?P<operation>[A-Za-z]+)` \| (?P<status>[^|]+?) \|", re.MULTILINE)


@cache
def operation_names(service: str) -> frozenset[str]:
    return frozenset(botocore.session.get_session().get_service_model(service).operation_names)


def documented() -> dict[str, dict[str, str]]:
    """service (the first botocore name in a section heading) -> operation -> status."""
    text = DOC.read_text()
    sections = list(_SECTION.finditer(text))
    tables: dict[str, dict[str, str]] = {}
    for i, heading in enumerate(sections):
        end = sections[i + 1].start() if i + 1 < len(sections) else len(text)
        rows = _ROW.findall(text, heading.end(), end)
        assert len({op for op, _ in rows}) == len(rows), f"an operation is listed twice under {heading.group()}"
        tables[heading.group("service")] = dict(rows)
    return tables


def test_the_doc_lists_exactly_the_models_operations() -> None:
    tables = documented()
    assert set(tables) == {"apprunner", "codeconnections", "cloudwatch"}
    assert set(tables["cloudwatch"]) == operation_names("cloudwatch")
    assert set(tables["apprunner"]) == operation_names("apprunner")
    assert set(tables["codeconnections"]) == operation_names("codeconnections")
    # The doc says codestar-connections has the same operations, so one table covers both.
    assert operation_names("codestar-connections") == operation_names("codeconnections")
    assert (len(operation_names("apprunner")), len(operation_names("codeconnections"))) == (37, 27)


def test_every_status_is_one_the_doc_defines() -> None:
    for service, table in documented().items():
        unknown = {op: status for op, status in table.items() if status not in STATUSES}
        assert not unknown, f"{service}: {unknown}"


def test_what_the_doc_calls_supported_is_implemented() -> None:
    providers = {
        "apprunner": AppRunnerProvider,
        "codeconnections": CodeConnectionsProvider,
        "cloudwatch": CloudWatchProvider,
    }
    for service, table in documented().items():
        provider = providers[service]
        for operation, status in table.items():
            method = getattr(provider, xform_name(operation), None)
            if status == "InvalidAction (not implemented)":
                assert method is None, f"{service} {operation} is implemented but documented as {status!r}"
                continue
            assert callable(method), f"{service} {operation}: no {provider.__name__}.{xform_name(operation)}"
            if status == SUPPORTED:
                assert method.__name__ not in NOT_YET_STUBS, f"{service} {operation} is documented as supported"
            else:
                assert method.__name__ in NOT_YET_STUBS or operation in PARTLY, (
                    f"{service} {operation} is implemented but documented as {status!r}"
                )
