"""The Store: transactions, migrations, and typed repositories over the resources table.

SQLite runs in WAL mode; every write transaction is BEGIN IMMEDIATE, so writers are serialized
and a check-then-insert (unique names, quotas) can never race. On PostgreSQL a transaction-level
advisory lock gives write transactions the same guarantee.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import cattrs
import sqlalchemy as sa

from runyard.clock import Clock
from runyard.control.ports import R, Repository, Tag, UnitOfWork
from runyard.store import schema
from runyard.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)
_converter = cattrs.Converter()
_WRITE_LOCK_ID = 0x52756E79  # "Runy"


class StoreError(RuntimeError):
    """The database cannot be used (bad URL, newer schema than this Runyard knows)."""


class _Repository(Repository[R]):
    def __init__(self, conn: sa.Connection, cls: type[R]) -> None:
        self._conn = conn
        self._cls = cls
        self._kind = cls.KIND

    def _load(self, row: sa.Row[Any]) -> R:
        return _converter.structure(row.body, self._cls)

    def get(self, key: str) -> R | None:
        t = schema.resources
        row = self._conn.execute(sa.select(t.c.body).where(t.c.kind == self._kind, t.c.key == key)).first()
        return None if row is None else self._load(row)

    def find(self, *, account: str, region: str | None = None, name: str | None = None) -> list[R]:
        t = schema.resources
        query = sa.select(t.c.body).where(t.c.kind == self._kind, t.c.account == account).order_by(t.c.seq)
        if region is not None:
            query = query.where(t.c.region == region)
        if name is not None:
            query = query.where(t.c.name == name)
        return [self._load(row) for row in self._conn.execute(query)]

    def _columns(self, item: R) -> dict[str, Any]:
        return {
            "account": item.account,
            "region": item.region,
            "name": item.name,
            "status": item.status,
            "created_at": item.created_at,
            "body": _converter.unstructure(item),
        }

    def add(self, item: R) -> None:
        self._conn.execute(sa.insert(schema.resources).values(kind=self._kind, key=item.key, **self._columns(item)))

    def save(self, item: R) -> None:
        t = schema.resources
        result = self._conn.execute(
            sa.update(t).where(t.c.kind == self._kind, t.c.key == item.key).values(**self._columns(item))
        )
        if result.rowcount != 1:
            raise StoreError(f"save of a {self._kind} that is not stored: {item.key}")

    def remove(self, key: str) -> None:
        t = schema.resources
        self._conn.execute(sa.delete(t).where(t.c.kind == self._kind, t.c.key == key))
        self._conn.execute(sa.delete(schema.tags).where(schema.tags.c.kind == self._kind, schema.tags.c.key == key))


class _Tags:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def get(self, kind: str, key: str) -> list[Tag]:
        t = schema.tags
        rows = self._conn.execute(
            sa.select(t.c.tag_key, t.c.tag_value).where(t.c.kind == kind, t.c.key == key).order_by(t.c.position)
        )
        return [(row.tag_key, row.tag_value) for row in rows]

    def merge(self, kind: str, key: str, tags: list[Tag]) -> None:
        t = schema.tags
        existing = dict(self.get(kind, key))
        position = len(existing)
        for tag_key, value in tags:
            if tag_key in existing:
                self._conn.execute(
                    sa.update(t).where(t.c.kind == kind, t.c.key == key, t.c.tag_key == tag_key).values(tag_value=value)
                )
            else:
                self._conn.execute(
                    sa.insert(t).values(kind=kind, key=key, tag_key=tag_key, tag_value=value, position=position)
                )
                position += 1
            existing[tag_key] = value

    def remove(self, kind: str, key: str, tag_keys: list[str]) -> None:
        t = schema.tags
        if tag_keys:
            self._conn.execute(sa.delete(t).where(t.c.kind == kind, t.c.key == key, t.c.tag_key.in_(tag_keys)))

    def clear(self, kind: str, key: str) -> None:
        t = schema.tags
        self._conn.execute(sa.delete(t).where(t.c.kind == kind, t.c.key == key))


class _UnitOfWork(UnitOfWork):
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self.tags = _Tags(conn)

    def repo(self, cls: type[R]) -> Repository[R]:
        return _Repository(self._conn, cls)


class Database:
    """The control plane's Store (see control.ports.Store)."""

    def __init__(self, url: str, *, clock: Clock) -> None:
        self._clock = clock
        self._sqlite = url.startswith("sqlite")
        if self._sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Autocommit at the driver: this class issues BEGIN/COMMIT itself (BEGIN IMMEDIATE for writes).
            self._engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 30})
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
        else:
            self._engine = sa.create_engine(url, pool_pre_ping=True)

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sa.Connection]:
        if self._sqlite:
            with self._engine.connect() as conn:
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
        else:
            with self._engine.begin() as conn:
                if write:
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _WRITE_LOCK_ID})
                yield conn

    @contextmanager
    def connection(self, *, write: bool) -> Iterator[sa.Connection]:
        """A connection inside a transaction, for the store's modules beside the repositories (metrics.py)."""
        with self._transaction(write=write) as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[UnitOfWork]:
        with self._transaction(write=False) as conn:
            yield _UnitOfWork(conn)

    @contextmanager
    def write(self) -> Iterator[UnitOfWork]:
        with self._transaction(write=True) as conn:
            yield _UnitOfWork(conn)

    def migrate(self) -> list[int]:
        """Apply pending migrations in order; return the versions applied."""
        applied: list[int] = []
        with self._transaction(write=True) as conn:
            schema.metadata.create_all(conn, tables=[schema.schema_migrations])
            done = set(conn.execute(sa.select(schema.schema_migrations.c.version)).scalars())
            known = {m.version for m in MIGRATIONS}
            unknown = done - known
            if unknown:
                raise StoreError(
                    f"the database has schema version(s) {sorted(unknown)} that this Runyard does not know; "
                    "upgrade Runyard"
                )
            for migration in MIGRATIONS:
                if migration.version in done:
                    continue
                migration.apply(conn)
                conn.execute(
                    sa.insert(schema.schema_migrations).values(
                        version=migration.version, name=migration.name, applied_at=self._clock.now()
                    )
                )
                applied.append(migration.version)
                log.info("applied migration %04d_%s", migration.version, migration.name)
        return applied

    def close(self) -> None:
        self._engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = cast(Any, dbapi_connection).cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
