"""App Runner's metrics (namespace AWS/AppRunner) as time series, and CloudWatch's query semantics over them.

    collector ──Points──▶ MetricStore (10 s and 1 min buckets: sample count, sum, min, max)
                              │
    GetMetricStatistics / GetMetricData / ListMetrics ◀── Metrics (periods, statistics, paging) ◀┘

A bucket keeps CloudWatch's "statistic set" (SampleCount, Sum, Minimum, Maximum), so any period that is a
multiple of the bucket width gives exact SampleCount, Average, Sum, Minimum and Maximum. Percentiles need the
distribution, which is not kept: asking for one is a clear error, never an estimate.

Metrics are scoped like CloudWatch's: by account and region (the region of the service they describe).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from runyard.clock import Clock
from runyard.control.context import Scope
from runyard.errors import RunyardError

NAMESPACE = "AWS/AppRunner"

# Service level (dimensions ServiceName, ServiceID)
REQUESTS = "Requests"
STATUS_2XX = "2xxStatusResponses"
STATUS_4XX = "4xxStatusResponses"
STATUS_5XX = "5xxStatusResponses"
REQUEST_LATENCY = "RequestLatency"
ACTIVE_INSTANCES = "ActiveInstances"
# Instance level (dimensions ServiceName, ServiceID, Instance)
CPU_UTILIZATION = "CPUUtilization"
MEMORY_UTILIZATION = "MemoryUtilization"

UNITS: Mapping[str, str] = {
    REQUESTS: "Count",
    STATUS_2XX: "Count",
    STATUS_4XX: "Count",
    STATUS_5XX: "Count",
    REQUEST_LATENCY: "Milliseconds",
    ACTIVE_INSTANCES: "Count",
    CPU_UTILIZATION: "Percent",
    MEMORY_UTILIZATION: "Percent",
}
SERVICE_METRICS = (REQUESTS, STATUS_2XX, STATUS_4XX, STATUS_5XX, REQUEST_LATENCY, ACTIVE_INSTANCES)
INSTANCE_METRICS = (CPU_UTILIZATION, MEMORY_UTILIZATION)

SERVICE_NAME = "ServiceName"
SERVICE_ID = "ServiceID"
INSTANCE = "Instance"

HIGH_RESOLUTION = 10  # seconds per bucket
STANDARD_RESOLUTION = 60
RESOLUTIONS = (HIGH_RESOLUTION, STANDARD_RESOLUTION)
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
MAX_DATAPOINTS = 1440  # per GetMetricStatistics call, as CloudWatch
RECENTLY_ACTIVE = 3 * 3600.0  # ListMetrics RecentlyActive=PT3H
_PERCENTILE = re.compile(r"(p|tm|tc|ts|wm|pr|tp|iqm)\d*(\.\d+)?(\(.*\))?|iqm", re.IGNORECASE)
_QUERY_ID = re.compile(r"[a-z][a-zA-Z0-9_]*")

Dimensions = tuple[tuple[str, str], ...]  # (name, value) pairs sorted by name: one canonical form


class InvalidParameterValue(RunyardError):
    """A parameter has a value CloudWatch would refuse (InvalidParameterValue)."""


class InvalidParameterCombination(RunyardError):
    """Parameters that cannot go together, or a statistic Runyard cannot compute honestly."""


class InvalidNextToken(RunyardError):
    """The NextToken is not one this query handed out."""


def dimensions(pairs: Iterable[tuple[str, str]]) -> Dimensions:
    return tuple(sorted(pairs))


def service_dimensions(service_name: str, service_id: str) -> Dimensions:
    return dimensions([(SERVICE_NAME, service_name), (SERVICE_ID, service_id)])


def instance_dimensions(service_name: str, service_id: str, instance_id: str) -> Dimensions:
    return dimensions([(SERVICE_NAME, service_name), (SERVICE_ID, service_id), (INSTANCE, instance_id)])


def dimensions_key(dims: Dimensions) -> str:
    """The stored form of a dimension set: compact JSON of the sorted pairs."""
    return json.dumps([list(pair) for pair in dimensions(dims)], separators=(",", ":"))


def parse_dimensions_key(key: str) -> Dimensions:
    return dimensions((str(name), str(value)) for name, value in json.loads(key))


def bucket_start(timestamp: float, resolution: int) -> int:
    return int(math.floor(timestamp / resolution) * resolution)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A statistic set: what CloudWatch keeps per period, and all the five statistics need."""

    count: float
    total: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, value: float) -> Aggregate:
        return cls(1.0, value, value, value)

    @classmethod
    def weighted(cls, value: float, count: float) -> Aggregate:
        """`count` samples that all had `value` (e.g. an average latency over that many requests)."""
        return cls(count, value * count, value, value)

    def merge(self, other: Aggregate) -> Aggregate:
        return Aggregate(
            self.count + other.count,
            self.total + other.total,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
        )

    def statistic(self, name: str) -> float:
        if name == "SampleCount":
            return self.count
        if name == "Sum":
            return self.total
        if name == "Minimum":
            return self.minimum
        if name == "Maximum":
            return self.maximum
        if name == "Average":
            return self.total / self.count if self.count else 0.0
        raise InvalidParameterValue(f"The statistic {name} is not one of {', '.join(STATISTICS)}.")


