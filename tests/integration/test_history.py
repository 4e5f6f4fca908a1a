"""Restart history and restart counts through the control API (`status --history`, `stats`)."""

from __future__ import annotations

import os
import signal
import time

from bigtop.control.client import AsyncClient
from tests.helpers import PYTHON, async_wait_until


async def test_a_crash_and_a_kill_are_in_the_history_with_their_causes(daemon, tmp_path) -> None:
    marker = tmp_path / "crashed-once"
    d = await daemon(
        f"""
        [watcher:app]
        cmd = {PYTHON} -c 'import os, sys, time; os.path.exists(sys.argv[1]) or (open(sys.argv[1], "w"), sys.exit(3)); time.sleep(3600)' {marker}
        """
    )
    started = time.time()
    [first] = await d.wait_pids("app", 1)
    await async_wait_until(lambda: marker.exists() and d.pids("app") not in ([], [first]))
    [pid] = d.pids("app")
    os.kill(pid, signal.SIGKILL)
    await async_wait_until(lambda: d.pids("app") and d.pids("app") != [pid])
    [new_pid] = d.pids("app")
    async with AsyncClient(d.arbiter.endpoints.control, timeout=10) as client:
        plain = await client.call("status", name="app")
        assert "history" not in plain and "restarts" not in plain  # Circus's reply unchanged
        reply = await client.call("status", name="app", history=True)
        assert reply["restarts"] == 2, reply
        crash, killed = reply["history"]
        assert crash["exit_code"] == 3 and crash["signal"] is None
        assert "exit" in crash["reason"] and crash["restart_in"] == 0
        assert killed["pid"] == pid and killed["signal"] == signal.SIGKILL
        assert killed["exit_code"] is None and killed["wid"] == crash["wid"] == 1
        assert started - 1 <= crash["time"] <= killed["time"] <= time.time() + 1
        assert killed["uptime"] > 0
        everyone = await client.call("status", history=True)
        assert everyone["restarts"] == {"app": 2} and len(everyone["history"]["app"]) == 2
        stats = await client.call("stats", name="app")
        info = stats["info"][str(new_pid)]
        assert info["restarts"] == 2 and info["wid"] == 1 and info["state"] == "ready"
