"""What the fault tests measure from outside a daemon: its fds, memory, threads and
children (read from /proc), and every event it publishes (a SUB socket in a thread).

Figures a test measures can be written as JSON lines to $BIGTOP_FAULTS_REPORT, which is how
`bench/faults/run.py` collects them for docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import zmq

from tests.helpers import alive, argv_of, wait_until

T = TypeVar("T")


# ---- /proc ------------------------------------------------------------------------------------
def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def status_field(pid: int, name: str) -> int:
    """A number from /proc/PID/status (VmRSS in KiB, Threads...)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    raise KeyError(name)


def rss_kib(pid: int) -> int:
    return status_field(pid, "VmRSS")


def threads(pid: int) -> int:
    return status_field(pid, "Threads")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1])


def children_by_state(parent: int) -> dict[int, str]:
    """Every process whose parent is `parent` (a whole /proc scan), with its state letter."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == parent:
                found[int(entry)] = stat[0]
    return found


def _user_process(pid: int) -> bool:
    try:
        os.readlink(f"/proc/{pid}/exe")
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def tagged(tag: str) -> list[int]:
    """Live processes anywhere on the machine whose command line contains `tag`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and alive(int(entry)):
            pid = int(entry)
            if not _user_process(pid):
                continue  # a kernel thread: its command line stays empty
            line = b" ".join(argv_of(pid)).decode(errors="replace")
            if tag in line:
                found.append(int(entry))
    return found


def zombies_of(parent: int) -> list[int]:
    return sorted(pid for pid, state in children_by_state(parent).items() if state == "Z")


@dataclass(frozen=True)
class Footprint:
    """The resources of a daemon at one moment."""

    fds: int
    rss_kib: int
    threads: int

    @classmethod
    def of(cls, pid: int) -> Footprint:
        return cls(fd_count(pid), rss_kib(pid), threads(pid))


def settled_footprint(pid: int, timeout: float = 10.0) -> Footprint:
    """The footprint once two readings 0.2 s apart agree on fds and threads (what is being
    closed or joined right after a burst is given a moment, by condition, not by a sleep)."""
    last = [Footprint.of(pid)]

    def steady() -> Footprint | None:
        time.sleep(0.2)
        now = Footprint.of(pid)
        previous, last[0] = last[0], now
        return now if (now.fds, now.threads) == (previous.fds, previous.threads) else None

    return wait_until(steady, timeout, interval=0, what="a steady fd and thread count")


# ---- events -----------------------------------------------------------------------------------
@dataclass
class EventLog:
    """Every message of a daemon's events endpoint, collected by a thread."""

    endpoint: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> EventLog:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def _run(self, ready: threading.Event) -> None:
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)  # keep everything: the test counts
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(self.endpoint)
        ready.set()
        try:
            while not self._stop.is_set():
                if sock.poll(50):
                    topic, body = sock.recv_multipart()
                    with self._lock:
                        self.events.append((topic.decode(), json.loads(body)))
        finally:
            sock.close(linger=0)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def snapshot(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self.events)

    def since(self, mark: int) -> list[tuple[str, dict[str, Any]]]:
        return self.snapshot()[mark:]

    def mark(self) -> int:
        with self._lock:
            return len(self.events)

    def wait_for(
        self, predicate: Callable[[str, dict[str, Any]], bool], timeout: float = 10.0
    ) -> int:
        """Until an event matching `predicate` arrives; the index just after it."""

        def seen() -> int | None:
            for index, (topic, message) in enumerate(self.snapshot()):
                if predicate(topic, message):
                    return index + 1
            return None

        return wait_until(seen, timeout, what="an event")


def pids_by_action(events: list[tuple[str, dict[str, Any]]], action: str) -> Counter[int]:
    """How many `action` events (reap, spawn, kill) each process_pid got."""
    return Counter(
        int(message["process_pid"])
        for topic, message in events
        if topic.endswith(f".{action}") and "process_pid" in message
    )


# ---- long variants ----------------------------------------------------------------------------
LONG = bool(os.environ.get("BIGTOP_FAULTS_LONG"))


def scaled(suite: T, long: T) -> T:
    """The suite's size of a fault test, or the long one under BIGTOP_FAULTS_LONG=1."""
    return long if LONG else suite


# ---- figures ----------------------------------------------------------------------------------
def report(fault: str, **figures: Any) -> None:
    """Record what a fault test measured (always printed; -s shows it)."""
    line = json.dumps({"fault": fault, **figures}, sort_keys=True)
    print(line)
    target = os.environ.get("BIGTOP_FAULTS_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
