"""Hypothesis drives the watcher core like a runtime would, in any order, and checks that
its bookkeeping never goes wrong.

The machine plays the runtime: every `SpawnProcess` is answered, sooner or later and in any
order, by `Spawned` or `SpawnFailed`; processes exit whenever they like; time only moves
forward; operator commands (start, stop, scale, reload, kill) arrive at any moment.

About wids. Circus takes the smallest free integer in 1..2*numprocesses, which is enough
because its global lock lets at most numprocesses old processes be on their way out while
new ones start (a reload). bigtop queues commands instead, so a stop, a scale-down and a
reload may overlap, and a slot keeps its wid across respawns (backoff is per wid); a wid above
2*numprocesses can then exist (e.g. 3 processes scaled down to 1 keeps the youngest, wid 3,
as Circus does too). What must hold, and is checked here: a new slot takes the smallest
wid not held by a slot, a live process or a spawn in flight; it is within
1..2*max(numprocesses, 1) whenever at most numprocesses wids are held by processes outside
the wanted slots; and no two live processes (or spawns in flight) ever share a wid.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from bigtop.config.model import BackoffConfig, FlappingConfig, WatcherConfig
from bigtop.core.messages import (
    Action,
    Event,
    Exited,
    KillProcess,
    KillTree,
    ProcessReady,
    Publish,
    Reload,
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
    Unhealthy,
)
from bigtop.core.policy import ExitStatus
from bigtop.core.states import ProcessState, WatcherStatus
from bigtop.core.watcher import WatcherCore

RUNNING_STATES = (WatcherStatus.STARTING, WatcherStatus.ACTIVE)

flappings = st.none() | st.builds(
    FlappingConfig,
    attempts=st.integers(1, 4),
    window=st.sampled_from([0.5, 2.0, 10.0]),
    retry_in=st.sampled_from([1.0, 5.0]),
    max_retry=st.integers(-1, 2),
)
backoffs = st.builds(
    BackoffConfig,
    initial=st.sampled_from([0.0, 0.5, 2.0]),
    max=st.sampled_from([1.0, 8.0]),
    reset=st.sampled_from([1.0, 10.0]),
)
statuses = st.sampled_from(
    [
        ExitStatus(code=0),
        ExitStatus(code=1),
        ExitStatus(code=3),
        ExitStatus(signal=9),
        ExitStatus(signal=15),
    ]
)
durations = st.sampled_from([0.0, 0.1, 0.5, 1.0, 3.0, 7.0, 31.0])


class WatcherMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core: WatcherCore
        self.now = 0.0
        self.next_pid = 1000
        self.outstanding: list[int] = []  # wids of SpawnProcess not answered yet
        self.live: set[int] = set()  # pids spawned and not exited
        self.spawned_count = 0

    @initialize(
        numprocesses=st.integers(0, 3),
        respawn=st.sampled_from(["always", "on-failure", "never"]),
        success=st.sampled_from([(0,), (0, 3)]),
        flapping=flappings,
        backoff=backoffs,
        max_age=st.sampled_from([0, 0, 4]),
        warmup=st.sampled_from([0.0, 0.0, 1.0]),
        singleton=st.booleans(),
        graceful=st.sampled_from([0.0, 2.0, 30.0]),
        ready_check=st.sampled_from([None, None, "tcp://127.0.0.1:1"]),
        ready_timeout=st.sampled_from([1.0, 30.0]),
        start=st.booleans(),
    )
    def setup(
        self,
        numprocesses: int,
        respawn: str,
        success: tuple[int, ...],
        flapping: FlappingConfig | None,
        backoff: BackoffConfig,
        max_age: int,
        warmup: float,
        singleton: bool,
        graceful: float,
        ready_check: str | None,
        ready_timeout: float,
        start: bool,
    ) -> None:
        if singleton:
            numprocesses = min(numprocesses, 1)
        config = WatcherConfig(
            name="w",
            cmd="sleep 3600",
            numprocesses=numprocesses,
            respawn=respawn,
            success_exit_codes=success,
            flapping=flapping,
            backoff=backoff,
            max_age=max_age,
            warmup_delay=warmup,
            singleton=singleton,
            graceful_timeout=graceful,
            ready_check=ready_check,
            ready_timeout=ready_timeout,
            health_check=ready_check,
        )
        self.core = WatcherCore(config)
        if start:
            self.feed(Start())

    # ---- feeding, with checks on the actions ----------------------------------------------
    def feed(self, event: Event) -> list[Action]:
        core = self.core
        before_slots = dict(core.slots)
        held_before = {p.wid for p in core.procs.values()} | set(self.outstanding)
        actions = core.feed(event, self.now)
        self.check_new_wids(before_slots, held_before)
        for index, action in enumerate(actions):
            self.check_action(action, actions[index + 1 :])
        return actions

    def check_new_wids(self, before: dict[int, Any], held: set[int]) -> None:
        after = self.core.slots
        new = sorted(w for w, s in after.items() if before.get(w) is not s)
        if not new:
            return
        surviving = {w for w, s in after.items() if before.get(w) is s}
        taken = surviving | held
        expected: list[int] = []
        candidate = 1
        while len(expected) < len(new):
            if candidate not in taken:
                expected.append(candidate)
            candidate += 1
        assert new == expected, f"new slots {new}, smallest free were {expected}"
        n = self.core.numprocesses
        outside = held - surviving  # wids held by processes/spawns no slot wants
        if len(outside) <= n:
            assert max(new) <= 2 * max(n, 1), (new, n, outside)

    def check_action(self, action: Action, rest: list[Action]) -> None:
        core = self.core
        match action:
            case SpawnProcess(wid=wid):
                assert wid not in self.outstanding, f"wid {wid} spawned twice at once"
                assert wid in core.slots, f"SpawnProcess({wid}) for no slot"
                assert core.slots[wid].pending
                assert core.status in RUNNING_STATES
                self.outstanding.append(wid)
            case SendStopSignal(pid=pid):
                assert pid in self.live
                assert core.procs[pid].state is ProcessState.STOPPING
            case KillTree(pid=pid):
                assert pid in self.live
                assert core.procs[pid].killed
            case StopCompleted():
                assert core.status is WatcherStatus.STOPPED
                assert rest[:1] == [Publish("stop")]
            case StartCompleted():
                assert rest[:1] == [Publish("start")]
            case _:
                pass

    # ---- operator commands -----------------------------------------------------------------
    @rule()
    def start(self) -> None:
        self.feed(Start())

    @rule()
    def stop(self) -> None:
        before = self.core.status
        actions = self.feed(Stop())
        if before not in RUNNING_STATES:
            assert actions == []
        else:
            # Circus publishes `stop` once, when the watcher is stopped, not when stopping begins
            stopped = self.core.status is WatcherStatus.STOPPED
            assert actions.count(Publish("stop")) == int(stopped)
        assert self.core.status in (WatcherStatus.STOPPING, WatcherStatus.STOPPED)
        assert self.core.retry_at is None  # a stop cancels a retry after flapping

    @rule(n=st.integers(-1, 4))
    def scale(self, n: int) -> None:
        self.feed(Scale(n))
        expected = max(0, n)
        if self.core.config.singleton:
            expected = min(expected, 1)
        assert self.core.numprocesses == expected

    @rule()
    def reload(self) -> None:
        self.feed(Reload())

    @precondition(lambda self: bool(self.live))
    @rule(index=st.integers(0, 50), graceful=st.none() | st.sampled_from([0.0, 1.0]))
    def kill_one(self, index: int, graceful: float | None) -> None:
        pid = sorted(self.live)[index % len(self.live)]
        self.feed(KillProcess(pid, graceful))

    # ---- the runtime's side ---------------------------------------------------------------
    @precondition(lambda self: bool(self.outstanding))
    @rule(
        index=st.integers(0, 50),
        ok=st.sampled_from([True, True, True, False]),
        fatal=st.sampled_from([False, False, False, True]),
        jitter=st.sampled_from([0.0, 1.5]),
    )
    def answer_spawn(self, index: int, ok: bool, fatal: bool, jitter: float) -> None:
        wid = self.outstanding.pop(index % len(self.outstanding))
        if ok:
            pid = self.next_pid
            self.next_pid += 1
            self.live.add(pid)
            self.spawned_count += 1
            actions = self.feed(Spawned(wid, pid, jitter))
            assert actions[0] == Publish("spawn", {"process_pid": pid})
        else:
            self.feed(SpawnFailed(wid, "cannot start", fatal))

    @precondition(lambda self: bool(self.live))
    @rule(index=st.integers(0, 50), status=statuses)
    def exit(self, index: int, status: ExitStatus) -> None:
        pid = sorted(self.live)[index % len(self.live)]
        self.live.discard(pid)
        actions = self.feed(Exited(pid, status))
        exit_code = -status.signal if status.signal is not None else status.code
        assert actions[0] == Publish("reap", {"process_pid": pid, "exit_code": exit_code})

    @precondition(lambda self: bool(self.live))
    @rule(index=st.integers(0, 50))
    def passes_its_ready_check(self, index: int) -> None:
        pid = sorted(self.live)[index % len(self.live)]
        was_running = self.core.procs[pid].state is ProcessState.RUNNING
        self.feed(ProcessReady(pid))
        proc = self.core.procs[pid]
        if was_running:  # (a process already being stopped stays as it is)
            assert proc.ready and proc.ready_deadline is None

    @precondition(lambda self: bool(self.live))
    @rule(index=st.integers(0, 50))
    def fails_its_health_check(self, index: int) -> None:
        pid = sorted(self.live)[index % len(self.live)]
        was_running = self.core.procs[pid].state is ProcessState.RUNNING
        actions = self.feed(Unhealthy(pid, "health check failed 3 times"))
        if was_running:  # stopped so that it is replaced; an event says why
            assert self.core.procs[pid].state is ProcessState.STOPPING
            assert any(isinstance(a, Publish) and a.action == "unhealthy" for a in actions)

    @rule(dt=durations)
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.feed(Tick())

    @precondition(lambda self: self.core.next_wakeup() is not None)
    @rule()
    def tick_at_wakeup(self) -> None:
        wakeup = self.core.next_wakeup()
        assert wakeup is not None
        self.now = max(self.now, wakeup)
        self.feed(Tick())
        # whatever was due is done; a timer started by this tick may be due at once
        # (graceful_timeout = 0 after a max_age stop), but ticks at one instant settle
        for _ in range(3):
            after = self.core.next_wakeup()
            assert after is None or after >= self.now
            if after is None or after > self.now:
                break
            self.feed(Tick())
        else:
            raise AssertionError(f"timers keep firing at {self.now}")

    # ---- invariants -----------------------------------------------------------------------
    @invariant()
    def bookkeeping_matches_the_runtime(self) -> None:
        core = self.core
        assert set(core.procs) == self.live
        assert core.in_flight == set(self.outstanding)
        for wid, slot in core.slots.items():
            assert slot.wid == wid
            assert slot.pending == (wid in self.outstanding)
            if slot.pid is not None:
                assert slot.pid in core.procs
                assert core.procs[slot.pid].wid == wid
                assert not slot.pending

    @invariant()
    def never_more_running_than_slots_and_retiring(self) -> None:
        core = self.core
        running = {p.pid for p in core.procs.values() if p.state is ProcessState.RUNNING}
        owned = {s.pid for s in core.slots.values() if s.pid is not None}
        assert running <= owned | set(core.retiring)
        assert len(running) <= len(core.slots) + len(core.retiring)

    @invariant()
    def wids_are_unique_and_positive(self) -> None:
        core = self.core
        wids = [p.wid for p in core.procs.values()] + list(self.outstanding)
        assert len(wids) == len(set(wids)), f"shared wid among {wids}"
        assert all(w >= 1 for w in wids)
        assert all(w >= 1 for w in core.slots)
        for proc in core.procs.values():
            slot = core.slots.get(proc.wid)
            assert slot is None or slot.pid == proc.pid

    @invariant()
    def status_is_consistent(self) -> None:
        core = self.core
        if core.config.singleton:
            assert core.numprocesses <= 1
        if core.status is WatcherStatus.STOPPED:
            assert core.slots == {}
            assert core.procs == {}
            assert self.outstanding == []
            assert not core.retiring
        elif core.status is WatcherStatus.STOPPING:
            assert core.slots == {}
            assert all(p.state is ProcessState.STOPPING for p in core.procs.values())
            assert core.procs or self.outstanding
        elif core.reloading:
            # a rolling reload adds new slots batch by batch; old processes fill the gap
            assert len(core.slots) <= core.numprocesses
        else:
            assert len(core.slots) == core.numprocesses
            assert core.retry_at is None

    @invariant()
    def timers_are_scheduled(self) -> None:
        core = self.core
        wakeup = core.next_wakeup()
        for proc in core.procs.values():
            if proc.state is ProcessState.STOPPING and not proc.killed:
                assert wakeup is not None
                assert proc.stop_deadline is not None
                assert wakeup <= proc.stop_deadline
        if core.status in RUNNING_STATES:
            for slot in core.slots.values():
                if slot.pid is None and not slot.pending and not slot.done:
                    assert wakeup is not None, "an empty slot with no timer"

    @invariant()
    def readiness_is_tracked(self) -> None:
        core = self.core
        wakeup = core.next_wakeup()
        for proc in core.procs.values():
            if core.config.ready_check is None:
                assert proc.ready, "without a ready_check a process is ready at once"
            elif not proc.ready and proc.state is ProcessState.RUNNING:
                assert proc.ready_deadline is not None, "waiting for readiness with no deadline"
                assert wakeup is not None and wakeup <= proc.ready_deadline

    @invariant()
    def spawns_were_published(self) -> None:
        assert self.spawned_count >= len(self.live)


WatcherMachine.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWatcherMachine = WatcherMachine.TestCase
