"""The metrics time series (10 s and 1 min buckets)."""

from __future__ import annotations

import sqlalchemy as sa

from runyard.store import schema


def apply(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.metric_points])
