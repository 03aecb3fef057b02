"""The operation engine and the service commands, with a fake Workloads port (the real one: e2e tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from runyard.clock import FakeClock
from runyard.config import Quotas
from runyard.control.context import Deps, Scope
from runyard.control.model.operation import OPERATION_TRANSITIONS, Operation
from runyard.control.model.service import (
    SERVICE_TRANSITIONS,
    CodeSource,
    ImageSource,
    Revision,
    Service,
    ServiceSpec,
    ServiceUpdate,
    SourceSpec,
)
from runyard.control.plane import ControlPlane
from runyard.control.ports import DeploymentLog
from runyard.errors import DeploymentFailed, InvalidInput, InvalidState, NotFound
from runyard.ids import SequentialIds
from runyard.store.database import Database

SCOPE = Scope("000000000000", "us-east-1")
REVISION = Revision(
    artifact_id="a" * 64, artifact_path="/tmp/a", commit_sha="c" * 40, command="python app.py", port=8080
)
SPEC = ServiceSpec(
    source=SourceSpec(
        code=CodeSource(
            repository_url="file:///src/app",
            branch="main",
            configuration_source="API",
            runtime="PYTHON_3",
            start_command="python app.py",
        ),
        image=None,
    )
)


@dataclass
class FakeWorkloads:
    calls: list[str] = field(default_factory=list)
    fail_build: str | None = None
    refuse_source: str | None = None
    build_gate: asyncio.Event | None = None  # when set, build waits for it (an operation caught mid-way)
    fail_roll: str | None = None

    def check_source(self, spec: ServiceSpec) -> None:
        if self.refuse_source:
            raise InvalidInput(self.refuse_source)

    async def build(self, service: Service, log: DeploymentLog) -> Revision:
        self.calls.append(f"build {service.name}")
        log("[Build] building")
        if self.build_gate is not None:
            await self.build_gate.wait()
        if self.fail_build:
            raise DeploymentFailed(self.fail_build)
        return REVISION

    async def start(self, service: Service, revision: Revision, log: DeploymentLog) -> None:
        self.calls.append(f"start {service.name} {revision.artifact_id[:4]}")

    async def roll(self, service: Service, revision: Revision, log: DeploymentLog) -> None:
        self.calls.append(f"roll {service.name} {revision.artifact_id[:4]}")
        if self.fail_roll:
            raise DeploymentFailed(self.fail_roll)

    async def stop(self, service: Service) -> None:
        self.calls.append(f"stop {service.name}")

    async def remove(self, service: Service) -> None:
        self.calls.append(f"remove {service.name}")

    async def restore(self, service: Service) -> None:
        self.calls.append(f"restore {service.name}")

    async def close(self) -> None:
        self.calls.append("close")


@dataclass
class FakeLogs:
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (service, stream, text)
    removed: list[str] = field(default_factory=list)

    def deployment(self, service: Service, operation_id: str, line: str) -> None:
        self.lines.append((service.name, f"deployment/{operation_id}", line))

    def event(self, service: Service, message: str) -> None:
        self.lines.append((service.name, "events", message))

    def remove(self, service: Service) -> None:
        self.removed.append(service.name)

    def events(self, name: str) -> list[str]:
        return [text for service, stream, text in self.lines if service == name and stream == "events"]


@dataclass
class FakeEvents:
    published: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def publish(self, service: Service, detail_type: str, detail: Mapping[str, str]) -> None:
        self.published.append((service.name, detail_type, dict(detail)))

    def statuses(self) -> list[str]:
        return [d.get("Status") or f"{d['PreviousStatus']}->{d['CurrentStatus']}" for _, _, d in self.published]


@dataclass
class World:
    database: Database
    clock: FakeClock
    workloads: FakeWorkloads
    logs: FakeLogs
    events: FakeEvents = field(default_factory=FakeEvents)

    def plane(self) -> ControlPlane:
        deps = Deps(
            store=self.database, clock=self.clock, ids=SequentialIds(), quotas=Quotas(), domain_suffix="localhost"
        )
        return ControlPlane(
            deps,
            workloads=self.workloads,
            logs=self.logs,
            events=self.events,
            account=SCOPE.account,
            pool_size=4,
            deleted_retention=60,
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    database = Database(f"sqlite:///{tmp_path / 'runyard.db'}", clock=FakeClock())
    database.migrate()
    yield World(database, FakeClock(), FakeWorkloads(), FakeLogs())
    database.close()


def run(world: World, scenario: Callable[[ControlPlane], object]) -> None:
    """Run `scenario(plane)` (a coroutine function) with the engine started, then stop the engine."""

    async def main() -> None:
        plane = world.plane()
        await plane.engine.start()
        try:
            await scenario(plane)  # type: ignore[misc]
        finally:
            await plane.engine.stop()

    asyncio.run(main())


async def settled(plane: ControlPlane, arn: str) -> Service:
    for _ in range(200):
        await asyncio.sleep(0.01)
        await plane.engine.idle(arn)
        service = plane.services.get(SCOPE, arn)
        if service.status != "OPERATION_IN_PROGRESS":
            return service
    raise AssertionError("the operation never finished")


def operations(plane: ControlPlane, arn: str) -> list[tuple[str, str]]:
    return [(op.type, op.status) for op in plane.services.operations(SCOPE, arn)]


def test_create_stores_the_service_and_its_operation_then_runs_it(world: World) -> None:
    async def scenario(plane: ControlPlane) -> None:
        service, operation_id = plane.services.create(SCOPE, name="web", spec=SPEC, tags=[("team", "a")])
        assert service.status == "OPERATION_IN_PROGRESS"
        assert len(service.service_id) == 32 and len(service.url_label) == 10
        assert "autoscalingconfiguration/DefaultConfiguration/1/" in service.auto_scaling_configuration_arn
        done = await settled(plane, service.arn)
        assert done.status == "RUNNING"
        assert done.revision == REVISION
        assert operations(plane, service.arn) == [("CREATE_SERVICE", "SUCCEEDED")]
        stored = plane.services.operations(SCOPE, service.arn)[0]
        assert stored.id == operation_id and stored.ended_at is not None

    run(world, scenario)
    assert world.workloads.calls == ["build web", "start web aaaa", "close"]
    assert world.events.statuses() == [
        "CreateServiceStarted",
        "CreateServiceCompletedSuccessfully",
        "OPERATION_IN_PROGRESS->RUNNING",
    ]
    deployment = [text for _, stream, text in world.logs.lines if stream.startswith("deployment/")]
    assert deployment[0].startswith("[AppRunner] Deployment with ID : ") and "[Build] building" in deployment


def test_a_failed_build_leaves_create_failed_with_the_reason(world: World) -> None:
    world.workloads.fail_build = "Failed to build your application source code: exit code 3"

    async def scenario(plane: ControlPlane) -> None:
        service, _ = plane.services.create(SCOPE, name="broken", spec=SPEC, tags=[])
        done = await settled(plane, service.arn)
        assert done.status == "CREATE_FAILED"
        assert operations(plane, service.arn) == [("CREATE_SERVICE", "FAILED")]
        assert plane.services.operations(SCOPE, service.arn)[0].reason == world.workloads.fail_build

    run(world, scenario)
    assert world.workloads.calls == ["build broken", "stop broken", "close"]
    assert f"Service creation failed: {world.workloads.fail_build}" in world.logs.events("broken")
    assert world.events.statuses()[-2:] == ["CreateServiceFailed", "OPERATION_IN_PROGRESS->CREATE_FAILED"]
    assert world.events.published[-1][2]["Severity"] == "ERROR"


def test_a_refused_source_stores_nothing(world: World) -> None:
    world.workloads.refuse_source = "use a public https:// URL"

    async def scenario(plane: ControlPlane) -> None:
        with pytest.raises(InvalidInput, match="public https"):
            plane.services.create(SCOPE, name="web", spec=SPEC, tags=[])
        assert plane.services.find_all(SCOPE) == []

    run(world, scenario)


def test_delete_runs_once_the_service_is_settled_and_leaves_it_describable(world: World) -> None:
    world.workloads.build_gate = asyncio.Event()

    async def scenario(plane: ControlPlane) -> None:
        service, _ = plane.services.create(SCOPE, name="web", spec=SPEC, tags=[])
        await asyncio.sleep(0.05)
        with pytest.raises(InvalidState, match="operation in progress"):
            plane.services.delete(SCOPE, service.arn)
        assert world.workloads.build_gate is not None
        world.workloads.build_gate.set()
        await settled(plane, service.arn)
        deleting, operation_id = plane.services.delete(SCOPE, service.arn)
        assert deleting.status == "OPERATION_IN_PROGRESS" and operation_id
        world.clock.advance(5)
        deleted = await settled(plane, service.arn)
        assert deleted.status == "DELETED" and deleted.deleted_at == world.clock.now()
        assert operations(plane, service.arn) == [("DELETE_SERVICE", "SUCCEEDED"), ("CREATE_SERVICE", "SUCCEEDED")]
        with pytest.raises(NotFound):
            plane.services.delete(SCOPE, service.arn)
        # The name is free again at once; the deleted one stays describable until the retention passes.
        again, _ = plane.services.create(SCOPE, name="web", spec=SPEC, tags=[])
        assert again.arn != service.arn and again.pool == service.pool
        world.clock.advance(61)
        plane.engine._purge_deleted()
        with pytest.raises(NotFound):
            plane.services.get(SCOPE, service.arn)
        await settled(plane, again.arn)

    run(world, scenario)
    assert world.logs.removed == ["web"]


def test_an_operation_interrupted_by_a_restart_runs_again(world: World) -> None:
    world.workloads.build_gate = asyncio.Event()  # never set: the first engine stops mid-build
    created: list[str] = []

    async def first(plane: ControlPlane) -> None:
        service, _ = plane.services.create(SCOPE, name="web", spec=SPEC, tags=[])
        created.append(service.arn)
        await asyncio.sleep(0.05)
        assert operations(plane, service.arn) == [("CREATE_SERVICE", "IN_PROGRESS")]

    run(world, first)
    world.workloads.build_gate = None

    async def second(plane: ControlPlane) -> None:
        done = await settled(plane, created[0])
        assert done.status == "RUNNING"
        assert operations(plane, created[0]) == [("CREATE_SERVICE", "SUCCEEDED")]

    run(world, second)
    assert world.workloads.calls == ["build web", "close", "build web", "start web aaaa", "close"]

    async def third(plane: ControlPlane) -> None:
        await asyncio.sleep(0.05)

    run(world, third)  # a running service is restored (its instances re-adopted or restarted) at start
    assert world.workloads.calls[-2:] == ["restore web", "close"]


def test_the_transition_tables() -> None:
    assert SERVICE_TRANSITIONS.allows("RUNNING", "OPERATION_IN_PROGRESS")
    assert SERVICE_TRANSITIONS.allows("OPERATION_IN_PROGRESS", "DELETED")
    for current, target in [("RUNNING", "DELETED"), ("DELETED", "OPERATION_IN_PROGRESS"), ("RUNNING", "PAUSED")]:
        with pytest.raises(InvalidState):
            SERVICE_TRANSITIONS.check(current, target)
    assert OPERATION_TRANSITIONS.allows("PENDING", "IN_PROGRESS")
    assert not OPERATION_TRANSITIONS.allows("SUCCEEDED", "IN_PROGRESS")
    operation = Operation("id", "a", "r", "arn", "CREATE_SERVICE", "PENDING", created_at=1.0)
    moved = operation.moved("IN_PROGRESS", 2.0).moved("SUCCEEDED", 3.0)
    assert (moved.started_at, moved.ended_at, moved.updated_at) == (2.0, 3.0, 3.0)
    with pytest.raises(InvalidState):
        moved.moved("FAILED", 4.0)


def test_deployments_updates_pause_and_resume(world: World) -> None:
    async def scenario(plane: ControlPlane) -> None:
        service, _ = plane.services.create(SCOPE, name="web", spec=SPEC, tags=[])
        await settled(plane, service.arn)

        plane.services.start_deployment(SCOPE, service.arn)
        with pytest.raises(InvalidState, match="operation in progress"):
            plane.services.pause(SCOPE, service.arn)
        assert (await settled(plane, service.arn)).status == "RUNNING"

        # A configuration-only change runs the deployed build with the new settings: no build.
        code = SPEC.source.code
        assert code is not None
        new_source = replace(SPEC.source, code=replace(code, env=(("NAME", "New"),)))
        answered, _ = plane.services.update(SCOPE, service.arn, ServiceUpdate(source=new_source))
        assert answered.spec.source.code is not None and answered.spec.source.code.env == (("NAME", "New"),)
        done = await settled(plane, service.arn)
        assert done.revision is not None and done.revision.env == (("NAME", "New"),)

        # A failed deployment rolls back: the old version kept serving, the service is RUNNING again.
        world.workloads.fail_roll = "Health check failed"
        plane.services.start_deployment(SCOPE, service.arn)
        assert (await settled(plane, service.arn)).status == "RUNNING"
        world.workloads.fail_roll = None

        _, _ = plane.services.pause(SCOPE, service.arn)
        assert (await settled(plane, service.arn)).status == "PAUSED"
        for refused in (plane.services.start_deployment, plane.services.pause):
            with pytest.raises(InvalidState, match="paused"):
                refused(SCOPE, service.arn)
        with pytest.raises(InvalidState, match="paused"):
            plane.services.update(SCOPE, service.arn, ServiceUpdate(source=new_source))
        plane.services.resume(SCOPE, service.arn)
        assert (await settled(plane, service.arn)).status == "RUNNING"
        with pytest.raises(InvalidState, match="needs it to be PAUSED"):
            plane.services.resume(SCOPE, service.arn)
        assert operations(plane, service.arn) == [
            ("RESUME_SERVICE", "SUCCEEDED"),
            ("PAUSE_SERVICE", "SUCCEEDED"),
            ("START_DEPLOYMENT", "ROLLBACK_SUCCEEDED"),
            ("UPDATE_SERVICE", "SUCCEEDED"),
            ("START_DEPLOYMENT", "SUCCEEDED"),
            ("CREATE_SERVICE", "SUCCEEDED"),
        ]

    run(world, scenario)
    assert world.workloads.calls == [
        "build web",
        "start web aaaa",
        "build web",
        "roll web aaaa",
        "roll web aaaa",
        "build web",
        "roll web aaaa",
        "stop web",
        "start web aaaa",
        "close",
    ]
    assert "DeploymentFailed" in world.events.statuses()
    assert "UpdateServiceCompletedSuccessfully" in world.events.statuses()
    assert "RUNNING->OPERATION_IN_PROGRESS" in world.events.statuses()


def test_update_refuses_a_change_of_source_type(world: World) -> None:
    async def scenario(plane: ControlPlane) -> None:
        service, _ = plane.services.create(SCOPE, name="web", spec=SPEC, tags=[])
        await settled(plane, service.arn)
        image = SourceSpec(code=None, image=ImageSource(identifier="nginx:latest", repository_type="ECR_PUBLIC"))
        with pytest.raises(InvalidInput, match="source type"):
            plane.services.update(SCOPE, service.arn, ServiceUpdate(source=image))
        assert operations(plane, service.arn) == [("CREATE_SERVICE", "SUCCEEDED")]

    run(world, scenario)
