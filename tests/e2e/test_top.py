"""`bigtop top` and Circus's own `circus-top`, driven in a real terminal (tmux).

Each test runs its own tmux server (`-L`), sends keys and reads the pane back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.circus_env import CIRCUS_VERSION, CircusEnv, CircusEnvError, ensure_circus_env
from tests.e2e.daemon import Daemon, DaemonPool
from tests.helpers import PYTHON, wait_until


def sleeper(tag: str) -> str:
    return f"{PYTHON} -c 'import time; time.sleep(3600)' {tag}"


BUSY = f"{PYTHON} -c 'while True: pass' top-busy"


class Terminal:
    """One tmux server with one window running a command."""

    def __init__(self, command: list[str], width: int = 120, height: int = 30) -> None:
        self.server = f"bigtop-test-{uuid.uuid4().hex[:8]}"
        # the pane stays after the program ends, so a crash's traceback can be read
        self._tmux(
            "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
            ";", "set-option", "-t", "t", "remain-on-exit", "on",
            ";", "respawn-pane", "-k", "-t", "t", " ".join(command),
        )  # fmt: skip

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.server, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return result.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", "t", "-x", str(width), "-y", str(height))

    def alive(self) -> bool:
        """The program still runs in the pane."""
        return self._tmux("display-message", "-p", "-t", "t", "#{pane_dead}").strip() == "0"

    def wait_for(self, *texts: str, timeout: float = 10.0) -> str:
        return wait_until(
            lambda: (s := self.screen()) and all(t in s for t in texts) and s,
            timeout,
            what=f"{texts} on the screen:\n{self.screen()}",
        )

    def close(self) -> None:
        self._tmux("kill-server")


@pytest.fixture
def terminal() -> Iterator:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed to drive the terminal UIs (.ci/run installs it)")
    opened: list[Terminal] = []

    def open_terminal(command: list[str], width: int = 120, height: int = 30) -> Terminal:
        opened.append(Terminal(command, width, height))
        return opened[-1]

    yield open_terminal
    for term in opened:
        term.close()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator:
    pool = DaemonPool(tmp_path)

    def start(ini: str) -> Daemon:
        daemon = pool.start(ini)
        daemon.wait_ready()
        return daemon

    yield start
    leaked = pool.close()
    assert not leaked, f"processes left running after the daemon stopped: {leaked}"


def bigtop_top(daemon: Daemon) -> list[str]:
    return [sys.executable, "-m", "bigtop", "--endpoint", daemon.control, "top"]


def test_bigtop_top_shows_sorts_acts_and_quits(daemons, terminal) -> None:
    daemon = daemons(
        f"""
        [watcher:web]
        cmd = {sleeper("top-web")}
        numprocesses = 2

        [watcher:busy]
        cmd = {BUSY}

        [socket:api]
        host = 127.0.0.1
        port = 0
        """
    )
    web = daemon.wait_running("top-web", 2)
    daemon.wait_running("top-busy", 1)
    term = terminal(bigtop_top(daemon))
    screen = term.wait_for("web", "busy", "2 watchers, 3 processes", "127.0.0.1:")
    assert "SOCKET" in screen and "api" in screen

    # sorted by name: busy first; by CPU (descending): busy stays first, then by name again
    # reversed puts web first
    term.keys("n")
    lines = term.wait_for("sorted by name ↓").splitlines()
    assert _row(lines, "web") < _row(lines, "busy")
    term.keys("c")
    lines = term.wait_for("sorted by cpu ↓").splitlines()
    wait_until(lambda: _cpu(term.screen(), "busy") > 10, what="busy's CPU figure")
    lines = term.screen().splitlines()
    assert _row(lines, "busy") < _row(lines, "web")

    # expand web: its processes appear with their pids
    term.keys("Down", "Down", "Enter")
    term.wait_for(*(str(pid) for pid in web))

    # restart web from the terminal, confirmed with y: new pids
    term.keys("R")
    term.wait_for("restart web? [y/N]")
    term.keys("y")
    wait_until(
        lambda: (
            (pids := daemon.call("list", name="web")["pids"])
            and len(pids) == 2
            and not set(pids) & set(web)
        ),
        what="web's processes replaced",
    )
    new = daemon.call("list", name="web")["pids"]
    term.wait_for(*(str(pid) for pid in new))

    # a filter hides the other watcher
    term.keys("/", "w", "e", "Enter")
    screen = term.wait_for("filter: we")
    assert "busy" not in screen.split("filter")[1]

    # a narrow terminal drops columns rather than wrapping rows
    term.resize(50, 20)
    screen = term.wait_for("CPU%")
    assert "CMD" not in screen and "RSS" not in screen
    assert all(len(line) <= 50 for line in screen.splitlines())

    term.keys("q")
    wait_until(lambda: not term.alive(), what="bigtop top to quit on q")


def test_bigtop_top_incr_and_kill_a_pid(daemons, terminal) -> None:
    daemon = daemons(
        f"""
        [watcher:pool]
        cmd = {sleeper("top-pool")}
        """
    )
    [first] = daemon.wait_running("top-pool", 1)
    term = terminal(bigtop_top(daemon))
    term.wait_for("pool", "1 watcher, 1 process")
    term.keys("Down", "+")
    term.wait_for("add a process to pool? [y/N]")
    term.keys("n")  # anything but y cancels
    term.wait_for("cancelled")
    assert len(daemon.call("list", name="pool")["pids"]) == 1
    term.keys("+")
    term.wait_for("add a process to pool? [y/N]")
    term.keys("y")
    wait_until(lambda: len(daemon.call("list", name="pool")["pids"]) == 2, what="incr")
    term.keys("Enter")  # expand, then select the first process (the oldest: wid 1)
    term.wait_for(str(first))
    term.keys("Down")  # the default name order: by wid within the watcher
    term.keys("k")
    term.wait_for(f"kill process {first} of pool? [y/N]")
    term.keys("y")
    wait_until(
        lambda: (
            (pids := daemon.call("list", name="pool")["pids"])
            and first not in pids
            and len(pids) == 2
        ),
        what="the killed process replaced",
    )
    term.keys("q")
    wait_until(lambda: not term.alive(), what="bigtop top to quit")


def test_bigtop_top_says_when_the_daemon_is_gone(daemons, terminal, tmp_path) -> None:
    missing = f"ipc://{tmp_path}/nothing.sock"
    cmd = [sys.executable, "-m", "bigtop", "--endpoint", missing, "--timeout", "0.5", "top"]
    term = terminal(cmd)
    term.wait_for("no answer", "retrying")  # (the long path may wrap the line)
    term.keys("q")
    wait_until(lambda: not term.alive(), what="bigtop top to quit")


def test_bigtop_top_refuses_a_pipe() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bigtop", "top"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1 and "needs a terminal" in result.stderr


def test_circus_top_reads_bigtops_stats_stream(daemons, terminal) -> None:
    try:
        circus: CircusEnv = ensure_circus_env()
    except CircusEnvError as exc:
        pytest.fail(f"cannot set up circus=={CIRCUS_VERSION}: {exc}", pytrace=False)
    daemon = daemons(
        f"""
        [circus]
        stats_endpoint = ipc://{{sockets}}/stats.sock

        [watcher:crunch]
        cmd = {sleeper("top-crunch")}
        numprocesses = 2

        [socket:front]
        host = 127.0.0.1
        port = 0
        """
    )
    pids = daemon.wait_running("top-crunch", 2)
    top = circus.root / "bin" / "circus-top"
    environ = " ".join(f"{k}={v}" for k, v in _circus_environ().items())
    command = [
        "env", "-i", environ,
        str(top), "--endpoint", f"ipc://{daemon.sockets}/stats.sock",
    ]  # fmt: skip
    term = terminal(command)
    screen = term.wait_for("crunch", *(str(pid) for pid in pids), "127.0.0.1:", timeout=20)
    assert "sockets" in screen
    term.keys("C-c")
    wait_until(lambda: not term.alive(), what="circus-top to exit")


def _circus_environ() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "TERM": "xterm", "HOME": os.environ.get("HOME", "/root")}


def _row(lines: list[str], name: str) -> int:
    return next(i for i, line in enumerate(lines) if f"▸ {name}" in line or f"▾ {name}" in line)


def _cpu(screen: str, name: str) -> float:
    lines = screen.splitlines()
    fields = lines[_row(lines, name)].split()
    return float(fields[4])  # marker, name, state, procs, cpu
