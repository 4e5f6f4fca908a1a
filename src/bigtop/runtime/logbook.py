"""What `bigtop logs` reads: the last lines of every process, and live lines for followers.

Each process keeps a ring of its recent lines, bounded in lines and in bytes; the rings of
a few processes that ended are kept too, so a crash's last words can still be read. Live
lines are sent only to clients that follow (renewing every few seconds); with no follower,
recording a line is one append to a deque.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RING_BYTES = 256 * 1024
log = logging.getLogger("bigtop.output")
ENDED_KEPT = 5  # rings kept per watcher for processes that ended
FOLLOW_TTL = 15.0  # a follower that does not renew within this is dropped
FLUSH_DELAY = 0.05
# What a follower is sent is bounded, so that one that stops reading (a suspended `logs -f`:
# ZMQ keeps queueing for it) holds little in the daemon: at most MAX_PUSH_BYTES of output per
# message (one per FLUSH_DELAY), and MAX_UNRENEWED_BYTES between two renewals (the CLI renews
# every 5 s while it reads: up to 3 MB/s of output). More is counted as dropped.
MAX_PUSH_BYTES = 512 * 1024
MAX_UNRENEWED_BYTES = 16 * 1024 * 1024

Entry = tuple[float, str, int, str, str]  # time, watcher, pid, stream, line
Push = Callable[[dict[str, Any]], bool]
Block = tuple[
    str, int, str, bytes
]  # watcher, pid, stream, whole lines  # False: the message could not be queued


@dataclass
class Ring:
    """Recent output of one process as raw blocks of whole lines, bounded in bytes.

    Recording is an append (no decoding, no splitting): lines are only cut out when someone
    reads them, so capturing costs next to nothing on the hot path."""

    blocks: deque[tuple[float, str, bytes]] = field(default_factory=deque)
    size: int = 0

    def add(self, when: float, stream: str, data: bytes) -> None:
        if len(data) > RING_BYTES:
            data = data[-RING_BYTES:]
            data = data[data.find(b"\n") + 1 :]  # start on a whole line
        self.blocks.append((when, stream, data))
        self.size += len(data)
        while self.size > RING_BYTES and len(self.blocks) > 1:
            self.size -= len(self.blocks.popleft()[2])

    def lines(self, watcher: str, pid: int, streams: tuple[str, ...], count: int) -> list[Entry]:
        found: list[Entry] = []
        for when, stream, data in reversed(self.blocks):
            if stream not in streams:
                continue
            text = data.decode("utf-8", "replace").splitlines()
            for line in reversed(text):
                found.append((when, watcher, pid, stream, line))
                if len(found) >= count:
                    return found[::-1]
        return found[::-1]


@dataclass
class Follower:
    watchers: list[str]
    streams: tuple[str, ...]
    push: Push
    expires: float
    pending: list[Entry] = field(default_factory=list)
    pending_bytes: int = 0
    unrenewed_bytes: int = 0  # sent (or pending) since the follower last renewed
    dropped: int = 0

    def wants(self, watcher: str, stream: str) -> bool:
        if stream not in self.streams:
            return False
        return not self.watchers or any(fnmatch.fnmatch(watcher.lower(), w) for w in self.watchers)


class LogBook:
    def __init__(self) -> None:
        self.rings: dict[str, dict[int, Ring]] = {}
        self.ended: dict[str, deque[int]] = {}
        self.followers: dict[str, Follower] = {}
        self._flush: asyncio.TimerHandle | None = None

    def record(self, watcher: str, pid: int, stream: str, data: bytes) -> None:
        """Whole lines (each ending in a newline) of one process."""
        now = time.time()
        rings = self.rings.setdefault(watcher, {})
        ring = rings.get(pid)
        if ring is None:
            ring = rings[pid] = Ring()
        ring.add(now, stream, data)
        if self.followers:
            text = data.decode("utf-8", "replace")
            entries = [(now, watcher, pid, stream, line) for line in text.splitlines()]
            self._deliver(watcher, stream, entries, len(data))

    def ended_process(self, watcher: str, pid: int) -> None:
        ended = self.ended.setdefault(watcher, deque())
        ended.append(pid)
        while len(ended) > ENDED_KEPT:
            self.rings.get(watcher, {}).pop(ended.popleft(), None)

    def forget(self, watcher: str) -> None:
        self.rings.pop(watcher, None)
        self.ended.pop(watcher, None)

    def tail(self, watchers: list[str], lines: int, streams: tuple[str, ...]) -> list[Entry]:
        """The last `lines` lines of each matching process, oldest first."""
        selected: list[Entry] = []
        probe = Follower([w.lower() for w in watchers], streams, lambda m: True, 0.0)
        for watcher, rings in self.rings.items():
            if lines <= 0 or not any(probe.wants(watcher, s) for s in streams):
                continue
            for pid, ring in rings.items():
                selected.extend(ring.lines(watcher, pid, streams, lines))
        return sorted(selected)

    def follow(self, key: str, watchers: list[str], streams: tuple[str, ...], push: Push) -> None:
        follower = self.followers.get(key)
        expires = time.monotonic() + FOLLOW_TTL
        if follower is None:
            self.followers[key] = Follower([w.lower() for w in watchers], streams, push, expires)
        else:
            follower.expires, follower.push = expires, push
            follower.unrenewed_bytes = follower.pending_bytes

    def unfollow(self, key: str) -> None:
        self.followers.pop(key, None)

    def _deliver(self, watcher: str, stream: str, entries: list[Entry], size: int) -> None:
        for follower in self.followers.values():
            if not follower.wants(watcher, stream):
                continue
            if (
                follower.pending_bytes >= MAX_PUSH_BYTES
                or follower.unrenewed_bytes >= MAX_UNRENEWED_BYTES
            ):
                follower.dropped += len(entries)
            else:
                follower.pending.extend(entries)
                follower.pending_bytes += size
                follower.unrenewed_bytes += size
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        self._flush = None
        now = time.monotonic()
        for key, follower in list(self.followers.items()):
            if follower.expires < now:
                del self.followers[key]
                continue
            if not follower.pending and not follower.dropped:
                continue
            message: dict[str, Any] = {"lines": follower.pending}
            if follower.dropped:
                message["dropped"] = follower.dropped
            if follower.push(message):
                follower.dropped = 0
            else:  # the client reads too slowly: drop, say how much, never buffer without end
                follower.dropped += len(follower.pending)
            follower.pending = []
            follower.pending_bytes = 0


class BackgroundWriter:
    """Writes blocks in a thread of its own, so a slow disk or a stalled terminal never holds
    up the daemon's loop. At most `limit` blocks wait; past that the pipe readers pause, the
    pipe fills, and the child is slowed down by its own writes: memory stays bounded."""

    def __init__(
        self, write: Callable[[Block], None], loop: asyncio.AbstractEventLoop, limit: int = 16
    ) -> None:
        self._write = write
        self._loop = loop
        self._limit = limit
        self._queue: queue.SimpleQueue[Block | None] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._waiters: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None

    def put(self, data: Block) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="bigtop-writer", daemon=True)
            self._thread.start()
        with self._lock:
            self._pending += 1
        self._queue.put(data)

    def full(self) -> bool:
        return self._pending >= self._limit

    def when_drained(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if self._pending < self._limit:
                self._loop.call_soon(callback)
                return
            self._waiters.append(callback)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[Block] = []
            item = self._queue.get()
            while item is not None:
                batch.append(item)
                try:
                    item = self._queue.get_nowait()  # take everything waiting: fewer writes
                except queue.Empty:
                    break
            else:
                stopping = True
            for block in _coalesce(batch):
                try:
                    self._write(block)
                except Exception:  # the sinks report their own failures; keep the thread
                    log.exception("writing captured output failed")
            with self._lock:
                self._pending -= len(batch)
                wake = self._waiters if self._pending <= self._limit // 2 else []
                if wake:
                    self._waiters = []
            for callback in wake:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    self._loop.call_soon_threadsafe(callback)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None


def _coalesce(batch: list[Block]) -> list[Block]:
    """Join consecutive blocks of the same process and stream into one write."""
    groups: list[tuple[str, int, str, list[bytes]]] = []
    for name, pid, stream, data in batch:
        if groups and groups[-1][:3] == (name, pid, stream):
            groups[-1][3].append(data)
        else:
            groups.append((name, pid, stream, [data]))
    return [(name, pid, stream, b"".join(parts)) for name, pid, stream, parts in groups]


class CaptureSink:
    """Records lines for `bigtop logs`, then hands them (in a writer thread) to the
    configured sink, or to the daemon's own stdout/stderr when none is configured."""

    def __init__(self, book: LogBook, inner: Any | None, passthrough: int | None = None) -> None:
        self.book = book
        self.inner = inner
        self.passthrough = passthrough
        self._writer: BackgroundWriter | None = None

    def _background(self) -> BackgroundWriter:
        if self._writer is None:
            self._writer = BackgroundWriter(self._write_now, asyncio.get_running_loop())
        return self._writer

    def write_line(self, name: str, pid: int, stream: str, line: bytes) -> None:
        self.write_block(name, pid, stream, line + b"\n")

    def write_block(self, name: str, pid: int, stream: str, data: bytes) -> None:
        self.book.record(name, pid, stream, data)
        if self.inner is None and self.passthrough is None:
            return
        self._background().put((name, pid, stream, data))

    def _write_now(self, block: Block) -> None:
        name, pid, stream, data = block
        if self.inner is not None:
            self.inner.write_block(name, pid, stream, data)
        elif self.passthrough is not None:
            _write_all(self.passthrough, data)

    # back-pressure, for the pipe readers
    def full(self) -> bool:
        return self._writer is not None and self._writer.full()

    def when_drained(self, callback: Callable[[], None]) -> None:
        self._background().when_drained(callback)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.inner is not None:
            self.inner.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError:
        pass  # the daemon's own output is gone: the lines stay in the rings
