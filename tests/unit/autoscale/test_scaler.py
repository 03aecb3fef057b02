from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field, replace

import pytest

from runyard.autoscale import Decision, ScalingPolicy
from runyard.autoscale.scaler import Scaler, Target


@dataclass
class FakeFleet:
    """One service whose instances change the moment a decision is applied (or after `delay`)."""

    policy: ScalingPolicy
    provisioned: int = 1
    active: int = 1
    load: float | None = 0.0
    delay: float = 0.0
    applied: list[Decision] = field(default_factory=list)
    present: bool = True

    async def targets(self) -> list[Target]:
        return [Target("svc", self.policy, self.provisioned, self.active)] if self.present else []

    async def concurrency(self, target: Target) -> float | None:
        return self.load

    async def apply(self, target: Target, decision: Decision) -> None:
        self.applied.append(decision)
        await asyncio.sleep(self.delay)
        self.provisioned, self.active = decision.desired, decision.active


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def policy(**overrides: float) -> ScalingPolicy:
    values: dict[str, float] = {"max_concurrency": 10, "min_size": 1, "max_size": 5, "stable_window": 10.0}
    values.update(overrides)
    return ScalingPolicy(**values)  # type: ignore[arg-type]


async def run_ticks(scaler: Scaler, clock: Clock, seconds: int) -> None:
    for _ in range(seconds):
        await scaler.tick()
        await asyncio.sleep(0)  # let applied changes run
        await asyncio.sleep(0)
        clock.t += 1.0


def test_a_burst_scales_out_then_back_in_after_the_stable_window() -> None:
    fleet, clock = FakeFleet(policy()), Clock()
    scaler = Scaler(fleet, now=clock)

    async def scenario() -> None:
        fleet.load = 30.0  # 30 concurrent at 7 per instance: 5 wanted
        await run_ticks(scaler, clock, 3)
        assert (fleet.provisioned, fleet.active) == (5, 5)
        assert fleet.applied[0].panicking
        fleet.load = 0.0
        await run_ticks(scaler, clock, 25)
        assert (fleet.provisioned, fleet.active) == (1, 1)
        steps = [d.desired for d in fleet.applied]
        assert steps[0] == 5 and steps == sorted(steps, reverse=True)  # out once, then in, never flapping
        assert all(later >= earlier // 2 for earlier, later in itertools.pairwise(steps))  # rate limit

    asyncio.run(scenario())


def test_min_size_stays_provisioned_and_only_the_needed_ones_serve() -> None:
    fleet, clock = FakeFleet(policy(min_size=3, panic_threshold=100.0), provisioned=3, active=3), Clock()
    scaler = Scaler(fleet, now=clock)

    async def scenario() -> None:
        fleet.load = 5.0  # one instance's worth
        await run_ticks(scaler, clock, 12)
        assert (fleet.provisioned, fleet.active) == (3, 1)

    asyncio.run(scenario())


def test_nothing_is_applied_while_the_fleet_matches() -> None:
    fleet, clock = FakeFleet(policy()), Clock()
    scaler = Scaler(fleet, now=clock)
    asyncio.run(run_ticks(scaler, clock, 5))
    assert fleet.applied == []


def test_an_unreadable_sample_does_not_scale() -> None:
    fleet, clock = FakeFleet(policy(), load=None), Clock()
    scaler = Scaler(fleet, now=clock)
    asyncio.run(run_ticks(scaler, clock, 5))
    assert fleet.applied == []


def test_one_change_at_a_time_per_service() -> None:
    fleet, clock = FakeFleet(policy(), load=30.0, delay=10.0), Clock()
    scaler = Scaler(fleet, now=clock)

    async def scenario() -> None:
        await run_ticks(scaler, clock, 4)
        assert len(fleet.applied) == 1  # the first change is still starting instances
        await scaler.stop()

    asyncio.run(scenario())


def test_a_new_policy_applies_at_once() -> None:
    fleet, clock = FakeFleet(policy(panic_threshold=100.0), load=14.0), Clock()
    scaler = Scaler(fleet, now=clock)

    async def scenario() -> None:
        await run_ticks(scaler, clock, 3)
        assert fleet.provisioned == 2  # 14 / 7
        fleet.policy = replace(fleet.policy, max_size=1)
        await run_ticks(scaler, clock, 2)
        assert fleet.provisioned == 1
        fleet.policy = replace(fleet.policy, max_size=5, max_concurrency=2)  # 1.4 per instance: 10 wanted, max 5
        await run_ticks(scaler, clock, 2)
        assert fleet.provisioned == 5

    asyncio.run(scenario())


def test_a_service_that_leaves_loses_its_history() -> None:
    fleet, clock = FakeFleet(policy(panic_threshold=100.0), load=14.0), Clock()
    scaler = Scaler(fleet, now=clock)

    async def scenario() -> None:
        await run_ticks(scaler, clock, 3)
        assert fleet.provisioned == 2
        fleet.present, fleet.load = False, 0.0
        await run_ticks(scaler, clock, 1)
        fleet.present = True
        fleet.provisioned = fleet.active = 1
        await run_ticks(scaler, clock, 1)  # fresh decider: only the new zero sample counts
        assert fleet.provisioned == 1

    asyncio.run(scenario())


def test_the_loop_keeps_going_after_a_failure() -> None:
    class Broken(FakeFleet):
        calls = 0

        async def targets(self) -> list[Target]:
            Broken.calls += 1
            raise RuntimeError("store unavailable")

    scaler = Scaler(Broken(policy()), now=Clock(), interval=0.01)

    async def scenario() -> None:
        scaler.start()
        await asyncio.sleep(0.1)
        await scaler.stop()

    asyncio.run(scenario())
    assert Broken.calls > 2


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Scaler(FakeFleet(policy()), now=Clock(), interval=0)
