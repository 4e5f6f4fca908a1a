"""What the dashboard shows, computed from the daemon's replies and events (pure).

Nothing here does I/O or reads the clock: replies, events and times come in as arguments,
JSON-ready dicts go out. The hub feeds it; the unit tests feed it by hand.
"""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SERIES_POINTS = 120  # two minutes at one point a second
HISTORY_LENGTH = 50  # process ends kept per watcher when they come from events
EVENT_FEED_LENGTH = 200
LOG_BATCH_LINES = 500  # at most this many lines in one websocket message
LOG_LINE_CHARS = 4096
_UNITS = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


# ---- figures ----------------------------------------------------------------------------
def parse_size(text: Any) -> int | None:
    """Bytes from Circus's human sizes ("9.91M", "512B"); None for "N/A" or garbage."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str) or not text or text[-1] not in _UNITS:
        return None
    try:
        return int(float(text[:-1]) * _UNITS[text[-1]])
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class Series:
    """The last `capacity` (time, cpu, memory) points, as uPlot's columns; fixed memory."""

    __slots__ = ("cpu", "mem", "times")

    def __init__(self, capacity: int = SERIES_POINTS) -> None:
        self.times: deque[float] = deque(maxlen=capacity)
        self.cpu: deque[float | None] = deque(maxlen=capacity)
        self.mem: deque[int | None] = deque(maxlen=capacity)

    def append(self, when: float, cpu: float | None, mem: int | None) -> None:
        self.times.append(when)
        self.cpu.append(cpu)
        self.mem.append(mem)

    def columns(self) -> list[list[Any]]:
        return [list(self.times), list(self.cpu), list(self.mem)]

    def __len__(self) -> int:
        return len(self.times)


@dataclass(frozen=True, slots=True)
class ProcessView:
    pid: int
    wid: int | None
    state: str
    cpu: float | None  # percent of one core, the process and its direct children
    mem: int | None  # resident bytes, the process and its direct children
    age: float | None
    restarts: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "wid": self.wid,
            "state": self.state,
            "cpu": self.cpu,
            "mem": self.mem,
            "age": None if self.age is None else round(self.age, 1),
            "restarts": self.restarts,
        }


@dataclass(frozen=True, slots=True)
class WatcherView:
    name: str
    state: str
    processes: tuple[ProcessView, ...]

    @property
    def cpu(self) -> float | None:
        known = [p.cpu for p in self.processes if p.cpu is not None]
        return round(sum(known), 1) if known or not self.processes else None

    @property
    def mem(self) -> int | None:
        known = [p.mem for p in self.processes if p.mem is not None]
        return sum(known) if known or not self.processes else None

    @property
    def restarts(self) -> int:
        return sum(p.restarts for p in self.processes)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "n": len(self.processes),
            "cpu": self.cpu,
            "mem": self.mem,
            "restarts": self.restarts,
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    time: float
    watchers: tuple[WatcherView, ...]

    def watcher(self, name: str) -> WatcherView | None:
        return next((w for w in self.watchers if w.name == name), None)


def process_view(pid: int, info: Any, state: str | None) -> ProcessView:
    """One process from a `stats` entry (a dict, or a string when it could not be read)."""
    if not isinstance(info, dict):
        return ProcessView(pid, None, state or "unknown", None, None, None, 0)
    cpu = _number(info.get("cpu"))
    mem = parse_size(info.get("rss", info.get("mem_info1")))
    for child in info.get("children") or []:
        if isinstance(child, dict):
            child_cpu, child_mem = _number(child.get("cpu")), parse_size(child.get("mem_info1"))
            cpu = None if cpu is None or child_cpu is None else cpu + child_cpu
            mem = None if mem is None or child_mem is None else mem + child_mem
    wid = info.get("wid")
    restarts = info.get("restarts")
    return ProcessView(
        pid=pid,
        wid=wid if isinstance(wid, int) else None,
        state=state or str(info.get("state") or "running"),
        cpu=None if cpu is None else round(cpu, 1),
        mem=mem,
        age=_number(info.get("age")),
        restarts=restarts if isinstance(restarts, int) else 0,
    )


def snapshot(status: Mapping[str, Any], stats: Mapping[str, Any], now: float) -> Snapshot:
    """Every watcher, from a `status` reply (with `processes: true` where the daemon knows
    it) and a `stats` reply, taken at `now`."""
    statuses = status.get("statuses") or {}
    states = status.get("processes") or {}
    infos = stats.get("infos") or {}
    watchers = []
    for name in sorted(set(statuses) | set(infos)):
        per_pid = infos.get(name) or {}
        process_states = states.get(name) or {}
        processes = []
        for key, info in per_pid.items():
            try:
                pid = int(key)
            except (TypeError, ValueError):
                continue
            processes.append(process_view(pid, info, process_states.get(str(pid))))
        processes.sort(key=lambda p: (p.wid if p.wid is not None else 1 << 30, p.pid))
        state = str(statuses.get(name, "unknown"))
        watchers.append(WatcherView(name, state, tuple(processes)))
    return Snapshot(now, tuple(watchers))


# ---- messages to the browser ------------------------------------------------------------
def tick_message(daemon: str, shot: Snapshot) -> dict[str, Any]:
    return {
        "type": "tick",
        "daemon": daemon,
        "t": shot.time,
        "up": True,
        "watchers": [w.summary() for w in shot.watchers],
    }


