"""Prometheus metrics of a bigtop daemon, in the text exposition format (version 0.0.4).

Two steps, so any server can mount `/metrics` (the web dashboard, the prometheus plugin):

    snapshot = await collect(client, restarts)   # status, stats and dstats over the control API
    text = render(snapshot)                      # pure: Snapshot -> exposition text

`RestartCounter` turns the pub/sub event stream into restart counts by watcher and reason;
whoever serves the metrics feeds it the events it receives (`counter.feed(topic, message)`),
so counts start when that server starts, as Prometheus counters may. Nothing here needs
aiohttp or prometheus_client: the exposition is written by hand, and the tests read it back
with prometheus_client's own parser.

Figures are the ones `bigtop stats` shows: memory comes from the same `mem_info1` strings
(two decimals of MiB/GiB, so within 0.5 %), CPU percent is measured since the previous
`stats` call, whoever made it.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from bigtop.core.policy import ExitStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WATCHER_STATES = ("active", "starting", "stopping", "stopped")
PROCESS_STATES = ("starting", "ready", "unhealthy", "stopping")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPEZY]?)B?\s*$", re.IGNORECASE)
_UNITS = "KMGTPEZY"


# ---- figures as the daemon writes them ------------------------------------------------------
def human_bytes(text: Any) -> int | None:
    """`9.91M` -> 10391388, `512B` -> 512 (powers of 1024, as Circus writes sizes); None
    for N/A or anything unreadable."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str):
        return None
    match = _SIZE.match(text)
    if match is None:
        return None
    unit = match.group(2).upper()
    power = _UNITS.index(unit) + 1 if unit else 0
    return int(float(match.group(1)) * 1024**power)


def cpu_seconds(text: Any) -> float | None:
    """Circus's `ctime` (`M:SS.cc`, user + system CPU time) in seconds."""
    if not isinstance(text, str) or ":" not in text:
        return None
    minutes, _, seconds = text.partition(":")
    try:
        return int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# ---- the snapshot ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessFigures:
    watcher: str
    pid: int
    wid: int | None
    state: str  # starting, ready, unhealthy or stopping
    cpu_percent: float | None
    cpu_seconds: float | None
    rss_bytes: int | None
    memory_percent: float | None
    uptime: float | None


@dataclass(frozen=True)
class WatcherFigures:
    name: str
    status: str  # active, starting, stopping, stopped
    processes: tuple[ProcessFigures, ...] = ()


@dataclass(frozen=True)
class DaemonFigures:
    pid: int | None
    cpu_percent: float | None
    cpu_seconds: float | None
    rss_bytes: int | None
    memory_percent: float | None
    uptime: float | None


@dataclass(frozen=True)
class Snapshot:
    watchers: tuple[WatcherFigures, ...]
    daemon: DaemonFigures | None = None
    restarts: dict[tuple[str, str], int] = field(default_factory=dict)  # (watcher, reason)


def _process(watcher: str, pid: str, info: dict[str, Any]) -> ProcessFigures:
    wid = info.get("wid")
    state = info.get("state")
    return ProcessFigures(
        watcher=watcher,
        pid=int(pid),
        wid=wid if isinstance(wid, int) else None,
        state=state if isinstance(state, str) else "ready",
        cpu_percent=_number(info.get("cpu")),
        cpu_seconds=cpu_seconds(info.get("ctime")),
        rss_bytes=human_bytes(info.get("mem_info1")),
        memory_percent=_number(info.get("mem")),
        uptime=_number(info.get("age")),
    )


def snapshot_from(
    status: dict[str, Any],
    stats: dict[str, Any],
    dstats: dict[str, Any] | None = None,
    restarts: dict[tuple[str, str], int] | None = None,
) -> Snapshot:
    """A snapshot from the replies to `status`, `stats` and `dstats` (as the API sends them)."""
    statuses: dict[str, Any] = status.get("statuses") or {}
    infos: dict[str, Any] = stats.get("infos") or {}
    watchers = []
    for name in sorted(set(statuses) | set(infos)):
        processes = infos.get(name)
        found = []
        if isinstance(processes, dict):
            for pid, info in processes.items():
                if isinstance(info, dict) and str(pid).isdigit():
                    found.append(_process(name, str(pid), info))
        found.sort(key=lambda p: p.pid)
        watchers.append(WatcherFigures(name, str(statuses.get(name, "active")), tuple(found)))
    daemon = None
    info = (dstats or {}).get("info")
    if isinstance(info, dict) and info:
        pid = info.get("pid")
        daemon = DaemonFigures(
            pid=pid if isinstance(pid, int) else None,
            cpu_percent=_number(info.get("cpu")),
            cpu_seconds=cpu_seconds(info.get("ctime")),
            rss_bytes=human_bytes(info.get("mem_info1")),
            memory_percent=_number(info.get("mem")),
            uptime=_number(info.get("age")),
        )
    return Snapshot(tuple(watchers), daemon, dict(restarts or {}))


