"""Fixtures of the fault tests: `bigtop run` daemons with private endpoints, and nothing left
running afterwards (every pid a daemon was seen with is checked at teardown)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.daemon import DaemonPool


@pytest.fixture
def bigtop(tmp_path: Path) -> Iterator[DaemonPool]:
    pool = DaemonPool(tmp_path)
    yield pool
    leaked = pool.close()
    assert not leaked, f"processes left running after the daemon stopped: {leaked}"
