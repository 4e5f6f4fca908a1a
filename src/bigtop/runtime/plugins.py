"""Plugin processes: one per active `[plugin:NAME]` section, started, restarted, stopped.

Each plugin runs as `python -m bigtop.plugins.runner USE …`, a child of the daemon registered
with its Reaper (pidfd) like any watcher's process, in a session of its own. When it exits:

- exit status 78 (the runner's "cannot run with this configuration": an unknown `use`, a bad
  option): the reason is in the log just above, and it is not restarted (restarting cannot
  fix a config; `reloadconfig` after fixing it starts it again);
- anything else, including a crash: restarted with backoff, per the watchers' policy
  (core/policy.py): at once the first time, then after 0.5 s, 1 s, 2 s … up to 30 s, back to
  "at once" after it ran 10 s. A plugin can never take the daemon down.

Its output (stdout and stderr, one pipe) goes to the daemon's log line by line as
`plugin NAME[PID]: …`, at the level the plugin logged it.

Plugins are not watchers (Circus runs them as watchers named `plugin:NAME`): they are not in
`list` or `status`, and `stop`/`start`/`reload` of every watcher leave them running. They
start once the control endpoint is up, before any watcher (so they see the first spawns),
and they stop first when the daemon stops, before any watcher, so no plugin acts on a daemon
that is shutting down (a watchdog killing, a reloader restarting).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bigtop.config.model import BackoffConfig, PluginConfig
from bigtop.core.policy import ExitStatus, failures_after, next_delay
from bigtop.plugins.registry import is_flapping

if TYPE_CHECKING:
    from bigtop.runtime.arbiter import Arbiter

log = logging.getLogger("bigtop.plugins")

EXIT_CONFIG = 78  # bigtop.plugins.runner.EXIT_CONFIG (not imported: it pulls in zmq.asyncio)
BACKOFF = BackoffConfig(initial=0.5, max=30.0, reset=10.0)
STOP_TIMEOUT = 5.0  # SIGTERM, then SIGKILL after this long
OUTPUT_LINES = 200  # recent output kept per plugin, for diagnostics
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_LEVEL = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$", re.DOTALL)


@dataclass
class PluginProcess:
    """One plugin and what its supervision needs to remember."""

    config: PluginConfig
    pid: int | None = None
    started_at: float = 0.0
    failures: int = 0
    restarts: int = 0
    given_up: bool = False
    stopping: bool = False  # asked to stop: its exit is not a failure
    retry: asyncio.TimerHandle | None = None
    output: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_LINES))

    @property
    def name(self) -> str:
        return self.config.name


def restart_delay(
    failures: int, uptime: float, status: ExitStatus, backoff: BackoffConfig = BACKOFF
) -> tuple[int, float | None]:
    """(failures in a row, delay before the next start) after an exit; None: do not restart."""
    if status.code == EXIT_CONFIG:
        return failures, None
    failures = failures_after(failures, uptime, backoff)
    return failures, next_delay(failures, backoff)


def wanted(plugins: tuple[PluginConfig, ...]) -> list[PluginConfig]:
    """The plugins that run as processes (flapping is built in), highest priority first."""
    active = [p for p in plugins if p.active and not is_flapping(p.use)]
    return sorted(active, key=lambda p: (-p.priority, p.name))


def python_path(config_dir: str, environ: dict[str, str]) -> str:
    """The config file's directory, the daemon's own sys.path, then what PYTHONPATH had:
    a plugin imports what the daemon could (Circus's copy_path), and modules beside the
    config file."""
    entries = [config_dir, *sys.path, *environ.get("PYTHONPATH", "").split(os.pathsep)]
    seen: list[str] = []
    for entry in entries:
        if entry and entry not in seen:
            seen.append(entry)
    return os.pathsep.join(seen)


class PluginSupervisor:
    def __init__(self, arbiter: Arbiter) -> None:
        self.arbiter = arbiter
        self.plugins: dict[str, PluginProcess] = {}
        self._stopping = False
        self._changed = asyncio.Event()
        self._pipes: dict[int, tuple[int, bytes]] = {}  # pid -> (read fd, partial line)
        self._levels: dict[int, int] = {}  # pid -> level of its last log line

    def __repr__(self) -> str:
        running = sum(p.pid is not None for p in self.plugins.values())
        return f"<PluginSupervisor {running}/{len(self.plugins)} running>"

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start every active plugin (non-blocking: the processes connect on their own)."""
        self._stopping = False
        for config in self.arbiter.config.plugins:
            if not config.active and not is_flapping(config.use):
                log.info("plugin %r is not active (active = false); not started", config.name)
        for config in wanted(self.arbiter.config.plugins):
            self._add(config)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every plugin, SIGKILL what is left after `timeout`, wait for all."""
        self._stopping = True
        await asyncio.gather(*(self._end(p, timeout) for p in self.plugins.values()))
        self.plugins.clear()

    async def apply(self, plugins: tuple[PluginConfig, ...]) -> None:
        """After reloadconfig: stop removed or changed plugins, start new or changed ones,
        and try again those given up on (what they lacked may be installed by now)."""
        if self._stopping:
            return
        new = {p.name: p for p in wanted(plugins)}
        for name, process in list(self.plugins.items()):
            if new.get(name) != process.config:
                log.info("plugin %r: its section changed or went away; stopping it", name)
            elif process.given_up:
                log.info("plugin %r: trying again", name)
            else:
                continue
            await self._end(process, STOP_TIMEOUT)
            del self.plugins[name]
        for name, config in new.items():
            if name not in self.plugins:
                self._add(config)

    def describe(self) -> list[dict[str, object]]:
        """What runs: name, use, pid (None between restarts), restarts, given_up."""
        return [
            {
                "name": p.name,
                "use": p.config.use,
                "pid": p.pid,
                "restarts": p.restarts,
                "given_up": p.given_up,
            }
            for p in self.plugins.values()
        ]

    def output(self, name: str) -> list[str]:
        process = self.plugins.get(name)
        return list(process.output) if process else []

    # ---- one plugin ---------------------------------------------------------------------------
    def _add(self, config: PluginConfig) -> None:
        process = PluginProcess(config)
        self.plugins[config.name] = process
        self._spawn(process)

    def _argv(self, config: PluginConfig) -> list[str]:
        endpoints = self.arbiter.endpoints
        level = logging.getLevelName(logging.getLogger("bigtop").getEffectiveLevel())
        return [
            sys.executable,
            "-m",
            "bigtop.plugins.runner",
            config.use,
            "--name",
            config.name,
            "--endpoint",
            endpoints.control,
            "--pubsub",
            endpoints.pubsub,
            "--check-delay",
            str(self.arbiter.config.circus.check_delay),
            "--log-level",
            str(level).lower(),
            "--parent-pid",
            str(os.getpid()),
        ]

    def _environ(self, config: PluginConfig) -> dict[str, str]:
        environ = dict(os.environ)
        environ["PYTHONPATH"] = python_path(self.arbiter.services.config_dir, environ)
        environ["BIGTOP_PLUGIN_OPTIONS"] = json.dumps(config.options)
        environ["PYTHONUNBUFFERED"] = "1"  # output reaches the log as it is written
        return environ

    def _spawn(self, process: PluginProcess) -> None:
        process.retry = None
        if self._stopping or process.stopping or self.plugins.get(process.name) is not process:
            return
        read_end, write_end = os.pipe()
        try:
            popen = subprocess.Popen(
                self._argv(process.config),
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                env=self._environ(process.config),
                cwd=self.arbiter.services.cwd,
                start_new_session=True,  # Ctrl-C reaches the daemon only; it stops plugins
            )
        except OSError as exc:
            os.close(read_end)
            log.error("plugin %r: cannot start %s: %s", process.name, sys.executable, exc)
            self._schedule(process, ExitStatus(code=1), 0.0)
            return
        finally:
            os.close(write_end)
        loop = self.arbiter.loop
        process.pid, process.started_at = popen.pid, loop.time()
        os.set_blocking(read_end, False)
        self._pipes[popen.pid] = (read_end, b"")
        loop.add_reader(read_end, self._read, popen.pid)
        self.arbiter.reaper.watch(popen, self._exited)
        log.info("plugin %r (%s) started, pid %d", process.name, process.config.use, popen.pid)

    def _exited(self, pid: int, status: ExitStatus) -> None:
        self._read(pid)  # what is still in the pipe comes before the news of the exit
        self._close_pipe(pid)
        process = next((p for p in self.plugins.values() if p.pid == pid), None)
        self._changed.set()
        self._changed = asyncio.Event()
        if process is None:
            return
        process.pid = None
        if self._stopping or process.stopping:
            return
        uptime = self.arbiter.loop.time() - process.started_at
        self._schedule(process, status, uptime)

    def _schedule(self, process: PluginProcess, status: ExitStatus, uptime: float) -> None:
        process.failures, delay = restart_delay(process.failures, uptime, status)
        if delay is None:
            process.given_up = True
            log.error(
                "plugin %r cannot run with its configuration (see above); not restarted. "
                "Fix its [plugin:%s] section and run reloadconfig",
                process.name,
                process.name,
            )
            return
        process.restarts += 1
        when = f"in {delay:g}s" if delay else "now"
        log.warning("plugin %r %s; restarting %s", process.name, status.describe(), when)
        process.retry = self.arbiter.loop.call_later(delay, self._spawn, process)

    async def _end(self, process: PluginProcess, timeout: float) -> None:
        process.stopping = True
        if process.retry is not None:
            process.retry.cancel()
            process.retry = None
        pid = process.pid
        if pid is None:
            return
        reaper = self.arbiter.reaper
        reaper.send_signal(pid, signal.SIGTERM)
        if not await self._gone(process, pid, timeout):
            log.warning("plugin %r did not stop within %gs; killing it", process.name, timeout)
            reaper.send_signal(pid, signal.SIGKILL)
            await self._gone(process, pid, timeout)

    async def _gone(self, process: PluginProcess, pid: int, timeout: float) -> bool:
        loop = self.arbiter.loop
        deadline = loop.time() + timeout
        while process.pid == pid:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    # ---- output -------------------------------------------------------------------------------
    def _read(self, pid: int) -> None:
        entry = self._pipes.get(pid)
        if entry is None:
            return
        fd, partial = entry
        chunks = [partial]
        eof = False
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                eof = True
                break
            if not data:
                eof = True
                break
            chunks.append(data)
        text = b"".join(chunks)
        *lines, rest = text.split(b"\n")
        if eof and rest:
            lines.append(rest)
            rest = b""
        self._pipes[pid] = (fd, rest[-65536:])
        process = next((p for p in self.plugins.values() if p.pid == pid), None)
        name = process.name if process else "?"
        for line in lines:
            self._log_line(process, name, pid, line.decode("utf-8", "replace").rstrip())
        if eof:
            self._close_pipe(pid)

    def _log_line(self, process: PluginProcess | None, name: str, pid: int, line: str) -> None:
        if not line:
            return
        if process is not None:
            process.output.append(line)
        match = _LEVEL.match(line)
        if match:
            level = LEVELS[match.group(1)]
            self._levels[pid] = level
            line = match.group(2)
        else:  # a traceback's lines, a print: at the level of the line before
            level = self._levels.get(pid, logging.WARNING)
        log.log(level, "plugin %s[%d]: %s", name, pid, line)

    def _close_pipe(self, pid: int) -> None:
        self._levels.pop(pid, None)
        entry = self._pipes.pop(pid, None)
        if entry is None:
            return
        with contextlib.suppress(Exception):
            self.arbiter.loop.remove_reader(entry[0])
        os.close(entry[0])
