"""A pure auto scaling decider modelled on Knative's KPA (stable and panic windows).

The caller records the service's total concurrency (in-flight plus queued requests) as it observes it and asks
``decide(now, ready)`` how many instances it wants. No I/O, no clock: time is always passed in.

- Stable mode: ``desired = ceil(stable_avg / (max_concurrency * target_utilization))``.
- Panic mode starts when the panic-window desire reaches ``panic_threshold`` times the ready instances. While
  panicking the panic-window desire is used and the decider never scales down; panic ends once a whole stable
  window has passed since the last time the threshold was crossed.
- Each decision moves at most ``ceil(ready * max_scale_up_rate)`` up and ``floor(ready / max_scale_down_rate)``
  down, and scale-down waits ``scale_down_delay`` seconds (the highest desire in that span wins).
- The result is always clamped to ``min_size..max_size`` (App Runner's provisioned instances never drop below
  MinSize). ``active`` is how many of those the load needs serving (at least one): App Runner keeps the rest of
  the provisioned instances on standby, ready to be activated at once.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from runyard.autoscale.windows import ConcurrencyWindow

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    max_concurrency: int  # target concurrent requests per instance (App Runner MaxConcurrency)
    min_size: int  # provisioned instances, never fewer
    max_size: int
    target_utilization: float = 0.7  # aim below the hard limit (Knative's container-concurrency-target-percentage)
    stable_window: float = 60.0  # seconds
    panic_window_fraction: float = 0.1  # panic window = 6 s by default
    panic_threshold: float = 2.0  # panic when the panic-window desire >= 2x the current ready instances
    scale_down_delay: float = 0.0  # seconds the desire must stay lower before scaling down
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if self.min_size < 1:
            raise ValueError("min_size must be >= 1")
        if self.max_size < self.min_size:
            raise ValueError("max_size must be >= min_size")
        if not 0 < self.target_utilization <= 1:
            raise ValueError("target_utilization must be in (0, 1]")
        if self.stable_window <= 0:
            raise ValueError("stable_window must be positive")
        if not 0 < self.panic_window_fraction <= 1:
            raise ValueError("panic_window_fraction must be in (0, 1]")
        if self.panic_threshold <= 0:
            raise ValueError("panic_threshold must be positive")
        if self.scale_down_delay < 0:
            raise ValueError("scale_down_delay must be >= 0")
        if self.max_scale_up_rate <= 1:
            raise ValueError("max_scale_up_rate must be > 1")
        if self.max_scale_down_rate <= 1:
            raise ValueError("max_scale_down_rate must be > 1")

    @property
    def panic_window(self) -> float:
        return self.stable_window * self.panic_window_fraction

    @property
    def target_per_instance(self) -> float:
        return self.max_concurrency * self.target_utilization

    def clamp(self, count: int) -> int:
        return max(self.min_size, min(self.max_size, count))


@dataclass(frozen=True, slots=True)
class Decision:
    desired: int  # provisioned instances: always within min_size..max_size
    panicking: bool
    reason: str  # short text for the events stream
    active: int = 0  # of the provisioned instances, how many serve: 1..desired (0: not decided from data)


def _ceil(value: float) -> int:
    # 140 / (100 * 0.7) is 2.0000000000000004 in floating point; that must not become 3 instances.
    return max(0, math.ceil(value - _EPSILON))


def _fmt(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


class Decider:
    def __init__(self, policy: ScalingPolicy) -> None:
        self._policy = policy
        self._window = ConcurrencyWindow(retention=policy.stable_window)
        self._panic_trigger: float | None = None  # last time the panic threshold was crossed; None = not panicking
        self._max_panic = 0
        self._history: deque[tuple[float, int]] = deque()  # (time, desire before delay and clamp)

    @property
    def policy(self) -> ScalingPolicy:
        return self._policy

    @property
    def panicking(self) -> bool:
        return self._panic_trigger is not None

    def update(self, policy: ScalingPolicy) -> None:
        """Swap the policy; recorded data and panic state carry over, the next decision uses the new targets."""
        self._policy = policy
        self._window.set_retention(policy.stable_window)

    def record(self, now: float, concurrency: float) -> None:
        """Record the total in-flight plus queued requests observed across the service at ``now``."""
        self._window.record(now, concurrency)

    def decide(self, now: float, ready: int) -> Decision:
        policy = self._policy
        ready = max(0, ready)
        stable_avg = self._window.average(now, policy.stable_window)
        panic_avg = self._window.average(now, policy.panic_window)
        if stable_avg is None or panic_avg is None:
            desired = policy.clamp(max(policy.min_size, ready))
            return Decision(desired, False, f"no data: holding {desired}", active=max(1, min(ready, desired)))

        target = policy.target_per_instance
        base = max(1, ready)  # rates and the panic ratio need a non-zero base, as in Knative
        up_limit = math.ceil(base * policy.max_scale_up_rate - _EPSILON)
        down_limit = math.floor(base / policy.max_scale_down_rate + _EPSILON)

        def limit(count: int) -> int:
            return max(down_limit, min(up_limit, count))

        stable_desired = limit(_ceil(stable_avg / target))
        panic_desired = limit(_ceil(panic_avg / target))

        # The threshold compares the unrounded panic desire with the ready instances (rounding up would make a
        # single extra request panic a one-instance service).
        if panic_avg / target >= policy.panic_threshold * base - _EPSILON:
            if self._panic_trigger is None:
                self._max_panic = ready
            self._panic_trigger = now
        elif self._panic_trigger is not None and now - self._panic_trigger >= policy.stable_window:
            self._panic_trigger = None
            self._max_panic = 0

        if self._panic_trigger is not None:
            raw = max(self._max_panic, panic_desired)
            self._max_panic = raw
            reason = f"panic: {_fmt(panic_avg)} concurrent / {_fmt(target)} per instance"
        else:
            raw = stable_desired
            reason = f"stable: {_fmt(stable_avg)} concurrent / {_fmt(target)} per instance"

        desired = self._delayed(now, raw)
        if desired != raw:
            reason += f" (scale-down delayed, holding {desired})"
        clamped = policy.clamp(desired)
        if clamped != desired:
            reason += f" (clamped to {policy.min_size}..{policy.max_size})"
        active = max(1, min(desired, clamped))
        return Decision(clamped, self._panic_trigger is not None, f"{reason} -> {clamped}", active=active)

    def _delayed(self, now: float, desired: int) -> int:
        """The highest desire seen over the last ``scale_down_delay`` seconds (scale-up is never delayed)."""
        delay = self._policy.scale_down_delay
        if delay <= 0:
            self._history.clear()
            return desired
        self._history.append((now, desired))
        while self._history[0][0] <= now - delay:
            self._history.popleft()
        return max(count for _, count in self._history)
