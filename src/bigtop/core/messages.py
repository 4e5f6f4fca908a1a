"""Typed inputs to the watcher core (events) and its outputs (actions). All frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bigtop.core.policy import ExitStatus


# ---- events: what happened, fed to `WatcherCore.feed(event, now)` ----------------------
@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class Stop:
    """Stop every process gracefully; the watcher ends `stopped`."""


@dataclass(frozen=True)
class Scale:
    numprocesses: int


@dataclass(frozen=True)
class Spawned:
    wid: int
    pid: int
    max_age_jitter: float = 0.0  # the runtime draws it, so the core stays deterministic


@dataclass(frozen=True)
class SpawnFailed:
    wid: int
    reason: str
    fatal: bool = False  # a hook refused the spawn and asks the watcher to stop


@dataclass(frozen=True)
class Exited:
    pid: int
    status: ExitStatus


@dataclass(frozen=True)
class KillProcess:
    """Stop one process gracefully (the `kill` command); it is replaced per the policy."""

    pid: int
    graceful_timeout: float | None = None
    signum: int | None = None


@dataclass(frozen=True)
class ProcessReady:
    """The process passed its ready_check."""

    pid: int


@dataclass(frozen=True)
class Unhealthy:
    """The process failed its health_check health_threshold times in a row."""

    pid: int
    reason: str = "unhealthy"


@dataclass(frozen=True)
class Reload:
    """Graceful reload: start a new set of processes, then stop the old ones."""


@dataclass(frozen=True)
class Release:
    """The watcher was removed without stopping its processes (`rm` with `nostop`): they
    run on until they end, and none is replaced, restarted, aged out or health-checked.
    A `Stop` still stops them (the daemon does so when it stops)."""


@dataclass(frozen=True)
class Tick:
    """Timers may be due; the runtime feeds this at `next_wakeup()`."""


Event = (
    Start
    | Stop
    | Scale
    | Spawned
    | SpawnFailed
    | Exited
    | KillProcess
    | ProcessReady
    | Unhealthy
    | Reload
    | Release
    | Tick
)


# ---- actions: what the runtime must do --------------------------------------------------
@dataclass(frozen=True)
class SpawnProcess:
    wid: int


@dataclass(frozen=True)
class SendStopSignal:
    pid: int
    signum: int


@dataclass(frozen=True)
class CheckReadiness:
    """Start probing the process's ready_check until it passes (then feed ProcessReady)."""

    pid: int


@dataclass(frozen=True)
class KillTree:
    """SIGKILL the process and every descendant (graceful_timeout ran out)."""

    pid: int


@dataclass(frozen=True)
class Resumed:
    """The watcher starts again by itself (a retry after flapping): open its streams and
    count it as running, as a start command would."""


@dataclass(frozen=True)
class StartCompleted:
    """Every slot had its first spawn: run after_start."""


@dataclass(frozen=True)
class StopCompleted:
    """The last process is gone: run after_stop, close streams."""

    reason: str


@dataclass(frozen=True)
class Publish:
    """An event for the bus, Circus topic `watcher.<name>.<action>`."""

    action: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LogMessage:
    level: str
    message: str


Action = (
    SpawnProcess
    | SendStopSignal
    | KillTree
    | CheckReadiness
    | Resumed
    | StartCompleted
    | StopCompleted
    | Publish
    | LogMessage
)
