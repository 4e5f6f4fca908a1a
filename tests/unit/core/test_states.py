"""The transition tables: every allowed pair, and a loud error for the rest."""

from __future__ import annotations

import pytest

from bigtop.core.states import (
    PROCESS_TRANSITIONS,
    WATCHER_TRANSITIONS,
    InvalidTransition,
    ProcessState,
    WatcherStatus,
    advance,
)

RUNNING, STOPPING, EXITED = ProcessState.RUNNING, ProcessState.STOPPING, ProcessState.EXITED
W_STOPPED = WatcherStatus.STOPPED
W_STARTING = WatcherStatus.STARTING
W_ACTIVE = WatcherStatus.ACTIVE
W_STOPPING = WatcherStatus.STOPPING

PROCESS_CASES = [
    (RUNNING, "stop", STOPPING),
    (RUNNING, "exit", EXITED),
    (STOPPING, "exit", EXITED),
    (STOPPING, "grace_expired", STOPPING),
    (STOPPING, "stop", STOPPING),
]

WATCHER_CASES = [
    (W_STOPPED, "start", W_STARTING),
    (W_STOPPED, "stop", W_STOPPED),
    (W_STARTING, "started", W_ACTIVE),
    (W_STARTING, "stop", W_STOPPING),
    (W_STARTING, "flapped", W_STOPPING),
    (W_STARTING, "finished", W_STOPPED),
    (W_STARTING, "start", W_STARTING),
    (W_ACTIVE, "stop", W_STOPPING),
    (W_ACTIVE, "flapped", W_STOPPING),
    (W_ACTIVE, "finished", W_STOPPED),
    (W_ACTIVE, "start", W_ACTIVE),
    (W_STOPPING, "stopped", W_STOPPED),
    (W_STOPPING, "stop", W_STOPPING),
    (W_STOPPING, "start", W_STARTING),
]

PROCESS_EVENTS = ["stop", "exit", "grace_expired", "start", "spawned"]
WATCHER_EVENTS = ["start", "started", "stop", "stopped", "flapped", "finished", "reload"]


def test_status_strings_are_circus_ones() -> None:
    assert [s.value for s in WatcherStatus] == ["stopped", "starting", "active", "stopping"]
    assert [s.value for s in ProcessState] == ["running", "stopping", "exited"]


@pytest.mark.parametrize(("state", "event", "expected"), PROCESS_CASES)
def test_process_transitions(state: ProcessState, event: str, expected: ProcessState) -> None:
    assert advance(PROCESS_TRANSITIONS, state, event) is expected


@pytest.mark.parametrize(("state", "event", "expected"), WATCHER_CASES)
def test_watcher_transitions(state: WatcherStatus, event: str, expected: WatcherStatus) -> None:
    assert advance(WATCHER_TRANSITIONS, state, event) is expected


def test_tables_hold_exactly_the_listed_transitions() -> None:
    process = {(s, e): t for s, row in PROCESS_TRANSITIONS.items() for e, t in row.items()}
    watcher = {(s, e): t for s, row in WATCHER_TRANSITIONS.items() for e, t in row.items()}
    assert process == {(s, e): t for s, e, t in PROCESS_CASES}
    assert watcher == {(s, e): t for s, e, t in WATCHER_CASES}
    assert set(PROCESS_TRANSITIONS) == set(ProcessState)
    assert set(WATCHER_TRANSITIONS) == set(WatcherStatus)


def test_exited_is_final() -> None:
    for event in PROCESS_EVENTS:
        with pytest.raises(InvalidTransition):
            advance(PROCESS_TRANSITIONS, EXITED, event)


@pytest.mark.parametrize(
    ("state", "event"),
    [(s, e) for s in ProcessState for e in PROCESS_EVENTS if e not in PROCESS_TRANSITIONS[s]],
)
def test_unknown_process_pairs_raise(state: ProcessState, event: str) -> None:
    with pytest.raises(InvalidTransition) as info:
        advance(PROCESS_TRANSITIONS, state, event)
    assert info.value.state is state
    assert info.value.event == event
    assert str(info.value) == f"no transition from {state.value!r} on {event!r}"


@pytest.mark.parametrize(
    ("state", "event"),
    [(s, e) for s in WatcherStatus for e in WATCHER_EVENTS if e not in WATCHER_TRANSITIONS[s]],
)
def test_unknown_watcher_pairs_raise(state: WatcherStatus, event: str) -> None:
    with pytest.raises(InvalidTransition) as info:
        advance(WATCHER_TRANSITIONS, state, event)
    assert info.value.state is state
    assert info.value.event == event


def test_invalid_transition_message() -> None:
    with pytest.raises(InvalidTransition, match=r"^no transition from 'stopped' on 'started'$"):
        advance(WATCHER_TRANSITIONS, W_STOPPED, "started")
    with pytest.raises(InvalidTransition, match=r"^no transition from 'running' on 'grace"):
        advance(PROCESS_TRANSITIONS, RUNNING, "grace_expired")


def test_invalid_transition_is_a_runtime_error() -> None:
    assert issubclass(InvalidTransition, RuntimeError)


def test_stopped_is_reachable_from_every_watcher_status() -> None:
    """Whatever happens, a stop request leads to `stopped` (through `stopping`)."""
    for state in WatcherStatus:
        after = advance(WATCHER_TRANSITIONS, state, "stop")
        if after is W_STOPPING:
            after = advance(WATCHER_TRANSITIONS, after, "stopped")
        assert after is W_STOPPED
