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
from bigtop.control.frames import frame_sender, publish
from bigtop.runtime.procinfo import NA, Derived, ProcessInfo, Sample, figures

if TYPE_CHECKING:
    from bigtop.runtime.arbiter import Arbiter

log = logging.getLogger("bigtop.stats")
PERIOD = 1.0
_encode = msgspec.json.Encoder().encode
CHUNK = 200  # processes sampled between two yields to the event loop (at least)
Figures = tuple[list[int], list[Any], list[Any], list[Any]]  # pids, cpu, mem, age


def aggregate(infos: list[dict[str, Any]]) -> dict[str, Any]:
    """Circus's per-watcher summary: pids, average cpu, summed mem, oldest age."""
    return summary(
        [info["pid"] for info in infos],
        [info.get("cpu", NA) for info in infos],
        [info.get("mem", NA) for info in infos],
        [info.get("age", NA) for info in infos],
    )


def summary(pids: list[int], cpu: list[Any], mem: list[Any], age: list[Any]) -> dict[str, Any]:
    if not pids:
        return {"pid": [], "cpu": 0.0, "mem": 0.0, "age": 0.0}
    return {
        "pid": pids,
        "cpu": NA if NA in cpu else sum(cpu) / len(cpu),
        "mem": NA if NA in mem else sum(mem),
        "age": NA if NA in age else max(age),
    }


def _add(found: Figures, pid: int, cpu: Any, mem: Any, age: Any) -> None:
    found[0].append(pid)
    found[1].append(cpu)
    found[2].append(mem)
    found[3].append(age)


class Payloads:
    """The JSON of `stat.<watcher>.<pid>` messages, cut short of the age: while a process
    without children stays as it was (its /proc/PID/stat reads the same, its CPU is the
    same), only the age changes, so only the age is encoded again (at 1,000 processes,
    building and encoding each process's dict every second cost a fifth of the stream)."""

    def __init__(self) -> None:
        self._heads: dict[int, tuple[Derived, float, bytes]] = {}

    def payload(self, sample: Sample, children: list[dict[str, Any]]) -> bytes:
        if children:
            return _encode(self._fields(sample, children))
        cached = self._heads.get(sample.pid)
        if cached is None or cached[0] is not sample.derived or cached[1] != sample.cpu:
            fields = self._fields(sample, children)
            del fields["age"]
            head = _encode(fields)[:-1] + b',"age":'
            cached = self._heads[sample.pid] = (sample.derived, sample.cpu, head)
        return cached[2] + _encode(sample.age) + b"}"

    @staticmethod
    def _fields(sample: Sample, children: list[dict[str, Any]]) -> dict[str, Any]:
        fields = figures(sample)
        fields["children"] = children
        fields["subtopic"], fields["name"] = sample.pid, None
        return fields

    def keep_only(self, pids: set[int]) -> None:
        self._heads = {pid: head for pid, head in self._heads.items() if pid in pids}


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
        self._send_frame = frame_sender(self._publisher)
        self.subscribers = 0
        self._pending: list[tuple[bytes, bytes]] = []
        self.payloads = Payloads()
        self._since_pause = 0  # processes sampled since the loop last ran
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
        watched: set[int] = {os.getpid()}
        sample_part = self._sample_processes if self.info.reads_proc else self._sample_infos
        for watcher in list(self.arbiter.watchers.values()):
            topic = watcher.name.lower().replace(" ", "_")
            pids = list(watcher.pids)
            watched.update(pids)
            found: Figures = ([], [], [], [])
            for start in range(0, len(pids), CHUNK):
                part = pids[start : start + CHUNK]
                sample_part(topic, part, found)
                await self._pause_now_and_then(len(part))
            self._send(f"stat.{topic}", summary(*found))
        self.payloads.keep_only(watched)
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
        self._flush()

    async def _pause_now_and_then(self, sampled: int) -> None:
        """After every CHUNK processes or so, send what is queued and let the loop run: a
        long round never holds the daemon for long."""
        self._since_pause += sampled
        if self._since_pause >= CHUNK:
            self._since_pause = 0
            self._flush()
            await asyncio.sleep(0)

    def _sample_processes(self, topic: str, pids: list[int], found: Figures) -> None:
        """Queue each process's message; add its pid, cpu, mem and age to `found`."""
        for pid in pids:
            sample = self.info.sample(pid)
            if isinstance(sample, str):
                continue
            children = self.info.children_figures(sample) if sample.children else []
            self._pending.append(
                (f"stat.{topic}.{pid}".encode(), self.payloads.payload(sample, children))
            )
            _add(found, pid, sample.cpu, sample.derived.mem, sample.age)

    def _sample_infos(self, topic: str, pids: list[int], found: Figures) -> None:
        """The same through psutil, where there is no /proc."""
        for pid in pids:
            info = self.info.info(pid)
            if isinstance(info, dict):
                info["subtopic"], info["name"] = pid, None
                self._send(f"stat.{topic}.{pid}", info)
                _add(found, pid, info["cpu"], info["mem"], info["age"])

    def _send(self, topic: str, payload: dict[str, Any]) -> None:
        self._pending.append((topic.encode(), _encode(payload)))

    def _flush(self) -> None:
        """Send what was queued, back to back. ZeroMQ wakes its I/O thread for a message
        only when that thread has gone idle: messages sent one by one between /proc reads
        woke it (and wrote to the socket) once per message, which cost more than all the
        sampling; in a burst, one wake-up carries many messages."""
        send = self._send_frame
        for topic, payload in self._pending:
            if not publish(send, topic, payload):
                break  # the subscriber's queue is full: the rest of this round is dropped
        self._pending.clear()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.info.close()
        self.sock.close(linger=0)
        remove_ipc(self.endpoint)
