"""`runyard events` through click's CliRunner over a temporary data directory, and how `runyard logs` shows
event envelopes."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import runyard.app
from runyard.app import build
from runyard.cli.main import cli
from runyard.clock import FakeClock
from runyard.config import Settings
from runyard.control.model.service import ImageSource, Service, ServiceSpec, SourceSpec
from runyard.ids import RandomIds, apprunner_arn
from runyard.observe.events import (
    DELIVERED,
    FAILED,
    OPERATION_STATUS_CHANGE,
    PENDING,
    SERVICE_STATUS_CHANGE,
    Delivery,
    EventBus,
)
from runyard.observe.log_views import Tail, service_logs_selection
from runyard.observe.logs import EVENTS_STREAM, LogStore, service_log_group

ACCOUNT = "000000000000"
REGION = "us-east-1"
SERVICE_ID = "ac7ec8b51ff34746bcb6654e0bcb23da"
T0 = 1_700_000_000.5  # 2023-11-14T22:13:20.500Z
FAILURES = '{"detail-type": ["Service Operation Status Change"], "detail": {"Status": [{"suffix": "Failed"}]}}'
SERVICE = Service(
    arn=apprunner_arn(REGION, ACCOUNT, "service", "web", SERVICE_ID),
    name="web",
    service_id=SERVICE_ID,
    account=ACCOUNT,
    region=REGION,
    status="RUNNING",
    created_at=T0,
    auto_scaling_configuration_arn=apprunner_arn(REGION, ACCOUNT, "autoscalingconfiguration", "Default"),
    spec=ServiceSpec(source=SourceSpec(code=None, image=ImageSource("public.ecr.aws/x/y:latest", "ECR_PUBLIC"))),
)


@pytest.fixture(autouse=True)
def _no_runyard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("RUNYARD_")]:
        monkeypatch.delenv(name)
    # build() probes the host's Python and Node.js (a quarter of a second of subprocesses) for builds these
    # commands never run; every command here builds once.
    monkeypatch.setattr(runyard.app, "detect_toolchains", dict)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def run(data_dir: Path | None, *args: str) -> Result:
    extra = ["--data-dir", str(data_dir)] if data_dir is not None else []
    return CliRunner().invoke(cli, ["events", *args, *extra])


def publish(data_dir: Path, detail_type: str, detail: dict[str, str]) -> None:
    """An event as the server publishes it (the worker is not started: deliveries stay pending)."""
    built = build(Settings(data_dir=data_dir))
    try:
        bus = EventBus(
            store=built.database,
            logs=LogStore(data_dir / "logs", FakeClock(T0)),
            clock=FakeClock(T0),
            ids=RandomIds(),
            account=ACCOUNT,
        )
        bus.publish(SERVICE, detail_type, detail)
    finally:
        built.stop()


def set_status(data_dir: Path, rule: str, statuses: list[tuple[str, str | None]]) -> None:
    """Mark the rule's deliveries, oldest first, as the worker would have."""
    built = build(Settings(data_dir=data_dir))
    try:
        with built.database.write() as uow:
            repo = uow.repo(Delivery)
            found = repo.find(account=ACCOUNT, region="", name=rule)
            for delivery, (status, error) in zip(found, statuses, strict=False):
                repo.save(
                    replace(
                        delivery,
                        status=status,
                        attempts=8 if status == FAILED else 1,
                        last_error=error,
                        response_status=500 if error else 200,
                    )
                )
    finally:
        built.stop()


def operation(status: str, message: str, severity: str = "INFO") -> dict[str, str]:
    return {"Status": status, "ServiceName": "web", "ServiceId": SERVICE_ID, "Message": message, "Severity": severity}


