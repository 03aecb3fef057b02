"""Resources, tags and the migrations ledger."""

from __future__ import annotations

import sqlalchemy as sa

from runyard.store import schema


def apply(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.resources, schema.tags])
