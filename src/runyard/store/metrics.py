"""The metrics time series in the database: one row per (scope, series, resolution, bucket), merged on write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from runyard.control.context import Scope
from runyard.observe.metrics import (
    STANDARD_RESOLUTION,
    Aggregate,
    Dimensions,
    Point,
    Series,
    dimensions_key,
    parse_dimensions_key,
)
from runyard.store import schema
from runyard.store.database import Database

_KEY = ("account", "region", "namespace", "metric", "dimensions", "resolution", "bucket")


class SqlMetricStore:
    """observe.metrics.MetricStore on the Runyard database (SQLite or PostgreSQL)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._postgres = database.engine.dialect.name == "postgresql"

    def add(self, points: Sequence[Point]) -> None:
        if not points:
            return
        t = schema.metric_points
        rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        for point in points:  # one row per key per statement: merge duplicates here first
            row = {
                "account": point.account,
                "region": point.region,
                "namespace": point.namespace,
                "metric": point.metric,
                "dimensions": dimensions_key(point.dimensions),
                "resolution": point.resolution,
                "bucket": point.bucket,
            }
            key = tuple(row[name] for name in _KEY)
            if key in rows:
                held = rows[key]
                aggregate = Aggregate(held["sample_count"], held["total"], held["minimum"], held["maximum"])
                merged = aggregate.merge(point.aggregate)
            else:
                merged = point.aggregate
            row.update(sample_count=merged.count, total=merged.total, minimum=merged.minimum, maximum=merged.maximum)
            rows[key] = row
        insert = (postgresql.insert if self._postgres else sqlite.insert)(t)
        least, greatest = (sa.func.least, sa.func.greatest) if self._postgres else (sa.func.min, sa.func.max)
        upsert = insert.on_conflict_do_update(
            index_elements=[t.c[name] for name in _KEY],
            set_={
                "sample_count": t.c.sample_count + insert.excluded.sample_count,
                "total": t.c.total + insert.excluded.total,
                "minimum": least(t.c.minimum, insert.excluded.minimum),
                "maximum": greatest(t.c.maximum, insert.excluded.maximum),
            },
        )
        with self._database.connection(write=True) as conn:
            conn.execute(upsert, list(rows.values()))

    def read(
        self, scope: Scope, namespace: str, metric: str, dims: Dimensions, resolution: int, start: float, end: float
    ) -> list[tuple[int, Aggregate]]:
        t = schema.metric_points
        query = (
            sa.select(t.c.bucket, t.c.sample_count, t.c.total, t.c.minimum, t.c.maximum)
            .where(
                t.c.account == scope.account,
                t.c.region == scope.region,
                t.c.namespace == namespace,
                t.c.metric == metric,
                t.c.dimensions == dimensions_key(dims),
                t.c.resolution == resolution,
                t.c.bucket >= start,
                t.c.bucket < end,
            )
            .order_by(t.c.bucket)
        )
        with self._database.connection(write=False) as conn:
            return [
                (int(row.bucket), Aggregate(row.sample_count, row.total, row.minimum, row.maximum))
                for row in conn.execute(query)
            ]

    def series(self, scope: Scope, *, since: float | None = None) -> list[Series]:
        t = schema.metric_points
        query = (
            sa.select(t.c.namespace, t.c.metric, t.c.dimensions)
            .where(t.c.account == scope.account, t.c.region == scope.region)
            .group_by(t.c.namespace, t.c.metric, t.c.dimensions)
            .order_by(t.c.namespace, t.c.metric, t.c.dimensions)
        )
        if since is not None:
            # A bucket that started up to a minute before `since` still holds samples taken after it.
            query = query.having(sa.func.max(t.c.bucket) > since - STANDARD_RESOLUTION)
        with self._database.connection(write=False) as conn:
            return [
                Series(row.namespace, row.metric, parse_dimensions_key(row.dimensions)) for row in conn.execute(query)
            ]

    def prune(self, cutoffs: Mapping[int, float]) -> int:
        t = schema.metric_points
        removed = 0
        with self._database.connection(write=True) as conn:
            for resolution, cutoff in cutoffs.items():
                result = conn.execute(sa.delete(t).where(t.c.resolution == resolution, t.c.bucket < cutoff))
                removed += result.rowcount or 0
        return removed
