"""The watcher core, fed scripted histories with numbers as time.

The harness plays the runtime: it answers every `SpawnProcess` with `Spawned` (a fresh
pid) unless told otherwise, and feeds `Tick()` at `next_wakeup()`.
"""

from __future__ import annotations

from typing import Any

import pytest

from bigtop.config.model import BackoffConfig, FlappingConfig, WatcherConfig
from bigtop.core.messages import (
    Action,
    CheckReadiness,
    Event,
    Exited,
    KillProcess,
    KillTree,
    LogMessage,
    ProcessReady,
    Publish,
    Release,
    Reload,
    Resumed,
    Scale,
    SendStopSignal,
    Spawned,
    SpawnFailed,
    SpawnProcess,
    Start,
    StartCompleted,
    Stop,
    StopCompleted,
    Tick,
)
from bigtop.core.policy import ExitStatus
from bigtop.core.states import ProcessState, WatcherStatus
from bigtop.core.watcher import HistoryEntry, WatcherCore

ACTIVE, STARTING = WatcherStatus.ACTIVE, WatcherStatus.STARTING
STOPPED, STOPPING = WatcherStatus.STOPPED, WatcherStatus.STOPPING


def code(n: int) -> ExitStatus:
    return ExitStatus(code=n)


def sig(n: int) -> ExitStatus:
    return ExitStatus(signal=n)


def spawn(pid: int) -> Publish:
    return Publish("spawn", {"process_pid": pid})


def kill(pid: int) -> Publish:
    return Publish("kill", {"process_pid": pid})


def reap(pid: int, exit_code: int) -> Publish:
    return Publish("reap", {"process_pid": pid, "exit_code": exit_code})


def only(actions: list[Action], *types: type) -> list[Action]:
    return [a for a in actions if isinstance(a, types)]


def publishes(actions: list[Action]) -> list[str]:
    return [a.action for a in actions if isinstance(a, Publish)]


class Harness:
    def __init__(self, **options: Any) -> None:
        options.setdefault("name", "web")
        options.setdefault("cmd", "sleep 3600")
        self.core = WatcherCore(WatcherConfig(**options))
        self.now = 0.0
        self.next_pid = 101
        self.unanswered: list[int] = []  # SpawnProcess wids the harness did not answer

    # one event, exactly the actions it returns
    def feed(self, event: Event, at: float | None = None) -> list[Action]:
        if at is not None:
            assert at >= self.now, "time goes forward"
            self.now = at
        return self.core.feed(event, self.now)

    # one event, then answer every SpawnProcess like the runtime does (recursively)
    def run(self, event: Event, at: float | None = None, jitter: float = 0.0) -> list[Action]:
        actions = self.feed(event, at)
        out = list(actions)
        for action in actions:
            if isinstance(action, SpawnProcess):
                out += self.spawned(action.wid, jitter)
        return out

    def spawned(self, wid: int, jitter: float = 0.0) -> list[Action]:
        pid = self.next_pid
        self.next_pid += 1
        actions = self.core.feed(Spawned(wid, pid, jitter), self.now)
        out = list(actions)
        for action in actions:
            if isinstance(action, SpawnProcess):  # pragma: no cover - not expected
                out += self.spawned(action.wid, jitter)
        return out

    def tick(self, jitter: float = 0.0) -> list[Action]:
        """Advance to next_wakeup() and feed Tick there."""
        wakeup = self.core.next_wakeup()
        assert wakeup is not None, "nothing scheduled"
        return self.run(Tick(), at=max(wakeup, self.now), jitter=jitter)

    def pid(self, wid: int) -> int:
        pid = self.core.slots[wid].pid
        assert pid is not None
        return pid

    def exit(self, wid: int, status: ExitStatus, at: float) -> list[Action]:
        return self.run(Exited(self.pid(wid), status), at=at)

    @property
    def status(self) -> WatcherStatus:
        return self.core.status

    def pids_by_wid(self) -> dict[int, int | None]:
        return {wid: slot.pid for wid, slot in sorted(self.core.slots.items())}


def started(n: int = 1, **options: Any) -> Harness:
    """A watcher of n processes (pids 101..), all spawned at time 0, active."""
    h = Harness(numprocesses=n, **options)
    h.run(Start(), at=0.0)
    assert h.status is ACTIVE
    return h


# ==== start ====================================================================================
def test_start_spawns_numprocesses_with_wids_1_to_n() -> None:
    h = Harness(numprocesses=3)
    assert h.status is STOPPED
    assert h.feed(Start(), at=0.0) == [SpawnProcess(1), SpawnProcess(2), SpawnProcess(3)]
    assert h.status is STARTING
    assert h.feed(Spawned(1, 101)) == [spawn(101)]
    assert h.status is STARTING
    assert h.feed(Spawned(2, 102)) == [spawn(102)]
    assert h.feed(Spawned(3, 103)) == [spawn(103), StartCompleted(), Publish("start")]
    assert h.status is ACTIVE
    assert h.pids_by_wid() == {1: 101, 2: 102, 3: 103}
    assert h.core.running_pids() == [101, 102, 103]
    assert h.core.next_wakeup() is None
    assert repr(h.core) == "<Watcher web active 3/3 processes>"


def test_start_spawned_in_any_order() -> None:
    h = Harness(numprocesses=2)
    h.feed(Start(), at=0.0)
    assert h.feed(Spawned(2, 500)) == [spawn(500)]
    assert h.feed(Spawned(1, 400)) == [spawn(400), StartCompleted(), Publish("start")]
    assert h.pids_by_wid() == {1: 400, 2: 500}


def test_start_with_zero_processes_is_active_at_once() -> None:
    h = Harness(numprocesses=0)
    assert h.feed(Start(), at=0.0) == [StartCompleted(), Publish("start")]
    assert h.status is ACTIVE
    assert h.core.slots == {}


