from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runyard.app import build
from runyard.cli.logs import show
from runyard.cli.main import cli
from runyard.clock import FakeClock
from runyard.config import Settings
from runyard.control.model.service import ImageSource, Service, ServiceSpec, SourceSpec
from runyard.ids import apprunner_arn
from runyard.observe.log_views import Tail, service_logs_selection
from runyard.observe.logs import (
    EVENTS_STREAM,
    LogStore,
    application_log_group,
    deployment_stream,
    instance_stream,
    service_log_group,
)

ACCOUNT = "000000000000"
REGION = "us-east-1"
SERVICE_ID = "ac7ec8b51ff34746bcb6654e0bcb23da"
OPERATION = "c2c8eeed-ea16-4f45-9cf7-8f12a8953390"
T0 = 1_700_000_000.5  # 2023-11-14T22:13:20.500Z


def _service(name: str, service_id: str = SERVICE_ID, *, status: str = "RUNNING", region: str = REGION) -> Service:
    return Service(
        arn=apprunner_arn(region, ACCOUNT, "service", name, service_id),
        name=name,
        service_id=service_id,
        account=ACCOUNT,
        region=region,
        status=status,
        created_at=T0,
        auto_scaling_configuration_arn=apprunner_arn(
            region, ACCOUNT, "autoscalingconfiguration", "DefaultConfiguration"
        ),
        spec=ServiceSpec(source=SourceSpec(code=None, image=ImageSource("public.ecr.aws/x/y:latest", "ECR_PUBLIC"))),
    )


WEB = _service("python-test")


@pytest.fixture(autouse=True)
def _no_runyard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("RUNYARD_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    runyard = build(Settings(data_dir=data))
    runyard.start()
    with runyard.database.write() as uow:
        uow.repo(Service).add(WEB)
    runyard.stop()
    yield data


@pytest.fixture
def store(data_dir: Path) -> LogStore:
    return LogStore(data_dir / "logs", FakeClock(T0))


def _add(data_dir: Path, *services: Service) -> None:
    runyard = build(Settings(data_dir=data_dir))
    with runyard.database.write() as uow:
        for service in services:
            uow.repo(Service).add(service)
    runyard.stop()


def _run(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["logs", *args, "--data-dir", str(data_dir)])


def test_the_event_log_by_default(data_dir: Path, store: LogStore) -> None:
    group = service_log_group("python-test", SERVICE_ID)
    store.append(group, EVENTS_STREAM, "Service creation started.\nService status is set to RUNNING.")
    store.append(group, deployment_stream(OPERATION), "[AppRunner] not an event")
    result = _run(data_dir, "python-test")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2023-11-14T22:13:20.500Z Service creation started.",
        "2023-11-14T22:13:20.500Z Service status is set to RUNNING.",
    ]


def test_a_service_by_arn(data_dir: Path, store: LogStore) -> None:
    store.append(service_log_group("python-test", SERVICE_ID), EVENTS_STREAM, "hello")
    result = _run(data_dir, WEB.arn)
    assert result.exit_code == 0, result.output
    assert result.stdout == "2023-11-14T22:13:20.500Z hello\n"


@pytest.mark.parametrize(
    "given", [OPERATION, OPERATION.replace("-", ""), OPERATION.upper(), deployment_stream(OPERATION)]
)
def test_a_deployment_log_by_operation_id(data_dir: Path, store: LogStore, given: str) -> None:
    group = service_log_group("python-test", SERVICE_ID)
    store.append(group, deployment_stream(OPERATION), f"[AppRunner] Deployment with ID : {OPERATION} started.")
    store.append(group, deployment_stream("f" * 32), "[AppRunner] another deployment")
    store.append(group, EVENTS_STREAM, "an event")
    result = _run(data_dir, "python-test", "--deployment", given)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"2023-11-14T22:13:20.500Z [AppRunner] Deployment with ID : {OPERATION} started.\n"


def test_an_unknown_deployment_names_the_known_ones(data_dir: Path, store: LogStore) -> None:
    store.append(service_log_group("python-test", SERVICE_ID), deployment_stream(OPERATION), "x")
    result = _run(data_dir, "python-test", "--deployment", "0" * 32)
    assert result.exit_code == 1
    assert f"No deployment log {'0' * 32} for service python-test" in result.stderr
    assert OPERATION.replace("-", "") in result.stderr
    assert _run(data_dir, "python-test", "--deployment", "../../etc").exit_code == 2


def test_the_latest_deployment_is_the_last_written(data_dir: Path, store: LogStore) -> None:
    group = service_log_group("python-test", SERVICE_ID)
    # Named so that the newest sorts first: "latest" must go by time, not by name.
    store.append(group, deployment_stream("a" * 32), "newer deployment")
    store.append(group, deployment_stream("b" * 32), "older deployment")
    for stream, when in ((deployment_stream("a" * 32), T0 + 60), (deployment_stream("b" * 32), T0)):
        os.utime(next(store.root.rglob(stream.replace("/", "%2F") + ".jsonl")), (when, when))
    result = _run(data_dir, "python-test", "--deployment", "latest")
    assert result.exit_code == 0, result.output
    assert result.stdout == "2023-11-14T22:13:20.500Z newer deployment\n"


