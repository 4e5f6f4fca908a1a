"""The watcher core: N process slots, their lifecycles and the restart policy.

Theory of operation. A watcher owns *slots*, one per wanted process, each keyed by its wid
(the smallest free integer in 1..2*numprocesses, as in Circus). A slot is empty (waiting
until `ready_at`, its backoff), has a spawn in flight, holds a running process, or is *done*
(its process ended and the respawn policy says not to replace it). Processes that are being
stopped may outlive their slot (decr, stop), so live processes are tracked apart, by pid.

The runtime feeds events with the monotonic time and carries out the returned actions; it
calls `next_wakeup()` afterwards and feeds `Tick()` then. Nothing here does I/O or reads a
clock, so every policy (backoff, flapping, max_age, graceful timeouts) is tested by feeding
numbers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from bigtop.config.model import WatcherConfig
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
    Unhealthy,
)
from bigtop.core.policy import (
    ExitStatus,
    FlappingTracker,
    failures_after,
    next_delay,
    should_respawn,
)
from bigtop.core.states import (
    PROCESS_TRANSITIONS,
    WATCHER_TRANSITIONS,
    ProcessState,
    WatcherStatus,
    advance,
)

HISTORY_LENGTH = 200


@dataclass
class ProcessRecord:
    pid: int
    wid: int
    started_at: float
    expires_at: float | None = None
    state: ProcessState = ProcessState.RUNNING
    stop_deadline: float | None = None
    killed: bool = False
    replace: bool = False  # respawn its slot once it is gone (kill command, max_age)
    reason: str = ""
    ready: bool = True  # False until its ready_check passes (when there is one)
    ready_deadline: float | None = None
    failed: bool = False  # stopped because it failed (not ready in time, unhealthy): backs off
    unhealthy: bool = False

    @property
    def condition(self) -> str:
        """What `stats` and the CLI show: starting, ready, unhealthy or stopping."""
        if self.state is ProcessState.STOPPING:
            return "stopping"
        if self.unhealthy:
            return "unhealthy"
        return "ready" if self.ready else "starting"

    def __repr__(self) -> str:
        return f"<Process wid={self.wid} pid={self.pid} {self.state.name}>"


@dataclass
class Slot:
    wid: int
    ready_at: float = 0.0
    failures: int = 0
    pid: int | None = None
    pending: bool = False  # a SpawnProcess is out, its outcome not fed yet
    done: bool = False
    restarts: int = 0  # unexpected exits of this slot's processes that were restarted


@dataclass(frozen=True)
class HistoryEntry:
    """One end of a process (or a failed spawn), for `status`, the CLI and metrics."""

    time: float  # monotonic, as fed
    pid: int | None
    wid: int
    exit_code: int | None
    signal: int | None
    reason: str
    uptime: float
    restart_in: float | None  # None: not restarted


@dataclass
class WatcherCore:
    config: WatcherConfig
    status: WatcherStatus = WatcherStatus.STOPPED
    numprocesses: int = 0
    slots: dict[int, Slot] = field(default_factory=dict)
    procs: dict[int, ProcessRecord] = field(default_factory=dict)
    history: deque[HistoryEntry] = field(default_factory=lambda: deque(maxlen=HISTORY_LENGTH))
    restarts: int = 0
    flapping: FlappingTracker | None = None
    retry_at: float | None = None
    next_spawn_at: float = 0.0
    awaiting_first_spawn: set[int] = field(default_factory=set)
    # A rolling reload: old pids (oldest first) stopped batch by batch as new ones get ready.
    retiring: list[int] = field(default_factory=list)
    reloading: bool = False  # a reload waits for its new processes, then publishes "reload"
    reload_batch: set[int] = field(default_factory=set)  # wids of the batch being started
    # wids with a SpawnProcess out and no Spawned/SpawnFailed yet: they stay taken even when
    # their slot is dropped (stop, decr, reload), so a wid never names two processes.
    in_flight: set[int] = field(default_factory=set)
    stop_reason: str = "stopped"
    released: bool = False  # removed with nostop: its processes are only seen to their end

    def __post_init__(self) -> None:
        self.numprocesses = self.config.numprocesses
        if self.config.flapping is not None:
            self.flapping = FlappingTracker(self.config.flapping)

    def __repr__(self) -> str:
        return (
            f"<Watcher {self.config.name} {self.status.value} "
            f"{len(self.procs)}/{self.numprocesses} processes>"
        )

    # ---- public surface -------------------------------------------------------------
    def feed(self, event: Event, now: float) -> list[Action]:
        if self.released and isinstance(event, Start | Scale | Reload):
            return []  # a removed watcher starts nothing
        match event:
            case Start():
                if self.flapping is not None:
                    self.flapping.stable()  # an operator's start gets a fresh allowance
                return self._start(now)
            case Stop():
                return self._stop(now, "stopped")
            case Scale(numprocesses=n):
                return self._scale(n, now)
            case Spawned():
                return self._spawned(event, now)
            case SpawnFailed():
                return self._spawn_failed(event, now)
            case Exited(pid=pid, status=status):
                return self._exited(pid, status, now)
            case KillProcess():
                return self._kill_one(event, now)
            case ProcessReady(pid=pid):
                return self._ready(pid, now)
            case Unhealthy(pid=pid, reason=reason):
                return self._unhealthy(pid, reason, now)
            case Reload():
                return self._reload(now)
            case Release():
                return self._release()
            case Tick():
                return self._tick(now)
        raise TypeError(f"not a watcher event: {event!r}")  # pragma: no cover

    def next_wakeup(self) -> float | None:
        """The earliest time a `Tick` has something to do, or None."""
        times: list[float] = []
        for proc in self.procs.values():
            if (
                proc.state is ProcessState.STOPPING
                and not proc.killed
                and proc.stop_deadline is not None
            ):
                times.append(proc.stop_deadline)
            elif proc.state is ProcessState.RUNNING:
                if proc.expires_at is not None:
                    times.append(proc.expires_at)
                if not proc.ready and proc.ready_deadline is not None:
                    times.append(proc.ready_deadline)
        if self.status in (WatcherStatus.STARTING, WatcherStatus.ACTIVE):
            for slot in self.slots.values():
                if slot.pid is None and not slot.pending and not slot.done:
                    times.append(max(slot.ready_at, self.next_spawn_at))
        if self.retry_at is not None:
            times.append(self.retry_at)
        return min(times) if times else None

    def update_config(self, config: WatcherConfig) -> None:
        """Take options that apply live (stop_signal, graceful_timeout, backoff, ...)."""
        self.config = config
        if config.flapping is None:
            self.flapping = None
        elif self.flapping is None or self.flapping.config != config.flapping:
            self.flapping = FlappingTracker(config.flapping)

    def running_pids(self) -> list[int]:
        return sorted(p.pid for p in self.procs.values() if p.state is ProcessState.RUNNING)

    # ---- start / stop / scale -------------------------------------------------------
    def _start(self, now: float) -> list[Action]:
        if self.status in (WatcherStatus.STARTING, WatcherStatus.ACTIVE):
            return []
        self.status = advance(WATCHER_TRANSITIONS, self.status, "start")
        self.retry_at = None
        self.slots = {w: s for w, s in self.slots.items() if not s.done}
        self._fill(now)
        self.awaiting_first_spawn = {w for w, s in self.slots.items() if s.pid is None}
        actions = self._spawn_due(now)
        return actions + self._maybe_started()

    def _maybe_started(self) -> list[Action]:
        if self.status is not WatcherStatus.STARTING or self.awaiting_first_spawn:
            return []
        self.status = advance(WATCHER_TRANSITIONS, self.status, "started")
        return [StartCompleted(), Publish("start")]

    def _stop(self, now: float, reason: str) -> list[Action]:
        self.retry_at = None  # an explicit stop cancels a pending retry after flapping
        if self.status in (WatcherStatus.STOPPED, WatcherStatus.STOPPING):
            return []
        self.status = advance(WATCHER_TRANSITIONS, self.status, "stop")
        self.stop_reason = reason
        self._drop_plans()
        actions: list[Action] = []  # Circus publishes `stop` once, when the last one is gone
        for proc in sorted(self.procs.values(), key=lambda p: p.started_at):
            actions += self._stop_process(proc, now, reason, replace=False)
        return actions + self._maybe_stopped()

    def _drop_plans(self) -> None:
        """Forget every slot to fill and every reload step: nothing more is started."""
        self.slots.clear()
        self.awaiting_first_spawn.clear()
        self.retiring.clear()
        self.reloading = False
        self.reload_batch.clear()

    def _release(self) -> list[Action]:
        # Without slots nothing is filled or replaced: an exit is recorded like that of a
        # process a reload retires. No deadline is left to act on a running process.
        self.released = True
        self.retry_at = None
        self._drop_plans()
        for proc in self.procs.values():
            proc.expires_at = proc.ready_deadline = None
            proc.replace = False
        return []

    def _maybe_stopped(self) -> list[Action]:
        if self.status is WatcherStatus.STOPPING and not self.procs and not self.in_flight:
            self.status = advance(WATCHER_TRANSITIONS, self.status, "stopped")
            return [StopCompleted(self.stop_reason), Publish("stop")]
        return []

    def _scale(self, numprocesses: int, now: float) -> list[Action]:
        self.numprocesses = max(0, numprocesses)
        if self.config.singleton:
            self.numprocesses = min(self.numprocesses, 1)
        if self.status not in (WatcherStatus.STARTING, WatcherStatus.ACTIVE):
            return []
        return self._fill(now) + self._spawn_due(now)

    def _fill(self, now: float) -> list[Action]:
        """Add or remove slots to match numprocesses; removing stops the oldest first."""
        actions: list[Action] = []
        for wid in self._free_wids(self.numprocesses - len(self.slots)):
            self.slots[wid] = Slot(wid, ready_at=now)
        surplus = len(self.slots) - self.numprocesses
        if surplus <= 0:
            return actions
        idle = sorted((s for s in self.slots.values() if s.pid is None), key=lambda s: -s.wid)
        for slot in idle[:surplus]:
            del self.slots[slot.wid]
            self.awaiting_first_spawn.discard(slot.wid)
            surplus -= 1
        busy = sorted(
            (self.procs[s.pid] for s in self.slots.values() if s.pid is not None),
            key=lambda p: p.started_at,
        )
        for proc in busy[:surplus]:
            del self.slots[proc.wid]
            actions += self._stop_process(proc, now, "scaled down", replace=False)
        return actions

    def _free_wids(self, count: int) -> list[int]:
        """The `count` smallest wids no slot, process or spawn holds (one pass: adding
        thousands of slots one by one was quadratic)."""
        taken = set(self.slots) | {p.wid for p in self.procs.values()} | self.in_flight
        free: list[int] = []
        wid = 1
        while len(free) < count:
            if wid not in taken:
                free.append(wid)
            wid += 1
        return free

    # ---- spawning ---------------------------------------------------------------------
    def _spawn_due(self, now: float) -> list[Action]:
        if self.status not in (WatcherStatus.STARTING, WatcherStatus.ACTIVE):
            return []
        actions: list[Action] = []
        for wid in sorted(self.slots):
            slot = self.slots[wid]
            if slot.pid is not None or slot.pending or slot.done or slot.ready_at > now:
                continue
            if now < self.next_spawn_at:
                break
            if self.config.warmup_delay > 0:
                self.next_spawn_at = now + self.config.warmup_delay
            slot.pending = True
            self.in_flight.add(wid)
            actions.append(SpawnProcess(wid))
        return actions

    def _spawned(self, event: Spawned, now: float) -> list[Action]:
        self.in_flight.discard(event.wid)
        expires = None
        if self.config.max_age > 0:
            expires = now + self.config.max_age + event.max_age_jitter
        proc = ProcessRecord(event.pid, event.wid, now, expires)
        self.procs[event.pid] = proc
        actions: list[Action] = [Publish("spawn", {"process_pid": event.pid})]
        if self.config.ready_check:
            proc.ready = False
            proc.ready_deadline = now + self.config.ready_timeout
            actions.append(CheckReadiness(event.pid))
        slot = self.slots.get(event.wid)
        if slot is None or self.status not in (WatcherStatus.STARTING, WatcherStatus.ACTIVE):
            # The slot went away while the spawn was in flight (stop, decr): undo it.
            return actions + self._stop_process(proc, now, "no longer wanted", replace=False)
        slot.pid, slot.pending = event.pid, False
        self.awaiting_first_spawn.discard(event.wid)
        return actions + self._maybe_started() + self._reload_step(now)

    def _spawn_failed(self, event: SpawnFailed, now: float) -> list[Action]:
        self.in_flight.discard(event.wid)
        slot = self.slots.get(event.wid)
        actions: list[Action] = [
            LogMessage("error", f"watcher {self.config.name!r}: {event.reason}")
        ]
        if slot is None:
            return actions + self._maybe_stopped() + self._maybe_finished()
        slot.pending = False
        slot.failures += 1
        delay = next_delay(slot.failures, self.config.backoff)
        slot.ready_at = now + delay
        self.history.append(
            HistoryEntry(now, None, event.wid, None, None, event.reason, 0.0, delay)
        )
        self.awaiting_first_spawn.discard(event.wid)
        if event.fatal:
            return actions + self._stop(now, event.reason)
        actions += self._record_death(now)
        return actions + self._maybe_started() + self._reload_step(now)

    # ---- exits ------------------------------------------------------------------------
    def _exited(self, pid: int, status: ExitStatus, now: float) -> list[Action]:
        proc = self.procs.pop(pid, None)
        if proc is None:
            return []
        proc.state = advance(PROCESS_TRANSITIONS, proc.state, "exit")
        uptime = now - proc.started_at
        exit_code = -status.signal if status.signal is not None else status.code
        actions: list[Action] = [Publish("reap", {"process_pid": pid, "exit_code": exit_code})]
        slot = self.slots.get(proc.wid)
        if slot is not None and slot.pid != pid:
            slot = None
        if slot is not None:
            slot.pid = None
        if proc.reason:  # we asked it to stop
            # kill command and max_age replace the process, unless respawn is off
            replaced = slot is not None and proc.replace and self.config.respawn != "never"
            delay: float | None = None
            if slot is not None:
                if proc.failed:  # not ready in time, or unhealthy: back off like a crash
                    slot.failures = failures_after(slot.failures, uptime, self.config.backoff)
                elif uptime >= self.config.backoff.reset:
                    slot.failures = 0  # it stayed up: the slot's backoff is reset
                if replaced:
                    delay = next_delay(slot.failures, self.config.backoff) if proc.failed else 0.0
                    slot.ready_at = now + delay
                else:
                    slot.done = True
            self.history.append(
                HistoryEntry(
                    now, pid, proc.wid, status.code, status.signal, proc.reason, uptime, delay
                )
            )
        elif slot is not None:
            actions += self._unexpected_exit(proc, slot, status, uptime, now)
        else:  # e.g. an old process a reload is about to retire
            self.history.append(
                HistoryEntry(
                    now, pid, proc.wid, status.code, status.signal, status.describe(), uptime, None
                )
            )
        actions += self._maybe_stopped()
        actions += self._maybe_finished()
        return actions + self._spawn_due(now)

    def _unexpected_exit(
        self, proc: ProcessRecord, slot: Slot, status: ExitStatus, uptime: float, now: float
    ) -> list[Action]:
        config = self.config
        respawn = should_respawn(config.respawn, status, config.success_exit_codes)
        reason = status.describe()
        delay: float | None = None
        if self.flapping is not None and uptime >= config.backoff.reset:
            self.flapping.stable()  # a stable run earns back the flapping retries
        flapping: list[Action] = []
        if respawn:
            slot.failures = failures_after(slot.failures, uptime, config.backoff)
            delay = next_delay(slot.failures, config.backoff)
            slot.ready_at = now + delay
            flapping = self._record_death(now)
            if flapping:  # the watcher stops instead; it starts again at the retry, if any
                delay = None if self.retry_at is None else self.retry_at - now
            else:
                self.restarts += 1
                slot.restarts += 1
        else:
            slot.done = True
        self.history.append(
            HistoryEntry(now, proc.pid, proc.wid, status.code, status.signal, reason, uptime, delay)
        )
        level = "info" if not respawn and status.code in config.success_exit_codes else "warning"
        if not respawn:
            what = "not restarted (respawn)"
        elif flapping:
            what = "not restarted: the watcher is flapping"
        else:
            what = f"restarting in {delay:.3g}s" if delay else "restarting now"
        message = f"watcher {config.name!r}: process {proc.pid} (wid {proc.wid}) {reason}"
        return [LogMessage(level, f"{message}; {what}"), *flapping]

    def _record_death(self, now: float) -> list[Action]:
        if self.flapping is None or not self.flapping.record_death(now):
            return []
        retry = self.flapping.retry_at(now)
        name = self.config.name
        if retry is None:
            message = f"watcher {name!r} is flapping; giving up (flapping.max_retry reached)"
        else:
            message = f"watcher {name!r} is flapping; stopping, next try in {retry - now:g}s"
        actions: list[Action] = [LogMessage("error", message)]
        actions += self._stop(now, "flapping")
        self.retry_at = retry
        return actions

    def _maybe_finished(self) -> list[Action]:
        if self.status not in (WatcherStatus.STARTING, WatcherStatus.ACTIVE) or self.procs:
            return []
        if not self.slots or not all(s.done for s in self.slots.values()) or self.in_flight:
            return []
        self.status = advance(WATCHER_TRANSITIONS, self.status, "finished")
        self._drop_plans()  # a stopped watcher has no slots
        return [StopCompleted("every process ended"), Publish("stop")]

    # ---- readiness and health ----------------------------------------------------------------
    def _ready(self, pid: int, now: float) -> list[Action]:
        proc = self.procs.get(pid)
        if proc is None or proc.ready or proc.state is not ProcessState.RUNNING:
            return []
        proc.ready, proc.ready_deadline = True, None
        return [Publish("ready", {"process_pid": pid}), *self._reload_step(now)]

    def _unhealthy(self, pid: int, reason: str, now: float) -> list[Action]:
        proc = self.procs.get(pid)
        if proc is None or proc.state is not ProcessState.RUNNING or self.released:
            return []
        proc.unhealthy = True
        slot = self.slots.get(proc.wid)
        replace = slot is not None and slot.pid == pid
        actions: list[Action] = [
            Publish("unhealthy", {"process_pid": pid}),
            LogMessage(
                "warning", f"watcher {self.config.name!r}: process {pid} {reason}; restarting"
            ),
        ]
        actions += self._stop_process(proc, now, reason, replace=replace)
        proc.failed = True
        return actions

    # ---- reload ------------------------------------------------------------------------
    def _reload(self, now: float) -> list[Action]:
        if self.status is WatcherStatus.STOPPED:
            actions = self._start(now)  # Circus: a stopped watcher is started (and "reload")
            self.reloading = True
            return actions + self._reload_step(now)
        if self.status is WatcherStatus.STOPPING:
            return []
        running = sorted(
            (
                p
                for p in self.procs.values()
                if p.state is ProcessState.RUNNING and p.pid not in self.retiring
            ),
            key=lambda p: p.started_at,
        )
        self.retiring += [p.pid for p in running]
        old = set(self.retiring)
        self.slots = {w: s for w, s in self.slots.items() if s.pid is None or s.pid not in old}
        self.reloading = True
        self.reload_batch.clear()
        return self._reload_step(now)

    def _reload_step(self, now: float) -> list[Action]:
        """Zero-downtime reload: start a batch (reload_batch) of new processes; once they are
        ready, stop as many old ones (oldest first); repeat. Old processes keep serving until
        their replacements are ready, even when a new one fails to start."""
        if not self.reloading or self.status not in (WatcherStatus.STARTING, WatcherStatus.ACTIVE):
            return []
        for wid in list(self.reload_batch):
            slot = self.slots.get(wid)
            if slot is None or slot.done:
                self.reload_batch.discard(wid)
                continue
            proc = self.procs.get(slot.pid) if slot.pid is not None else None
            if proc is None or not proc.ready:
                return []  # the batch is not up yet
        actions: list[Action] = []
        if self.reload_batch:
            count = len(self.reload_batch)
            self.reload_batch.clear()
            actions += self._retire(self.retiring[:count], now)
            self.retiring = self.retiring[count:]
        missing = self.numprocesses - len(self.slots)
        if missing > 0:
            for wid in self._free_wids(min(self.config.reload_batch, missing)):
                self.slots[wid] = Slot(wid, ready_at=now)
                self.reload_batch.add(wid)
            return actions + self._spawn_due(now)
        actions += self._retire(self.retiring, now)
        self.retiring = []
        self.reloading = False
        return [*actions, Publish("reload")]

    def _retire(self, pids: list[int], now: float) -> list[Action]:
        actions: list[Action] = []
        for pid in pids:
            proc = self.procs.get(pid)
            if proc is not None:
                actions += self._stop_process(proc, now, "reloaded", replace=False)
        return actions

    # ---- stopping one process ---------------------------------------------------------
    def _stop_process(
        self,
        proc: ProcessRecord,
        now: float,
        reason: str,
        replace: bool,
        graceful_timeout: float | None = None,
        signum: int | None = None,
    ) -> list[Action]:
        if proc.state is ProcessState.STOPPING:
            proc.replace = proc.replace and replace
            return []
        proc.state = advance(PROCESS_TRANSITIONS, proc.state, "stop")
        proc.reason, proc.replace = reason, replace
        timeout = self.config.graceful_timeout if graceful_timeout is None else graceful_timeout
        proc.stop_deadline = now + timeout
        signal = self.config.stop_signal if signum is None else signum
        return [SendStopSignal(proc.pid, signal), Publish("kill", {"process_pid": proc.pid})]

    def _kill_one(self, event: KillProcess, now: float) -> list[Action]:
        proc = self.procs.get(event.pid)
        if proc is None:
            return []
        replace = proc.wid in self.slots and self.slots[proc.wid].pid == proc.pid
        return self._stop_process(
            proc, now, "killed on request", replace, event.graceful_timeout, event.signum
        )

    # ---- timers -----------------------------------------------------------------------
    def _tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for proc in list(self.procs.values()):
            if proc.state is ProcessState.STOPPING:
                if not proc.killed and proc.stop_deadline is not None and now >= proc.stop_deadline:
                    advance(PROCESS_TRANSITIONS, proc.state, "grace_expired")
                    proc.killed = True
                    actions += [KillTree(proc.pid), Publish("kill", {"process_pid": proc.pid})]
            elif not proc.ready and proc.ready_deadline is not None and now >= proc.ready_deadline:
                timeout = self.config.ready_timeout
                reason = f"not ready within {timeout:g}s (ready_check)"
                actions += self._unhealthy(proc.pid, reason, now)
            elif proc.expires_at is not None and now >= proc.expires_at:
                actions += self._stop_process(proc, now, "max_age reached", replace=True)
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            actions.append(
                LogMessage("info", f"watcher {self.config.name!r}: retrying after flapping")
            )
            if self.status is WatcherStatus.STOPPED:
                actions.append(Resumed())
            actions += self._start(now)
        return actions + self._spawn_due(now)
