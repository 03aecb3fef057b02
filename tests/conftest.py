from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import RunyardProcess, unique_region


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunyardProcess]:
    """One real `runyard serve` shared by a test session; isolate tests with the `region` fixture."""
    process = RunyardProcess(tmp_path_factory.mktemp("runyard") / "data").start()
    yield process
    process.stop()


@pytest.fixture
def region() -> str:
    return unique_region()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[RunyardProcess]:
    """A server of the test's own (restarts, quotas from the environment, persistence)."""
    process = RunyardProcess(tmp_path / "data")
    yield process
    process.stop()
