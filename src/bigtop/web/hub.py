"""Polls each daemon once a tick and fans the results out to websocket clients.

One `status` and one `stats` request per daemon and tick, whatever the number of browser
tabs, and none while no tab is open. Each message is serialised once and offered to every
client it concerns. A client's messages wait in an outbox with a byte budget: a client that
stops reading fills it and is dropped (its connection aborted), so it never makes the
server buffer without end or wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any

from bigtop.control.client import CallError, CallTimeout
from bigtop.web.model import (
    EVENT_FEED_LENGTH,
    EventHistory,
    Series,
    Snapshot,
    down_message,
    event_message,
    history_message,
    log_message,
    parse_topic,
    procs_message,
    snapshot,
    tick_message,
)
from bigtop.web.source import DaemonLink

log = logging.getLogger("bigtop.web")
OUTBOX_BYTES = 2 << 20  # per client: about a minute of a busy watcher page
TAIL_LINES = 100
STASH_MESSAGES = 64
Send = Callable[[str], Awaitable[None]]


def _optional_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class Outbox:
    """Messages waiting for one client, at most `limit` bytes of them (pure)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._queue: deque[str] = deque()

    def offer(self, text: str) -> bool:
        """Queue `text`; False (and nothing queued) when that would pass the budget."""
        if self.size + len(text) > self.limit:
            return False
        self._queue.append(text)
        self.size += len(text)
        return True

    def take(self) -> str | None:
        if not self._queue:
            return None
        text = self._queue.popleft()
        self.size -= len(text)
        return text

    def __len__(self) -> int:
        return len(self._queue)


