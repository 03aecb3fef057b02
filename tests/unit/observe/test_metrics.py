"""CloudWatch's query semantics over stored AWS/AppRunner buckets (the SQLite store underneath, a fake clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runyard.clock import FakeClock
from runyard.control.context import Scope
from runyard.observe import metrics as m
from runyard.store.database import Database
from runyard.store.metrics import SqlMetricStore

T0 = 1_800_000_000  # a whole minute (and hour)
SCOPE = Scope("000000000000", "us-east-1")
DIMS = m.service_dimensions("web", "0123456789abcdef0123456789abcdef")
REQUESTS = m.MetricId(m.NAMESPACE, m.REQUESTS, DIMS)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + 600)


@pytest.fixture
def store(tmp_path: Path) -> SqlMetricStore:
    database = Database(f"sqlite:///{tmp_path}/runyard.db", clock=FakeClock())
    database.migrate()
    return SqlMetricStore(database)


@pytest.fixture
def metrics(store: SqlMetricStore, clock: FakeClock) -> m.Metrics:
    return m.Metrics(store, clock, m.Retention(high=3600, standard=86400))


def observe(
    store: SqlMetricStore, metric: str, values: list[float], *, start: float = T0, dims: m.Dimensions = DIMS
) -> None:
    """One sample per 10 s interval from `start`, at both resolutions, as the collector writes them."""
    store.add(
        [
            point
            for i, value in enumerate(values)
            for point in m.points_for(SCOPE, metric, dims, start + 10 * i, m.Aggregate.of(value))
        ]
    )


def test_aggregate_statistics_and_merge() -> None:
    merged = m.Aggregate.of(3).merge(m.Aggregate.of(5)).merge(m.Aggregate.weighted(10, 2))
    assert [merged.statistic(name) for name in m.STATISTICS] == [4, 7, 28, 3, 10]
    with pytest.raises(m.InvalidParameterValue):
        merged.statistic("Median")


@pytest.mark.parametrize("period", [10, 20, 30, 60, 300, 3600])
def test_periods_that_are_multiples_of_ten_are_accepted(period: int) -> None:
    m.check_period(period)


@pytest.mark.parametrize("period", [1, 5, 15, 59, 61])
def test_other_periods_are_invalid(period: int) -> None:
    with pytest.raises(m.InvalidParameterValue, match="Period"):
        m.check_period(period)


def test_percentiles_are_refused_rather_than_estimated() -> None:
    for name in ("p99", "p50", "tm90", "p99.9"):
        with pytest.raises(m.InvalidParameterCombination, match=name):
            m.check_statistic(name)
    with pytest.raises(m.InvalidParameterValue):
        m.check_statistic("Median")


def test_periods_group_the_buckets(store: SqlMetricStore, metrics: m.Metrics) -> None:
    observe(store, m.REQUESTS, [1, 2, 3, 4, 5, 6, 7, 8])  # T0 .. T0+70
    minute = metrics.datapoints(SCOPE, REQUESTS, T0, T0 + 600, 60)
    assert [(p.timestamp, p.aggregate.statistic("Sum"), p.aggregate.statistic("SampleCount")) for p in minute] == [
        (T0, 21, 6),
        (T0 + 60, 15, 2),
    ]
    assert all(p.unit == "Count" for p in minute)
    ten = metrics.datapoints(SCOPE, REQUESTS, T0, T0 + 600, 10)
    assert [p.aggregate.total for p in ten] == [1, 2, 3, 4, 5, 6, 7, 8]
    # StartTime is rounded down (to the minute for minute periods); EndTime is exclusive
    assert [p.timestamp for p in metrics.datapoints(SCOPE, REQUESTS, T0 + 25, T0 + 60, 60)] == [T0]
    assert [p.aggregate.total for p in metrics.datapoints(SCOPE, REQUESTS, T0 + 25, T0 + 40, 10)] == [3, 4]


def test_old_ranges_read_the_minute_buckets(store: SqlMetricStore, metrics: m.Metrics, clock: FakeClock) -> None:
    observe(store, m.REQUESTS, [1, 2, 3])
    clock.advance(7200)  # past the 10 s retention (3600 in this fixture)
    store.prune(m.Retention(high=3600, standard=86400).cutoffs(clock.now()))
    assert metrics.datapoints(SCOPE, REQUESTS, T0, T0 + 600, 10) == []  # 10 s data is gone
    (point,) = metrics.datapoints(SCOPE, REQUESTS, T0, T0 + 600, 60)
    assert (point.aggregate.total, point.aggregate.count) == (6, 3)


def test_unknown_names_units_and_scopes_have_no_data(store: SqlMetricStore, metrics: m.Metrics) -> None:
    observe(store, m.REQUESTS, [1])
    assert metrics.datapoints(SCOPE, m.MetricId("AWS/EC2", m.REQUESTS, DIMS), T0, T0 + 60, 60) == []
    assert metrics.datapoints(SCOPE, m.MetricId(m.NAMESPACE, "Nope", DIMS), T0, T0 + 60, 60) == []
    assert metrics.datapoints(SCOPE, REQUESTS, T0, T0 + 60, 60, unit="Percent") == []
    assert metrics.datapoints(SCOPE, m.MetricId(m.NAMESPACE, m.REQUESTS, DIMS[:1]), T0, T0 + 60, 60) == []
    assert metrics.datapoints(Scope(SCOPE.account, "eu-west-1"), REQUESTS, T0, T0 + 60, 60) == []
    assert len(metrics.datapoints(SCOPE, REQUESTS, T0, T0 + 60, 60, unit="Count")) == 1


def test_get_metric_statistics_limits(metrics: m.Metrics) -> None:
    def ask(**overrides: object) -> list[m.Datapoint]:
        request: dict[str, object] = dict(start=T0, end=T0 + 600, period=60, statistics=["Sum"], extended=[], unit=None)
        request.update(overrides)
        return metrics.statistics(SCOPE, REQUESTS, **request)  # type: ignore[arg-type]

    assert ask() == []
    with pytest.raises(m.InvalidParameterCombination, match="not both"):
        ask(extended=["p99"])
    with pytest.raises(m.InvalidParameterCombination, match="not both"):
        ask(statistics=[])
    with pytest.raises(m.InvalidParameterCombination, match="1440"):
        ask(start=T0 - 86400, period=10)
    with pytest.raises(m.InvalidParameterValue, match="before EndTime"):
        ask(start=T0 + 600, end=T0)


def test_get_metric_data(store: SqlMetricStore, metrics: m.Metrics) -> None:
    observe(store, m.REQUESTS, [1, 2, 3])
    observe(store, m.STATUS_2XX, [1, 1, 1])
    queries = [
        m.DataQuery("requests", REQUESTS, 10, "Sum"),
        m.DataQuery("ok", m.MetricId(m.NAMESPACE, m.STATUS_2XX, DIMS), 60, "SampleCount", label="2xx"),
        m.DataQuery("hidden", REQUESTS, 60, "Maximum", return_data=False),
    ]
    results = metrics.metric_data(SCOPE, queries, start=T0, end=T0 + 600, descending=True)
    assert [(r.id, r.label, r.timestamps, r.values) for r in results] == [
        ("requests", "Requests", [T0 + 20, T0 + 10, T0], [3, 2, 1]),
        ("ok", "2xx", [T0], [3]),
    ]
    ascending = metrics.metric_data(SCOPE, queries[:1], start=T0, end=T0 + 600, descending=False)
    assert ascending[0].timestamps == [T0, T0 + 10, T0 + 20]
    for bad in ("Upper", "1st", "has-dash"):
        with pytest.raises(m.InvalidParameterValue, match="Id"):
            metrics.metric_data(SCOPE, [m.DataQuery(bad, REQUESTS, 60, "Sum")], start=T0, end=T0 + 60, descending=True)
    with pytest.raises(m.InvalidParameterValue, match="unique"):
        metrics.metric_data(SCOPE, [queries[0], queries[0]], start=T0, end=T0 + 60, descending=True)
    with pytest.raises(m.InvalidParameterCombination, match="p90"):
        metrics.metric_data(SCOPE, [m.DataQuery("x", REQUESTS, 60, "p90")], start=T0, end=T0 + 60, descending=True)


def test_list_metrics_filters(store: SqlMetricStore, metrics: m.Metrics, clock: FakeClock) -> None:
    instance = m.instance_dimensions("web", "0123456789abcdef0123456789abcdef", "i-1")
    observe(store, m.REQUESTS, [1])
    observe(store, m.CPU_UTILIZATION, [50], dims=instance)
    observe(store, m.REQUESTS, [1], dims=m.service_dimensions("old", "f" * 32), start=T0 - 20000)

    def names(**filters: object) -> list[tuple[str, str]]:
        request: dict[str, object] = dict(namespace=m.NAMESPACE, metric=None, filters=[], recently_active=False)
        request.update(filters)
        found = metrics.list_metrics(SCOPE, **request)  # type: ignore[arg-type]
        return [(s.metric, dict(s.dimensions)[m.SERVICE_NAME]) for s in found]

    assert names() == [("CPUUtilization", "web"), ("Requests", "web"), ("Requests", "old")]  # by dimensions
    assert names(recently_active=True) == [("CPUUtilization", "web"), ("Requests", "web")]
    assert names(filters=[(m.INSTANCE, None)]) == [("CPUUtilization", "web")]
    assert names(filters=[(m.SERVICE_NAME, "old")]) == [("Requests", "old")]
    assert names(metric=m.REQUESTS, filters=[(m.SERVICE_NAME, "web"), (m.SERVICE_ID, "nope")]) == []
    assert names(namespace="AWS/EC2") == []


def test_the_store_merges_into_buckets_and_prunes_per_resolution(store: SqlMetricStore) -> None:
    same_bucket = [m.Aggregate.of(5), m.Aggregate.of(1), m.Aggregate.weighted(9, 2)]
    store.add([p for a in same_bucket[:2] for p in m.points_for(SCOPE, m.REQUESTS, DIMS, T0 + 1, a)])
    store.add(m.points_for(SCOPE, m.REQUESTS, DIMS, T0 + 2, same_bucket[2]))
    (stored,) = store.read(SCOPE, m.NAMESPACE, m.REQUESTS, DIMS, 10, T0, T0 + 10)
    assert stored == (T0, m.Aggregate(4, 24, 1, 9))
    assert store.read(SCOPE, m.NAMESPACE, m.REQUESTS, DIMS, 60, T0, T0 + 60) == [(T0, m.Aggregate(4, 24, 1, 9))]
    assert store.prune({10: T0 + 10, 60: T0}) == 1
    assert store.read(SCOPE, m.NAMESPACE, m.REQUESTS, DIMS, 10, T0, T0 + 10) == []
    assert len(store.read(SCOPE, m.NAMESPACE, m.REQUESTS, DIMS, 60, T0, T0 + 60)) == 1
