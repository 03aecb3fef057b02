"""The counter arithmetic of the metrics collector: HAProxy's counters are cumulative and restart with HAProxy."""

from __future__ import annotations

from runyard.workloads.metrics_collector import _Counters


def test_an_interval_counts_the_increase() -> None:
    assert _Counters(15, 10, 4, 1).since(_Counters(10, 7, 3, 0)) == _Counters(5, 3, 1, 1)


def test_the_first_interval_counts_from_zero() -> None:
    # The collector starts right after HAProxy: everything it counted so far belongs to the first interval.
    assert _Counters(3, 2, 1, 0).since(None) == _Counters(3, 2, 1, 0)


def test_a_counter_that_went_down_restarted_with_haproxy() -> None:
    # 100 before the restart, 4 since it: the 4 are the interval's (nothing is counted twice or negative).
    assert _Counters(4, 4, 0, 0).since(_Counters(100, 90, 10, 0)) == _Counters(4, 4, 0, 0)