def down_message(daemon: str, error: str, now: float) -> dict[str, Any]:
    return {"type": "tick", "daemon": daemon, "t": now, "up": False, "error": error}


def procs_message(daemon: str, watcher: WatcherView, now: float) -> dict[str, Any]:
    return {
        "type": "procs",
        "daemon": daemon,
        "watcher": watcher.name,
        "t": now,
        "state": watcher.state,
        "processes": [p.as_dict() for p in watcher.processes],
    }


def log_message(daemon: str, watcher: str, lines: Iterable[Any], dropped: int) -> dict[str, Any]:
    """Lines `[time, watcher, pid, stream, text]`, the last LOG_BATCH_LINES of them, each
    cut to LOG_LINE_CHARS (a browser tab is not a log store)."""
    kept: deque[list[Any]] = deque(maxlen=LOG_BATCH_LINES)
    seen = 0
    for line in lines:
        seen += 1
        if isinstance(line, list | tuple) and len(line) == 5:
            when, name, pid, stream, text = line
            kept.append([when, name, pid, stream, str(text)[:LOG_LINE_CHARS]])
    dropped += max(0, seen - len(kept))
    message: dict[str, Any] = {"type": "log", "daemon": daemon, "watcher": watcher}
    message["lines"] = list(kept)
    if dropped:
        message["dropped"] = dropped
    return message


# ---- events and restart history ---------------------------------------------------------
def parse_topic(topic: str) -> tuple[str, str] | None:
    """("web", "reap") from "watcher.web.reap"; None for any other topic."""
    if not topic.startswith("watcher."):
        return None
    name, dot, action = topic[len("watcher.") :].rpartition(".")
    return (name, action) if dot and name and action else None


def event_message(daemon: str, topic: str, data: Mapping[str, Any]) -> dict[str, Any]:
    parsed = parse_topic(topic)
    watcher, action = parsed if parsed else (None, topic)
    return {
        "type": "event",
        "daemon": daemon,
        "topic": topic,
        "watcher": watcher,
        "action": action,
        "data": dict(data),
    }


def exit_reason(exit_code: int | None, asked_to_stop: bool) -> str:
    """Why a process ended, from what the event stream says (exit code or minus signal)."""
    if exit_code is None:
        what = "ended"
    elif exit_code < 0:
        try:
            what = f"killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            what = f"killed by signal {-exit_code}"
    else:
        what = f"exited with code {exit_code}"
    return f"stopped by bigtop ({what})" if asked_to_stop else what


class EventHistory:
    """Process ends per watcher, learnt from `kill` and `reap` events.

    Used only for daemons whose `status` has no `history` (circusd, older bigtop): it knows
    only what happened while the dashboard was listening.
    """

    def __init__(self, length: int = HISTORY_LENGTH) -> None:
        self.length = length
        self.entries: dict[str, deque[dict[str, Any]]] = {}
        self.killed: dict[tuple[str, int], float] = {}

    def feed(self, topic: str, data: Mapping[str, Any]) -> str | None:
        """The watcher whose history changed, if any."""
        parsed = parse_topic(topic)
        pid = data.get("process_pid")
        if parsed is None or not isinstance(pid, int):
            return None
        watcher, action = parsed
        if action == "kill":
            if len(self.killed) >= 10_000:  # reaps never came: forget the oldest
                self.killed.pop(next(iter(self.killed)))
            self.killed[(watcher, pid)] = _number(data.get("time")) or 0.0
            return None
        if action != "reap":
            return None
        asked = self.killed.pop((watcher, pid), None) is not None
        code = data.get("exit_code")
        code = code if isinstance(code, int) else None
        entry = {
            "time": _number(data.get("time")),
            "pid": pid,
            "exit_code": code if code is None or code >= 0 else None,
            "signal": -code if code is not None and code < 0 else None,
            "reason": exit_reason(code, asked),
        }
        self.entries.setdefault(watcher, deque(maxlen=self.length)).append(entry)
        return watcher

    def history(self, watcher: str) -> list[dict[str, Any]]:
        return list(self.entries.get(watcher.lower(), ()))

    def forget(self, watcher: str) -> None:
        self.entries.pop(watcher.lower(), None)


def history_message(daemon: str, watcher: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "history", "daemon": daemon, "watcher": watcher, "entries": entries}


# ---- sockets ----------------------------------------------------------------------------
def tcp_activity(table: str, port: int) -> dict[str, int]:
    """From /proc/net/tcp (or tcp6) text: connections established to `port`, and those
    waiting in its listening socket's accept queue (what `ss -lt` shows as Recv-Q)."""
    established = waiting = 0
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5 or ":" not in fields[1]:
            continue
        try:
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            rx_queue = int(fields[4].split(":")[1], 16)
        except (ValueError, IndexError):
            continue
        if local_port != port:
            continue
        if fields[3] == "0A":  # LISTEN
            waiting += rx_queue
        elif fields[3] == "01":  # ESTABLISHED
            established += 1
    return {"connections": established, "waiting": waiting}


# ---- endpoints on the command line ------------------------------------------------------
def split_label(argument: str) -> tuple[str | None, str]:
    """`prod=tcp://10.0.0.5:5555` names a daemon "prod"; a bare endpoint has no label."""
    label, equals, endpoint = argument.partition("=")
    if equals and label and not any(c in label for c in ":/"):
        return label, endpoint
    return None, argument
