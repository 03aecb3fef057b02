"""The current schema. Resources are documents (a JSON body) with the columns lookups need."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

resources = sa.Table(
    "resources",
    metadata,
    # seq orders listings and anchors pagination: it only grows.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("key", sa.String(1100), nullable=False),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("status", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.UniqueConstraint("kind", "key", name="uq_resources_kind_key"),
    sa.Index("ix_resources_lookup", "kind", "account", "region", "name"),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("kind", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(1100), primary_key=True),
    sa.Column("tag_key", sa.String(128), primary_key=True),
    sa.Column("tag_value", sa.String(256), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)

# One row per bucket of one series: CloudWatch's statistic set (sample count, sum, min, max) for that time.
metric_points = sa.Table(
    "metric_points",
    metadata,
    sa.Column("account", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("namespace", sa.String(255), primary_key=True),
    sa.Column("metric", sa.String(255), primary_key=True),
    sa.Column("dimensions", sa.String(2048), primary_key=True),  # observe.metrics.dimensions_key
    sa.Column("resolution", sa.Integer, primary_key=True),  # seconds per bucket: 10 or 60
    sa.Column("bucket", sa.BigInteger, primary_key=True),  # bucket start, seconds since the epoch
    sa.Column("sample_count", sa.Float, nullable=False),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("minimum", sa.Float, nullable=False),
    sa.Column("maximum", sa.Float, nullable=False),
    sa.Index("ix_metric_points_age", "resolution", "bucket"),
)
