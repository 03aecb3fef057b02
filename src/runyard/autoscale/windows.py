"""Time-bucketed averages of observed concurrency.

Samples are grouped into fixed buckets (1 s by default); a bucket's value is the mean of the samples recorded in
it. ``average(now, window)`` is the mean over every bucket in the window ending at ``now``, counting a bucket with
no samples as zero concurrency (silence means no traffic), but never reaching back before the first sample, so a
freshly started service reacts to its first burst at full strength.
"""

from __future__ import annotations

import math

_EPSILON = 1e-9


class ConcurrencyWindow:
    def __init__(self, granularity: float = 1.0, retention: float = 60.0) -> None:
        if granularity <= 0:
            raise ValueError("granularity must be positive")
        self._granularity = granularity
        self._retention = max(retention, granularity)
        self._buckets: dict[int, tuple[float, int]] = {}  # bucket index -> (sum of samples, sample count)
        self._first: int | None = None

    @property
    def granularity(self) -> float:
        return self._granularity

    @property
    def retention(self) -> float:
        return self._retention

    def set_retention(self, retention: float) -> None:
        """Keep at least ``retention`` seconds of history (longer windows read older data as absent)."""
        self._retention = max(retention, self._granularity)

    def _index(self, now: float) -> int:
        return math.floor(now / self._granularity)

    def _span(self, window: float) -> int:
        return max(1, math.ceil(window / self._granularity - _EPSILON))

    def record(self, now: float, value: float) -> None:
        if value < 0 or math.isnan(value):
            raise ValueError("concurrency must be a non-negative number")
        index = self._index(now)
        total, count = self._buckets.get(index, (0.0, 0))
        self._buckets[index] = (total + value, count + 1)
        if self._first is None or index < self._first:
            self._first = index
        self._prune(index)

    def _prune(self, newest: int) -> None:
        oldest_kept = newest - self._span(self._retention) + 1
        for index in [i for i in self._buckets if i < oldest_kept]:
            del self._buckets[index]

    def has_data(self) -> bool:
        return self._first is not None

    def average(self, now: float, window: float) -> float | None:
        """Mean concurrency over the ``window`` seconds ending at ``now``; ``None`` before any sample."""
        if self._first is None:
            return None
        last = self._index(now)
        first = max(last - self._span(window) + 1, self._first)
        if last < first:
            return None
        total = 0.0
        for index in range(first, last + 1):
            bucket = self._buckets.get(index)
            if bucket is not None:
                total += bucket[0] / bucket[1]
        return total / (last - first + 1)
