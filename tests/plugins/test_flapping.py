"""Circus's flapping options, as real Circus configs write them: a [plugin:flapping] section
(built into the daemon: no plugin process) and per-watcher `flapping.*` keys. An operator's
stop is never undone by flapping detection (Circus issue #965)."""

from __future__ import annotations

import os
import signal

from bigtop.control.client import AsyncClient
from tests.helpers import PYTHON, alive, async_wait_until

CRASH = f"{PYTHON} -c 'raise SystemExit(1)'"
QUICK = "backoff_initial = 0.01\nbackoff_max = 0.01"
SLEEP = f"{PYTHON} -c 'import time; time.sleep(3600)'"


def spawns(d, name: str) -> int:
    return len([t for t, _ in d.events if t == f"watcher.{name}.spawn"])


async def test_plugin_section_options_and_per_watcher_overrides(daemon) -> None:
    d = await daemon(
        f"""
        [plugin:flapping]
        use = circus.plugins.flapping.Flapping
        attempts = 2
        window = 5
        retry_in = 0.2
        max_retry = 1

        [watcher:plain]
        cmd = {CRASH} plain
        {QUICK}

        [watcher:once]
        cmd = {CRASH} once
        flapping.max_retry = 0
        {QUICK}

        [watcher:exempt]
        cmd = {CRASH} exempt
        flapping.active = false
        {QUICK}
        """
    )
    assert d.arbiter.plugins.plugins == {}  # flapping runs no plugin process
    plain, once = d.watcher("plain"), d.watcher("once")
    await async_wait_until(
        lambda: (
            plain.status == "stopped" and plain.core.retry_at is None and spawns(d, "plain") >= 4
        ),
        what="plain to give up",
    )
    await async_wait_until(lambda: once.status == "stopped", what="once to give up")
    assert spawns(d, "plain") == 4  # 2 deaths, one retry after retry_in, 2 deaths: given up
    assert spawns(d, "once") == 2  # max_retry = 0: stopped at the first flapping, no retry
    assert once.core.retry_at is None
    assert d.watcher("exempt").status == "active"  # never given up on
    await async_wait_until(lambda: spawns(d, "exempt") > 8, what="exempt to keep restarting")


async def test_an_operator_stop_is_never_undone(daemon) -> None:
    d = await daemon(
        f"""
        [plugin:flapping]
        use = circus.plugins.flapping.Flapping
        attempts = 2
        window = 5
        retry_in = 0.3
        max_retry = -1

        [watcher:pool]
        cmd = {SLEEP} flapping-pool
        numprocesses = 3

        [watcher:flappy]
        cmd = {CRASH} flappy
        {QUICK}

        [watcher:clock]
        cmd = {PYTHON} -c 'import time; time.sleep(0.4)'
        flapping.active = false
        backoff_reset = 0.2
        """
    )
    await d.wait_pids("pool", 3)
    flappy = d.watcher("flappy")
    # flappy is stopped by flapping detection and waits for its retry ...
    await async_wait_until(lambda: flappy.core.retry_at is not None, what="flappy waiting")
    async with AsyncClient(d.arbiter.endpoints.control) as client:
        # ... when the operator stops it, and stops pool (three processes reaped at once:
        # requested stops never count as flapping, unlike Circus)
        await client.call("stop", name="flappy", waiting=True)
        await client.call("stop", name="pool", waiting=True)
        flappy_spawns, pool_spawns = spawns(d, "flappy"), spawns(d, "pool")
        # clock's processes live 0.4 s each (and are replaced at once): two more of them
        # outlast retry_in (0.3 s), by which time a retry of flappy or pool would have happened
        ticks = spawns(d, "clock")
        await async_wait_until(lambda: spawns(d, "clock") >= ticks + 2, what="two clock ticks")
        statuses = (await client.call("status"))["statuses"]
    assert statuses["flappy"] == "stopped" and statuses["pool"] == "stopped"
    assert (spawns(d, "flappy"), spawns(d, "pool")) == (flappy_spawns, pool_spawns)
    assert flappy.core.retry_at is None and d.watcher("pool").core.retry_at is None


CRASH_TWICE = """
import os, signal, sys, time
count = sys.argv[1]
runs = int(open(count).read()) if os.path.exists(count) else 0
open(count, "w").write(str(runs + 1))
if runs < 2:
    raise SystemExit(1)
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopped only by SIGKILL, after graceful_timeout
time.sleep(3600)
"""


async def test_a_watcher_retried_after_flapping_can_be_stopped(daemon, tmp_path) -> None:
    script = tmp_path / "crash_twice.py"
    script.write_text(CRASH_TWICE)
    d = await daemon(
        f"""
        [watcher:phoenix]
        cmd = {PYTHON} {script} {tmp_path / "runs"}
        flapping.attempts = 2
        flapping.window = 5
        flapping.retry_in = 0.1
        graceful_timeout = 0.3
        {QUICK}
        """
    )
    runs = tmp_path / "runs"
    await async_wait_until(lambda: runs.exists() and runs.read_text() == "3", what="third run")
    [pid] = await d.wait_pids("phoenix", 1)  # the third run, started by the retry
    try:
        async with AsyncClient(d.arbiter.endpoints.control) as client:
            await client.call("stop", name="phoenix", waiting=True)
        assert not alive(pid), "stop --waiting returned with the process still running"
    finally:
        if alive(pid):  # leave nothing behind for the fixture's leak check
            os.kill(pid, signal.SIGKILL)
            await async_wait_until(lambda: not alive(pid), what="the leftover killed")