class Caller(Protocol):
    async def call(self, command: str, **properties: Any) -> dict[str, Any]: ...


async def collect(client: Caller, restarts: RestartCounter | None = None) -> Snapshot:
    """Ask the daemon (one request at a time: a client matches one reply per request)."""
    status = await client.call("status")
    stats = await client.call("stats")
    dstats = await client.call("dstats")
    return snapshot_from(status, stats, dstats, restarts.counts if restarts else None)


# ---- restarts from the event stream ---------------------------------------------------------
class RestartCounter:
    """Processes that ended without being asked to, by watcher and reason.

    A `reap` not preceded by a `kill` of that pid is a process that ended on its own
    (reason "exited with code N" or "killed by signal N"); one preceded by an `unhealthy`
    event failed its health or readiness check (reason "unhealthy"). Processes stopped on
    request (stop, reload, decr, kill, max_age) are not counted. These are the processes the
    daemon restarts, unless the watcher's `respawn` says otherwise.
    """

    MAX_TRACKED = 10_000  # pids asked to stop whose reap we have not seen (lost events)

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self._asked: OrderedDict[int, str | None] = OrderedDict()

    def feed(self, topic: str, message: dict[str, Any]) -> None:
        if not topic.startswith("watcher."):
            return
        watcher, _, action = topic.removeprefix("watcher.").rpartition(".")
        pid = message.get("process_pid")
        if not isinstance(pid, int):
            return
        if action == "unhealthy":
            self._remember(pid, "unhealthy")
        elif action == "kill":
            if pid not in self._asked:
                self._remember(pid, None)
        elif action == "reap":
            if pid in self._asked:
                reason = self._asked.pop(pid)
            else:
                reason = _exit_reason(message.get("exit_code"))
            if reason is not None:
                key = (watcher, reason)
                self.counts[key] = self.counts.get(key, 0) + 1

    def _remember(self, pid: int, reason: str | None) -> None:
        self._asked[pid] = reason
        self._asked.move_to_end(pid)
        while len(self._asked) > self.MAX_TRACKED:
            self._asked.popitem(last=False)


def _exit_reason(exit_code: Any) -> str:
    if not isinstance(exit_code, int):
        return "ended"
    if exit_code < 0:
        return ExitStatus(signal=-exit_code).describe()
    return ExitStatus(code=exit_code).describe()


# ---- the exposition format ------------------------------------------------------------------
def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(value: float | int) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    return str(value)


Sample = tuple[dict[str, str], float | int | None]


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        rows = [(labels, value) for labels, value in samples if value is not None]
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in rows:
            assert value is not None
            if labels:
                inner = ",".join(f'{key}="{_escape(text)}"' for key, text in labels.items())
                self.lines.append(f"{name}{{{inner}}} {_value(value)}")
            else:
                self.lines.append(f"{name} {_value(value)}")


def _each_process(snapshot: Snapshot) -> Iterator[tuple[dict[str, str], ProcessFigures]]:
    for watcher in snapshot.watchers:
        for process in watcher.processes:
            labels = {"watcher": watcher.name, "pid": str(process.pid)}
            labels["wid"] = "" if process.wid is None else str(process.wid)
            yield labels, process