def test_add_prints_a_generated_secret_once_and_list_never(data_dir: Path) -> None:
    added = run(data_dir, "add", "failures", "--pattern", FAILURES, "--url", "https://hooks.example.com/runyard")
    assert added.exit_code == 0, added.output
    secret = re.search(r"^  ([0-9a-f]{64})$", added.output, re.MULTILINE)
    assert secret is not None
    assert "shown only now" in added.output and "X-Runyard-Signature" in added.output
    assert "Added event rule failures" in added.output
    assert (
        '{"detail-type":["Service Operation Status Change"],"detail":{"Status":[{"suffix":"Failed"}]}}' in added.output
    )

    listed = run(data_dir, "list")
    assert listed.exit_code == 0, listed.output
    header, row = listed.output.splitlines()
    assert header.split() == ["NAME", "ENABLED", "DELIVERED", "PENDING", "FAILED", "URL", "PATTERN"]
    assert row.split()[:6] == ["failures", "yes", "0", "0", "0", "https://hooks.example.com/runyard"]
    assert secret.group(1) not in listed.output
    assert (data_dir.stat().st_mode & 0o777) == 0o700
    # Sealed at rest: the secret is in no file of the data directory.
    assert not any(secret.group(1).encode() in f.read_bytes() for f in data_dir.rglob("*") if f.is_file())


