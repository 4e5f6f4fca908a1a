"""The stats stream circus-top reads, published by the daemon itself (no circusd-stats).

On when `[circus] statsd = true` or `stats_endpoint` is set (as in Circus). Every second,
for every watcher: `stat.<watcher>.<pid>` (the process's figures, Circus's fields) and
`stat.<watcher>` (an aggregate); the same for the daemon under `stat.circus`; and
`stat.sockets`. The socket is an XPUB, so the daemon knows whether anyone listens: with no
subscriber, nothing is measured at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

import msgspec
import zmq
import zmq.asyncio

from bigtop.control.endpoints import prepare_ipc, remove_ipc, restrict_ipc
from bigtop.runtime.procinfo import NA, ProcessInfo

if TYPE_CHECKING:
    from bigtop.runtime.arbiter import Arbiter

log = logging.getLogger("bigtop.stats")
PERIOD = 1.0
_encode = msgspec.json.Encoder().encode
_NOBLOCK = int(zmq.NOBLOCK)
_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)
CHUNK = 200  # processes sampled between two yields to the event loop


def aggregate(infos: list[dict[str, Any]]) -> dict[str, Any]:
    """Circus's per-watcher summary: pids, average cpu, summed mem, oldest age."""
    if not infos:
        return {"pid": [], "cpu": 0.0, "mem": 0.0, "age": 0.0}

    def figures(key: str) -> list[Any]:
        return [info.get(key, NA) for info in infos]

    cpu, mem, age = figures("cpu"), figures("mem"), figures("age")
    return {
        "pid": [info["pid"] for info in infos],
        "cpu": NA if NA in cpu else sum(cpu) / len(cpu),
        "mem": NA if NA in mem else sum(mem),
        "age": NA if NA in age else max(age),
    }


class StatsStream:
    def __init__(self, arbiter: Arbiter, context: zmq.asyncio.Context, endpoint: str) -> None:
        self.arbiter = arbiter
        self.endpoint = endpoint
        self.info = ProcessInfo(keep_open=True)
        prepare_ipc(endpoint)
        self.sock = context.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.setsockopt(zmq.SNDHWM, 10_000)
        try:
            self.sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self.sock.close()
            raise zmq.ZMQError(exc.errno, f"cannot bind {endpoint}: {exc.strerror}") from None
        restrict_ipc(endpoint)
        # Sends go through a plain (synchronous) view of the same socket: a non-blocking send
        # needs no future, and at 1,000 processes the asyncio wrapper was half the cost.
        self._publisher: zmq.Socket[bytes] = zmq.Socket.shadow(self.sock.underlying)
        self.subscribers = 0
        self._tasks = [
            asyncio.create_task(self._track_subscriptions()),
            asyncio.create_task(self._publish_loop()),
        ]

    async def _track_subscriptions(self) -> None:
        while True:
            frame = await self.sock.recv()
            if frame[:1] == b"\x01":
                self.subscribers += 1
            elif frame[:1] == b"\x00":
                self.subscribers = max(0, self.subscribers - 1)

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            # once a second exactly, whatever a round takes (sleeping a whole period after
            # each round made 1,000 processes report every 1.1 s)
            due = max(due + PERIOD, loop.time())
            await asyncio.sleep(due - loop.time())
            if self.subscribers <= 0:
                self.info.close()  # nobody listens: measure nothing, hold nothing open
                continue
            started = loop.time()
            try:
                await self._publish_all()
            except Exception:
                log.exception("publishing stats failed")
            if loop.time() - started > PERIOD / 2:
                log.warning("collecting stats took %.2fs", loop.time() - started)

    async def _publish_all(self) -> None:
        sampled = 0
        watched: set[int] = {os.getpid()}
        for watcher in list(self.arbiter.watchers.values()):
            topic = watcher.name.lower().replace(" ", "_")
            infos = []
            for pid in list(watcher.pids):
                watched.add(pid)
                info = self.info.info(pid)
                if isinstance(info, dict):
                    infos.append(info)
                    self._send(f"stat.{topic}.{pid}", {**info, "subtopic": pid, "name": None})
                sampled += 1
                if sampled % CHUNK == 0:
                    await asyncio.sleep(0)  # a long round never holds the loop for long
            self._send(f"stat.{topic}", aggregate(infos))
        self.info.keep_only(watched)  # a process that ended between rounds: its file closed
        own = self.info.info(os.getpid(), with_children=False)
        if isinstance(own, dict):
            own["children"] = []
            self._send(
                f"stat.circus.{own['pid']}", {**own, "subtopic": own["pid"], "name": "circusd"}
            )
            self._send("stat.circus", aggregate([own]))
        addresses, total = [], 0
        for bound in self.arbiter.sockets.values():
            entry = bound.describe()
            address = str(entry.get("path") or f"{entry.get('host')}:{entry.get('port')}")
            queued = bound.queued()
            addresses.append(address)
            total += queued
            self._send(
                f"stat.sockets.{entry['fd']}",
                {"fd": entry["fd"], "subtopic": entry["fd"], "reads": queued, "address": address},
            )
        if addresses:
            self._send("stat.sockets", {"addresses": addresses, "reads": total})

    def _send(self, topic: str, payload: dict[str, Any]) -> None:
        with contextlib.suppress(zmq.Again):
            self._publisher.send(topic.encode(), _MORE)
            self._publisher.send(_encode(payload), _NOBLOCK)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.info.close()
        self.sock.close(linger=0)
        remove_ipc(self.endpoint)
