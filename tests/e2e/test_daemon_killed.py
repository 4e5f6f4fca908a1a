"""A daemon killed with SIGKILL: the next one stops what it left, and never runs two copies."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.helpers import PYTHON, alive, wait_until


def test_leftovers_of_a_killed_daemon_are_stopped_by_the_next(run_daemon, tmp_path: Path) -> None:
    ini = f"""
        [watcher:web]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' killed-daemon
        numprocesses = 2
        """
    first = run_daemon(ini)
    old = first.wait_children(2)
    wait_until(lambda: (tmp_path / "state.json").exists(), what="the state file")
    os.kill(first.pid, signal.SIGKILL)
    first.process.wait(10)
    assert all(alive(pid) for pid in old), "SIGKILL leaves the children running"
    second = run_daemon(ini)
    new = second.wait_children(2, timeout=20)
    wait_until(lambda: not any(alive(pid) for pid in old), what="the leftovers stopped")
    assert not set(new) & set(old)
    assert "left 2 process(es) running" in second.output()
    assert second.stop() == 0
    assert not (tmp_path / "state.json").exists(), "a clean stop removes the record"
