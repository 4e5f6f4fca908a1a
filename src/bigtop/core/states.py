"""Process and watcher lifecycles as transition tables (h11 style).

Every state change in the core goes through `advance`, so an impossible transition is a
loud `InvalidTransition` rather than silently corrupt state. The tables double as docs:

    process:  running --stop--> stopping --exit--> exited
              running --exit--> exited
              stopping --grace_expired--> stopping (SIGKILL sent)

    watcher:  stopped --start--> starting --started--> active
              starting|active --stop--> stopping --stopped--> stopped
              starting|active --flapped--> stopped (retried later when configured)
              starting|active --finished--> stopped (every process ended and none respawns)
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar


class ProcessState(StrEnum):
    RUNNING = "running"
    STOPPING = "stopping"
    EXITED = "exited"


class WatcherStatus(StrEnum):
    """Circus's status strings, as the control protocol reports them."""

    STOPPED = "stopped"
    STARTING = "starting"
    ACTIVE = "active"
    STOPPING = "stopping"


class InvalidTransition(RuntimeError):
    def __init__(self, state: StrEnum, event: str) -> None:
        super().__init__(f"no transition from {state.value!r} on {event!r}")
        self.state = state
        self.event = event


PROCESS_TRANSITIONS: dict[ProcessState, dict[str, ProcessState]] = {
    ProcessState.RUNNING: {"stop": ProcessState.STOPPING, "exit": ProcessState.EXITED},
    ProcessState.STOPPING: {
        "exit": ProcessState.EXITED,
        "grace_expired": ProcessState.STOPPING,
        "stop": ProcessState.STOPPING,
    },
    ProcessState.EXITED: {},
}

WATCHER_TRANSITIONS: dict[WatcherStatus, dict[str, WatcherStatus]] = {
    WatcherStatus.STOPPED: {"start": WatcherStatus.STARTING, "stop": WatcherStatus.STOPPED},
    WatcherStatus.STARTING: {
        "started": WatcherStatus.ACTIVE,
        "stop": WatcherStatus.STOPPING,
        "flapped": WatcherStatus.STOPPING,
        "finished": WatcherStatus.STOPPED,
        "start": WatcherStatus.STARTING,
    },
    WatcherStatus.ACTIVE: {
        "stop": WatcherStatus.STOPPING,
        "flapped": WatcherStatus.STOPPING,
        "finished": WatcherStatus.STOPPED,
        "start": WatcherStatus.ACTIVE,
    },
    WatcherStatus.STOPPING: {
        "stopped": WatcherStatus.STOPPED,
        "stop": WatcherStatus.STOPPING,
        "start": WatcherStatus.STARTING,
    },
}

S = TypeVar("S", ProcessState, WatcherStatus)


def advance(table: dict[S, dict[str, S]], state: S, event: str) -> S:
    try:
        return table[state][event]
    except KeyError:
        raise InvalidTransition(state, event) from None
