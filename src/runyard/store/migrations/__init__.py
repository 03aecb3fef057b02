"""Versioned migrations, applied in order at start-up; each runs once, inside one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from runyard.store.migrations import m0001_initial, m0002_metrics


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sa.Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", m0001_initial.apply),
    Migration(2, "metrics", m0002_metrics.apply),
)
