"""Fixtures of the fault tests: `bigtop run` daemons with private endpoints, and nothing left
running afterwards (every pid a daemon was seen with is checked at teardown)."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.daemon import DaemonPool
from tests.faults.observe import tagged

TAGS = itertools.count(40)


@pytest.fixture
def bigtop(tmp_path: Path) -> Iterator[DaemonPool]:
    pool = DaemonPool(tmp_path)
    yield pool
    leaked = pool.close()
    assert not leaked, f"processes left running after the daemon stopped: {leaked}"


@pytest.fixture
def tag() -> Iterator[str]:
    """A tag for this test's command lines (`sleep TAG`). Whatever still carries it at the end
    (a child of a daemon the test killed, which no pool saw) is killed by pid, and fails the
    test."""
    tag = f"3600.{os.getpid()}{next(TAGS)}"
    yield tag
    leaked = tagged(tag)
    for pid in leaked:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not leaked, f"left running: {leaked}"