def test_add_with_a_secret_file_and_a_pattern_file(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("my-own-secret-value\n")
    (tmp_path / "pattern.json").write_text('{\n  "source": ["aws.apprunner"]\n}\n')
    added = run(
        data_dir,
        "add",
        "all",
        "--pattern",
        f"@{tmp_path / 'pattern.json'}",
        "--url",
        "http://127.0.0.1:8080/hook",
        "--secret-file",
        str(tmp_path / "secret"),
    )
    assert added.exit_code == 0, added.output
    assert "my-own-secret-value" not in added.output and "secret" not in added.output.lower()
    assert '{"source":["aws.apprunner"]}' in added.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["add", "x", "--pattern", '{"detail": {"Status": "x"}}', "--url", "http://h/x"], 2, "at detail.Status"),
        (["add", "x", "--pattern", '{"a": [{"wildcard": "*"}]}', "--url", "http://h/x"], 2, "unknown matcher"),
        (["add", "x", "--pattern", "@/nonexistent/p.json", "--url", "http://h/x"], 2, "cannot read"),
        (["add", "x", "--pattern", '{"a": ["b"]}', "--url", "ftp://h/x"], 2, "http:// or https://"),
        (["add", "bad name", "--pattern", '{"a": ["b"]}', "--url", "http://h/x"], 2, "1 to 64 of"),
        (["remove", "nothing"], 1, "No event rule named nothing"),
        (["deliveries", "nothing"], 1, "No event rule named nothing"),
        (["disable", "nothing"], 1, "No event rule named nothing"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(data_dir: Path, args: list[str], code: int, message: str) -> None:
    run(data_dir, "add", "keep", "--pattern", '{"a": ["b"]}', "--url", "http://h/x")
    result = run(data_dir, *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert run(data_dir, "list").output.splitlines()[1].split()[0] == "keep"
    assert len(run(data_dir, "list").output.splitlines()) == 2


def test_a_duplicate_name_is_refused(data_dir: Path) -> None:
    assert run(data_dir, "add", "a", "--pattern", FAILURES, "--url", "http://h/x").exit_code == 0
    again = run(data_dir, "add", "a", "--pattern", FAILURES, "--url", "http://h/y")
    assert again.exit_code == 1 and "An event rule named a already exists" in again.output


def test_list_counts_deliveries_and_remove_drops_the_pending_ones(data_dir: Path) -> None:
    assert run(data_dir, "list").output == "No event rules.\n"
    assert run(data_dir, "add", "failures", "--pattern", FAILURES, "--url", "http://h/x").exit_code == 0
    for n in range(4):
        publish(data_dir, OPERATION_STATUS_CHANGE, operation("DeploymentFailed", f"failure {n}", "ERROR"))
    publish(data_dir, OPERATION_STATUS_CHANGE, operation("DeploymentStarted", "Deployment started."))  # no match
    set_status(data_dir, "failures", [(DELIVERED, None), (FAILED, "HTTP 500 Internal Server Error")])

    row = run(data_dir, "list").output.splitlines()[1].split()
    assert row[:5] == ["failures", "yes", "1", "2", "1"]

    deliveries = run(data_dir, "deliveries")
    assert deliveries.exit_code == 0, deliveries.output
    header, *rows = deliveries.output.splitlines()
    assert header.split() == ["CREATED", "RULE", "STATUS", "TRIES", "HTTP", "EVENT", "LAST", "ERROR"]
    assert [r.split()[2] for r in rows] == [PENDING, PENDING, FAILED, DELIVERED]  # newest first
    assert rows[2].split()[1:] == [
        "failures",
        FAILED,
        "8",
        "500",
        "web:",
        "DeploymentFailed",
        "HTTP",
        "500",
        "Internal",
        "Server",
        "Error",
    ]
    assert rows[0].startswith("2023-11-14T22:13:20Z")
    limited = run(data_dir, "deliveries", "failures", "--limit", "1").output.splitlines()
    assert len(limited) == 2 and limited[1].split()[2] == PENDING

    removed = run(data_dir, "remove", "failures")
    assert removed.exit_code == 0 and "Removed event rule failures (2 pending deliveries dropped)" in removed.output
    assert run(data_dir, "deliveries").output == "No deliveries yet.\n"


def test_a_disabled_rule_gets_no_deliveries(data_dir: Path) -> None:
    assert (
        run(data_dir, "add", "all", "--pattern", '{"source": ["aws.apprunner"]}', "--url", "http://h/x").exit_code == 0
    )
    assert run(data_dir, "disable", "all").output == "Event rule all is disabled\n"
    publish(data_dir, SERVICE_STATUS_CHANGE, {"CurrentStatus": "RUNNING", "Message": "m", "Severity": "INFO"})
    assert run(data_dir, "list").output.splitlines()[1].split()[:5] == ["all", "no", "0", "0", "0"]
    assert run(data_dir, "enable", "all").exit_code == 0
    publish(data_dir, SERVICE_STATUS_CHANGE, {"CurrentStatus": "RUNNING", "Message": "m", "Severity": "INFO"})
    assert run(data_dir, "list").output.splitlines()[1].split()[:5] == ["all", "yes", "0", "1", "0"]


def test_read_commands_create_no_database(data_dir: Path) -> None:
    assert run(data_dir, "list").output == "No event rules.\n"
    assert run(data_dir, "deliveries").output == "No deliveries yet.\n"
    assert not data_dir.exists()


def test_test_says_match_or_no_match_without_a_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # the default data directory: must stay untouched
    event = {
        "detail-type": "Service Operation Status Change",
        "source": "aws.apprunner",
        "detail": {"Status": "DeploymentFailed"},
    }
    (tmp_path / "event.json").write_text(json.dumps(event))
    matched = run(None, "test", "--pattern", FAILURES, "--event", f"@{tmp_path / 'event.json'}")
    assert (matched.exit_code, matched.output) == (0, "match\n")
    event["detail"] = {"Status": "DeploymentCompletedSuccessfully"}
    missed = run(None, "test", "--pattern", FAILURES, "--event", json.dumps(event))
    assert (missed.exit_code, missed.output) == (1, "no match\n")
    bad = run(None, "test", "--pattern", '{"detail": []}', "--event", "{}")
    assert bad.exit_code == 2 and "at detail: a leaf is a non-empty array" in bad.output
    assert run(None, "test", "--pattern", FAILURES, "--event", "[1]").exit_code == 2
    assert not (tmp_path / ".runyard").exists()


def test_logs_show_event_envelopes_as_severity_and_message(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs", FakeClock(T0))
    group = service_log_group("web", SERVICE_ID)
    store.append(group, EVENTS_STREAM, "Service creation started.")  # a plain line, as before envelopes
    store.append(
        group,
        EVENTS_STREAM,
        json.dumps(
            {
                "version": "0",
                "detail-type": SERVICE_STATUS_CHANGE,
                "detail": {
                    "CurrentStatus": "RUNNING",
                    "Message": "Service status is set to RUNNING.",
                    "Severity": "INFO",
                },
            }
        ),
    )
    store.append(
        group,
        EVENTS_STREAM,
        json.dumps(
            {
                "detail-type": OPERATION_STATUS_CHANGE,
                "detail": operation("DeploymentFailed", "Deployment failed. For details, see service logs.", "ERROR"),
            }
        ),
    )
    store.append(group, EVENTS_STREAM, '{"not": "an envelope"}')
    lines: list[str] = []
    Tail(store, service_logs_selection(SERVICE, deployment=None, application=False), lines.append).pump()
    assert lines == [
        "2023-11-14T22:13:20.500Z Service creation started.",
        "2023-11-14T22:13:20.500Z INFO Service status is set to RUNNING.",
        "2023-11-14T22:13:20.500Z ERROR Deployment failed. For details, see service logs. [DeploymentFailed]",
        '2023-11-14T22:13:20.500Z {"not": "an envelope"}',
    ]
