from __future__ import annotations

from typing import Any

import pytest

from runyard.autoscale import ConcurrencyWindow, Decider, ScalingPolicy


def policy(**overrides: Any) -> ScalingPolicy:
    values: dict[str, Any] = {"max_concurrency": 100, "min_size": 1, "max_size": 25}  # 70 per instance
    values.update(overrides)
    return ScalingPolicy(**values)


def feed(decider: Decider, start: int, end: int, value: float) -> None:
    """One sample per second for t in [start, end)."""
    for t in range(start, end):
        decider.record(float(t), value)


# --- windows -----------------------------------------------------------------------------------------------------


def test_window_is_none_before_any_sample() -> None:
    window = ConcurrencyWindow()
    assert window.average(10.0, 60.0) is None
    assert not window.has_data()


def test_window_averages_samples_within_a_bucket_then_buckets() -> None:
    window = ConcurrencyWindow(granularity=1.0, retention=60.0)
    window.record(0.1, 10.0)
    window.record(0.9, 30.0)  # bucket 0 -> 20
    window.record(1.5, 40.0)  # bucket 1 -> 40
    assert window.average(1.9, 2.0) == pytest.approx(30.0)
    assert window.average(1.9, 1.0) == pytest.approx(40.0)


def test_window_counts_silent_buckets_as_zero_but_not_before_first_sample() -> None:
    window = ConcurrencyWindow()
    window.record(100.0, 60.0)
    # Only one second of history: a 60 s window does not dilute the first sample.
    assert window.average(100.0, 60.0) == pytest.approx(60.0)
    # Three seconds later with no samples: 60, 0, 0, 0.
    assert window.average(103.0, 60.0) == pytest.approx(15.0)
    assert window.average(103.0, 2.0) == pytest.approx(0.0)
    # Asking about a moment before the first sample.
    assert window.average(99.0, 10.0) is None


def test_window_forgets_data_older_than_retention() -> None:
    window = ConcurrencyWindow(retention=5.0)
    window.record(0.0, 100.0)
    window.record(10.0, 0.0)
    # Bucket 0 was pruned, so the 11-second window sees zeros from the first sample onward.
    assert window.average(10.0, 11.0) == pytest.approx(0.0)


def test_window_rejects_negative_samples() -> None:
    with pytest.raises(ValueError):
        ConcurrencyWindow().record(0.0, -1.0)