def test_start_twice_is_a_no_op() -> None:
    h = Harness(numprocesses=1)
    h.feed(Start(), at=0.0)
    assert h.feed(Start()) == []
    h.feed(Spawned(1, 101))
    assert h.feed(Start(), at=1.0) == []
    assert h.status is ACTIVE


def test_warmup_delay_spaces_spawns() -> None:
    h = Harness(numprocesses=3, warmup_delay=2.0)
    assert h.feed(Start(), at=10.0) == [SpawnProcess(1)]
    assert h.core.next_wakeup() == 12.0
    assert h.feed(Spawned(1, 101)) == [spawn(101)]
    assert h.feed(Tick(), at=11.0) == []
    assert h.core.next_wakeup() == 12.0
    assert h.feed(Tick(), at=12.0) == [SpawnProcess(2)]
    assert h.core.next_wakeup() == 14.0
    assert h.feed(Spawned(2, 102)) == [spawn(102)]
    assert h.feed(Tick(), at=14.0) == [SpawnProcess(3)]
    assert h.feed(Spawned(3, 103)) == [spawn(103), StartCompleted(), Publish("start")]
    assert h.core.next_wakeup() is None


def test_warmup_delay_also_spaces_respawns() -> None:
    h = Harness(numprocesses=2, warmup_delay=5.0)
    h.run(Start(), at=0.0)
    h.tick()
    assert h.now == 5.0
    assert h.status is ACTIVE
    # both die together: the first is replaced at once, the second waits for the warmup
    assert only(h.run(Exited(101, code(1)), at=20.0), SpawnProcess) == [SpawnProcess(1)]
    assert only(h.run(Exited(102, code(1)), at=20.0), SpawnProcess) == []
    assert h.core.next_wakeup() == 25.0
    assert only(h.tick(), SpawnProcess) == [SpawnProcess(2)]


# ==== unexpected exits and backoff ====================================================================
def test_first_unexpected_exit_respawns_at_once() -> None:
    h = started(1)
    actions = h.feed(Exited(101, code(2)), at=5.0)
    assert actions == [
        reap(101, 2),
        LogMessage(
            "warning", "watcher 'web': process 101 (wid 1) exited with code 2; restarting now"
        ),
        SpawnProcess(1),
    ]
    assert h.core.restarts == 1
    assert h.feed(Spawned(1, 102)) == [spawn(102)]  # no second "start"
    assert h.status is ACTIVE