def merge_all(aggregates: Iterable[Aggregate]) -> Aggregate | None:
    result: Aggregate | None = None
    for aggregate in aggregates:
        result = aggregate if result is None else result.merge(aggregate)
    return result


@dataclass(frozen=True, slots=True)
class Point:
    """One bucket's worth of samples of one series; the store merges it into what it holds."""

    account: str
    region: str
    metric: str
    dimensions: Dimensions
    resolution: int
    bucket: int  # start of the bucket, seconds since the epoch
    aggregate: Aggregate
    namespace: str = NAMESPACE


def points_for(scope: Scope, metric: str, dims: Dimensions, timestamp: float, aggregate: Aggregate) -> list[Point]:
    """The points of one observation at `timestamp`: one per resolution."""
    return [
        Point(scope.account, scope.region, metric, dims, resolution, bucket_start(timestamp, resolution), aggregate)
        for resolution in RESOLUTIONS
    ]


@dataclass(frozen=True, slots=True)
class Series:
    namespace: str
    metric: str
    dimensions: Dimensions


class MetricStore(Protocol):
    def add(self, points: Sequence[Point]) -> None:
        """Merge the points into the stored buckets, all in one transaction."""
        ...

    def read(
        self, scope: Scope, namespace: str, metric: str, dims: Dimensions, resolution: int, start: float, end: float
    ) -> list[tuple[int, Aggregate]]:
        """The buckets of one series with start <= bucket < end, oldest first."""
        ...

    def series(self, scope: Scope, *, since: float | None = None) -> list[Series]:
        """Every series of the scope (with data at or after `since`), in a stable order."""
        ...

    def prune(self, cutoffs: Mapping[int, float]) -> int:
        """Drop buckets older than the cutoff of their resolution; return how many."""
        ...


@dataclass(frozen=True, slots=True)
class Retention:
    """Seconds each resolution is kept."""

    high: float = 3 * 3600.0
    standard: float = 15 * 86400.0

    def cutoffs(self, now: float) -> dict[int, float]:
        return {HIGH_RESOLUTION: now - self.high, STANDARD_RESOLUTION: now - self.standard}


# -- queries ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricId:
    namespace: str
    metric: str
    dimensions: Dimensions = ()


@dataclass(frozen=True, slots=True)
class Datapoint:
    timestamp: int
    aggregate: Aggregate
    unit: str


@dataclass(frozen=True, slots=True)
class DataQuery:
    """One MetricStat query of GetMetricData."""

    id: str
    metric: MetricId
    period: int
    stat: str
    unit: str | None = None
    label: str | None = None
    return_data: bool = True


@dataclass(frozen=True, slots=True)
class DataResult:
    id: str
    label: str
    timestamps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    complete: bool = True


def check_period(period: int) -> None:
    if period < HIGH_RESOLUTION or period % HIGH_RESOLUTION:
        raise InvalidParameterValue(
            f"The parameter Period must be a multiple of {HIGH_RESOLUTION} (for 10-second data) or of "
            f"{STANDARD_RESOLUTION}, got {period}."
        )


def check_statistic(name: str) -> None:
    if name in STATISTICS:
        return
    if _PERCENTILE.fullmatch(name):
        raise InvalidParameterCombination(
            f"Runyard keeps statistic sets (SampleCount, Sum, Minimum, Maximum) per period, not distributions, so it "
            f"cannot compute {name}: use one of {', '.join(STATISTICS)}."
        )
    raise InvalidParameterValue(f"The statistic {name!r} is not valid: use one of {', '.join(STATISTICS)}.")


