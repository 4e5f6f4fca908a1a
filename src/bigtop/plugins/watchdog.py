"""WatchDog: processes prove they are alive with UDP heartbeats; silent ones are killed.

Each watched process sends a datagram (by default the text `PID;TIMESTAMP`) at least every
`loop_rate` seconds to `ip:port`. A process not heard from for `loop_rate * max_count`
seconds is killed with the `kill` command (optionally with `watchers_stop_signal` and
`watchers_graceful_timeout`), and its watcher starts a new one. Options are Circus's:

| option | default | |
|---|---|---|
| `loop_rate` | 60 | seconds between checks |
| `max_count` | 3 | checks without a heartbeat before the kill |
| `watchers_regex` | `.*` | which watchers are watched (matched from the start of the name) |
| `msg_regex` | `^(?P<pid>.*);(?P<timestamp>.*)$` | how to read a datagram; needs a `pid` group |
| `ip`, `port` | 127.0.0.1, 1664 | where to listen |

Unlike Circus, the running processes are discovered at start (not after the first
`loop_rate`), and a datagram that does not match `msg_regex` is ignored instead of crashing
the plugin.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from bigtop.plugins.base import Plugin, PluginContext, ignore_failures, split_topic


@dataclass
class Heartbeats:
    """Who must send heartbeats and when each was last heard from. Pure: time is given."""

    silence: float  # seconds without a heartbeat before a process is overdue
    last: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (watcher, time)

    def track(self, pid: int, watcher: str, now: float) -> None:
        self.last[pid] = (watcher, now)

    def forget(self, pid: int) -> None:
        self.last.pop(pid, None)

    def beat(self, pid: int, now: float) -> bool:
        """A heartbeat from `pid`; False when that pid is not watched."""
        entry = self.last.get(pid)
        if entry is None:
            return False
        self.last[pid] = (entry[0], now)
        return True

    def overdue(self, now: float) -> list[tuple[int, str]]:
        """Processes silent for too long (forgotten here: each is killed once)."""
        late = [(pid, w) for pid, (w, seen) in self.last.items() if now - seen > self.silence]
        for pid, _ in late:
            del self.last[pid]
        return sorted(late)


def read_heartbeat(pattern: re.Pattern[str], data: bytes) -> int | None:
    """The pid a datagram speaks for, or None if it does not match."""
    match = pattern.match(data.decode("utf-8", "replace").strip())
    if match is None:
        return None
    try:
        return int(match.group("pid"))
    except (IndexError, ValueError):
        return None


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, plugin: WatchDog) -> None:
        self.plugin = plugin

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.plugin.heartbeat(data)


class WatchDog(Plugin):
    name = "watchdog"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        options = self.options
        self.loop_rate = options.positive("loop_rate", 60.0)
        self.max_count = options.integer("max_count", 3, minimum=1)
        self.watchers = options.regex("watchers_regex", ".*")
        self.message = options.regex("msg_regex", r"^(?P<pid>.*);(?P<timestamp>.*)$")
        if "pid" not in self.message.groupindex:
            raise options.invalid("msg_regex", "a regular expression with a (?P<pid>...) group")
        self.address = (options.text("ip", "127.0.0.1"), options.integer("port", 1664, minimum=0))
        self.stop_signal = options.signal("watchers_stop_signal", None)
        self.graceful_timeout = options.optional_number("watchers_graceful_timeout")
        self.table = Heartbeats(silence=self.loop_rate * self.max_count)
        self._transport: asyncio.DatagramTransport | None = None

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def on_start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Listener(self), local_addr=self.address
        )
        host, port = self._transport.get_extra_info("sockname")[:2]
        self.log.info("listening for heartbeats on udp %s:%s", host, port)
        await self._discover()
        self.every(self.loop_rate, self.look_after)

    async def on_stop(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def _discover(self) -> None:
        listing = await ignore_failures(self, "list", self.call("list"))
        for name in (listing or {}).get("watchers", []):
            if not self.watchers.match(name):
                continue
            reply = await ignore_failures(self, f"list {name}", self.call("list", name=name))
            for pid in (reply or {}).get("pids", []):
                self.table.track(int(pid), name, self._now())

    async def on_event(self, topic: str, message: dict[str, Any]) -> None:
        watcher, action = split_topic(topic)
        pid = message.get("process_pid")
        if not isinstance(pid, int) or not self.watchers.match(watcher):
            return
        if action == "spawn":
            self.table.track(pid, watcher, self._now())
        elif action == "reap":
            self.table.forget(pid)

    def heartbeat(self, data: bytes) -> None:
        pid = read_heartbeat(self.message, data)
        if pid is None:
            self.log.debug("ignored a datagram that does not match msg_regex: %r", data[:80])
        elif not self.table.beat(pid, self._now()):
            self.log.debug("heartbeat from %d, which is not a watched process", pid)

    async def look_after(self) -> None:
        for pid, watcher in self.table.overdue(self._now()):
            silence = self.table.silence
            self.log.warning(
                "%s: process %d sent no heartbeat for %gs; killing it", watcher, pid, silence
            )
            props: dict[str, Any] = {"name": watcher, "pid": pid}
            if self.stop_signal is not None:
                props["signum"] = self.stop_signal
            if self.graceful_timeout is not None:
                props["graceful_timeout"] = self.graceful_timeout
            await ignore_failures(self, f"kill {watcher} {pid}", self.call("kill", **props))
