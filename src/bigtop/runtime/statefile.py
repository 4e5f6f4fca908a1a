"""A record of the daemon's children, so that a daemon killed with SIGKILL leaves nothing
running unmanaged: the next `bigtop run` with the same endpoints finds the record, and stops
the processes the dead daemon left (each matched by pid *and* start time, so a recycled pid
is never touched) before starting fresh ones. It never runs two copies.

Why stop rather than adopt: an adopted process is not our child, so its exit status cannot
be read (no pidfd wait on a non-child), and its stdout/stderr pipes died with the old daemon.
A clean restart gives every process a known state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from typing import Any

log = logging.getLogger("bigtop.state")


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


class StateFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self._dirty = False
        self._starts: dict[int, int | None] = {}  # read from /proc once per child
        self._daemon_start: int | None = None

    def forget(self, pid: object) -> None:
        """`pid` was reaped: its start time no longer holds (the pid may be reused)."""
        if isinstance(pid, int):
            self._starts.pop(pid, None)

    def write(self, children: dict[int, str]) -> None:
        """Record our pid and every child (pid -> watcher), atomically."""
        known = self._starts
        self._starts = {pid: known.get(pid) or start_time(pid) for pid in children}
        if self._daemon_start is None:
            self._daemon_start = start_time(os.getpid())
        record: dict[str, Any] = {
            "daemon": os.getpid(),
            "daemon_start": self._daemon_start,
            "children": [
                {"pid": pid, "start": self._starts[pid], "watcher": name}
                for pid, name in sorted(children.items())
            ],
        }
        temporary = f"{self.path}.tmp"
        try:
            # json.dumps, not json.dump: dump streams through the pure-Python encoder, which
            # took 4 ms for 200 children, and this is written after every spawn
            with open(temporary, "wb") as handle:
                handle.write(json.dumps(record).encode())
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("cannot write the state file %s: %s", self.path, exc)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def leftovers(self) -> list[tuple[int, str]]:
        """Children of a dead previous daemon that still run (pid, watcher)."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            return []
        daemon = record.get("daemon")
        if isinstance(daemon, int) and start_time(daemon) == record.get("daemon_start"):
            return []  # that daemon is alive: not ours to touch (endpoints say so too)
        found = []
        for child in record.get("children", []):
            pid, started = child.get("pid"), child.get("start")
            if isinstance(pid, int) and started is not None and start_time(pid) == started:
                found.append((pid, str(child.get("watcher", "?"))))
        return found

    def stop_leftovers(self, grace: float = 10.0) -> list[int]:
        """SIGTERM the previous daemon's processes (and their groups), SIGKILL after `grace`."""
        leftovers = self.leftovers()
        if not leftovers:
            return []
        pids = [pid for pid, _ in leftovers]
        log.warning(
            "a previous bigtop was killed and left %d process(es) running: %s; stopping them "
            "before starting fresh ones",
            len(pids),
            ", ".join(f"{name}[{pid}]" for pid, name in leftovers),
        )
        starts = {pid: start_time(pid) for pid in pids}
        for pid in pids:
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not [p for p in pids if start_time(p) == starts[p]]:
                return pids
            time.sleep(0.02)
        for pid in pids:
            if start_time(pid) == starts[pid]:
                _signal_group(pid, signal.SIGKILL)
        return pids


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)  # each child leads its own group (start_new_session)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)
