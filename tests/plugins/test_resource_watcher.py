"""ResourceWatcher with a real child whose memory grows past max_mem: it is restarted."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import PYTHON, alive, async_wait_until

GROWER = """
import os, sys, time
marker = sys.argv[1]
if not os.path.exists(marker):  # the first run grows; its replacement stays small
    open(marker, "w").close()
    time.sleep(0.3)
    ballast = b"x" * (96 * 1024 * 1024)  # written, so resident
time.sleep(3600)
"""


async def test_a_process_growing_past_max_mem_is_restarted(daemon, tmp_path: Path, udp) -> None:
    script = tmp_path / "grower.py"
    script.write_text(GROWER)
    d = await daemon(
        f"""
        [watcher:leaky]
        cmd = {PYTHON} {script} {tmp_path / "grown"}

        [watcher:calm]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' resource-calm

        [plugin:mem]
        use = circus.plugins.resource_watcher.ResourceWatcher
        watcher = leaky
        loop_rate = 0.2
        max_mem = 64M
        max_cpu = 0
        health_threshold = 0
        max_count = 1
        host = 127.0.0.1
        port = {udp.port}
        """
    )
    [leaky] = await d.wait_pids("leaky", 1)
    [calm] = await d.wait_pids("calm", 1)
    await async_wait_until(lambda: not alive(leaky), timeout=20, what="the leaky process stopped")
    [replacement] = await d.wait_pids("leaky", 1)
    assert replacement != leaky
    assert d.pids("calm") == [calm]
    ended = [t for t, m in d.events if m.get("process_pid") == leaky]
    assert ended == ["watcher.leaky.spawn", "watcher.leaky.kill", "watcher.leaky.reap"]
    lines = await udp.wait_for(lambda line: "restarting" in line, "the statsd restart counter")
    assert lines == ["circus.app.watcher._resource_watcher.leaky.restarting:1|c"]
    over = [line for line in udp.lines() if ".over_memory:" in line]
    assert len(over) >= 2  # max_count = 1: restarted on the second violation in a row
