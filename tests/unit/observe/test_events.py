"""Events in EventBridge's envelope, the events stream, event rules and the delivery worker, over a real SQLite
store and a real HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runyard.clock import FakeClock
from runyard.control.model.service import ImageSource, Service, ServiceSpec, SourceSpec
from runyard.ids import SequentialIds, apprunner_arn
from runyard.observe.events import (
    DELIVERED,
    FAILED,
    OPERATION_STATUS_CHANGE,
    PENDING,
    SERVICE_STATUS_CHANGE,
    Delivery,
    EventBus,
    EventRule,
    RuleError,
    add_rule,
    default_backoff,
    envelope,
    list_rules,
    new_rule,
    recent_deliveries,
    remove_rule,
)
from runyard.observe.logs import EVENTS_STREAM, LogStore, service_log_group
from runyard.observe.patterns import PatternError
from runyard.observe.webhooks import verify
from runyard.store.database import Database
from tests.unit.observe.test_webhooks import Receiver

ACCOUNT = "111122223333"
REGION = "us-east-2"
SERVICE_ID = "8fe1e10304f84fd2b0df550fe98a71fa"
ARN = f"arn:aws:apprunner:{REGION}:123456789012:service/my-app/{SERVICE_ID}"
SECRET = "0123456789abcdef" * 4

# The spec's first example event, exactly as printed.
SPEC_STATUS_EVENT = """{
  "version": "0",
  "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "Service Status Change",
  "source": "aws.apprunner",
  "account": "111122223333",
  "time": "2021-04-29T11:54:23Z",
  "region": "us-east-2",
  "resources": [
    "arn:aws:apprunner:us-east-2:123456789012:service/my-app/8fe1e10304f84fd2b0df550fe98a71fa"
  ],
  "detail": {
    "PreviousStatus": "OPERATION_IN_PROGRESS",
    "CurrentStatus": "RUNNING",
    "ServiceName": "my-app",
    "ServiceId": "8fe1e10304f84fd2b0df550fe98a71fa",
    "Message": "Service status is set to RUNNING.",
    "Severity": "INFO"
  }
}"""

RUNNING = {
    "PreviousStatus": "OPERATION_IN_PROGRESS",
    "CurrentStatus": "RUNNING",
    "ServiceName": "my-app",
    "ServiceId": SERVICE_ID,
    "Message": "Service status is set to RUNNING.",
    "Severity": "INFO",
}


def deployment(status: str, message: str, severity: str = "INFO") -> dict[str, str]:
    return {
        "Status": status,
        "ServiceName": "my-app",
        "ServiceId": SERVICE_ID,
        "Message": message,
        "Severity": severity,
    }


def test_envelope_is_the_spec_example() -> None:
    at = datetime(2021, 4, 29, 11, 54, 23, 600_000, tzinfo=UTC).timestamp()  # a fraction is not shown
    built = envelope(
        SERVICE_STATUS_CHANGE,
        RUNNING,
        account=ACCOUNT,
        region=REGION,
        resources=[ARN],
        time=at,
        event_id="6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    )
    expected = json.loads(SPEC_STATUS_EVENT)
    assert built == expected
    assert list(built) == list(expected) and list(built["detail"]) == list(expected["detail"])


def test_default_backoff_doubles_up_to_five_minutes_with_a_little_jitter() -> None:
    for attempts, base in [(1, 1), (2, 2), (3, 4), (8, 128), (9, 256), (10, 300), (30, 300)]:
        delay = default_backoff(attempts)
        assert base <= delay <= base * 1.1


# -- the bus ---------------------------------------------------------------------------------------------


def _service() -> Service:
    return Service(
        arn=apprunner_arn(REGION, ACCOUNT, "service", "my-app", SERVICE_ID),
        name="my-app",
        service_id=SERVICE_ID,
        account=ACCOUNT,
        region=REGION,
        status="RUNNING",
        created_at=1_600_000_000.0,
        auto_scaling_configuration_arn=apprunner_arn(REGION, ACCOUNT, "autoscalingconfiguration", "Default"),
        spec=ServiceSpec(source=SourceSpec(code=None, image=ImageSource("public.ecr.aws/x/y:latest", "ECR_PUBLIC"))),
    )


SERVICE = _service()
FAILED_DEPLOYS = '{"detail-type": ["Service Operation Status Change"], "detail": {"Status": [{"suffix": "Failed"}]}}'
EVERYTHING = '{"source": ["aws.apprunner"]}'


@dataclass
class World:
    database: Database
    logs: LogStore
    clock: FakeClock
    ids: SequentialIds

    def bus(self, **options: Any) -> EventBus:
        options.setdefault("backoff", lambda attempts: 0.0)
        return EventBus(store=self.database, logs=self.logs, clock=self.clock, ids=self.ids, account=ACCOUNT, **options)

    def rule(self, name: str, pattern: str, url: str = "http://127.0.0.1:9/x", *, enabled: bool = True) -> None:
        add_rule(
            self.database,
            new_rule(
                account=ACCOUNT,
                name=name,
                pattern=pattern,
                url=url,
                secret=SECRET,
                created_at=self.clock.now(),
                enabled=enabled,
            ),
        )

    def deliveries(self, rule: str | None = None) -> list[Delivery]:
        return list(reversed(recent_deliveries(self.database, ACCOUNT, rule, limit=1000)))

    def events(self) -> list[dict[str, Any]]:
        found, _ = self.logs.read(service_log_group("my-app", SERVICE_ID), EVENTS_STREAM)
        return [json.loads(event.message) for event in found]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = FakeClock(1_700_000_000.0)
    database = Database(f"sqlite:///{tmp_path / 'runyard.db'}", clock=clock)
    database.migrate()
    yield World(database, LogStore(tmp_path / "logs", clock), clock, SequentialIds())
    database.close()


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def running(bus: EventBus, scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await bus.start()
        try:
            await scenario()
        finally:
            await bus.stop()

    asyncio.run(main())


def test_publish_logs_one_envelope_line_and_stores_deliveries_for_matching_enabled_rules(world: World) -> None:
    world.rule("failures", FAILED_DEPLOYS)
    world.rule("all", EVERYTHING)
    world.rule("all-off", EVERYTHING, enabled=False)
    bus = world.bus()
    bus.publish(SERVICE, SERVICE_STATUS_CHANGE, RUNNING)
    bus.publish(SERVICE, OPERATION_STATUS_CHANGE, deployment("DeploymentFailed", "Deployment failed.", "ERROR"))

    status_event, operation_event = world.events()
    assert status_event == envelope(
        SERVICE_STATUS_CHANGE,
        RUNNING,
        account=ACCOUNT,
        region=REGION,
        resources=[SERVICE.arn],
        time=world.clock.now(),
        event_id=status_event["id"],
    )
    assert operation_event["detail"]["Status"] == "DeploymentFailed" and operation_event["id"] != status_event["id"]
    raw, _ = world.logs.read(service_log_group("my-app", SERVICE_ID), EVENTS_STREAM)
    assert len(raw) == 2  # one line per event

    assert [(d.rule, d.event_id) for d in world.deliveries()] == [
        ("all", status_event["id"]),
        ("failures", operation_event["id"]),
        ("all", operation_event["id"]),
    ]
    delivery = world.deliveries("failures")[0]
    assert delivery.status == PENDING and delivery.attempts == 0
    assert json.loads(delivery.event) == operation_event


def test_publish_never_raises_for_an_unusable_rule(world: World, caplog: pytest.LogCaptureFixture) -> None:
    with world.database.write() as uow:  # as a Runyard with other pattern rules might have stored it
        uow.repo(EventRule).add(
            EventRule(account=ACCOUNT, name="odd", pattern='{"a": "x"}', url="http://x", secret="s", created_at=0)
        )
    world.rule("all", EVERYTHING)
    with caplog.at_level(logging.WARNING, logger="runyard.observe.events"):
        world.bus().publish(SERVICE, SERVICE_STATUS_CHANGE, RUNNING)
    assert [d.rule for d in world.deliveries()] == ["all"]
    assert "event rule odd has a pattern that cannot be used" in caplog.text


def test_rules_are_checked_when_added_and_removed_with_their_deliveries(world: World) -> None:
    with pytest.raises(PatternError, match="at detail"):
        world.rule("bad", '{"detail": {"Status": "x"}}')
    with pytest.raises(RuleError, match="rule name"):
        world.rule("no spaces", EVERYTHING)
    with pytest.raises(RuleError, match="http"):
        world.rule("ftp", EVERYTHING, url="ftp://example.com/x")
    world.rule("all", EVERYTHING)
    with pytest.raises(RuleError, match="already exists"):
        world.rule("all", FAILED_DEPLOYS)
    world.bus().publish(SERVICE, SERVICE_STATUS_CHANGE, RUNNING)
    ((rule, counts),) = list_rules(world.database, ACCOUNT)
    assert rule.pattern == '{"source":["aws.apprunner"]}' and counts == {DELIVERED: 0, PENDING: 1, FAILED: 0}
    assert remove_rule(world.database, ACCOUNT, "all") == 1
    assert world.deliveries() == [] and list_rules(world.database, ACCOUNT) == []
    with pytest.raises(RuleError, match="No event rule named all"):
        remove_rule(world.database, ACCOUNT, "all")


def test_the_worker_retries_until_the_receiver_takes_it_and_signs_every_try(world: World) -> None:
    async def scenario() -> None:
        async with Receiver.answering([500, 503]) as receiver:
            world.rule("all", EVERYTHING, receiver.url)
            bus.publish(SERVICE, SERVICE_STATUS_CHANGE, RUNNING)
            tries = await receiver.wait_for(3)
            await until(lambda: world.deliveries()[0].status == DELIVERED)
        (delivery,) = world.deliveries()
        assert (delivery.attempts, delivery.response_status, delivery.last_error) == (3, 200, None)
        assert {t.body for t in tries} == {delivery.event.encode()}
        for got in tries:
            assert verify(SECRET, got.body, got.headers["x-runyard-signature"])
            assert got.headers["x-runyard-event-id"] == delivery.event_id
            assert got.headers["x-runyard-rule"] == "all"

    bus = world.bus()
    running(bus, scenario)


def test_a_delivery_fails_for_good_after_the_last_attempt(world: World) -> None:
    async def scenario() -> None:
        async with Receiver.answering([500] * 10) as receiver:
            world.rule("all", EVERYTHING, receiver.url)
            bus.publish(SERVICE, SERVICE_STATUS_CHANGE, RUNNING)
            await until(lambda: world.deliveries()[0].status == FAILED)
            await asyncio.sleep(0.1)
            assert len(receiver.received) == 3
        (delivery,) = world.deliveries()
        assert (delivery.attempts, delivery.response_status) == (3, 500)
        assert delivery.last_error == "HTTP 500 Internal Server Error"
        assert SECRET not in delivery.last_error

    bus = world.bus(max_attempts=3)
    running(bus, scenario)


def test_one_rule_receives_its_events_in_order_even_across_retries(world: World) -> None:
    async def scenario() -> None:
        async with Receiver.answering([500, 200, 500]) as ordered, Receiver.answering() as other:
            world.rule("ordered", EVERYTHING, ordered.url)
            world.rule("other", EVERYTHING, other.url)
            for n in range(5):
                bus.publish(SERVICE, SERVICE_STATUS_CHANGE, {**RUNNING, "Message": f"event {n}"})
            got = await ordered.wait_for(7)
            await other.wait_for(5)
        messages = [json.loads(r.body)["detail"]["Message"] for r in got]
        assert messages == ["event 0", "event 0", "event 1", "event 1", "event 2", "event 3", "event 4"]
        assert [json.loads(r.body)["detail"]["Message"] for r in other.received] == [f"event {n}" for n in range(5)]

    bus = world.bus()
    running(bus, scenario)


def test_due_times_follow_the_injected_clock(world: World) -> None:
    async def scenario() -> None:
        async with Receiver.answering([500]) as receiver:
            world.rule("all", EVERYTHING, receiver.url)
            bus.publish(SERVICE, SERVICE_STATUS_CHANGE, RUNNING)
            await receiver.wait_for(1)
            await until(lambda: world.deliveries()[0].attempts == 1)
            (waiting,) = world.deliveries()
            assert waiting.status == PENDING and waiting.next_attempt_at == world.clock.now() + 60
            await asyncio.sleep(0.2)
            assert len(receiver.received) == 1  # not due yet: the clock has not moved
            world.clock.advance(61)
            bus.wake()
            await receiver.wait_for(2)
            await until(lambda: world.deliveries()[0].status == DELIVERED)

    bus = world.bus(backoff=lambda attempts: 60.0)
    running(bus, scenario)


def test_pending_deliveries_survive_a_restart(world: World) -> None:
    async def before() -> None:
        # Refused once, then Runyard stops before the retry is due.
        async with Receiver.answering([500]) as receiver:
            world.rule("all", EVERYTHING, receiver.url)
            first.publish(SERVICE, SERVICE_STATUS_CHANGE, RUNNING)
            await until(lambda: world.deliveries()[0].attempts == 1)
            first.publish(SERVICE, OPERATION_STATUS_CHANGE, deployment("DeploymentStarted", "Deployment started."))

    first = world.bus(backoff=lambda attempts: 60.0)
    running(first, before)
    assert [(d.status, d.attempts) for d in world.deliveries()] == [(PENDING, 1), (PENDING, 0)]

    async def after() -> None:
        # The receiver is back on another port: point the rule at it, as `events remove` + `add` would.
        async with Receiver.answering() as receiver:
            with world.database.write() as uow:
                rules = uow.repo(EventRule)
                rule = rules.get(f"{ACCOUNT}/all")
                assert rule is not None
                rules.save(replace(rule, url=receiver.url))
            second.wake()
            got = await receiver.wait_for(2)
            await until(lambda: all(d.status == DELIVERED for d in world.deliveries()))
        assert [json.loads(r.body)["detail-type"] for r in got] == [SERVICE_STATUS_CHANGE, OPERATION_STATUS_CHANGE]

    world.clock.advance(61)
    second = world.bus()  # a new bus over the same store, as after a restart
    running(second, after)


def test_publish_from_another_thread_wakes_the_worker(world: World) -> None:
    async def scenario() -> None:
        async with Receiver.answering() as receiver:
            world.rule("all", EVERYTHING, receiver.url)
            await asyncio.sleep(0.05)  # the worker is asleep now, for `poll` seconds
            thread = threading.Thread(target=bus.publish, args=(SERVICE, SERVICE_STATUS_CHANGE, RUNNING))
            thread.start()
            await asyncio.to_thread(thread.join)
            await receiver.wait_for(1, timeout=2.0)

    bus = world.bus(poll=30.0)
    running(bus, scenario)


def test_finished_deliveries_are_pruned_per_rule(world: World) -> None:
    async def scenario() -> None:
        async with Receiver.answering() as receiver:
            world.rule("all", EVERYTHING, receiver.url)
            for n in range(6):
                bus.publish(SERVICE, SERVICE_STATUS_CHANGE, {**RUNNING, "Message": f"event {n}"})
            await receiver.wait_for(6)
            await until(lambda: [d.status for d in world.deliveries()] == [DELIVERED] * 4)
        kept = [json.loads(d.event)["detail"]["Message"] for d in world.deliveries()]
        assert kept == ["event 2", "event 3", "event 4", "event 5"]

    bus = world.bus(keep_finished=4)
    running(bus, scenario)


def test_a_sealed_signing_secret_is_not_stored_in_plaintext_and_still_signs(world: World, tmp_path: Path) -> None:
    from runyard.secrets import SecretBox

    box = SecretBox.load_or_create(tmp_path / "keys")

    async def scenario() -> None:
        async with Receiver.answering() as receiver:
            rule = new_rule(
                account=ACCOUNT, name="sealed", pattern=EVERYTHING, url=receiver.url, secret=SECRET, created_at=0
            )
            add_rule(world.database, rule, secrets=box)
            bus.publish(SERVICE, SERVICE_STATUS_CHANGE, RUNNING)
            (got,) = await receiver.wait_for(1)
        assert verify(SECRET, got.body, got.headers["x-runyard-signature"])

    bus = world.bus(secrets=box)
    running(bus, scenario)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("runyard.db*"))
    assert SECRET.encode() not in stored
    (rule,) = [r for r, _ in list_rules(world.database, ACCOUNT)]
    assert rule.sealed and rule.secret != SECRET