def render(snapshot: Snapshot) -> str:
    """The snapshot as Prometheus text (exposition format 0.0.4)."""
    out = _Writer()
    daemon = snapshot.daemon
    if daemon is not None:
        out.family(
            "bigtop_daemon_cpu_percent",
            "gauge",
            "CPU use of the daemon, percent of one core",
            [({}, daemon.cpu_percent)],
        )
        out.family(
            "bigtop_daemon_cpu_seconds_total",
            "counter",
            "CPU time (user + system) used by the daemon",
            [({}, daemon.cpu_seconds)],
        )
        out.family(
            "bigtop_daemon_memory_rss_bytes",
            "gauge",
            "Resident memory of the daemon",
            [({}, daemon.rss_bytes)],
        )
        out.family(
            "bigtop_daemon_uptime_seconds",
            "gauge",
            "Seconds since the daemon started",
            [({}, daemon.uptime)],
        )
    processes = list(_each_process(snapshot))
    out.family("bigtop_watchers", "gauge", "Watchers defined", [({}, len(snapshot.watchers))])
    out.family(
        "bigtop_processes",
        "gauge",
        "Processes running, all watchers together",
        [({}, len(processes))],
    )
    out.family(
        "bigtop_watcher_state",
        "gauge",
        "1 for the watcher's current state (active, starting, stopping, stopped), else 0",
        [
            ({"watcher": w.name, "state": state}, int(w.status == state))
            for w in snapshot.watchers
            for state in WATCHER_STATES
        ],
    )
    out.family(
        "bigtop_watcher_processes",
        "gauge",
        "Processes running",
        [({"watcher": w.name}, len(w.processes)) for w in snapshot.watchers],
    )
    out.family(
        "bigtop_watcher_ready_processes",
        "gauge",
        "Processes that passed their ready_check (all of them when there is none)",
        [
            ({"watcher": w.name}, sum(p.state == "ready" for p in w.processes))
            for w in snapshot.watchers
        ],
    )
    out.family(
        "bigtop_watcher_cpu_percent",
        "gauge",
        "CPU use of the watcher's processes together, percent of one core",
        [
            ({"watcher": w.name}, _sum(p.cpu_percent for p in w.processes))
            for w in snapshot.watchers
        ],
    )
    out.family(
        "bigtop_watcher_memory_rss_bytes",
        "gauge",
        "Resident memory of the watcher's processes together",
        [({"watcher": w.name}, _sum(p.rss_bytes for p in w.processes)) for w in snapshot.watchers],
    )
    out.family(
        "bigtop_watcher_restarts_total",
        "counter",
        "Processes that ended on their own or failed their health check, by reason, since "
        "this exporter started (the daemon restarts them unless respawn says otherwise)",
        [
            ({"watcher": watcher, "reason": reason}, count)
            for (watcher, reason), count in sorted(snapshot.restarts.items())
        ],
    )
    out.family(
        "bigtop_process_cpu_percent",
        "gauge",
        "CPU use since the previous stats request, percent of one core",
        [(labels, p.cpu_percent) for labels, p in processes],
    )
    out.family(
        "bigtop_process_cpu_seconds_total",
        "counter",
        "CPU time (user + system) used",
        [(labels, p.cpu_seconds) for labels, p in processes],
    )
    out.family(
        "bigtop_process_memory_rss_bytes",
        "gauge",
        "Resident memory",
        [(labels, p.rss_bytes) for labels, p in processes],
    )
    out.family(
        "bigtop_process_memory_percent",
        "gauge",
        "Resident memory, percent of RAM",
        [(labels, p.memory_percent) for labels, p in processes],
    )
    out.family(
        "bigtop_process_uptime_seconds",
        "gauge",
        "Seconds since the process started",
        [(labels, p.uptime) for labels, p in processes],
    )
    out.family(
        "bigtop_process_ready",
        "gauge",
        "1 when the process is ready, else 0",
        [(labels, int(p.state == "ready")) for labels, p in processes],
    )
    out.family(
        "bigtop_process_state",
        "gauge",
        "1 for the process's current state (starting, ready, unhealthy, stopping), else 0",
        [
            ({**labels, "state": state}, int(p.state == state))
            for labels, p in processes
            for state in PROCESS_STATES
        ],
    )
    return "\n".join(out.lines) + "\n"


def _sum(values: Iterable[float | int | None]) -> float | int:
    return sum(v for v in values if v is not None)


async def scrape(client: Caller, restarts: RestartCounter | None = None) -> str:
    """collect + render, for a handler that serves `/metrics`."""
    return render(await collect(client, restarts))