# --- policy ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_concurrency": 0},
        {"min_size": 0},
        {"min_size": 5, "max_size": 4},
        {"target_utilization": 0.0},
        {"target_utilization": 1.5},
        {"stable_window": 0.0},
        {"panic_window_fraction": 0.0},
        {"scale_down_delay": -1.0},
        {"max_scale_up_rate": 1.0},
        {"max_scale_down_rate": 0.5},
    ],
)
def test_policy_rejects_invalid_values(overrides: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        policy(**overrides)


def test_policy_derived_values() -> None:
    p = policy()
    assert p.panic_window == pytest.approx(6.0)
    assert p.target_per_instance == pytest.approx(70.0)


# --- decider -----------------------------------------------------------------------------------------------------


def test_no_data_holds_current_size_within_bounds() -> None:
    decider = Decider(policy(min_size=2, max_size=4))
    assert decider.decide(0.0, ready=0).desired == 2
    assert decider.decide(0.0, ready=3).desired == 3
    decision = decider.decide(0.0, ready=9)
    assert decision.desired == 4
    assert not decision.panicking
    assert decision.reason.startswith("no data")


def test_steady_load_holds() -> None:
    decider = Decider(policy())
    for t in range(120):
        decider.record(float(t), 140.0)
        decision = decider.decide(float(t), ready=2)
        assert decision.desired == 2  # 140 / 70 is exactly 2, not 3 through float error
        assert not decision.panicking
    assert decision.reason == "stable: 140 concurrent / 70 per instance -> 2"


def test_stable_desire_rounds_up() -> None:
    decider = Decider(policy())
    feed(decider, 0, 60, 12.4)
    decision = decider.decide(59.0, ready=1)
    assert decision.desired == 1
    assert decision.reason == "stable: 12.4 concurrent / 70 per instance -> 1"
    feed(decider, 60, 120, 71.0)
    assert decider.decide(119.0, ready=1).desired == 2


def test_burst_panics_scales_up_quickly_and_never_down_while_panicking() -> None:
    decider = Decider(policy())
    feed(decider, 0, 60, 70.0)
    assert decider.decide(59.0, ready=1).desired == 1

    feed(decider, 60, 63, 700.0)  # a 3 s burst
    decision = decider.decide(62.0, ready=1)
    # Panic window (57..62): (3 * 70 + 3 * 700) / 6 = 385 -> 5.5 instances, >= 2x the single ready instance.
    assert decision.panicking
    assert decision.desired == 6
    assert decision.reason.startswith("panic: 385 concurrent")

    # The burst is over; the stable desire is now 1, but panic holds the high-water mark.
    feed(decider, 63, 122, 70.0)
    for t in (63, 70, 100, 121):
        decision = decider.decide(float(t), ready=6)
        assert decision.panicking, t
        assert decision.desired == 6, t


def test_panic_keeps_growing_while_burst_grows() -> None:
    decider = Decider(policy())
    feed(decider, 0, 10, 700.0)
    first = decider.decide(9.0, ready=1)
    assert first.panicking
    assert first.desired == 10
    feed(decider, 10, 16, 1400.0)
    assert decider.decide(15.0, ready=10).desired == 20


def test_panic_ends_a_stable_window_after_the_last_trigger() -> None:
    decider = Decider(policy())
    feed(decider, 0, 60, 70.0)
    feed(decider, 60, 63, 700.0)
    assert decider.decide(62.0, ready=1).panicking
    feed(decider, 63, 130, 70.0)
    assert decider.decide(121.0, ready=6).panicking
    decision = decider.decide(122.0, ready=6)  # 60 s after the last trigger at t=62
    assert not decision.panicking
    # Stable desire is 1, but a single step may only halve the fleet: floor(6 / 2) = 3.
    assert decision.desired == 3
    assert decider.decide(123.0, ready=3).desired == 1


def test_retrigger_extends_panic() -> None:
    decider = Decider(policy())
    feed(decider, 0, 60, 70.0)
    feed(decider, 60, 63, 700.0)
    assert decider.decide(62.0, ready=1).panicking
    feed(decider, 63, 100, 70.0)
    feed(decider, 100, 106, 2000.0)
    assert decider.decide(105.0, ready=6).panicking  # 2000 / 70 >= 2 * 6: triggers again at t=105
    feed(decider, 106, 170, 70.0)
    assert decider.decide(164.0, ready=29).panicking
    assert not decider.decide(165.0, ready=29).panicking


def test_scale_down_delay_holds_the_highest_recent_desire() -> None:
    fast_down = {"stable_window": 10.0, "max_scale_down_rate": 100.0}
    delayed = Decider(policy(scale_down_delay=30.0, **fast_down))
    immediate = Decider(policy(**fast_down))
    for decider in (delayed, immediate):
        for t in range(100):
            decider.record(float(t), 700.0 if t < 60 else 70.0)
            decider.decide(float(t), ready=10)
    # Both fell to 1 instance of desire by t=69; only the undelayed one acts on it at once.
    assert immediate.decide(70.0, ready=10).desired == 1
    delayed_again = Decider(policy(scale_down_delay=30.0, **fast_down))
    for t in range(86):
        delayed_again.record(float(t), 700.0 if t < 60 else 70.0)
        decision = delayed_again.decide(float(t), ready=10)
    assert decision.desired == 10  # the t=59 desire of 10 is still inside (55, 85]
    assert "scale-down delayed" in decision.reason
    assert delayed.decide(100.0, ready=10).desired == 1  # (70, 100] only saw desire 1


def test_scale_down_delay_does_not_delay_scale_up() -> None:
    decider = Decider(policy(scale_down_delay=300.0, panic_threshold=1000.0))
    feed(decider, 0, 60, 70.0)
    assert decider.decide(59.0, ready=1).desired == 1
    feed(decider, 60, 120, 350.0)
    assert decider.decide(119.0, ready=1).desired == 5


def test_rate_limits() -> None:
    calm = {"panic_threshold": 1000.0}
    up = Decider(policy(max_scale_up_rate=2.0, **calm))
    feed(up, 0, 60, 700.0)  # wants 10
    assert up.decide(59.0, ready=2).desired == 4  # ceil(2 * 2)
    assert up.decide(59.0, ready=4).desired == 8
    assert up.decide(59.0, ready=8).desired == 10

    down = Decider(policy(**calm))
    feed(down, 0, 60, 70.0)  # wants 1
    assert down.decide(59.0, ready=10).desired == 5  # floor(10 / 2)
    assert down.decide(59.0, ready=5).desired == 2
    assert down.decide(59.0, ready=2).desired == 1


def test_clamps_to_min_and_max_size() -> None:
    idle = Decider(policy(min_size=2, max_size=5))
    feed(idle, 0, 60, 0.0)
    decision = idle.decide(59.0, ready=2)
    assert decision.desired == 2
    assert "clamped to 2..5" in decision.reason

    busy = Decider(policy(min_size=2, max_size=5))
    feed(busy, 0, 60, 7000.0)
    decision = busy.decide(59.0, ready=5)
    assert decision.desired == 5
    assert decision.reason.endswith("-> 5")


def test_update_changes_the_target_immediately() -> None:
    decider = Decider(policy(panic_threshold=1000.0))
    feed(decider, 0, 60, 140.0)
    assert decider.decide(59.0, ready=2).desired == 2

    decider.update(policy(max_concurrency=20, panic_threshold=1000.0))  # 14 per instance
    assert decider.policy.max_concurrency == 20
    decision = decider.decide(59.0, ready=2)
    assert decision.desired == 10
    assert decision.reason == "stable: 140 concurrent / 14 per instance -> 10"

    decider.update(policy(max_concurrency=20, max_size=4, panic_threshold=1000.0))
    assert decider.decide(59.0, ready=2).desired == 4
    decider.update(policy(min_size=3, panic_threshold=1000.0))
    assert decider.decide(59.0, ready=2).desired == 3


def test_active_instances_are_what_the_load_needs_within_the_provisioned() -> None:
    # MinSize 3 keeps three provisioned; light load needs one of them active, the others stand by.
    light = Decider(policy(min_size=3, max_size=6, panic_threshold=1000.0))
    feed(light, 0, 60, 50.0)
    decision = light.decide(59.0, ready=3)
    assert (decision.desired, decision.active) == (3, 1)

    idle = Decider(policy(min_size=2, max_size=6))
    feed(idle, 0, 60, 0.0)
    assert idle.decide(59.0, ready=2).active == 1  # never zero: someone answers the next request

    busy = Decider(policy(min_size=1, max_size=4, panic_threshold=1000.0))
    feed(busy, 0, 60, 350.0)  # wants 5, clamped to 4: all of them serve
    decision = busy.decide(59.0, ready=4)
    assert (decision.desired, decision.active) == (4, 4)

    # Without data, the serving instances stay as they are.
    assert Decider(policy(min_size=2, max_size=5)).decide(0.0, ready=3).active == 3
