"""bigtop as a container's PID 1 (in a new PID namespace: `unshare --pid --fork`, as root),
and as a child subreaper when it is not PID 1: orphans of a double-forking child are reaped
(no zombie), one that escaped into its own session is killed at stop, and SIGTERM stops
everything within graceful_timeout with exit status 0."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import children_of, wait_until

# The watcher's process forks a child that starts two grandchildren and exits at once: both
# are orphans. The test ends one (it must be reaped, not left a zombie); the other leaves the
# process group (setsid) and would live an hour (it must be killed when bigtop stops).
FORKER = """\
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
child = os.fork()
if child == 0:
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "3599"])
    if os.fork() == 0:
        os.setsid()
        os.execvp("sleep", ["sleep", "3600"])
    os._exit(0)
os.waitpid(child, 0)
open(sys.argv[1], "w").close()
time.sleep(3600)
"""

CONFIG = """\
[watcher:forker]
cmd = {python} {directory}/forker.py {directory}/forked
respawn = never

[watcher:stubborn]
cmd = {python} -c "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); open('{directory}/stubborn', 'w').close(); time.sleep(3600)"
graceful_timeout = {grace}
"""
GRACE = 1.0
UNSHARE = shutil.which("unshare")


def stat(pid: int) -> tuple[str, str, int] | None:
    """(command name, state, parent pid) of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    state, parent = text.rsplit(")", 1)[1].split()[:2]
    return name, state, int(parent)


def argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def descendants(root: int) -> dict[int, tuple[str, str, int]]:
    """Every process below `root` (for PID 1 of a namespace: every other process in it)."""
    table = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := stat(int(p)))}
    found: dict[int, tuple[str, str, int]] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, entry in table.items():
            if entry[2] == parent and pid not in found:
                found[pid] = entry
                frontier.append(pid)
    return found


class Container:
    """`bigtop run` started directly, or as PID 1 of a new PID namespace."""

    def __init__(self, directory: Path, pid1: bool) -> None:
        self.directory = directory
        self.runtime = Path(tempfile.mkdtemp(prefix="btp-", dir="/tmp"))
        (directory / "forker.py").write_text(FORKER)
        config = directory / "app.ini"
        config.write_text(
            textwrap.dedent(CONFIG).format(python=sys.executable, directory=directory, grace=GRACE)
        )
        command = [sys.executable, "-m", "bigtop", "run", str(config)]
        if pid1:
            assert UNSHARE is not None
            command = [UNSHARE, "--pid", "--fork", "--mount-proc", *command]
        self.log = directory / "bigtop.log"
        self.sink = self.log.open("w")
        self.process = subprocess.Popen(
            command,
            stdout=self.sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "XDG_RUNTIME_DIR": str(self.runtime)},
        )
        # unshare --fork waits for its child, which is PID 1 in the new namespace
        self.pid = (
            wait_until(lambda: children_of(self.process.pid), what="PID 1 of the namespace")[0]
            if pid1
            else self.process.pid
        )
        self.seen: set[int] = set()

    def processes(self) -> dict[int, tuple[str, str, int]]:
        found = descendants(self.pid)
        self.seen.update(found)
        return found

    def output(self) -> str:
        self.sink.flush()
        return self.log.read_text()

    def close(self) -> list[int]:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.sink.close()
        shutil.rmtree(self.runtime, ignore_errors=True)
        leaked = [pid for pid in self.seen if stat(pid) is not None and stat(pid)[1] != "Z"]
        for pid in leaked:
            os.kill(pid, signal.SIGKILL)
        return leaked


@pytest.fixture(
    params=[
        pytest.param(True, id="pid1", marks=pytest.mark.skipif(
            os.geteuid() != 0 or UNSHARE is None, reason="needs root and unshare"
        )),
        pytest.param(False, id="subreaper"),
    ]
)  # fmt: skip
def container(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    found = Container(tmp_path, request.param)
    yield found
    assert not found.close(), "processes left running"


def test_orphans_reaped_and_sigterm_stops_everything(container: Container) -> None:
    if container.pid != container.process.pid:
        status = Path(f"/proc/{container.pid}/status").read_text().splitlines()
        nspid = next(line for line in status if line.startswith("NSpid:")).split()
        assert nspid[-1] == "1"  # bigtop is PID 1 in its namespace
    directory = container.directory
    wait_until(
        lambda: (directory / "forked").exists() and (directory / "stubborn").exists(),
        15,
        what="both watchers running, the double fork done",
    )

    def running(*words: str) -> list[int]:
        return [pid for pid in container.processes() if argv(pid) == list(words)]

    orphan = wait_until(lambda: running("sleep", "3600"), 5, what="the orphan in its session")[0]
    short = wait_until(lambda: running("sleep", "3599"), 5, what="the short-lived orphan")[0]
    processes = container.processes()
    assert processes[orphan][2] == processes[short][2] == container.pid  # adopted by bigtop
    # once it exits it is reaped at once: it disappears instead of staying a zombie
    os.kill(short, signal.SIGTERM)
    wait_until(lambda: stat(short) is None, 10, what="the short-lived orphan reaped")
    assert not [pid for pid, (_, state, _) in container.processes().items() if state == "Z"]
    started = time.monotonic()
    os.kill(container.pid, signal.SIGTERM)
    status = container.process.wait(GRACE + 15)
    elapsed = time.monotonic() - started
    assert status == 0, container.output()
    # the stubborn process ignores SIGTERM: SIGKILL after graceful_timeout, not later
    assert GRACE <= elapsed < GRACE + 5, elapsed
    assert stat(orphan) is None or stat(orphan)[1] == "Z"  # killed (and not by the kernel)
    assert "killing 1 leftover descendant process(es)" in container.output()
    assert not container.processes()


def catches(pid: int, signum: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return False
    mask = next((line.split()[1] for line in status if line.startswith("SigCgt:")), "0")
    return bool(int(mask, 16) >> (signum - 1) & 1)


def test_sigterm_while_starting_is_not_lost(container: Container) -> None:
    """PID 1 drops a signal it has no handler for: bigtop's is in place before the config is
    even read. A stop asked for before anything started ends the start with 128 + 15 (as a
    shell reports it), one that reaches the running daemon is a clean stop (0)."""
    wait_until(lambda: catches(container.pid, signal.SIGTERM), 15, what="a SIGTERM handler")
    os.kill(container.pid, signal.SIGTERM)
    status = container.process.wait(15)
    early = "SIGTERM before the start" in container.output()
    assert status == (143 if early else 0), container.output()
    container.processes()
