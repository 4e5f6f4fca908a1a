"""A watcher at run time: carries out what the core decides, with real processes.

Events for the core are queued and fed one at a time; an action may produce new events
(a spawn produces `Spawned`), which wait their turn, so the core never sees re-entrant
calls. After every batch the single timer is moved to the core's `next_wakeup()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
from bigtop.core.policy import ExitStatus
from bigtop.core.spawnplan import PlanError, SpawnContext, build_plan, parse_env_file
from bigtop.core.states import ProcessState, WatcherStatus
from bigtop.core.watcher import HistoryEntry, WatcherCore
from bigtop.errors import SpawnError
from bigtop.runtime import proctree, spawner
from bigtop.runtime.hooks import HookFunction, HookRunner, resolve
from bigtop.runtime.logbook import CaptureSink, LogBook
from bigtop.runtime.output import PipeReader, Sink, make_sink
from bigtop.runtime.probes import probe
from bigtop.runtime.reaper import Reaper

if TYPE_CHECKING:
    from bigtop.config.model import HookConfig

log = logging.getLogger("bigtop.watcher")
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


@dataclass
class Services:
    """What every watcher shares, owned by the arbiter."""

    loop: asyncio.AbstractEventLoop
    reaper: Reaper
    publish: Callable[[str, str, dict[str, Any]], None]
    arbiter: Any
    config_dir: str
    cwd: str
    logbook: LogBook = field(default_factory=LogBook)


class Watcher:
    def __init__(self, config: WatcherConfig, services: Services) -> None:
        self.config = config
        self.name = config.name
        self.services = services
        self.core = WatcherCore(config)
        self.popens: dict[int, subprocess.Popen[bytes]] = {}
        self.readers: dict[int, list[PipeReader]] = {}
        self.hooks = HookRunner(resolve_hooks(config), self._publish_hook)
        self.sinks: dict[str, Sink] = {}
        self._events: deque[Event] = deque()
        self._feeding = False
        self._timer: asyncio.TimerHandle | None = None
        self._reschedule_due = False
        self._stopped = asyncio.Event()
        self._stopped.set()
        self._probes: dict[int, list[asyncio.Task[None]]] = {}  # readiness/health, by pid
        # Descendants seen when a process was asked to stop: killed if they outlive it.
        self._family: dict[int, set[int]] = {}
        self._changed = asyncio.Event()  # set (and replaced) after every batch of events
        self.lock = asyncio.Lock()  # commands on this watcher run one at a time, in order
        self.spawned_at: dict[int, float] = {}  # pid -> wall-clock spawn time

    def __repr__(self) -> str:
        return repr(self.core)

    # ---- what hooks and the control plane read ----------------------------------------
    @property
    def status(self) -> str:
        return self.core.status.value

    @property
    def numprocesses(self) -> int:
        return self.core.numprocesses

    @property
    def pids(self) -> list[int]:
        return self.core.running_pids()

    @property
    def processes(self) -> dict[int, subprocess.Popen[bytes]]:
        return dict(self.popens)

    @property
    def env(self) -> dict[str, str]:
        return dict(self.config.env)

    @property
    def history(self) -> list[HistoryEntry]:
        return list(self.core.history)

    def is_stopped(self) -> bool:
        return self.core.status is WatcherStatus.STOPPED

    # ---- commands -----------------------------------------------------------------------
    def start(self) -> bool:
        """Start the watcher; False when before_start refused (it stays stopped)."""
        if self.core.status in (WatcherStatus.STARTING, WatcherStatus.ACTIVE):
            return True
        if self.services.arbiter.stopping:
            # a start or reload queued behind the daemon's stop would outlive the daemon
            log.info("watcher %r: not started, bigtop is stopping", self.name)
            return False
        if not self.hooks.run("before_start", self, self.services.arbiter):
            log.warning("watcher %r: before_start hook returned false; not started", self.name)
            return False
        try:
            self._open_sinks()
        except (OSError, ValueError, ImportError, AttributeError, TypeError) as exc:
            log.error("watcher %r: cannot open its output stream: %s", self.name, exc)
            return False
        self._stopped.clear()
        self.feed(Start())
        return True

    def _resume(self) -> None:
        """The core starts again on its own (after flapping): what `start` does around it,
        and a refusal (before_start false, a stream that cannot open) stops it again."""
        self._stopped.clear()
        if not self.hooks.run("before_start", self, self.services.arbiter):
            log.warning("watcher %r: before_start hook returned false; not retried", self.name)
            self.feed(Stop())  # queued: handled once the retry's actions are carried out
            return
        try:
            self._open_sinks()
        except (OSError, ValueError, ImportError, AttributeError, TypeError) as exc:
            log.error("watcher %r: cannot open its output stream: %s", self.name, exc)
            self.feed(Stop())

    async def stop(self) -> None:
        """Stop gracefully and wait until every process is gone."""
        if not self.is_stopped():
            self.hooks.run("before_stop", self, self.services.arbiter)
            self.feed(Stop())
        elif self.core.retry_at is not None:
            self.feed(Stop())  # cancels the retry planned after flapping
        await self._stopped.wait()

    def scale(self, numprocesses: int) -> None:
        self.feed(Scale(numprocesses))

    def reload(self) -> None:
        if self.is_stopped():
            self.start()
            return
        if self.config.send_hup and not self.is_stopped():
            for pid in self.pids:
                self._send(pid, signal.SIGHUP)
            self.services.publish(self.name, "reload", {})
            return
        self.feed(Reload())

    def release(self) -> None:
        """`rm` with `nostop`: the processes run on, unmanaged, until they end (or the daemon
        stops); none is replaced or probed."""
        for tasks in self._probes.values():
            for task in tasks:
                task.cancel()
        self._probes.clear()
        self.feed(Release())

    def kill(
        self, pid: int, graceful_timeout: float | None = None, signum: int | None = None
    ) -> None:
        self.feed(KillProcess(pid, graceful_timeout, signum))

    def kill_now(self) -> None:
        """Second Ctrl-C: SIGKILL every process tree at once."""
        for pid in list(self.popens):
            self._kill_tree(pid)

    # ---- the feed loop ----------------------------------------------------------------
    def feed(self, event: Event) -> None:
        self._events.append(event)
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._events:
                next_event = self._events.popleft()
                actions = self.core.feed(next_event, self.services.loop.time())
                # Log lines last: writing one is a system call, and a respawn's fork should
                # not wait for it (the order of the other actions is kept).
                for action in actions:
                    if not isinstance(action, LogMessage):
                        self._carry_out(action)
                for action in actions:
                    if isinstance(action, LogMessage):
                        self._carry_out(action)
        finally:
            self._feeding = False
        self._reschedule()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait (without polling) until `predicate()` holds after some batch of events."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    async def start_and_wait(self) -> bool:
        if not self.start():
            return False
        await self.wait_until(lambda: self.core.status is not WatcherStatus.STARTING)
        return self.core.status is WatcherStatus.ACTIVE

    async def settle(self, timeout: float | None = 60.0) -> None:
        """Wait until no spawn is due now and no process is still stopping: every wanted
        process started (or backing off) and every unwanted one gone."""
        loop = self.services.loop

        def settled() -> bool:
            now = loop.time()
            spawning = any(
                slot.pid is None and not slot.done and (slot.pending or slot.ready_at <= now)
                for slot in self.core.slots.values()
            )
            stopping = any(p.state is ProcessState.STOPPING for p in self.core.procs.values())
            return not spawning and not stopping and not self.core.reloading

        await self.wait_until(settled, timeout)

    def all_ready(self) -> bool:
        return all(p.ready for p in self.core.procs.values())

    def wall_time(self, monotonic: float) -> float:
        """A core (loop-clock) time as epoch seconds."""
        return time.time() - (self.services.loop.time() - monotonic)

    def apply_config(self, config: WatcherConfig) -> None:
        """Take a changed config (from `set`); live options apply at once."""
        hooks_changed = config.hooks != self.config.hooks
        streams_changed = (config.stdout_stream, config.stderr_stream) != (
            self.config.stdout_stream,
            self.config.stderr_stream,
        )
        self.config = config
        self.core.update_config(config)
        if hooks_changed:
            self.hooks = HookRunner(resolve_hooks(config), self._publish_hook)
        if streams_changed:
            for sink in self.sinks.values():
                with contextlib.suppress(Exception):
                    sink.close()
            self.sinks.clear()
            if not self.is_stopped():
                self._open_sinks()

    def _reschedule(self) -> None:
        """Work out the next wakeup once per turn of the loop, however many events came in
        it: at a stop, N exits would otherwise each scan N processes."""
        if not self._reschedule_due:
            self._reschedule_due = True
            self.services.loop.call_soon(self._reschedule_now)

    def _reschedule_now(self) -> None:
        self._reschedule_due = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wakeup = self.core.next_wakeup()
        if wakeup is not None:
            self._timer = self.services.loop.call_at(wakeup, self.feed, Tick())

    def _carry_out(self, action: Action) -> None:
        match action:
            case SpawnProcess(wid=wid):
                self._spawn(wid)
            case SendStopSignal(pid=pid, signum=signum):
                self._stop_signal(pid, signum)
            case KillTree(pid=pid):
                self._kill_tree(pid)
            case CheckReadiness(pid=pid):
                if self.config.ready_check != "notify":
                    self._watch(pid, self._readiness(pid))
            case Resumed():
                self._resume()
            case StartCompleted():
                if not self.hooks.run("after_start", self, self.services.arbiter):
                    log.warning("watcher %r: after_start hook returned false; stopping", self.name)
                    self.feed(Stop())
            case StopCompleted(reason=reason):
                self._stop_completed(reason)
            case Publish(action=name, payload=payload):
                self.services.publish(self.name, name, payload)
            case LogMessage(level=level, message=message):
                log.log(LEVELS.get(level, 20), message)

    # ---- spawning -----------------------------------------------------------------------
    def _spawn(self, wid: int) -> None:
        try:
            self._try_spawn(wid)
        except Exception as exc:  # the core must hear back about every spawn it asked for
            log.exception("watcher %r: spawning process %d failed", self.name, wid)
            self.feed(SpawnFailed(wid, f"cannot start process {wid}: {exc}"))

    def _try_spawn(self, wid: int) -> None:
        if not self.hooks.run("before_spawn", self, self.services.arbiter):
            # bigtop: skip this spawn (it counts as a failure), don't stop the watcher.
            self.feed(SpawnFailed(wid, "before_spawn hook returned false"))
            return
        try:
            fds, fresh = self.services.arbiter.socket_fds(self.config)
            try:
                plan = build_plan(self.config, wid, self._context(fds))
                if self.config.ready_check == "notify":
                    plan.env["NOTIFY_SOCKET"] = self.services.arbiter.notify_socket()
                popen, pipes = self._popen(plan)
            finally:
                for sock in fresh:  # the child has its own copy now
                    sock.close()
        except (PlanError, SpawnError, OSError) as exc:
            reason = exc.reason if isinstance(exc, SpawnError) else str(exc)
            self.feed(SpawnFailed(wid, f"cannot start process {wid}: {reason}"))
            return
        pid = popen.pid
        self.popens[pid] = popen
        self.spawned_at[pid] = time.time()
        self.services.reaper.watch(popen, self._exited, self._kill_leftovers)
        self.readers[pid] = [
            PipeReader(self.services.loop, fd, self.name, pid, stream, self.sinks[stream])
            for stream, fd in pipes.items()
        ]
        jitter = random.uniform(0, self.config.max_age_variance) if self.config.max_age else 0.0
        self.feed(Spawned(wid, pid, jitter))
        if self.config.health_check and not self.config.ready_check:
            self._watch(pid, self._health(pid))
        if not self.hooks.run("after_spawn", self, self.services.arbiter, pid=pid):
            log.warning("watcher %r: after_spawn hook returned false; stopping", self.name)
            self._kill_tree(pid)
            self.feed(Stop())

    def _popen(self, plan: Any) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
        write_ends: dict[str, int] = {}
        read_ends: dict[str, int] = {}
        try:
            for stream in self.sinks:
                read_ends[stream], write_ends[stream] = os.pipe()
            popen = spawner.spawn(plan, write_ends.get("stdout"), write_ends.get("stderr"))
        except BaseException:
            for fd in read_ends.values():
                os.close(fd)
            raise
        finally:
            for fd in write_ends.values():
                os.close(fd)
        return popen, read_ends

    def _context(self, sockets: dict[str, int]) -> SpawnContext:
        env_file: dict[str, str] = {}
        if self.config.env_file:
            path = os.path.join(self.services.config_dir, self.config.env_file)
            try:
                with open(path, encoding="utf-8") as handle:
                    env_file = parse_env_file(handle.read())
            except (OSError, UnicodeDecodeError) as exc:
                raise PlanError(f"cannot read env_file {path}: {exc}") from None
        return SpawnContext(
            environ=os.environ,
            cwd=self.services.cwd,
            python_path=tuple(p for p in sys.path if p),
            virtualenv_paths=virtualenv_paths(self.config),
            env_file=env_file,
            sockets=sockets,
        )

    def _open_sinks(self) -> None:
        for stream in ("stdout", "stderr"):
            if stream in self.sinks:
                continue
            if getattr(self.config, f"close_child_{stream}"):
                continue  # /dev/null: nothing to capture
            stream_config = getattr(self.config, f"{stream}_stream")
            inner = make_sink(stream_config) if stream_config is not None else None
            # Without a stream the output still goes where Circus sends it (the daemon's own
            # stdout/stderr), through the daemon, so that `bigtop logs` can show it.
            passthrough = None if inner is not None else (1 if stream == "stdout" else 2)
            self.sinks[stream] = CaptureSink(self.services.logbook, inner, passthrough)

    # ---- stopping -----------------------------------------------------------------------
    def _stop_signal(self, pid: int, signum: int) -> None:
        arbiter = self.services.arbiter
        if not self.hooks.run("before_signal", self, arbiter, pid=pid, signum=signum):
            return
        self._family.setdefault(pid, set()).update(proctree.descendants(pid))
        self._send(pid, signum)
        if signum not in (signal.SIGKILL, signal.SIGCONT):
            # as systemd does: a suspended process (SIGSTOP, Ctrl-Z) gets to act on it now,
            # instead of holding the stop until graceful_timeout and a SIGKILL
            self._send(pid, signal.SIGCONT)
        if self.config.stop_children:
            for child in proctree.direct_children(pid):
                proctree.kill_pids([child], signum)
                self.services.publish(self.name, "kill", {"process_pid": child})
        self.hooks.run("after_signal", self, arbiter, pid=pid, signum=signum)

    def _send(self, pid: int, signum: int) -> None:
        self.services.reaper.send_signal(pid, signum)

    def _kill_tree(self, pid: int) -> None:
        descendants = proctree.descendants(pid)
        self._family.setdefault(pid, set()).update(descendants)
        self._send(pid, signal.SIGKILL)
        proctree.kill_pids(descendants)
        proctree.kill_group(pid)

    def _exited(self, pid: int, status: ExitStatus) -> None:
        arbiter = self.services.arbiter
        now = time.time()
        self.hooks.run("before_reap", self, arbiter, process_pid=pid, time=now)
        for reader in self.readers.pop(pid, []):
            reader.drain()
            reader.close()
        self.popens.pop(pid, None)
        self.spawned_at.pop(pid, None)
        for task in self._probes.pop(pid, []):
            task.cancel()
        self.services.logbook.ended_process(self.name, pid)
        exit_code = -status.signal if status.signal is not None else status.code
        self.hooks.run(
            "after_reap",
            self,
            arbiter,
            process_pid=pid,
            time=now,
            exit_code=exit_code,
            process_status=None,
        )
        self.feed(Exited(pid, status))

    # ---- readiness and health ---------------------------------------------------------------
    def _watch(self, pid: int, work: Any) -> None:
        task = self.services.loop.create_task(work)
        self._probes.setdefault(pid, []).append(task)

    def _wid(self, pid: int) -> int:
        record = self.core.procs.get(pid)
        return record.wid if record else 0

    async def _readiness(self, pid: int) -> None:
        """Probe until the process is ready (the core times it out by itself)."""
        check = self.config.ready_check or ""
        delay = 0.05
        while pid in self.core.procs:
            record = self.core.procs[pid]
            if record.ready:
                return
            passed, _ = await probe(check, pid, self._wid(pid), 2.0, self.services.reaper.run)
            if passed:
                self.mark_ready(pid)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def mark_ready(self, pid: int) -> None:
        self.feed(ProcessReady(pid))
        if self.config.health_check and pid in self.core.procs:
            self._watch(pid, self._health(pid))

    async def _health(self, pid: int) -> None:
        """Probe every health_interval; health_threshold failures in a row: restart it."""
        check = self.config.health_check or ""
        failures = 0
        while pid in self.core.procs:
            await asyncio.sleep(self.config.health_interval)
            if pid not in self.core.procs:
                return
            timeout = min(self.config.health_interval, 10.0)
            passed, what = await probe(
                check, pid, self._wid(pid), timeout, self.services.reaper.run
            )
            failures = 0 if passed else failures + 1
            if failures >= self.config.health_threshold:
                self.feed(Unhealthy(pid, f"failed its health_check {failures} times ({what})"))
                return

    def _kill_leftovers(self, pid: int) -> None:
        """The process is a zombie (its pid still reserved): SIGKILL what is left of its
        process group, and the descendants seen at stop time that we adopted."""
        proctree.kill_group(pid)
        me = os.getpid()
        adopted = [p for p in self._family.pop(pid, ()) if proctree.parent_of(p) == me]
        proctree.kill_pids(adopted)

    def _stop_completed(self, reason: str) -> None:
        self.hooks.run("after_stop", self, self.services.arbiter)
        for sink in self.sinks.values():
            with contextlib.suppress(Exception):
                sink.close()
        self.sinks.clear()
        self._stopped.set()
        self.services.arbiter.watcher_stopped(self)
        if reason not in ("stopped",):
            log.info("watcher %r stopped: %s", self.name, reason)

    def _publish_hook(self, action: str, payload: dict[str, Any]) -> None:
        self.services.publish(self.name, action, payload)


def resolve_hooks(config: WatcherConfig) -> dict[str, tuple[HookConfig, HookFunction]]:
    """Import the watcher's hooks (HookError names the one that failed)."""
    extra = [p for p in config.env.get("PYTHONPATH", "").split(":") if p]
    if config.working_dir:
        extra.append(config.working_dir)
    return {name: (hook, resolve(hook.target, extra)) for name, hook in config.hooks.items()}


def virtualenv_paths(config: WatcherConfig) -> tuple[str, ...]:
    """site-packages of the watcher's virtualenv, plus the paths its .pth files add."""
    if not config.virtualenv:
        return ()
    version = config.virtualenv_py_ver or f"{sys.version_info.major}.{sys.version_info.minor}"
    found: list[str] = []
    for flavour in ("python", "pypy"):
        site = os.path.join(config.virtualenv, "lib", f"{flavour}{version}", "site-packages")
        if not os.path.isdir(site):
            continue
        found.append(site)
        for entry in sorted(os.listdir(site)):
            if entry.endswith(".pth"):
                found.extend(_pth_paths(os.path.join(site, entry), site))
    return tuple(found)


def _pth_paths(path: str, site: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    paths = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith(("#", "import ", "import\t")):
            continue
        full = os.path.normpath(os.path.join(site, line))
        if os.path.isdir(full):
            paths.append(full)
    return paths
