"""Churn: thousands of spawn/stop cycles (incr/decr, add/rm over the control socket) leave no
fd, memory, asyncio-task or object growth behind.

The arbiter runs in the test's own process (the `daemon` fixture) so that its asyncio tasks
and live objects can be counted; the client speaks to it over its real control socket. The
suite runs 1,000 cycles; `python bench/faults/run.py churn` runs 10,000.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import pytest

from bigtop.control.client import AsyncClient
from tests.faults.observe import fd_count, report, rss_kib, scaled, zombies_of

# The watcher's restart history holds its last 200 process ends (one per incr/decr cycle,
# every other cycle): warm up past it, so that what is measured afterwards is growth, not a
# bounded buffer filling.
WARM_UP = 420
OBJECT_MARGIN = 400  # a leak of one object per cycle shows as >= 1,000
RSS_MARGIN_KIB = 3072


@dataclass(frozen=True)
class Usage:
    fds: int
    tasks: int
    objects: int
    rss_kib: int
    threads: int
    reaper: int

    @classmethod
    def now(cls, d: Any) -> Usage:
        gc.collect()
        return cls(
            fd_count(os.getpid()),
            len(asyncio.all_tasks()),
            len(gc.get_objects()),
            rss_kib(os.getpid()),
            # the daemon's own threads (the test process has others: pytest's, zmq's)
            sum(t.name.startswith("bigtop") for t in threading.enumerate()),
            len(d.arbiter.reaper),
        )


async def cycle(client: AsyncClient, index: int, command: str) -> None:
    """One spawn and one stop: incr/decr on `churn`, or add (started) then rm."""
    if index % 2 == 0:
        await client.call("incr", name="churn", waiting=True)
        await client.call("decr", name="churn", waiting=True)
    else:
        await client.call("add", name="added", cmd=command, start=True, waiting=True)
        await client.call("rm", name="added", waiting=True)


async def churn(d: Any, cycles: int) -> dict[str, Any]:
    # The fixture records every event in a list: that is the test's memory, not the daemon's.
    d.events = deque(maxlen=100)
    await d.wait_pids("churn", 1)
    command = f"sleep 3600.{os.getpid()}9"
    async with AsyncClient(d.arbiter.endpoints.control, timeout=10.0) as client:
        for index in range(WARM_UP):
            await cycle(client, index, command)
        before = Usage.now(d)
        started = time.perf_counter()
        for index in range(cycles):
            await cycle(client, index, command)
        elapsed = time.perf_counter() - started
        await d.wait_pids("churn", 1)
        after = Usage.now(d)
    assert d.arbiter.get_watcher("added") is None
    assert not zombies_of(os.getpid())
    assert (after.fds, after.tasks, after.threads) == (before.fds, before.tasks, before.threads)
    assert after.reaper == before.reaper == 1
    assert after.objects - before.objects < OBJECT_MARGIN, (before, after)
    assert after.rss_kib - before.rss_kib < RSS_MARGIN_KIB, (before, after)
    figures = {
        "cycles": cycles,
        "seconds": round(elapsed, 1),
        "cycles_per_second": round(cycles / elapsed, 1),
        "fds": [before.fds, after.fds],
        "tasks": [before.tasks, after.tasks],
        "objects": [before.objects, after.objects],
        "rss_kib": [before.rss_kib, after.rss_kib],
    }
    report("churn", **figures)
    return figures


CONFIG = """
    [watcher:churn]
    cmd = sleep 3600.{tag}
    numprocesses = 1
    graceful_timeout = 1
    """


CYCLES = scaled(1000, 10_000)


@pytest.mark.slow
@pytest.mark.timeout(scaled(180, 600))
async def test_spawn_stop_cycles_leave_nothing_behind(daemon) -> None:
    d = await daemon(CONFIG.format(tag=f"{os.getpid()}8"))
    figures = await churn(d, CYCLES)
    assert figures["cycles"] == CYCLES
