from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from runyard.clock import FakeClock
from runyard.control.model.apprunner import Connection
from runyard.store.database import Database, StoreError


def _connection(name: str) -> Connection:
    return Connection(f"arn:{name}", name, "000000000000", "us-east-1", "GITHUB", "PENDING_HANDSHAKE", 1.0)


def test_migrations_run_once_and_record_their_version(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/a.db", clock=FakeClock())
    assert db.migrate() == [1, 2]
    assert db.migrate() == []
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"


def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/a.db", clock=FakeClock())
    db.migrate()
    with pytest.raises(RuntimeError), db.write() as uow:
        uow.repo(Connection).add(_connection("one"))
        uow.tags.merge(Connection.KIND, "arn:one", [("k", "v")])
        raise RuntimeError("boom")
    with db.read() as uow:
        assert uow.repo(Connection).find(account="000000000000") == []
        assert uow.tags.get(Connection.KIND, "arn:one") == []


def test_round_trip_and_tag_order(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/a.db", clock=FakeClock())
    db.migrate()
    with db.write() as uow:
        uow.repo(Connection).add(_connection("one"))
        uow.tags.merge(Connection.KIND, "arn:one", [("b", "1"), ("a", "2")])
        uow.tags.merge(Connection.KIND, "arn:one", [("b", "3"), ("c", "4")])
    with db.read() as uow:
        assert uow.repo(Connection).get("arn:one") == _connection("one")
        assert uow.tags.get(Connection.KIND, "arn:one") == [("b", "3"), ("a", "2"), ("c", "4")]
    with db.write() as uow:
        uow.repo(Connection).remove("arn:one")
    with db.read() as uow:
        assert uow.repo(Connection).get("arn:one") is None
        assert uow.tags.get(Connection.KIND, "arn:one") == []


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/a.db", clock=FakeClock())
    db.migrate()
    with db.engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO schema_migrations VALUES (99, 'future', 0)"))
    with pytest.raises(StoreError, match="upgrade Runyard"):
        db.migrate()