class Metrics:
    """CloudWatch's GetMetricStatistics, GetMetricData and ListMetrics over a MetricStore."""

    def __init__(self, store: MetricStore, clock: Clock, retention: Retention) -> None:
        self._store = store
        self._clock = clock
        self._retention = retention

    def resolution_for(self, period: int, start: float) -> int:
        """10 s buckets when the period needs them or the range is still inside their retention."""
        if period % STANDARD_RESOLUTION or start >= self._clock.now() - self._retention.high:
            return HIGH_RESOLUTION
        return STANDARD_RESOLUTION

    def datapoints(
        self, scope: Scope, metric: MetricId, start: float, end: float, period: int, unit: str | None = None
    ) -> list[Datapoint]:
        """One datapoint per period that has data, oldest first."""
        check_period(period)
        if end <= start:
            raise InvalidParameterValue("The parameter StartTime must be before EndTime.")
        known_unit = UNITS.get(metric.metric) if metric.namespace == NAMESPACE else None
        if known_unit is None or (unit is not None and unit != known_unit):
            return []  # an unknown metric, namespace or unit has no data, as in CloudWatch
        resolution = self.resolution_for(period, start)
        # Minute periods start on whole minutes whatever the bucket width, as CloudWatch rounds StartTime.
        origin = bucket_start(start, STANDARD_RESOLUTION if period % STANDARD_RESOLUTION == 0 else HIGH_RESOLUTION)
        buckets = self._store.read(scope, metric.namespace, metric.metric, metric.dimensions, resolution, origin, end)
        periods: dict[int, Aggregate] = {}
        for bucket, aggregate in buckets:
            slot = origin + (bucket - origin) // period * period
            periods[slot] = periods[slot].merge(aggregate) if slot in periods else aggregate
        return [Datapoint(slot, periods[slot], known_unit) for slot in sorted(periods)]

    def statistics(
        self,
        scope: Scope,
        metric: MetricId,
        *,
        start: float,
        end: float,
        period: int,
        statistics: Sequence[str],
        extended: Sequence[str],
        unit: str | None,
    ) -> list[Datapoint]:
        """GetMetricStatistics: the datapoints of one metric; the caller picks the statistics from each."""
        if bool(statistics) == bool(extended):
            raise InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics, but not both.")
        for name in [*statistics, *extended]:
            check_statistic(name)
        check_period(period)
        wanted = math.ceil((end - bucket_start(start, HIGH_RESOLUTION)) / period)
        if wanted > MAX_DATAPOINTS:
            raise InvalidParameterCombination(
                f"You have requested up to {wanted} datapoints, which exceeds the limit of {MAX_DATAPOINTS}. "
                "You may reduce the datapoints requested by increasing Period, or decreasing the time range."
            )
        return self.datapoints(scope, metric, start, end, period, unit)

    def metric_data(
        self, scope: Scope, queries: Sequence[DataQuery], *, start: float, end: float, descending: bool
    ) -> list[DataResult]:
        """GetMetricData: every query's values (ReturnData false ones left out), in the asked time order."""
        if not queries:
            raise InvalidParameterValue("The parameter MetricDataQueries must contain at least one query.")
        ids = [query.id for query in queries]
        for query_id in ids:
            if not _QUERY_ID.fullmatch(query_id):
                raise InvalidParameterValue(
                    f"The value {query_id} for parameter MetricDataQueries.member.Id is not valid: it must start "
                    "with a lower-case letter and contain only letters, digits and underscores."
                )
        if len(set(ids)) != len(ids):
            raise InvalidParameterValue("The values of MetricDataQueries.member.Id must be unique.")
        results: list[DataResult] = []
        for query in queries:
            check_statistic(query.stat)
            points = self.datapoints(scope, query.metric, start, end, query.period, query.unit)
            if descending:
                points.reverse()
            if query.return_data:
                results.append(
                    DataResult(
                        query.id,
                        query.label if query.label is not None else query.metric.metric,
                        [point.timestamp for point in points],
                        [point.aggregate.statistic(query.stat) for point in points],
                    )
                )
        return results

    def list_metrics(
        self,
        scope: Scope,
        *,
        namespace: str | None,
        metric: str | None,
        filters: Sequence[tuple[str, str | None]],
        recently_active: bool,
    ) -> list[Series]:
        """ListMetrics: the series that match every filter (a filter without a value matches any value)."""
        since = self._clock.now() - RECENTLY_ACTIVE if recently_active else None
        found: list[Series] = []
        for series in self._store.series(scope, since=since):
            if namespace is not None and series.namespace != namespace:
                continue
            if metric is not None and series.metric != metric:
                continue
            present = dict(series.dimensions)
            if all(name in present and value in (None, present[name]) for name, value in filters):
                found.append(series)
        return found
