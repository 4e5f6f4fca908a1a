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
import time
from collections.abc import Callable
from itertools import groupby
from typing import Any

from bigtop.config.model import Config
from bigtop.runtime import proctree
from bigtop.runtime.hooks import HookError
from bigtop.runtime.reaper import Reaper
from bigtop.runtime.watcher import Services, Watcher, resolve_hooks

log = logging.getLogger("bigtop.arbiter")

Subscriber = Callable[[str, dict[str, Any]], None]
QUIT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


class Arbiter:
    def __init__(self, config: Config, adopt_orphans: bool = True) -> None:
        self.config = config
        self.adopt_orphans = adopt_orphans
        self._was_subreaper = False
        self.loop = asyncio.get_running_loop()
        self.reaper = Reaper(self.loop)
        self.subscribers: list[Subscriber] = []
        self.watchers: dict[str, Watcher] = {}
        self._commands: asyncio.Queue[str] = asyncio.Queue()
        self._done = asyncio.Event()
        self._quitting = False
        self._sweeper: asyncio.TimerHandle | None = None
        self.started_at = time.time()
        services = Services(
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
        for subscriber in list(self.subscribers):
            try:
                subscriber(topic, message)
            except Exception:
                log.exception("event subscriber failed on %s", topic)

    def get_watcher(self, name: str) -> Watcher | None:
        return self.watchers.get(name.lower())

    def by_priority(self, descending: bool) -> list[list[Watcher]]:
        ordered = sorted(
            self.watchers.values(),
            key=lambda w: (w.config.priority, w.name),
            reverse=descending,
        )
        return [list(group) for _, group in groupby(ordered, key=lambda w: w.config.priority)]

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        first = True
        for level in self.by_priority(descending=True):
            for watcher in level:
                if not watcher.config.autostart or self._quitting:
                    continue
                if not first and self.config.circus.warmup_delay > 0:
                    await asyncio.sleep(self.config.circus.warmup_delay)
                first = False
                watcher.start()
        self._schedule_sweep()

    async def stop(self) -> None:
        for level in self.by_priority(descending=False):
            await asyncio.gather(*(watcher.stop() for watcher in level))

    async def run(self) -> None:
        """Start everything, serve signals until asked to quit, stop everything."""
        self._install_signals()
        if self.adopt_orphans:
            self._was_subreaper = proctree.is_subreaper()
            proctree.set_subreaper(True)
        commands = asyncio.create_task(self._serve_commands())
        try:
            await self.start()
            await self._done.wait()
        finally:
            commands.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await commands
            if self._sweeper is not None:
                self._sweeper.cancel()
            if self.adopt_orphans:
                await self._kill_orphans()
                if not self._was_subreaper:
                    proctree.set_subreaper(False)
            self._remove_signals()
            self.reaper.close()

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
        """Queue `quit` or `reload` (what signals do)."""
        self._commands.put_nowait(command)

    async def _serve_commands(self) -> None:
        while True:
            command = await self._commands.get()
            if command == "quit":
                if self._quitting:
                    log.warning("second stop request: killing every process now")
                    for watcher in self.watchers.values():
                        watcher.kill_now()
                    continue
                self._quitting = True
                log.info("stopping every watcher")
                asyncio.create_task(self._quit())  # noqa: RUF006 - awaited through _done
            elif command == "reload" and not self._quitting:
                log.info("reloading every watcher")
                await self.reload()

    async def _quit(self) -> None:
        try:
            await self.stop()
        finally:
            self._done.set()

    async def reload(self) -> None:
        for level in self.by_priority(descending=True):
            for watcher in level:
                watcher.reload()

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


def check_hooks(config: Config) -> list[str]:
    """Import every watcher's hooks now; one message per failure."""
    problems = []
    for watcher in config.watchers:
        try:
            resolve_hooks(watcher)
        except HookError as exc:
            problems.append(f"[watcher:{watcher.name}] hooks: {exc}")
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
