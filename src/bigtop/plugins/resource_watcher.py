"""ResourceWatcher: restart a process that uses too much (or too little) CPU or memory.

Every `loop_rate` seconds it reads `stats` of one watcher and checks each process against
the limits; a process that breaks a limit more than `max_count` checks in a row is
restarted (killed gracefully with the `kill` command; its watcher starts a new one). With
`process_children = true`, each process's children are checked too and a child over its
limits gets `child_signal`. Options are Circus's:

| option | default | |
|---|---|---|
| `watcher` (old name `service`) | required | the watcher to check |
| `loop_rate` | 60 | seconds between checks |
| `max_cpu` / `min_cpu` | 90 / none | CPU percent (of one core) |
| `max_mem` / `min_mem` | 90 / none | a plain number is percent of RAM; `250M`, `1G` are sizes |
| `health_threshold` | 75 | (CPU % + memory %) / 2 above it is unhealthy |
| `max_count` | 3 | violations in a row tolerated; one more restarts |
| `process_children`, `child_signal` | false, SIGTERM | check children too, and how to stop one |

Statsd increments `_resource_watcher.<watcher>.{over_cpu,under_cpu,over_memory,
under_memory,over_health,restarting,error}` go to the statsd options (host, port, ...).

Differences from Circus: each process is judged on its own and only the offending process
is restarted (Circus restarts the whole watcher when any one is over); a figure the daemon
cannot read (N/A) breaks no limit (Circus takes it as 100 %); `min_mem` with a unit is a
size (Circus took it as a percentage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bigtop.metrics import human_bytes
from bigtop.plugins.base import PluginContext, ignore_failures
from bigtop.plugins.options import Threshold
from bigtop.plugins.statsd import Observer

NINETY_PERCENT = Threshold(90.0, percent=True)
CHECKS = ("over_cpu", "under_cpu", "over_memory", "under_memory", "over_health")


@dataclass(frozen=True)
class Limits:
    max_cpu: float | None = 90.0
    min_cpu: float | None = None
    max_mem: Threshold | None = NINETY_PERCENT
    min_mem: Threshold | None = None
    health_threshold: float | None = 75.0
    max_count: int = 3

    def broken(self, info: dict[str, Any]) -> list[str]:
        """The limits one process (a `stats` entry) breaks now."""
        cpu = _number(info.get("cpu"))
        percent = _number(info.get("mem"))
        rss = human_bytes(info.get("mem_info1"))
        found = []
        if self.max_cpu and cpu is not None and cpu > self.max_cpu:
            found.append("over_cpu")
        if self.min_cpu is not None and cpu is not None and cpu <= self.min_cpu:
            found.append("under_cpu")
        if self.max_mem is not None and self.max_mem.exceeded_by(percent, rss):
            found.append("over_memory")
        if self.min_mem is not None and self.min_mem.undercut_by(percent, rss):
            found.append("under_memory")
        if (
            self.health_threshold
            and cpu is not None
            and percent is not None
            and (cpu + percent) / 2 > self.health_threshold
        ):
            found.append("over_health")
        return found


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass
class Violations:
    """Consecutive violations of each limit, per process. Pure."""

    limits: Limits
    counts: dict[int, dict[str, int]] = field(default_factory=dict)

    def check(self, processes: dict[int, dict[str, Any]]) -> tuple[list[int], list[str]]:
        """Count this round; (pids to restart, the limits broken this round, for statsd)."""
        for gone in set(self.counts) - set(processes):
            del self.counts[gone]
        restart: list[int] = []
        broken_now: list[str] = []
        for pid, info in sorted(processes.items()):
            counts = self.counts.setdefault(pid, dict.fromkeys(CHECKS, 0))
            broken = self.limits.broken(info)
            broken_now += broken
            for check in CHECKS:
                counts[check] = counts[check] + 1 if check in broken else 0
            if max(counts.values()) > self.limits.max_count:
                restart.append(pid)
                del self.counts[pid]  # a fresh count for whatever replaces it
        return restart, broken_now


def processes_of(stats: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(pid): info for pid, info in stats.items() if isinstance(info, dict)}


def children_of(stats: dict[str, Any]) -> dict[int, tuple[int, dict[str, Any]]]:
    """child pid -> (parent pid, child's figures)."""
    found: dict[int, tuple[int, dict[str, Any]]] = {}
    for pid, info in processes_of(stats).items():
        for child in info.get("children") or []:
            if isinstance(child, dict) and isinstance(child.get("pid"), int):
                found[child["pid"]] = (pid, child)
    return found


class ResourceWatcher(Observer):
    name = "resource_watcher"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        options = self.options
        watcher = options.optional_text("watcher") or options.optional_text("service")
        if watcher is None:
            raise options.missing("watcher", "name the watcher to check, e.g. watcher = web")
        self.watcher = watcher
        limits = Limits(
            max_cpu=options.number("max_cpu", 90.0),
            min_cpu=options.optional_number("min_cpu"),
            max_mem=options.threshold("max_mem", 90.0),
            min_mem=options.threshold("min_mem", None),
            health_threshold=options.number("health_threshold", 75.0),
            max_count=options.integer("max_count", 3, minimum=0),
        )
        self.processes = Violations(limits)
        self.children = Violations(limits)
        self.process_children = options.boolean("process_children", False)
        self.child_signal = options.signal("child_signal", 15)

    def _count(self, what: str) -> None:
        self.statsd.increment(f"_resource_watcher.{self.watcher}.{what}")

    async def look_after(self) -> None:
        reply = await ignore_failures(self, "stats", self.call("stats", name=self.watcher))
        if reply is None:
            self._count("error")
            return
        stats = reply.get("info") or {}
        restart, broken = self.processes.check(processes_of(stats))
        for what in broken:
            self._count(what)
        for pid in restart:
            self._count("restarting")
            self.log.warning(
                "%s: process %d broke its limits %d times in a row; restarting it",
                self.watcher,
                pid,
                self.processes.limits.max_count + 1,
            )
            await ignore_failures(
                self, f"kill {pid}", self.call("kill", name=self.watcher, pid=pid)
            )
        if self.process_children:
            await self._look_after_children(stats)

    async def _look_after_children(self, stats: dict[str, Any]) -> None:
        children = children_of(stats)
        restart, broken = self.children.check({pid: info for pid, (_, info) in children.items()})
        for what in broken:
            self._count(what)
        for child in restart:
            parent = children[child][0]
            self._count("restarting")
            self.log.warning(
                "%s: child %d of %d broke its limits; sending signal %s",
                self.watcher,
                child,
                parent,
                self.child_signal,
            )
            await ignore_failures(
                self,
                f"signal {child}",
                self.call(
                    "signal",
                    name=self.watcher,
                    pid=parent,
                    childpid=child,
                    signum=self.child_signal,
                ),
            )
