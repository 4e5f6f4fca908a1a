"""statsd: an event counter (StatsdEmitter) and periodic gauges of `stats` (FullStats).

Same options and bucket names as Circus's plugins, so existing dashboards keep working:

    circus.<application_name>.watcher.<watcher>.<event>:1|c          (StatsdEmitter)
    circus.<application_name>.watcher._stats.<watcher>.cpu_max:3.2|g  (FullStats)

`prefix` replaces `circus.<application_name>.watcher`. Unlike Circus, `sample_rate` really
samples (a counter is sent with that probability and marked `|@rate`, so statsd scales it
back), and lines are packed into datagrams of at most 1,432 bytes.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterable
from typing import Any

from bigtop.metrics import human_bytes
from bigtop.plugins.base import Plugin, PluginContext, ignore_failures, split_topic

MAX_PACKET = 1432  # fits one Ethernet frame with room for IPv6 and UDP headers


def statsd_line(bucket: str, value: float | int, kind: str, rate: float = 1.0) -> str:
    """One statsd line: `bucket:value|kind`, with `|@rate` when sampled."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    line = f"{bucket}:{text}|{kind}"
    return f"{line}|@{rate:g}" if rate < 1.0 else line


def pack(lines: Iterable[str], limit: int = MAX_PACKET) -> list[bytes]:
    """Lines joined by newlines into datagrams no longer than `limit` bytes each."""
    packets: list[bytes] = []
    current = b""
    for line in lines:
        data = line.encode()
        if current and len(current) + 1 + len(data) > limit:
            packets.append(current)
            current = b""
        current = current + b"\n" + data if current else data
    if current:
        packets.append(current)
    return packets


class StatsdClient:
    """Fire-and-forget UDP: a lost or refused datagram never disturbs the plugin."""

    def __init__(
        self,
        host: str,
        port: int,
        prefix: str,
        sample_rate: float = 1.0,
        chance: Callable[[], float] = random.random,
    ) -> None:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        self.address = address
        self.prefix = prefix
        self.sample_rate = sample_rate
        self._chance = chance
        self._kind = (family, kind, proto)
        self._socket: socket.socket | None = None  # opened on the first send

    def bucket(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def increment(self, name: str, delta: int = 1) -> None:
        if self.sample_rate < 1.0 and self._chance() >= self.sample_rate:
            return
        self.send([statsd_line(self.bucket(name), delta, "c", self.sample_rate)])

    def gauges(self, values: Iterable[tuple[str, float | int]]) -> None:
        self.send(statsd_line(self.bucket(name), value, "g") for name, value in values)

    def timing(self, name: str, milliseconds: float) -> None:
        self.send([statsd_line(self.bucket(name), round(milliseconds, 3), "ms")])

    def send(self, lines: Iterable[str]) -> None:
        if self._socket is None:
            self._socket = socket.socket(*self._kind)
            self._socket.setblocking(False)
        for packet in pack(lines):
            try:
                self._socket.sendto(packet, self.address)
            except OSError:
                pass  # nobody listening, or the buffer is full: statsd is best effort

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class StatsdPlugin(Plugin):
    """The statsd options every statsd-speaking plugin shares (Circus's names)."""

    default_app_name = "app"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        app = self.options.text("application_name", self.default_app_name)
        self.statsd = StatsdClient(
            host=self.options.text("host", "localhost"),
            port=self.options.integer("port", 8125, minimum=1),
            prefix=self.options.text("prefix", f"circus.{app}.watcher"),
            sample_rate=self._sample_rate(),
        )

    def _sample_rate(self) -> float:
        rate = self.options.number("sample_rate", 1.0)
        if not 0 < rate <= 1:
            raise self.options.invalid("sample_rate", "a number in (0, 1], like 0.1")
        return rate

    async def on_stop(self) -> None:
        self.statsd.close()


class StatsdEmitter(StatsdPlugin):
    """A counter per event: `<prefix>.<watcher>.<action>:1|c`."""

    name = "statsd"

    async def on_event(self, topic: str, message: dict[str, Any]) -> None:
        watcher, action = split_topic(topic)
        self.statsd.increment(f"{watcher}.{action}")


class Observer(StatsdPlugin):
    """A statsd plugin that looks at something every `loop_rate` seconds (default 60)."""

    topics = ()

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.loop_rate = self.options.positive("loop_rate", 60.0)

    async def on_start(self) -> None:
        self.every(self.loop_rate, self.look_after)

    async def look_after(self) -> None:
        raise NotImplementedError


def watcher_gauges(name: str, processes: dict[str, Any]) -> list[tuple[str, float | int]]:
    """FullStats's gauges of one watcher from its `stats` entry (processes by pid)."""
    infos = [info for info in processes.values() if isinstance(info, dict)]
    gauges: list[tuple[str, float | int]] = [(f"_stats.{name}.watchers_num", len(infos))]
    cpus = [float(i["cpu"]) for i in infos if isinstance(i.get("cpu"), int | float)]
    mems = [float(i["mem"]) for i in infos if isinstance(i.get("mem"), int | float)]
    sizes = [s for s in (human_bytes(i.get("mem_info1")) for i in infos) if s is not None]
    if cpus:
        gauges += [(f"_stats.{name}.cpu_max", max(cpus)), (f"_stats.{name}.cpu_sum", sum(cpus))]
    if mems:
        gauges += [
            (f"_stats.{name}.mem_pct_max", max(mems)),
            (f"_stats.{name}.mem_pct_sum", sum(mems)),
        ]
    if sizes:
        gauges += [(f"_stats.{name}.mem_max", max(sizes)), (f"_stats.{name}.mem_sum", sum(sizes))]
    return gauges


class FullStats(Observer):
    """Every loop_rate seconds, gauges of each watcher's processes from `stats`."""

    name = "full_stats"

    async def look_after(self) -> None:
        reply = await ignore_failures(self, "stats", self.call("stats"))
        if reply is None:
            self.statsd.increment("_stats.error")
            return
        gauges: list[tuple[str, float | int]] = []
        for name, processes in sorted(reply.get("infos", {}).items()):
            if name.startswith("plugin:") or not isinstance(processes, dict):
                continue
            gauges += watcher_gauges(name, processes)
        self.statsd.gauges(gauges)