def test_repeated_quick_deaths_back_off_doubling_up_to_max() -> None:
    h = started(1, backoff=BackoffConfig(initial=1.0, max=4.0, reset=10.0))
    delays = []
    for _ in range(6):
        spawned_at = h.now
        actions = h.exit(1, code(1), at=spawned_at + 0.5)
        if SpawnProcess(1) in actions:
            delays.append(0.0)
        else:
            wakeup = h.core.next_wakeup()
            assert wakeup is not None
            delays.append(wakeup - h.now)
            assert h.feed(Tick(), at=wakeup - 0.01) == []
            assert only(h.tick(), SpawnProcess) == [SpawnProcess(1)]
    assert delays == [0.0, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert h.core.slots[1].failures == 6
    assert h.core.restarts == 6


def test_backoff_log_message_names_the_delay() -> None:
    h = started(1, backoff=BackoffConfig(initial=0.5, max=30.0, reset=10.0))
    h.exit(1, code(1), at=1.0)
    actions = h.exit(1, sig(11), at=2.0)
    assert actions == [
        reap(102, -11),
        LogMessage(
            "warning",
            "watcher 'web': process 102 (wid 1) killed by SIGSEGV (11); restarting in 0.5s",
        ),
    ]
    assert h.core.next_wakeup() == 2.5


def test_a_stable_run_resets_the_backoff() -> None:
    h = started(1, backoff=BackoffConfig(initial=1.0, max=60.0, reset=10.0))
    for t in (1.0, 2.0, 4.0):  # three quick deaths: 0, 1, 2 s delays
        h.exit(1, code(1), at=t)
        if h.core.slots[1].pid is None:
            h.tick()
    assert h.core.slots[1].failures == 3
    started_at = h.now
    # up for exactly `reset` seconds: the next death is treated as the first
    actions = h.exit(1, code(1), at=started_at + 10.0)
    assert SpawnProcess(1) in actions
    assert h.core.slots[1].failures == 1
    # and the one after that waits `initial` again
    h.exit(1, code(1), at=h.now + 0.1)
    assert h.core.next_wakeup() == pytest.approx(h.now + 1.0)


def test_a_stable_run_ended_by_kill_resets_the_backoff() -> None:
    h = started(1, backoff=BackoffConfig(initial=1.0, max=60.0, reset=10.0))
    for t in (1.0, 2.0, 4.0):
        h.exit(1, code(1), at=t)
        if h.core.slots[1].pid is None:
            h.tick()
    assert h.core.slots[1].failures == 3
    pid = h.pid(1)
    h.feed(KillProcess(pid), at=h.now + 9.0)  # up 9 s: not stable yet
    h.run(Exited(pid, sig(15)), at=h.now + 0.5)
    assert h.core.slots[1].failures == 3
    pid = h.pid(1)
    h.feed(KillProcess(pid), at=h.now + 30.0)  # up 30 s, then recycled
    h.run(Exited(pid, sig(15)), at=h.now + 0.5)
    assert h.core.slots[1].failures == 0
    assert only(h.exit(1, code(1), at=h.now + 0.1), SpawnProcess) == [SpawnProcess(1)]


def test_backoff_is_per_slot() -> None:
    h = started(2, backoff=BackoffConfig(initial=3.0, max=30.0, reset=10.0))
    h.exit(1, code(1), at=1.0)  # wid 1: first death, immediate
    actions = h.exit(1, code(1), at=2.0)  # wid 1: second, waits 3 s
    assert only(actions, SpawnProcess) == []
    assert h.core.next_wakeup() == 5.0
    # wid 2 dies for the first time: it is not slowed by wid 1's backoff
    actions = h.exit(2, code(1), at=2.5)
    assert only(actions, SpawnProcess) == [SpawnProcess(2)]
    assert h.core.slots[2].failures == 1
    assert h.core.slots[1].failures == 2
    assert h.core.next_wakeup() == 5.0
    assert only(h.tick(), SpawnProcess) == [SpawnProcess(1)]


def test_unexpected_exit_history() -> None:
    h = started(1, backoff=BackoffConfig(initial=2.0, max=30.0, reset=10.0))
    h.exit(1, code(3), at=4.0)
    h.exit(1, sig(9), at=5.0)
    assert list(h.core.history) == [
        HistoryEntry(4.0, 101, 1, 3, None, "exited with code 3", 4.0, 0.0),
        HistoryEntry(5.0, 102, 1, None, 9, "killed by SIGKILL (9)", 1.0, 2.0),
    ]


def test_history_is_bounded() -> None:
    h = started(1, backoff=BackoffConfig(initial=0.0, max=0.0, reset=10.0))
    for n in range(250):
        h.exit(1, code(1), at=float(n + 1))
    assert len(h.core.history) == 200
    assert h.core.history[-1].time == 250.0
    assert h.core.history[0].time == 51.0


def test_exit_of_unknown_pid_is_ignored() -> None:
    h = started(1)
    assert h.feed(Exited(9999, code(0)), at=1.0) == []
    assert h.pids_by_wid() == {1: 101}


# ==== respawn modes ==================================================================================
def test_respawn_never() -> None:
    h = started(2, respawn="never")
    actions = h.exit(1, code(0), at=5.0)
    assert actions == [
        reap(101, 0),
        LogMessage(
            "info", "watcher 'web': process 101 (wid 1) exited with code 0; not restarted (respawn)"
        ),
    ]
    assert h.status is ACTIVE
    assert h.core.restarts == 0
    actions = h.exit(2, sig(9), at=6.0)
    assert actions == [
        reap(102, -9),
        LogMessage(
            "warning",
            "watcher 'web': process 102 (wid 2) killed by SIGKILL (9); not restarted (respawn)",
        ),
        StopCompleted("every process ended"),
        Publish("stop"),
    ]
    assert h.status is STOPPED
    assert h.core.slots == {}
    assert h.core.next_wakeup() is None
    assert [e.restart_in for e in h.core.history] == [None, None]


def test_respawn_on_failure() -> None:
    h = started(3, respawn="on-failure", success_exit_codes=(0, 3))
    # a success code: not restarted
    assert only(h.exit(1, code(3), at=1.0), SpawnProcess) == []
    # a failure code: restarted
    assert only(h.exit(2, code(1), at=1.0), SpawnProcess) == [SpawnProcess(2)]
    # a signal is always a failure
    assert only(h.exit(3, sig(15), at=1.0), SpawnProcess) == [SpawnProcess(3)]
    assert h.core.slots[1].done is True
    assert h.status is ACTIVE
    # code 0 is in the list too
    assert only(h.exit(2, code(0), at=2.0), SpawnProcess) == []
    actions = h.exit(3, code(0), at=2.0)
    assert actions[-2:] == [StopCompleted("every process ended"), Publish("stop")]
    assert h.status is STOPPED


def test_respawn_on_failure_default_success_code_is_zero() -> None:
    h = started(1, respawn="on-failure")
    actions = h.exit(1, code(0), at=1.0)
    assert actions == [
        reap(101, 0),
        LogMessage(
            "info", "watcher 'web': process 101 (wid 1) exited with code 0; not restarted (respawn)"
        ),
        StopCompleted("every process ended"),
        Publish("stop"),
    ]


def test_finished_watcher_starts_again() -> None:
    h = started(1, respawn="never")
    h.exit(1, code(0), at=1.0)
    assert h.status is STOPPED
    assert h.feed(Start(), at=2.0) == [SpawnProcess(1)]
    assert h.feed(Spawned(1, 200)) == [spawn(200), StartCompleted(), Publish("start")]


def test_scale_up_a_watcher_with_finished_slots() -> None:
    h = started(2, respawn="never")
    h.exit(1, code(0), at=1.0)
    assert h.feed(Scale(3), at=2.0) == [SpawnProcess(3)]
    h.feed(Spawned(3, 103))
    assert h.feed(Scale(2)) == []  # the ended slot goes first
    assert h.pids_by_wid() == {2: 102, 3: 103}


# ==== stop =============================================================================================
def test_stop_signals_every_process_then_kills_after_graceful_timeout() -> None:
    h = Harness(numprocesses=2, graceful_timeout=5.0, stop_signal=3)
    h.run(Start(), at=0.0)
    actions = h.feed(Stop(), at=10.0)
    assert actions == [
        SendStopSignal(101, 3),
        kill(101),
        SendStopSignal(102, 3),
        kill(102),
    ]
    assert h.status is STOPPING
    assert h.core.slots == {}
    assert h.core.next_wakeup() == 15.0
    assert h.feed(Exited(101, sig(3)), at=12.0) == [reap(101, -3)]
    assert h.feed(Tick(), at=14.9) == []
    assert h.feed(Tick(), at=15.0) == [KillTree(102), kill(102)]
    assert h.core.next_wakeup() is None
    assert h.feed(Tick(), at=16.0) == []  # killed once only
    assert h.feed(Exited(102, sig(9)), at=16.0) == [
        reap(102, -9),
        StopCompleted("stopped"),
        Publish("stop"),
    ]
    assert h.status is STOPPED
    assert h.core.procs == {}
    assert list(h.core.history) == [
        HistoryEntry(12.0, 101, 1, None, 3, "stopped", 12.0, None),
        HistoryEntry(16.0, 102, 2, None, 9, "stopped", 16.0, None),
    ]
    assert h.core.restarts == 0


def test_stop_publish_order_is_circus_one() -> None:
    h = started(2)
    out = h.feed(Stop(), at=1.0)
    out += h.feed(Exited(101, sig(15)), at=1.5)
    out += h.feed(Exited(102, sig(15)), at=1.5)
    assert publishes(out) == ["kill", "kill", "reap", "reap", "stop"]


def test_stop_with_zero_graceful_timeout_at_time_zero() -> None:
    h = Harness(numprocesses=1, graceful_timeout=0.0)
    h.run(Start(), at=0.0)
    h.feed(Stop())
    assert h.core.next_wakeup() == 0.0
    assert h.feed(Tick()) == [KillTree(101), kill(101)]


def test_stop_a_stopped_watcher_does_nothing() -> None:
    h = Harness(numprocesses=1)
    assert h.feed(Stop(), at=0.0) == []
    assert h.status is STOPPED


def test_stop_twice_while_stopping_publishes_once() -> None:
    h = started(1)
    h.feed(Stop(), at=1.0)
    assert h.feed(Stop(), at=2.0) == []
    assert h.core.procs[101].stop_deadline == 31.0
    assert h.feed(Exited(101, sig(15)), at=3.0) == [
        reap(101, -15),
        StopCompleted("stopped"),
        Publish("stop"),
    ]


def test_stop_with_a_spawn_in_flight_waits_for_its_outcome() -> None:
    h = Harness(numprocesses=2)
    h.feed(Start(), at=0.0)
    h.feed(Spawned(1, 101))
    assert h.feed(Stop(), at=1.0) == [SendStopSignal(101, 15), kill(101)]
    assert h.feed(Exited(101, sig(15)), at=1.5) == [reap(101, -15)]
    assert h.status is STOPPING  # wid 2's spawn is still out
    # it turns up: stopped at once, and the watcher is stopped when it is gone
    assert h.feed(Spawned(2, 102), at=2.0) == [spawn(102), SendStopSignal(102, 15), kill(102)]
    assert h.feed(Exited(102, sig(15)), at=2.5) == [
        reap(102, -15),
        StopCompleted("stopped"),
        Publish("stop"),
    ]
    assert h.status is STOPPED


def test_stop_with_a_failed_spawn_in_flight() -> None:
    h = Harness(numprocesses=1)
    h.feed(Start(), at=0.0)
    assert h.feed(Stop(), at=1.0) == []
    assert h.status is STOPPING
    assert h.feed(SpawnFailed(1, "no such file"), at=1.0) == [
        LogMessage("error", "watcher 'web': no such file"),
        StopCompleted("stopped"),
        Publish("stop"),
    ]
    assert h.status is STOPPED


def test_start_while_stopping_gets_fresh_wids() -> None:
    h = started(2)
    h.feed(Stop(), at=1.0)
    h.feed(Exited(101, sig(15)), at=1.5)
    # 102 (wid 2) is still stopping: its wid stays taken
    assert h.feed(Start(), at=2.0) == [SpawnProcess(1), SpawnProcess(3)]
    assert h.status is STARTING
    assert h.feed(Spawned(1, 201)) == [spawn(201)]
    assert h.feed(Spawned(3, 203)) == [spawn(203), StartCompleted(), Publish("start")]
    # the old one finishes stopping: nothing is replaced
    assert h.feed(Exited(102, sig(15)), at=3.0) == [reap(102, -15)]
    assert h.pids_by_wid() == {1: 201, 3: 203}
    assert h.status is ACTIVE


# ==== kill (one process) ================================================================================
def test_kill_one_process_replaces_it_without_counting_a_failure() -> None:
    h = started(2)
    actions = h.feed(KillProcess(102, graceful_timeout=2.0, signum=2), at=5.0)
    assert actions == [SendStopSignal(102, 2), kill(102)]
    assert h.core.next_wakeup() == 7.0
    actions = h.run(Exited(102, sig(2)), at=6.0)
    assert actions == [reap(102, -2), SpawnProcess(2), spawn(103)]
    assert h.core.slots[2].failures == 0
    assert h.core.restarts == 0
    assert h.core.history[-1] == HistoryEntry(6.0, 102, 2, None, 2, "killed on request", 6.0, 0.0)


def test_kill_uses_watcher_defaults() -> None:
    h = started(1, graceful_timeout=9.0, stop_signal=1)
    assert h.feed(KillProcess(101), at=1.0) == [SendStopSignal(101, 1), kill(101)]
    assert h.core.next_wakeup() == 10.0
    assert h.feed(Tick(), at=10.0) == [KillTree(101), kill(101)]


def test_kill_unknown_pid_is_ignored() -> None:
    h = started(1)
    assert h.feed(KillProcess(4242), at=1.0) == []


def test_kill_with_respawn_never_does_not_replace() -> None:
    h = started(1, respawn="never")
    h.feed(KillProcess(101), at=1.0)
    actions = h.feed(Exited(101, sig(15)), at=2.0)
    assert actions == [reap(101, -15), StopCompleted("every process ended"), Publish("stop")]
    assert h.core.history[-1].restart_in is None
    assert h.status is STOPPED


# ==== scale ===========================================================================================
def test_scale_down_stops_oldest_first() -> None:
    h = Harness(numprocesses=3, warmup_delay=1.0)
    h.run(Start(), at=0.0)
    h.tick()
    h.tick()
    assert h.pids_by_wid() == {1: 101, 2: 102, 3: 103}
    # wid 1 dies and is replaced: it is now the youngest
    h.exit(1, code(1), at=10.0)
    assert h.pids_by_wid() == {1: 104, 2: 102, 3: 103}
    actions = h.feed(Scale(1), at=20.0)
    assert actions == [SendStopSignal(102, 15), kill(102), SendStopSignal(103, 15), kill(103)]
    assert h.pids_by_wid() == {1: 104}
    assert h.core.numprocesses == 1
    assert h.feed(Exited(102, sig(15)), at=21.0) == [reap(102, -15)]
    assert h.feed(Exited(103, sig(15)), at=21.0) == [reap(103, -15)]
    assert [e.reason for e in h.core.history][-2:] == ["scaled down", "scaled down"]
    assert h.status is ACTIVE


def test_scale_down_drops_waiting_slots_before_running_ones() -> None:
    h = started(3, backoff=BackoffConfig(initial=5.0, max=30.0, reset=10.0))
    h.exit(2, code(1), at=1.0)
    h.exit(2, code(1), at=1.5)  # wid 2 now waits until 6.5
    assert h.core.slots[2].pid is None
    assert h.feed(Scale(2), at=2.0) == []
    assert sorted(h.core.slots) == [1, 3]
    assert h.core.next_wakeup() is None


def test_scale_up_uses_the_smallest_free_wid() -> None:
    h = started(3)
    # all three started at 0: ties keep spawn order, so 101 and 102 are the oldest
    h.feed(Scale(1), at=1.0)
    assert h.pids_by_wid() == {3: 103}
    h.feed(Exited(101, sig(15)), at=2.0)
    h.feed(Exited(102, sig(15)), at=2.0)
    assert h.feed(Scale(3), at=3.0) == [SpawnProcess(1), SpawnProcess(2)]


def test_scale_up_skips_wids_of_processes_still_stopping() -> None:
    h = Harness(numprocesses=2, warmup_delay=1.0)
    h.run(Start(), at=0.0)
    h.tick()
    h.feed(Scale(1), at=5.0)  # stops 101 (wid 1), keeps wid 2
    assert h.feed(Scale(2), at=6.0) == [SpawnProcess(3)]
    h.feed(Exited(101, sig(15)), at=7.0)
    assert h.feed(Scale(3), at=8.0) == [SpawnProcess(1)]


def test_scale_while_stopped_only_sets_the_count() -> None:
    h = Harness(numprocesses=1)
    assert h.feed(Scale(3), at=0.0) == []
    assert h.core.numprocesses == 3
    assert h.feed(Start()) == [SpawnProcess(1), SpawnProcess(2), SpawnProcess(3)]


def test_scale_negative_clamps_to_zero() -> None:
    h = started(1)
    assert h.feed(Scale(-4), at=1.0) == [SendStopSignal(101, 15), kill(101)]
    assert h.core.numprocesses == 0


def test_singleton_clamps_to_one() -> None:
    h = started(1, singleton=True)
    assert h.feed(Scale(5), at=1.0) == []
    assert h.core.numprocesses == 1
    assert h.pids_by_wid() == {1: 101}
    assert h.feed(Scale(0), at=2.0) == [SendStopSignal(101, 15), kill(101)]
    assert h.core.numprocesses == 0
    h.feed(Exited(101, sig(15)), at=3.0)
    assert h.feed(Scale(2), at=4.0) == [SpawnProcess(1)]
    assert h.core.numprocesses == 1


def test_scale_during_start_with_spawn_in_flight() -> None:
    h = Harness(numprocesses=2)
    h.feed(Start(), at=0.0)
    h.feed(Spawned(1, 101))
    assert h.feed(Scale(1)) == []  # wid 2 had not spawned yet: dropped, start completes
    assert h.status is STARTING  # ... once the in-flight spawn is accounted for
    assert h.feed(Spawned(2, 102)) == [spawn(102), SendStopSignal(102, 15), kill(102)]
    assert h.pids_by_wid() == {1: 101}


def test_scale_down_then_up_with_spawn_in_flight_never_shares_a_wid() -> None:
    h = started(1)
    h.feed(Scale(2), at=1.0)  # SpawnProcess(2) out
    h.feed(Scale(1))
    assert h.feed(Scale(2)) == [SpawnProcess(3)]  # wid 2 is still reserved by its spawn
    assert h.feed(Spawned(2, 102)) == [spawn(102), SendStopSignal(102, 15), kill(102)]
    assert h.feed(Spawned(3, 103)) == [spawn(103)]
    assert h.pids_by_wid() == {1: 101, 3: 103}


# ==== released (rm nostop) =====================================================================
def test_a_released_watcher_replaces_nothing_and_still_stops_on_request() -> None:
    h = started(3, max_age=10)
    assert h.run(Release(), at=1.0) == []
    assert h.core.next_wakeup() is None  # no max_age, no spawn due
    actions = h.run(Exited(101, sig(9)), at=2.0)
    assert only(actions, SpawnProcess) == [] and publishes(actions) == ["reap"]
    assert h.core.history[-1].pid == 101 and h.core.history[-1].restart_in is None
    for event in (Start(), Scale(5), Reload(), Tick()):
        assert only(h.run(event, at=3.0), SpawnProcess) == []
    assert sorted(h.core.procs) == [102, 103] and h.status is ACTIVE
    stop = h.run(Stop(), at=4.0)
    assert [a.pid for a in only(stop, SendStopSignal)] == [102, 103]
    h.run(Exited(102, sig(15)), at=4.1)
    done = h.run(Exited(103, sig(15)), at=4.2)
    assert only(done, StopCompleted) and h.status is STOPPED


# ==== max_age ==========================================================================================
def test_max_age_recycles_with_jitter() -> None:
    h = Harness(numprocesses=1, max_age=10)
    h.run(Start(), at=0.0, jitter=2.5)
    assert h.core.next_wakeup() == 12.5
    assert h.feed(Tick(), at=12.0) == []
    assert h.feed(Tick(), at=12.5) == [SendStopSignal(101, 15), kill(101)]
    assert h.core.next_wakeup() == 42.5  # graceful_timeout
    actions = h.run(Exited(101, sig(15)), at=13.0, jitter=0.0)
    assert actions == [reap(101, -15), SpawnProcess(1), spawn(102)]
    assert h.core.slots[1].failures == 0
    assert h.core.restarts == 0
    assert h.core.history[-1] == HistoryEntry(13.0, 101, 1, None, 15, "max_age reached", 13.0, 0.0)
    assert h.core.next_wakeup() == 23.0
    # the replacement dying quickly is its first failure: immediate
    assert only(h.exit(1, code(1), at=14.0), SpawnProcess) == [SpawnProcess(1)]


def test_max_age_zero_is_off() -> None:
    h = started(1)
    assert h.core.procs[101].expires_at is None
    assert h.core.next_wakeup() is None


def test_max_age_with_respawn_never_does_not_replace() -> None:
    h = Harness(numprocesses=1, max_age=5, respawn="never")
    h.run(Start(), at=0.0)
    assert h.tick() == [SendStopSignal(101, 15), kill(101)]
    actions = h.run(Exited(101, sig(15)), at=6.0)
    assert actions == [reap(101, -15), StopCompleted("every process ended"), Publish("stop")]


def test_max_age_process_is_killed_if_it_ignores_the_signal() -> None:
    h = Harness(numprocesses=1, max_age=5, graceful_timeout=2.0)
    h.run(Start(), at=0.0)
    h.tick()
    assert h.now == 5.0
    assert h.tick() == [KillTree(101), kill(101)]
    assert h.now == 7.0


# ==== spawn failures ===================================================================================
def test_spawn_failed_backs_off() -> None:
    h = Harness(numprocesses=1, backoff=BackoffConfig(initial=1.0, max=4.0, reset=10.0))
    assert h.feed(Start(), at=0.0) == [SpawnProcess(1)]
    reason = "cannot start process 1: [Errno 2] No such file or directory: 'nope'"
    actions = h.feed(SpawnFailed(1, reason))
    assert actions == [
        LogMessage("error", f"watcher 'web': {reason}"),
        StartCompleted(),
        Publish("start"),
    ]
    waits = []
    for _ in range(5):
        wakeup = h.core.next_wakeup()
        assert wakeup is not None
        waits.append(wakeup - h.now)
        assert h.feed(Tick(), at=wakeup) == [SpawnProcess(1)]
        h.feed(SpawnFailed(1, reason))
    assert waits == [0.0, 1.0, 2.0, 4.0, 4.0]
    assert h.core.slots[1].failures == 6
    assert h.core.history[0] == HistoryEntry(0.0, None, 1, None, None, reason, 0.0, 0.0)
    assert h.core.history[-1] == HistoryEntry(11.0, None, 1, None, None, reason, 0.0, 4.0)
    assert h.status is ACTIVE  # no flapping configured: never gives up
    # it works at last: the next quick death is still counted from the failures
    h.tick()
    h.feed(Spawned(1, 101))
    assert h.core.slots[1].failures == 6


def test_spawn_failed_for_a_dropped_slot() -> None:
    h = Harness(numprocesses=2)
    h.feed(Start(), at=0.0)
    h.feed(Spawned(1, 101))
    h.feed(Scale(1))
    assert h.feed(SpawnFailed(2, "boom")) == [LogMessage("error", "watcher 'web': boom")]
    assert h.pids_by_wid() == {1: 101}
    assert list(h.core.history) == []


def test_fatal_spawn_failed_stops_the_watcher() -> None:
    h = Harness(numprocesses=2)
    h.feed(Start(), at=0.0)
    h.feed(Spawned(1, 101))
    actions = h.feed(SpawnFailed(2, "before_spawn refused", fatal=True), at=1.0)
    assert actions == [
        LogMessage("error", "watcher 'web': before_spawn refused"),
        SendStopSignal(101, 15),
        kill(101),
    ]
    assert h.status is STOPPING
    assert h.feed(Exited(101, sig(15)), at=2.0) == [
        reap(101, -15),
        StopCompleted("before_spawn refused"),
        Publish("stop"),
    ]
    assert h.core.next_wakeup() is None


def test_fatal_spawn_failed_with_nothing_running() -> None:
    h = Harness(numprocesses=1)
    h.feed(Start(), at=0.0)
    assert h.feed(SpawnFailed(1, "refused", fatal=True)) == [
        LogMessage("error", "watcher 'web': refused"),
        StopCompleted("refused"),
        Publish("stop"),
    ]
    assert h.status is STOPPED
    assert h.core.slots == {}


# ==== flapping =========================================================================================
QUICK = BackoffConfig(initial=0.0, max=0.0, reset=10.0)


def test_flapping_stops_retries_then_gives_up() -> None:
    flapping = FlappingConfig(attempts=3, window=10.0, retry_in=7.0, max_retry=1)
    h = started(1, backoff=QUICK, flapping=flapping)
    h.exit(1, code(1), at=1.0)
    h.exit(1, code(1), at=2.0)
    actions = h.exit(1, code(1), at=3.0)
    assert actions == [
        reap(103, 1),
        LogMessage(
            "warning",
            "watcher 'web': process 103 (wid 1) exited with code 1; "
            "not restarted: the watcher is flapping",
        ),
        LogMessage("error", "watcher 'web' is flapping; stopping, next try in 7s"),
        StopCompleted("flapping"),
        Publish("stop"),
    ]
    # the history says when it really starts again, and the restarts count only restarts
    assert h.core.history[-1].restart_in == 7.0 and h.core.restarts == 2
    assert h.status is STOPPED
    assert h.core.slots == {}
    assert h.core.next_wakeup() == 10.0
    assert h.feed(Tick(), at=9.0) == []
    actions = h.run(Tick(), at=10.0)
    assert actions == [
        LogMessage("info", "watcher 'web': retrying after flapping"),
        Resumed(),  # the runtime reopens its streams, as for a start
        SpawnProcess(1),
        spawn(104),
        StartCompleted(),
        Publish("start"),
    ]
    assert h.status is ACTIVE
    h.exit(1, code(1), at=11.0)
    h.exit(1, code(1), at=12.0)
    actions = h.exit(1, code(1), at=13.0)
    assert only(actions, LogMessage)[-1] == LogMessage(
        "error", "watcher 'web' is flapping; giving up (flapping.max_retry reached)"
    )
    assert h.status is STOPPED
    assert h.core.history[-1].restart_in is None  # never restarted
    assert h.core.next_wakeup() is None
    # an operator's start gets a fresh allowance
    assert only(h.run(Start(), at=100.0), SpawnProcess) == [SpawnProcess(1)]
    assert h.core.flapping is not None
    assert h.core.flapping.retries == 0


def test_flapping_stops_other_processes_and_keeps_its_reason() -> None:
    flapping = FlappingConfig(attempts=2, window=5.0, retry_in=3.0, max_retry=-1)
    h = started(2, backoff=QUICK, flapping=flapping)
    h.exit(1, code(1), at=1.0)
    actions = h.exit(1, code(1), at=2.0)
    assert actions[-2:] == [SendStopSignal(102, 15), kill(102)]
    assert h.status is STOPPING
    assert h.feed(Exited(102, sig(15)), at=2.5) == [
        reap(102, -15),
        StopCompleted("flapping"),
        Publish("stop"),
    ]
    assert h.core.next_wakeup() == 5.0


def test_flapping_counts_spawn_failures() -> None:
    flapping = FlappingConfig(attempts=2, window=5.0, retry_in=3.0, max_retry=0)
    h = Harness(numprocesses=1, backoff=QUICK, flapping=flapping)
    h.feed(Start(), at=0.0)
    h.feed(SpawnFailed(1, "nope"))
    assert h.feed(Tick(), at=0.0) == [SpawnProcess(1)]
    actions = h.feed(SpawnFailed(1, "nope"))
    assert (
        LogMessage("error", "watcher 'web' is flapping; giving up (flapping.max_retry reached)")
        in actions
    )
    assert h.status is STOPPED


def test_deaths_spread_out_are_not_flapping() -> None:
    flapping = FlappingConfig(attempts=3, window=10.0, retry_in=7.0, max_retry=1)
    h = started(1, backoff=QUICK, flapping=flapping)
    for t in range(1, 40, 6):
        h.exit(1, code(1), at=float(t))
    assert h.status is ACTIVE


def test_without_flapping_config_never_gives_up() -> None:
    h = started(1, backoff=BackoffConfig(initial=0.5, max=2.0, reset=10.0))
    for _ in range(300):
        h.exit(1, code(1), at=h.now + 0.01)
        if h.core.slots[1].pid is None:
            h.tick()
    assert h.status is ACTIVE
    assert h.core.restarts == 300
    assert h.core.retry_at is None


def test_stop_cancels_a_pending_flapping_retry() -> None:
    flapping = FlappingConfig(attempts=1, window=1.0, retry_in=7.0, max_retry=5)
    h = started(1, backoff=QUICK, flapping=flapping)
    h.exit(1, code(1), at=1.0)
    assert h.status is STOPPED
    assert h.core.next_wakeup() == 8.0
    assert h.feed(Stop(), at=2.0) == []
    assert h.core.next_wakeup() is None
    assert h.feed(Tick(), at=8.0) == []
    assert h.status is STOPPED


def test_start_during_flapping_wait_starts_now() -> None:
    flapping = FlappingConfig(attempts=1, window=1.0, retry_in=7.0, max_retry=5)
    h = started(1, backoff=QUICK, flapping=flapping)
    h.exit(1, code(1), at=1.0)
    assert h.feed(Start(), at=2.0) == [SpawnProcess(1)]
    assert h.core.retry_at is None


# ==== reload ===========================================================================================
def test_reload_rolls_one_process_at_a_time() -> None:
    """Zero downtime: each new process is up before an old one gets its stop signal."""
    h = started(2)
    assert h.feed(Reload(), at=10.0) == [SpawnProcess(3)]
    assert h.status is ACTIVE
    assert h.feed(Spawned(3, 103)) == [
        spawn(103),
        SendStopSignal(101, 15),
        kill(101),
        SpawnProcess(4),
    ]
    assert h.core.running_pids() == [102, 103]
    assert h.feed(Spawned(4, 104)) == [
        spawn(104),
        SendStopSignal(102, 15),
        kill(102),
        Publish("reload"),
    ]
    assert h.pids_by_wid() == {3: 103, 4: 104}
    assert h.feed(Exited(101, sig(15)), at=11.0) == [reap(101, -15)]
    assert h.feed(Exited(102, sig(15)), at=11.0) == [reap(102, -15)]
    assert h.pids_by_wid() == {3: 103, 4: 104}
    assert [e.reason for e in h.core.history] == ["reloaded", "reloaded"]
    # a later scale up takes the smallest free wids again
    assert h.feed(Scale(4), at=12.0) == [SpawnProcess(1), SpawnProcess(2)]


def test_reload_in_batches() -> None:
    h = started(4, reload_batch=2)
    assert h.feed(Reload(), at=10.0) == [SpawnProcess(5), SpawnProcess(6)]
    assert h.feed(Spawned(5, 105)) == [spawn(105)]
    assert h.feed(Spawned(6, 106)) == [
        spawn(106),
        SendStopSignal(101, 15),
        kill(101),
        SendStopSignal(102, 15),
        kill(102),
        SpawnProcess(7),
        SpawnProcess(8),
    ]


def test_reload_waits_for_readiness_before_stopping_old_ones() -> None:
    h = started(1, ready_check="tcp://127.0.0.1:1")
    h.feed(ProcessReady(101), at=0.5)
    assert h.feed(Reload(), at=10.0) == [SpawnProcess(2)]
    assert h.feed(Spawned(2, 102), at=10.0) == [spawn(102), CheckReadiness(102)]
    assert h.core.running_pids() == [101, 102], "the old one keeps serving"
    assert h.feed(ProcessReady(102), at=11.0) == [
        Publish("ready", {"process_pid": 102}),
        SendStopSignal(101, 15),
        kill(101),
        Publish("reload"),
    ]


def test_reload_publish_order() -> None:
    h = started(2)
    out = h.run(Reload(), at=1.0)
    assert publishes(out) == ["spawn", "kill", "spawn", "kill", "reload"]


def test_reload_with_a_failed_new_spawn_keeps_the_old_process() -> None:
    h = started(1)
    h.feed(Reload(), at=1.0)
    assert h.feed(SpawnFailed(2, "nope"), at=1.0) == [LogMessage("error", "watcher 'web': nope")]
    assert h.core.running_pids() == [101]
    assert h.feed(Tick(), at=1.0) == [SpawnProcess(2)]  # first failure: retried at once
    assert h.feed(Spawned(2, 102)) == [
        spawn(102),
        SendStopSignal(101, 15),
        kill(101),
        Publish("reload"),
    ]


def test_reload_when_nothing_is_running_still_publishes() -> None:
    h = started(1, backoff=BackoffConfig(initial=5.0, max=5.0, reset=10.0))
    h.exit(1, code(1), at=1.0)
    h.exit(1, code(1), at=1.5)  # waiting in backoff: the slot is kept, nothing to replace
    assert h.feed(Reload(), at=2.0) == [Publish("reload")]
    assert h.core.next_wakeup() == 6.5


def test_reload_a_stopped_watcher_starts_it() -> None:
    h = Harness(numprocesses=1)
    assert h.feed(Reload(), at=0.0) == [SpawnProcess(1), Publish("reload")]
    assert h.feed(Spawned(1, 101)) == [spawn(101), StartCompleted(), Publish("start")]


def test_reload_while_stopping_is_ignored() -> None:
    h = started(1)
    h.feed(Stop(), at=1.0)
    assert h.feed(Reload(), at=2.0) == []
    assert h.status is STOPPING


def test_reload_zero_processes() -> None:
    h = started(0)
    assert h.feed(Reload(), at=1.0) == [Publish("reload")]


def test_stop_during_reload_stops_old_and_new() -> None:
    h = started(1)
    h.feed(Reload(), at=1.0)
    actions = h.feed(Stop(), at=2.0)
    assert actions == [SendStopSignal(101, 15), kill(101)]
    # the new one turns up after the stop: stopped too
    assert h.feed(Spawned(2, 102)) == [spawn(102), SendStopSignal(102, 15), kill(102)]
    h.feed(Exited(101, sig(15)), at=3.0)
    assert h.feed(Exited(102, sig(15)), at=3.0)[-2:] == [StopCompleted("stopped"), Publish("stop")]
    assert h.status is STOPPED


def test_retiring_process_that_dies_is_recorded_not_replaced() -> None:
    h = started(1)
    h.feed(Reload(), at=1.0)
    actions = h.feed(Exited(101, code(4)), at=2.0)
    assert actions == [reap(101, 4)]
    assert h.core.history[-1] == HistoryEntry(2.0, 101, 1, 4, None, "exited with code 4", 2.0, None)
    assert h.feed(Spawned(2, 102)) == [spawn(102), Publish("reload")]


# ==== misc ==============================================================================================
def test_spawned_payload_and_process_record() -> None:
    h = Harness(numprocesses=1, max_age=100)
    h.feed(Start(), at=3.0)
    h.feed(Spawned(1, 777, max_age_jitter=4.0), at=3.5)
    proc = h.core.procs[777]
    assert (proc.pid, proc.wid, proc.started_at, proc.expires_at) == (777, 1, 3.5, 107.5)
    assert proc.state is ProcessState.RUNNING
    assert repr(proc) == "<Process wid=1 pid=777 RUNNING>"


def test_update_config_applies_live_options() -> None:
    h = started(1)
    h.core.update_config(WatcherConfig(name="web", cmd="sleep 3600", stop_signal=2))
    assert h.feed(KillProcess(101), at=1.0) == [SendStopSignal(101, 2), kill(101)]
    flapping = FlappingConfig(attempts=1)
    h.core.update_config(WatcherConfig(name="web", cmd="x", flapping=flapping))
    tracker = h.core.flapping
    assert tracker is not None
    assert tracker.config == flapping
    h.core.update_config(WatcherConfig(name="web", cmd="y", flapping=flapping))
    assert h.core.flapping is tracker  # unchanged config keeps its counts
    h.core.update_config(WatcherConfig(name="web", cmd="y"))
    assert h.core.flapping is None


def test_tick_with_nothing_to_do() -> None:
    h = Harness()
    assert h.feed(Tick(), at=5.0) == []
    assert h.core.next_wakeup() is None


def test_scaling_to_thousands_of_processes_is_quick() -> None:
    """Slot planning is linear: adding 10,000 slots one free wid at a time was quadratic
    (the loop blocked for seconds)."""
    import time

    h = started(1)
    began = time.perf_counter()
    actions = h.feed(Scale(10_000), at=1.0)
    assert time.perf_counter() - began < 1.0  # quadratic took ~10 s; linear takes ~15 ms
    assert sorted(only(actions, SpawnProcess), key=lambda a: a.wid)[-1] == SpawnProcess(10_000)
    assert sorted(h.core.slots) == list(range(1, 10_001))
