"""A `bigtop run` daemon as a test fixture: isolated endpoints, leak checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import alive, children_of, wait_until, write_ini


class RunningDaemon:
    def __init__(self, process: subprocess.Popen[str], log: Path, sink: Any) -> None:
        self.process = process
        self.log = log
        self.sink = sink
        self.seen: set[int] = set()

    @property
    def pid(self) -> int:
        return self.process.pid

    def children(self) -> list[int]:
        found = [p for p in children_of(self.pid) if alive(p)]
        self.seen.update(found)
        return found

    def wait_children(self, count: int, timeout: float = 10.0) -> list[int]:
        return wait_until(
            lambda: (c := self.children()) and len(c) == count and c,
            timeout,
            what=f"{count} children of the daemon",
        )

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        self.children()
        self.process.send_signal(signum)
        return self.process.wait(timeout)


def isolated_endpoints(directory: Path) -> str:
    """A [circus] section with endpoints of this test's own (merged with the test's)."""
    return (
        "[circus]\n"
        f"endpoint = ipc://{directory}/control.sock\n"
        f"pubsub_endpoint = ipc://{directory}/events.sock\n\n"
    )


@pytest.fixture
def run_daemon(tmp_path: Path) -> Iterator:
    started: list[RunningDaemon] = []

    def start(ini: str, *extra: str) -> RunningDaemon:
        config = write_ini(tmp_path, ini)
        config.write_text(isolated_endpoints(tmp_path) + config.read_text())
        log = tmp_path / f"daemon-{len(started)}.log"
        sink = log.open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "bigtop", "run", str(config), *extra],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
        daemon = RunningDaemon(process, log, sink)
        started.append(daemon)
        return daemon

    yield start
    leaked = []
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.children()
            daemon.process.terminate()
            try:
                daemon.process.wait(30)
            except subprocess.TimeoutExpired:
                daemon.process.kill()
                daemon.process.wait()
        daemon.sink.close()
        for pid in daemon.seen:
            if alive(pid):
                leaked.append(pid)
                os.kill(pid, signal.SIGKILL)
    assert not leaked, f"left running: {leaked}"