class Subscriber:
    """One websocket client: what it watches, and its outbox."""

    def __init__(self, send: Send, abort: Callable[[], None], limit: int = OUTBOX_BYTES) -> None:
        self._send = send
        self._abort = abort
        self.outbox = Outbox(limit)
        self._wake = asyncio.Event()
        self.closed = False
        self.overflowed = False
        self.watching: tuple[str, str] | None = None
        self.ready = False  # the "watching" message went out: live lines may follow
        self.stash: deque[str] = deque(maxlen=STASH_MESSAGES)

    def offer(self, text: str) -> bool:
        if self.closed:
            return False
        if not self.outbox.offer(text):
            self.overflowed = True
            self.close(abort=True)
            return False
        self._wake.set()
        return True

    async def pump(self) -> None:
        """Send what is queued, in order, until closed."""
        try:
            while not self.closed:
                await self._wake.wait()
                self._wake.clear()
                while not self.closed and (text := self.outbox.take()) is not None:
                    await self._send(text)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("websocket client gone: %s", exc)
            self.close(abort=True)

    def close(self, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self._wake.set()
        if abort:
            self._abort()


class Hub:
    def __init__(
        self,
        links: Iterable[DaemonLink],
        interval: float = 1.0,
        outbox_bytes: int = OUTBOX_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.links = {link.ident: link for link in links}
        self.interval = interval
        self.outbox_bytes = outbox_bytes
        self.clock = clock
        self.subscribers: set[Subscriber] = set()
        self.viewers = asyncio.Event()
        self.dropped = 0  # clients dropped for not reading
        self.series: dict[str, dict[str, Series]] = {d: {} for d in self.links}
        self.process_series: dict[tuple[str, str], dict[int, Series]] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.last_tick: dict[str, str] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=EVENT_FEED_LENGTH)
        self.histories = {d: EventHistory() for d in self.links}
        self.stale_history: set[tuple[str, str]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        # Prometheus restarts are counted from the events, where bigtop.metrics is present.
        self.metrics = _optional_module("bigtop.metrics")
        self.restart_counters: dict[str, Any] = {}
        if self.metrics is not None:
            self.restart_counters = {d: self.metrics.RestartCounter() for d in self.links}

    # ---- life -------------------------------------------------------------------------
    def start(self) -> None:
        for link in self.links.values():
            link.start(partial(self._on_event, link), partial(self._on_lines, link))
            self._tasks.append(asyncio.create_task(self._poll(link)))

    async def close(self) -> None:
        for sub in list(self.subscribers):
            sub.close(abort=True)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for link in self.links.values():
            await link.close()

    def state(self) -> dict[str, Any]:
        return {"clients": len(self.subscribers), "dropped": self.dropped}

    # ---- clients ----------------------------------------------------------------------
    def join(self, sub: Subscriber) -> None:
        self.subscribers.add(sub)
        self.viewers.set()
        sub.offer(dumps(self.hello()))

    def leave(self, sub: Subscriber) -> None:
        if sub not in self.subscribers:
            return
        self.subscribers.discard(sub)
        if sub.overflowed:
            self.dropped += 1
            log.warning("dropped a dashboard client that stopped reading")
        sub.close()
        if sub.watching is not None:
            self._release(sub.watching)
        if not self.subscribers:
            self.viewers.clear()

    def hello(self) -> dict[str, Any]:
        daemons = [
            {**link.describe(), "up": link.up, "error": link.error} for link in self.links.values()
        ]
        series = {
            ident: {name: s.columns() for name, s in per_watcher.items()}
            for ident, per_watcher in self.series.items()
        }
        return {
            "type": "hello",
            "interval": self.interval,
            "daemons": daemons,
            "series": series,
            "ticks": [json.loads(text) for text in self.last_tick.values()],
            "events": list(self.events)[-100:],
        }

    async def handle(self, sub: Subscriber, message: Any) -> None:
        """A message from a browser: {"type": "watch", "daemon": D, "watcher": W} (W null:
        stop watching)."""
        if not isinstance(message, dict) or message.get("type") != "watch":
            return
        daemon, watcher = message.get("daemon"), message.get("watcher")
        previous, sub.watching, sub.ready = sub.watching, None, False
        sub.stash.clear()
        if previous is not None:
            self._release(previous)
        link = self.links.get(daemon) if isinstance(daemon, str) else None
        if link is None or not isinstance(watcher, str) or not watcher:
            return
        key = (link.ident, watcher)
        sub.watching = key
        self.process_series.setdefault(key, {})
        await link.follow(watcher)
        lines = await self._tail(link, watcher)
        history = await self._history(link, watcher)
        if sub.watching != key:  # the browser moved on meanwhile
            return
        shot = self.snapshots.get(link.ident)
        view = shot.watcher(watcher) if shot is not None else None
        series = self.process_series.get(key, {})
        reply = {
            "type": "watching",
            "daemon": link.ident,
            "watcher": watcher,
            "series": {str(pid): s.columns() for pid, s in series.items()},
            "history": history,
            "log": log_message(link.ident, watcher, lines, 0),
            "procs": procs_message(link.ident, view, shot.time) if view and shot else None,
        }
        sub.offer(dumps(reply))
        sub.ready = True
        while sub.stash:
            sub.offer(sub.stash.popleft())

    def _release(self, key: tuple[str, str]) -> None:
        if any(s.watching == key for s in self.subscribers):
            return
        self.process_series.pop(key, None)
        link = self.links.get(key[0])
        if link is not None:
            link.unfollow(key[1])

    def _watchers_of(self, daemon: str) -> dict[str, list[Subscriber]]:
        found: dict[str, list[Subscriber]] = {}
        for sub in self.subscribers:
            if sub.watching is not None and sub.watching[0] == daemon:
                found.setdefault(sub.watching[1], []).append(sub)
        return found

    def broadcast(self, message: dict[str, Any], to: Iterable[Subscriber] | None = None) -> None:
        text = dumps(message)
        for sub in list(self.subscribers if to is None else to):
            sub.offer(text)

    # ---- polling ----------------------------------------------------------------------
    async def _poll(self, link: DaemonLink) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.viewers.wait()
            started = loop.time()
            try:
                await self.sample(link)
            except Exception:  # a surprising reply must not end the dashboard
                log.exception("sampling %s failed", link.label)
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))

    async def sample(self, link: DaemonLink) -> None:
        try:
            status = await link.call("status", processes=True)
            stats = await link.call("stats")
        except (CallError, CallTimeout) as exc:
            self.last_tick.pop(link.ident, None)
            self.broadcast(down_message(link.ident, str(exc), self.clock()))
            return
        shot = snapshot(status, stats, self.clock())
        self.snapshots[link.ident] = shot
        self._record(link.ident, shot)
        text = dumps(tick_message(link.ident, shot))
        self.last_tick[link.ident] = text
        for sub in list(self.subscribers):
            sub.offer(text)
        for watcher, subs in self._watchers_of(link.ident).items():
            view = shot.watcher(watcher)
            if view is None:
                self.broadcast({"type": "gone", "daemon": link.ident, "watcher": watcher}, subs)
                continue
            self._record_processes((link.ident, watcher), shot)
            self.broadcast(procs_message(link.ident, view, shot.time), subs)
            if (link.ident, watcher) in self.stale_history:
                self.stale_history.discard((link.ident, watcher))
                entries = await self._history(link, watcher)
                self.broadcast(history_message(link.ident, watcher, entries), subs)

    def _record(self, daemon: str, shot: Snapshot) -> None:
        per_watcher = self.series.setdefault(daemon, {})
        names = {w.name for w in shot.watchers}
        for gone in set(per_watcher) - names:
            del per_watcher[gone]
        for view in shot.watchers:
            per_watcher.setdefault(view.name, Series()).append(shot.time, view.cpu, view.mem)

    def _record_processes(self, key: tuple[str, str], shot: Snapshot) -> None:
        view = shot.watcher(key[1])
        per_pid = self.process_series.setdefault(key, {})
        if view is None:
            per_pid.clear()
            return
        pids = {p.pid for p in view.processes}
        for gone in set(per_pid) - pids:
            del per_pid[gone]
        for process in view.processes:
            per_pid.setdefault(process.pid, Series()).append(shot.time, process.cpu, process.mem)

    async def _tail(self, link: DaemonLink, watcher: str) -> list[Any]:
        try:
            reply = await link.call("logs", names=[watcher], lines=TAIL_LINES)
        except (CallError, CallTimeout):
            return []
        lines = reply.get("lines")
        return lines if isinstance(lines, list) else []

    async def _history(self, link: DaemonLink, watcher: str) -> list[dict[str, Any]]:
        """The daemon's own restart history (bigtop), else what the events told us."""
        try:
            reply = await link.call("status", name=watcher, history=True)
        except (CallError, CallTimeout):
            reply = {}
        entries = reply.get("history")
        if isinstance(entries, list):
            return entries[-50:]
        return self.histories[link.ident].history(watcher)

    # ---- pushed by the daemon ---------------------------------------------------------
    def _on_event(self, link: DaemonLink, topic: str, data: dict[str, Any]) -> None:
        self.histories[link.ident].feed(topic, data)
        if link.ident in self.restart_counters:
            self.restart_counters[link.ident].feed(topic, data)
        parsed = parse_topic(topic)
        if parsed is not None and parsed[1] == "reap":
            for watcher in self._watchers_of(link.ident):
                if watcher.lower().replace(" ", "_") == parsed[0]:
                    self.stale_history.add((link.ident, watcher))
        message = event_message(link.ident, topic, data)
        self.events.append(message)
        self.broadcast(message)

    def _on_lines(self, link: DaemonLink, watcher: str, lines: list[Any], dropped: int) -> None:
        subs = self._watchers_of(link.ident).get(watcher, [])
        if not subs:
            return
        text = dumps(log_message(link.ident, watcher, lines, dropped))
        for sub in subs:
            if sub.ready:
                sub.offer(text)
            else:
                sub.stash.append(text)