def test_application_logs_label_each_instance_when_there_are_several(data_dir: Path, store: LogStore) -> None:
    group = application_log_group("python-test", SERVICE_ID)
    store.raw_path(group, instance_stream("i-1")).write_text("listening on 8080\nGET / 200\n")
    result = _run(data_dir, "python-test", "--application")
    assert result.exit_code == 0, result.output
    assert result.stdout == "listening on 8080\nGET / 200\n"  # raw lines, as the app wrote them
    store.raw_path(group, instance_stream("i-2")).write_text("listening on 8081\n")
    result = _run(data_dir, "python-test", "--application")
    assert result.stdout.splitlines() == [
        "instance/i-1 | listening on 8080",
        "instance/i-1 | GET / 200",
        "instance/i-2 | listening on 8081",
    ]


def test_a_service_without_logs_says_so(data_dir: Path) -> None:
    for args, said in [
        ((), "No events logged yet for service python-test."),
        (("--application",), "No application logs yet for service python-test."),
        (("--deployment", "latest"), "No deployment logs yet for service python-test."),
    ]:
        result = _run(data_dir, "python-test", *args)
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
        assert said in result.stderr


def test_an_unknown_service_is_an_error(data_dir: Path) -> None:
    result = _run(data_dir, "nope")
    assert result.exit_code == 1
    assert "No service named nope in us-east-1" in result.stderr
    result = _run(data_dir, "python-test", "--region", "eu-west-1")
    assert result.exit_code == 1
    assert "No service named python-test in eu-west-1" in result.stderr
    result = _run(data_dir, apprunner_arn(REGION, ACCOUNT, "service", "python-test", "0" * 32))
    assert result.exit_code == 1


def test_without_a_database_nothing_is_created(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    result = _run(empty, "python-test")
    assert result.exit_code == 1
    assert "No service named python-test in us-east-1" in result.stderr
    assert not empty.exists()


def test_the_live_service_wins_over_a_deleted_one_of_the_same_name(data_dir: Path, store: LogStore) -> None:
    old, new = _service("reused-name", "1" * 32, status="DELETED"), _service("reused-name", "2" * 32)
    gone = _service("gone-svc", "3" * 32, status="DELETED")
    _add(data_dir, old, new, gone)
    for service in (old, new, gone):
        store.append(service_log_group(service.name, service.service_id), EVENTS_STREAM, service.service_id[:4])
    assert _run(data_dir, "reused-name").stdout == "2023-11-14T22:13:20.500Z 2222\n"
    assert _run(data_dir, old.arn).stdout == "2023-11-14T22:13:20.500Z 1111\n"
    assert _run(data_dir, "gone-svc").stdout == "2023-11-14T22:13:20.500Z 3333\n"


def test_deployment_and_application_exclude_each_other(data_dir: Path) -> None:
    result = _run(data_dir, "python-test", "--application", "--deployment", "latest")
    assert result.exit_code == 2


def test_follow_prints_new_lines_until_stopped(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs", FakeClock(T0))
    group = application_log_group("python-test", SERVICE_ID)
    store.raw_path(group, instance_stream("i-1")).write_text("first\n")
    selection = service_logs_selection(WEB, deployment=None, application=True)
    printed: list[str] = []
    started = threading.Event()
    stop = threading.Event()

    def emit(line: str) -> None:
        printed.append(line)
        started.set()

    def writer() -> None:
        try:
            if started.wait(5):
                with store.raw_path(group, instance_stream("i-1")).open("a") as out:
                    out.write("second\n")
        finally:
            stop.set()  # never leave show() waiting, whatever happened here

    thread = threading.Thread(target=writer)
    thread.start()
    show(store, selection, follow=True, emit=emit, note=printed.append, stop=stop, poll=0.01)
    thread.join()
    assert printed == ["first", "second"]


def test_a_tail_picks_up_instances_that_appear_later_and_labels_them(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs", FakeClock(T0))
    group = application_log_group("python-test", SERVICE_ID)
    printed: list[str] = []
    tail = Tail(store, service_logs_selection(WEB, deployment=None, application=True), printed.append)
    assert tail.pump() == 0
    store.raw_path(group, instance_stream("i-1")).write_text("first\n")
    assert tail.pump() == 1
    store.raw_path(group, instance_stream("i-2")).write_text("another instance\n")
    with store.raw_path(group, instance_stream("i-1")).open("a") as out:
        out.write("second\n")
    assert tail.pump() == 2
    assert tail.pump() == 0
    assert printed == ["first", "instance/i-1 | second", "instance/i-2 | another instance"]


def test_follow_waits_for_a_stream_that_does_not_exist_yet(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs", FakeClock(T0))
    selection = service_logs_selection(WEB, deployment=OPERATION, application=False)
    printed: list[str] = []
    notes: list[str] = []
    noted = threading.Event()
    stop = threading.Event()

    def note(text: str) -> None:
        notes.append(text)
        noted.set()

    def writer() -> None:
        try:
            if noted.wait(5):
                store.append(
                    service_log_group("python-test", SERVICE_ID), deployment_stream(OPERATION), "[Build] step 1"
                )
        finally:
            stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    show(store, selection, follow=True, emit=printed.append, note=note, stop=stop, poll=0.01)
    thread.join()
    assert notes == [f"No deployment log {OPERATION} for service python-test. Waiting (Ctrl-C to stop)."]
    assert printed == ["2023-11-14T22:13:20.500Z [Build] step 1"]
