"""WatchDog with real children sending UDP heartbeats: kept while they beat, killed and
replaced once they fall silent."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.helpers import PYTHON, alive, async_wait_until
from tests.plugins.conftest import free_port

HEARTBEAT = """
import os, socket, sys, time
port, quiet = int(sys.argv[1]), sys.argv[2]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    if not os.path.exists(quiet):
        sock.sendto(f"{os.getpid()};{time.time()}".encode(), ("127.0.0.1", port))
    time.sleep(0.05)
"""


async def test_heartbeats_keep_a_process_and_silence_gets_it_replaced(
    daemon, tmp_path: Path
) -> None:
    script = tmp_path / "heartbeat.py"
    script.write_text(HEARTBEAT)
    quiet = tmp_path / "quiet"
    port = free_port(socket.SOCK_DGRAM)
    d = await daemon(
        f"""
        [watcher:beating]
        cmd = {PYTHON} {script} {port} {quiet}

        [watcher:silent]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' watchdog-silent

        [watcher:ignored]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' watchdog-ignored

        [plugin:dog]
        use = circus.plugins.watchdog.WatchDog
        # silence = loop_rate * max_count = 1 s: a slow start is not silence
        loop_rate = 0.5
        max_count = 2
        ip = 127.0.0.1
        port = {port}
        watchers_regex = (beating|silent)$
        """
    )
    [beating] = await d.wait_pids("beating", 1)
    [ignored] = await d.wait_pids("ignored", 1)
    [first_silent] = await d.wait_pids("silent", 1)

    # The silent process is killed and replaced, again and again; meanwhile the beating one
    # stays: several rounds of the watchdog have passed by the time two are gone.
    def silent_replaced_twice() -> bool:
        spawned = [m["process_pid"] for t, m in d.events if t == "watcher.silent.spawn"]
        return len(spawned) >= 3 and not alive(first_silent)

    await async_wait_until(silent_replaced_twice, timeout=20, what="silent replaced twice")
    assert d.pids("beating") == [beating] and alive(beating)
    assert d.pids("ignored") == [ignored]  # not matched by watchers_regex
    assert [t for t, m in d.events if m.get("process_pid") == beating] == ["watcher.beating.spawn"]

    quiet.touch()  # the beating process falls silent: killed, and its watcher starts another
    await async_wait_until(lambda: not alive(beating), timeout=10, what="the silent one killed")
    quiet.unlink()
    [replacement] = await d.wait_pids("beating", 1)
    assert replacement != beating
    kill = [t for t, m in d.events if m.get("process_pid") == beating]
    assert kill == ["watcher.beating.spawn", "watcher.beating.kill", "watcher.beating.reap"]
