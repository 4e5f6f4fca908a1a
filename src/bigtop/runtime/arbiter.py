"""The arbiter: owns the watchers, the reaper and the daemon's signals.

Signals only enqueue a command (uvicorn's pattern); one task takes commands off the queue
and runs them in order, so a reload never interleaves with a quit. Watchers start by
priority, highest first (with [circus] warmup_delay between them), and stop in the
reverse order, one priority level at a time, each level's watchers together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from itertools import groupby
from typing import TYPE_CHECKING, Any

import msgspec

from bigtop.config.load import load_config
from bigtop.config.model import Config, WatcherConfig
from bigtop.config.sockets import parse_socket
from bigtop.control.endpoints import Endpoints, ipc_path, resolve, runtime_dir
from bigtop.control.server import ControlServer
from bigtop.core.messages import Stop
from bigtop.core.states import WatcherStatus
from bigtop.errors import ConfigError, ConfigProblem
from bigtop.protocol.errors import CommandError
from bigtop.runtime import proctree
from bigtop.runtime.controller import Controller
from bigtop.runtime.hooks import HookError
from bigtop.runtime.plugins import PluginSupervisor
from bigtop.runtime.probes import NotifyListener
from bigtop.runtime.reaper import Reaper
from bigtop.runtime.sockets import BoundSocket, SocketBindError, bind_fresh, per_process, used_by
from bigtop.runtime.sockets import bind as bind_socket
from bigtop.runtime.sockets import close as close_socket
from bigtop.runtime.statefile import StateFile
from bigtop.runtime.watcher import Services, Watcher, resolve_hooks

if TYPE_CHECKING:  # (imported where started: only some daemons stream stats)
    from bigtop.runtime.statsstream import StatsStream

log = logging.getLogger("bigtop.arbiter")

Subscriber = Callable[[str, dict[str, Any]], None]
QUIT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


class Arbiter:
    def __init__(
        self,
        config: Config,
        adopt_orphans: bool = True,
        endpoints: Endpoints | None = None,
        serve: bool = True,
    ) -> None:
        self.config = config
        self.adopt_orphans = adopt_orphans
        self._was_subreaper = False
        circus = config.circus
        self.endpoints = endpoints or resolve(
            circus.endpoint, circus.pubsub_endpoint, circus.stats_endpoint
        )
        self.restart_requested = False
        self.sockets: dict[str, BoundSocket] = {}
        self._discovery: asyncio.BaseTransport | None = None
        self._notify: NotifyListener | None = None
        self._starters: set[asyncio.Task[None]] = set()
        self._stats: StatsStream | None = None
        self._armed: dict[str, list[int]] = {}  # on_demand watchers waiting on socket fds
        self._statefile: StateFile | None = None
        self._state_timer: asyncio.Handle | None = None
        self._httpd: Any = None  # the dashboard, with [circus] httpd = true
        self.controller = Controller(self)
        self.server: ControlServer | None = None
        if serve:
            curve = None
            if circus.curve_secret_key:
                from bigtop.control.curve import server_keys

                curve = server_keys(
                    circus.curve_secret_key,
                    circus.curve_authorized_keys or os.path.dirname(circus.curve_secret_key),
                )
            self.server = ControlServer(
                self.controller, self.endpoints, circus.endpoint_owner, curve
            )
        self.loop = asyncio.get_running_loop()
        self.reaper = Reaper(self.loop)
        self.subscribers: list[Subscriber] = []
        self.watchers: dict[str, Watcher] = {}
        self.released: list[Watcher] = []  # removed with nostop, processes still running
        self._commands: asyncio.Queue[str] = asyncio.Queue()
        self._done = asyncio.Event()
        self._quitting = False
        self._reload_waiting = False  # a reload is queued and not started yet
        self._reloading: asyncio.Task[None] | None = None  # the queued reload under way
        self._stop_asked = False  # quit or restart queued: reloads still queued are dropped
        self._sweeper: asyncio.TimerHandle | None = None
        self.started_at = time.time()
        self.plugins = PluginSupervisor(self)  # [plugin:NAME] processes
        self.services = services = Services(
            loop=self.loop,
            reaper=self.reaper,
            publish=self.publish,
            arbiter=self,
            config_dir=os.path.dirname(config.path),
            cwd=_daemon_cwd(),
        )
        for watcher_config in config.watchers:
            self.watchers[watcher_config.name.lower()] = Watcher(watcher_config, services)

    def __repr__(self) -> str:
        return f"<Arbiter {len(self.watchers)} watchers, {len(self.reaper)} processes>"

    # ---- the bus --------------------------------------------------------------------------
    def publish(self, watcher: str, action: str, payload: dict[str, Any]) -> None:
        topic = f"watcher.{watcher.lower().replace(' ', '_')}.{action}"
        message = {**payload, "time": time.time()}
        if action in ("spawn", "reap"):
            if action == "reap":
                pid = payload.get("process_pid")
                if self._statefile is not None:
                    self._statefile.forget(pid)
                if isinstance(pid, int):  # not kept for STALE seconds after its end
                    self.controller.procinfo.forget(pid)
            self._state_changed()
        if self.server is not None:
            self.server.publish(topic, message)
        for subscriber in list(self.subscribers):
            try:
                subscriber(topic, message)
            except Exception:
                log.exception("event subscriber failed on %s", topic)

    def get_watcher(self, name: str) -> Watcher | None:
        return self.watchers.get(name.lower())

    def by_priority(self, descending: bool) -> list[list[Watcher]]:
        """Levels to start (descending) or stop (ascending) together.

        Dependencies come first: a watcher is started after everything it depends_on and
        stopped before it; priority orders watchers at the same depth."""
        sign = -1 if descending else 1  # names stay alphabetical either way, as in Circus

        def key(w: Watcher) -> tuple[int, int]:
            depth = self.depth(w)
            return (depth if descending else -depth, sign * w.config.priority)

        ordered = sorted(self.watchers.values(), key=lambda w: (*key(w), w.name))
        return [list(group) for _, group in groupby(ordered, key=key)]

    def depth(self, watcher: Watcher, seen: frozenset[str] = frozenset()) -> int:
        """Length of the longest depends_on chain below a watcher."""
        deps = [self.get_watcher(d) for d in watcher.config.depends_on]
        found = [d for d in deps if d is not None and d.name.lower() not in seen]
        if not found:
            return 0
        inner = seen | {watcher.name.lower()}
        return 1 + max(self.depth(d, inner) for d in found)

    async def wait_ready(self, watcher: Watcher) -> None:
        """Until the watcher is active and every one of its processes is ready."""

        def ready() -> bool:
            procs = watcher.core.procs.values()
            return watcher.core.status is WatcherStatus.ACTIVE and all(p.ready for p in procs)

        await watcher.wait_until(ready)

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Start every autostart watcher by priority; one with depends_on starts (in its
        own task, so nothing else waits) once its dependencies are ready."""
        first = True
        self._schedule_sweep()
        for level in self.by_priority(descending=True):
            for watcher in level:
                if not watcher.config.autostart or self._quitting:
                    continue
                if watcher.config.on_demand and self.arm_on_demand(watcher):
                    continue
                if watcher.config.depends_on:
                    task = asyncio.create_task(self._start_when_ready(watcher))
                    self._starters.add(task)
                    task.add_done_callback(self._starters.discard)
                    continue
                if not first and self.config.circus.warmup_delay > 0:
                    await asyncio.sleep(self.config.circus.warmup_delay)
                first = False
                watcher.start()

    async def _start_when_ready(self, watcher: Watcher) -> None:
        await self._dependencies_ready(watcher)
        if not self._quitting:
            watcher.start()

    async def _dependencies_ready(self, watcher: Watcher) -> None:
        for name in watcher.config.depends_on:
            dependency = self.get_watcher(name)
            if dependency is None:
                continue
            if dependency.core.status is WatcherStatus.STOPPED and not self._quitting:
                log.info("watcher %r waits for %r to be started", watcher.name, dependency.name)
            await self.wait_ready(dependency)

    @property
    def stopping(self) -> bool:
        """The daemon is stopping (quit, or restart): nothing may start any more."""
        return self._quitting

    async def stop(self) -> None:
        for level in self.by_priority(descending=False):
            await asyncio.gather(*(watcher.stop() for watcher in level))
        released, self.released = self.released, []
        await asyncio.gather(*(watcher.stop() for watcher in released))

    async def run(self) -> None:
        """Start everything, serve signals until asked to quit, stop everything."""
        if self.server is not None:
            # what a previous daemon, killed with SIGKILL, left running: stop it first
            self._statefile = StateFile(self._state_path())
            with contextlib.suppress(OSError):
                os.makedirs(os.path.dirname(self._statefile.path), mode=0o700, exist_ok=True)
            self._statefile.stop_leftovers()
        self._bind_sockets()
        if self.server is not None:
            try:
                self.server.bind()
            except BaseException:
                self._close_sockets()
                raise
            self.endpoints = self.server.endpoints
            self.server.start()
        if self.server is not None and (
            self.config.circus.statsd or self.config.circus.stats_endpoint
        ):
            from bigtop.runtime.statsstream import StatsStream

            self._stats = StatsStream(self, self.server.context, self.endpoints.stats)
            log.info("stats stream on %s", self.endpoints.stats)
        if self.config.circus.multicast_endpoint and self.server is not None:
            from bigtop.control import discovery

            try:
                self._discovery = await discovery.start(
                    self.config.circus.multicast_endpoint, self.endpoints.control
                )
            except discovery.DiscoveryError as exc:
                log.warning("%s; discovery is off", exc)
        if self.server is not None:
            log.info(
                "listening: control %s, events %s", self.endpoints.control, self.endpoints.pubsub
            )
        if self.config.circus.httpd and self.server is not None:
            from bigtop.web.embedded import start_dashboard  # aiohttp only when asked for

            self._httpd = await start_dashboard(self)
        self._install_signals()
        if self.adopt_orphans:
            self._was_subreaper = proctree.is_subreaper()
            proctree.set_subreaper(True)
        commands = asyncio.create_task(self._serve_commands())
        try:
            if self.server is not None:
                self.plugins.start()  # they need the control endpoint
            await self.start()
            await self._done.wait()
        finally:
            for starter in list(self._starters):
                starter.cancel()
            commands.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await commands
            await self.plugins.stop()
            if self._sweeper is not None:
                self._sweeper.cancel()
            if len(self.reaper):  # an error cut the start or the stop short
                log.error("killing %d process(es) still running", len(self.reaper))
                await self._kill_everything()
            if self.adopt_orphans:
                await self._kill_orphans()
                if not self._was_subreaper:
                    proctree.set_subreaper(False)
            self._remove_signals()
            self.reaper.close()
            self._close_sockets()
            if self._notify is not None:
                self._notify.close()
                self._notify = None
            if self._discovery is not None:
                self._discovery.close()
            if self._stats is not None:
                await self._stats.close()
            if self._state_timer is not None:
                self._state_timer.cancel()
            if self._statefile is not None:
                self._statefile.remove()  # a clean stop leaves nothing to clean up
            if self._httpd is not None:
                await self._httpd.close()
            if self.server is not None:
                await self.server.close()

    def arm_on_demand(self, watcher: Watcher) -> bool:
        """Start `watcher` when one of its sockets gets a connection (bigtop: exactly this
        watcher, unlike Circus). False when it has no socket to wait on."""
        fds = [
            self.sockets[name].fd
            for name in used_by(watcher.config, list(self.sockets))
            if not per_process(self.sockets[name].spec)
        ]
        if not fds:
            log.warning("watcher %r: on_demand but it uses no socket; starting it", watcher.name)
            return False
        for fd in fds:
            self.loop.add_reader(fd, self._on_demand, watcher, fds)
        self._armed[watcher.name.lower()] = fds
        log.info("watcher %r starts on its first connection", watcher.name)
        return True

    def disarm_on_demand(self, watcher: Watcher) -> None:
        for fd in self._armed.pop(watcher.name.lower(), []):
            self.loop.remove_reader(fd)

    def _on_demand(self, watcher: Watcher, fds: list[int]) -> None:
        self.disarm_on_demand(watcher)
        if not self._quitting and watcher.is_stopped():
            log.info("watcher %r: a connection is waiting; starting it", watcher.name)
            watcher.start()

    def watcher_stopped(self, watcher: Watcher) -> None:
        """Called by a watcher once stopped: an on_demand one waits for connections again."""
        if (
            watcher.config.on_demand
            and not self._quitting
            and watcher.name.lower() in self.watchers
        ):
            self.arm_on_demand(watcher)

    def _state_path(self) -> str:
        control = ipc_path(self.endpoints.control)
        if control:
            return os.path.join(os.path.dirname(control), "state.json")
        import hashlib  # only here: the daemon does not otherwise need it

        digest = hashlib.sha1(self.config.path.encode()).hexdigest()[:12]
        return os.path.join(runtime_dir(), f"state-{digest}.json")

    def _state_changed(self) -> None:
        """Record the children as soon as this turn of the loop ends (the spawns of one turn
        make one write). Not later: a daemon SIGKILLed before the write would leave a child
        nobody knows about running for ever (a 50 ms delay did, in tests/faults)."""
        if self._statefile is None or self._state_timer is not None:
            return
        self._state_timer = self.loop.call_soon(self._write_state)

    def flush_state(self) -> None:
        """Write the record now if a write is pending: before a reply names a process, so that
        a client that SIGKILLs the daemon right after knows the next one will stop it."""
        if self._state_timer is not None:
            self._state_timer.cancel()
            self._write_state()

    def _write_state(self) -> None:
        self._state_timer = None
        if self._statefile is not None:
            children = {
                pid: watcher.name
                for watcher in [*self.watchers.values(), *self.released]
                for pid in watcher.popens
            }
            self._statefile.write(children)

    def notify_socket(self) -> str:
        """The NOTIFY_SOCKET for `ready_check = notify` watchers (made on first use)."""
        if self._notify is None:
            control = ipc_path(self.endpoints.control)
            import tempfile

            directory = os.path.dirname(control) if control else tempfile.mkdtemp(prefix="bigtop-")
            self._notify = NotifyListener(os.path.join(directory, "notify.sock"), self._notified)
        return self._notify.path

    def _notified(self, pid: int) -> None:
        """READY=1 from `pid` (or from a descendant of one of our processes)."""
        for candidate in [pid, *proctree.ancestors(pid, 4)]:
            for watcher in self.watchers.values():
                if candidate in watcher.core.procs:
                    watcher.mark_ready(candidate)
                    return

    def _bind_sockets(self) -> None:
        """Bind every [socket:NAME] before any watcher starts (all or nothing)."""
        try:
            for config in self.config.sockets:
                bound = bind_socket(parse_socket(config))
                self.sockets[config.name] = bound
                entry = bound.describe()
                where = entry.get("path") or f"{entry.get('host')}:{entry.get('port')}"
                log.info("socket %r bound on %s (fd %s)", config.name, where, entry["fd"])
        except SocketBindError:
            self._close_sockets()
            raise

    def _close_sockets(self) -> None:
        for bound in self.sockets.values():
            self.loop.remove_reader(bound.fd)
            close_socket(bound)
        self.sockets.clear()

    def socket_fds(self, watcher: WatcherConfig) -> tuple[dict[str, int], list[socket.socket]]:
        """The fds a spawn of this watcher gets, and the fresh per-process sockets (of
        so_reuseport sockets) that the caller closes once the child has them."""
        names = used_by(watcher, list(self.sockets))
        fds: dict[str, int] = {}
        fresh: list[socket.socket] = []
        for name in names:
            bound = self.sockets[name]
            if per_process(bound.spec):
                own = bind_fresh(bound)
                fresh.append(own)
                fds[name] = own.fileno()
            else:
                fds[name] = bound.fd
        return fds, fresh

    async def _kill_orphans(self) -> None:
        """Adopted descendants still running once every watcher stopped: kill and reap."""
        registered = set(self.reaper.pids())
        orphans = [pid for pid in proctree.own_children() if pid not in registered]
        if not orphans:
            return
        log.warning("killing %d leftover descendant process(es): %s", len(orphans), orphans)
        proctree.kill_pids(orphans)
        deadline = self.loop.time() + 5.0
        while self.loop.time() < deadline:
            self.reaper.reap_orphans()
            if not set(proctree.own_children()) & set(orphans):
                return
            await asyncio.sleep(0.01)

    def request(self, command: str) -> None:
        """Queue `quit`, `restart` or `reload` (what signals do).

        A reload asked while another one waits adds nothing (it would replace the same
        processes again), so a burst of SIGHUPs makes at most one more reload. A stop does
        not wait behind a reload under way, which can last as long as replacements take to
        become ready: it interrupts it, and stopping takes care of old and new processes."""
        if command == "reload":
            if self._reload_waiting:
                return
            self._reload_waiting = True
        elif command in ("quit", "restart"):
            self._stop_asked = True
            if self._reloading is not None:
                self._reloading.cancel()
        self._commands.put_nowait(command)

    async def _serve_commands(self) -> None:
        while True:
            command = await self._commands.get()
            if command == "reload":
                self._reload_waiting = False
            if command == "quit":
                if self._quitting:
                    log.warning("second stop request: killing every process now")
                    for watcher in self.watchers.values():
                        watcher.kill_now()
                    continue
                self._quitting = True
                log.info("stopping every watcher")
                asyncio.create_task(self._quit())  # noqa: RUF006 - awaited through _done
            elif command == "reload" and not self._quitting and not self._stop_asked:
                log.info("reloading every watcher")
                self._reloading = reloading = asyncio.create_task(self.reload())
                await asyncio.wait([reloading])  # a stop cancels the task, not this loop
                self._reloading = None
                if reloading.cancelled():
                    log.info("reload interrupted by a stop request")
                elif reloading.exception() is not None:
                    log.error("reload failed: %s", reloading.exception())
                else:
                    log.info("reloaded every watcher")
            elif command == "restart" and not self._quitting:
                log.info("restarting: stopping every watcher, then reading the config again")
                self.restart_requested = True
                self._quitting = True
                asyncio.create_task(self._quit())  # noqa: RUF006 - awaited through _done

    async def _quit(self) -> None:
        try:
            await self.plugins.stop()  # first: no plugin acts on a daemon that is stopping
            await self.stop()
        except Exception:
            # whatever went wrong, the daemon does not exit leaving its processes running
            log.exception("stopping the watchers failed; killing every process")
            await self._kill_everything()
        finally:
            self._done.set()

    async def _kill_everything(self, timeout: float = 5.0) -> None:
        """The last resort of a stop that failed: every watcher told to stop (so nothing is
        restarted), every process SIGKILLed, and their exits waited for."""
        for watcher in self.watchers.values():
            with contextlib.suppress(Exception):
                watcher.feed(Stop())
            watcher.kill_now()
        # and whatever else is registered (a probe, say) is killed through its pidfd: the
        # daemon must not exit leaving it
        for pid in self.reaper.pids():
            self.reaper.send_signal(pid, signal.SIGKILL)
        deadline = self.loop.time() + timeout
        while len(self.reaper) and self.loop.time() < deadline:
            await asyncio.sleep(0.01)

    async def reload(self) -> None:
        """Reload every watcher (starting stopped ones, as Circus does)."""
        for level in self.by_priority(descending=True):
            await asyncio.gather(*(self._reload_one(w) for w in level))

    async def _reload_one(self, watcher: Watcher) -> None:
        async with watcher.lock:
            if watcher.is_stopped():
                await watcher.start_and_wait()
            else:
                watcher.reload()
                await watcher.settle()

    async def start_watchers(self) -> None:
        """`start` without a name: every autostart watcher, by priority."""
        for level in self.by_priority(descending=True):
            await asyncio.gather(*(self._start_one(w) for w in level if w.config.autostart))

    async def _start_one(self, watcher: Watcher) -> None:
        await self._dependencies_ready(watcher)
        async with watcher.lock:
            await watcher.start_and_wait()

    async def stop_watchers(self) -> None:
        for level in self.by_priority(descending=False):
            await asyncio.gather(*(self._stop_one(w) for w in level))

    async def _stop_one(self, watcher: Watcher) -> None:
        async with watcher.lock:
            await watcher.stop()

    async def wait_stopped(self) -> None:
        await self._done.wait()

    def add_watcher(self, config: WatcherConfig) -> Watcher:
        watcher = Watcher(config, self.services)
        self.watchers[config.name.lower()] = watcher
        self.config = msgspec.structs.replace(
            self.config,
            watchers=tuple(sorted((*self.config.watchers, config), key=lambda w: w.name)),
        )
        return watcher

    async def remove_watcher(self, watcher: Watcher, stop: bool = True) -> None:
        if stop:
            await watcher.stop()
        else:
            # its processes run on until they end; the daemon's own stop still stops them
            watcher.release()
            self.released = [w for w in self.released if w.popens] + [watcher]
        self.watchers.pop(watcher.name.lower(), None)
        self.disarm_on_demand(watcher)
        self.services.logbook.forget(watcher.name)
        self.config = msgspec.structs.replace(
            self.config,
            watchers=tuple(
                w for w in self.config.watchers if w.name.lower() != watcher.name.lower()
            ),
        )

    def plan_reload_config(self) -> list[dict[str, str | None]]:
        try:
            new = load_config(self.config.path)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        from bigtop.config.diff import plan

        return [step.as_dict() for step in plan(self.config, new)]

    async def reload_config(self) -> dict[str, Any]:
        """Apply what changed on disk: exactly the watchers that changed, in priority order."""
        try:
            new = load_config(self.config.path)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        problems = check_hooks(new)
        if problems:
            raise CommandError("; ".join(str(p) for p in problems))
        from bigtop.config.diff import plan

        steps = plan(self.config, new)
        new_by_name = {w.name.lower(): w for w in new.watchers}
        for step in steps:
            log.info("reloadconfig: %s %s %s", step.action, step.watcher or "", step.detail)
            if step.action == "restart-daemon":
                self.request("restart")
                break
            if step.watcher is None:
                continue
            key = step.watcher.lower()
            old = self.watchers.get(key)
            if step.action == "remove" and old is not None:
                async with old.lock:
                    await self.remove_watcher(old)
            elif step.action == "resize" and old is not None:
                async with old.lock:
                    old.apply_config(new_by_name[key])
                    old.scale(new_by_name[key].numprocesses)
            elif step.action in ("update", "reload") and old is not None:
                async with old.lock:
                    config = new_by_name[key]
                    old.apply_config(config)
                    if config.numprocesses != old.numprocesses:
                        old.scale(config.numprocesses)
                    if step.action == "reload" and not old.is_stopped():
                        old.reload()
                    await old.settle()
            elif step.action == "recreate" and old is not None:
                async with old.lock:
                    was_running = not old.is_stopped()
                    await self.remove_watcher(old)
                fresh = self.add_watcher(new_by_name[key])
                if was_running or fresh.config.autostart:
                    await self._start_one(fresh)
            elif step.action == "add":
                fresh = self.add_watcher(new_by_name[key])
                if fresh.config.autostart:
                    await self._start_one(fresh)
        if not any(step.action == "restart-daemon" for step in steps):
            self.config = new  # every watcher now runs the file's definition
            await self.plugins.apply(new.plugins)
        return {"plan": [step.as_dict() for step in steps]}

    # ---- signals and the safety sweep -----------------------------------------------------
    def _install_signals(self) -> None:
        for signum in QUIT_SIGNALS:
            self.loop.add_signal_handler(signum, self.request, "quit")
        self.loop.add_signal_handler(signal.SIGHUP, self.request, "reload")
        if self.adopt_orphans:
            self.loop.add_signal_handler(signal.SIGCHLD, self.reaper.reap_orphans)

    def _remove_signals(self) -> None:
        for signum in (*QUIT_SIGNALS, signal.SIGHUP, signal.SIGCHLD):
            self.loop.remove_signal_handler(signum)

    def _schedule_sweep(self) -> None:
        delay = self.config.circus.check_delay
        delay = delay if delay > 0 else 5.0
        self._sweeper = self.loop.call_later(delay, self._sweep)

    def _sweep(self) -> None:
        self.reaper.sweep()
        if self.adopt_orphans:
            self.reaper.reap_orphans()
        self._schedule_sweep()


def check_hooks(config: Config) -> list[ConfigProblem]:
    """Import every watcher's hooks now; one problem per hook that cannot be imported."""
    problems = []
    for watcher in config.watchers:
        for name, hook in watcher.hooks.items():
            try:
                resolve_hooks(msgspec.structs.replace(watcher, hooks={name: hook}))
            except HookError as exc:
                problems.append(
                    ConfigProblem(
                        str(exc),
                        file=watcher.source or None,
                        section=f"watcher:{watcher.name}",
                        option=f"hooks.{name}",
                        value=hook.target,
                        severity="warning",
                    )
                )
    return problems


def _daemon_cwd() -> str:
    """Circus prefers $PWD when it names the same directory (keeps symlinked paths)."""
    cwd = os.getcwd()
    pwd = os.environ.get("PWD")
    if pwd:
        with contextlib.suppress(OSError):
            if os.path.samefile(pwd, cwd):
                return pwd
    return cwd
