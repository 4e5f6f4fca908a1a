"""bigtop's plugin API: a typed base class whose instances run in a process of their own.

A plugin observes the daemon's events and acts only through control commands, like any
other client; it never reaches into the daemon. The daemon starts each configured plugin
with `python -m bigtop.plugins.runner`, restarts it with backoff when it dies, and stops it
with SIGTERM (which runs `on_stop`).

    from typing import Any
    from bigtop.plugins import Plugin, split_topic

    class Greeter(Plugin):
        def __init__(self, context):
            super().__init__(context)
            self.interval = self.options.positive("interval", 10.0)   # errors name the option

        async def on_start(self) -> None:
            self.every(self.interval, self.report)

        async def on_event(self, topic: str, message: dict[str, Any]) -> None:
            watcher, action = split_topic(topic)
            if action == "spawn":
                self.log.info("%s got process %s", watcher, message["process_pid"])

        async def report(self) -> None:
            reply = await self.call("status")
            self.log.info("statuses: %s", reply["statuses"])

Hooks run one at a time, in order. An exception escaping a hook or a timer callback ends
the plugin process with an error (the daemon logs the traceback and restarts the plugin
with backoff): catch what you expect to happen (`CallError`, `CallTimeout`, `OSError`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bigtop.control.client import AsyncClient, CallError, CallTimeout
from bigtop.control.curve import ClientKeys
from bigtop.plugins.options import Options

__all__ = ["CallError", "CallTimeout", "Plugin", "PluginContext", "split_topic"]

Callback = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class PluginContext:
    """Where a plugin runs: its section's name and options, and the daemon's endpoints."""

    name: str
    endpoint: str
    pubsub_endpoint: str
    options: dict[str, str] = field(default_factory=dict)
    check_delay: float = 5.0
    curve: ClientKeys | None = None
    call_timeout: float = 10.0

    @property
    def section(self) -> str:
        return f"plugin:{self.name}"


def split_topic(topic: str) -> tuple[str, str]:
    """`watcher.NAME.ACTION` -> (NAME, ACTION); a name may contain dots."""
    body = topic.removeprefix("watcher.")
    name, _, action = body.rpartition(".")
    return name, action


class Plugin:
    """Subclass it and override the hooks you need; each has a no-op default."""

    name: ClassVar[str] = ""
    # Pub/sub prefixes to receive in on_event; () receives none (no subscription at all).
    topics: ClassVar[tuple[str, ...]] = ("watcher.",)

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.options = Options(context.section, context.options)
        self.log = logging.getLogger(f"bigtop.plugin.{context.name}")
        self._client: AsyncClient | None = None
        self._done: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._turn = asyncio.Lock()  # hooks and callbacks never interleave
        self._calling = asyncio.Lock()  # one request in flight: the client matches replies

    # ---- hooks --------------------------------------------------------------------------
    async def on_start(self) -> None:
        """Connected to the daemon (calls work); set up timers and sockets here."""

    async def on_event(self, topic: str, message: dict[str, Any]) -> None:
        """One event from the daemon (`watcher.NAME.ACTION` and its JSON payload)."""

    async def on_stop(self) -> None:
        """The plugin is stopping (SIGTERM from the daemon, or a failure): clean up."""

    # ---- what hooks use -----------------------------------------------------------------
    async def call(self, command: str, **properties: Any) -> dict[str, Any]:
        """Send a command and return the reply; raises CallError for an error reply and
        CallTimeout when the daemon does not answer within the context's call_timeout."""
        client = self._connected()
        async with self._calling:
            return await client.call(command, **properties)

    async def cast(self, command: str, **properties: Any) -> None:
        """Send a command without waiting for (or getting) a reply."""
        await self._connected().cast(command, **properties)

    def every(self, interval: float, callback: Callback, first: float | None = None) -> None:
        """Run `callback` every `interval` seconds (first after `first`, default `interval`).
        Ticks are on a fixed grid: a slow callback skips ticks instead of piling them up."""
        if interval <= 0:
            raise ValueError(f"interval must be > 0 (got {interval!r})")
        self._spawn(self._periodic(interval, callback, interval if first is None else first))

    def later(self, delay: float, callback: Callback) -> None:
        """Run `callback` once, after `delay` seconds."""
        self._spawn(self._once(delay, callback))

    def stop(self) -> None:
        """Ask the plugin to stop (on_stop runs, then `run` returns)."""
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    # ---- lifecycle (driven by the runner) ------------------------------------------------
    async def run(self) -> None:
        """Connect, run until stopped or failed, clean up. Re-raises a hook's exception."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._client = AsyncClient(
            self.context.endpoint, timeout=self.context.call_timeout, curve=self.context.curve
        )
        subscriber = self._subscribe() if self.topics else None
        started = False
        try:
            async with self._turn:
                await self.on_start()
            started = True
            if subscriber is not None:
                self._spawn(self._dispatch(subscriber))
            await self._done
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            try:
                if started:
                    await self.on_stop()
            finally:
                if subscriber is not None:
                    subscriber.close(linger=0)
                self._client.close()

    # ---- internals ----------------------------------------------------------------------
    def _connected(self) -> AsyncClient:
        if self._client is None:
            raise RuntimeError("the plugin is not connected yet: call from on_start or later")
        return self._client

    def _subscribe(self) -> Any:
        import zmq
        import zmq.asyncio

        context = zmq.asyncio.Context.instance()
        sock = context.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        if self.context.curve is not None:
            from bigtop.control.curve import secure_client_socket

            secure_client_socket(sock, self.context.curve)
        for prefix in self.topics:
            sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        sock.connect(self.context.pubsub_endpoint)
        return sock

    async def _dispatch(self, subscriber: Any) -> None:
        while True:
            frames = await subscriber.recv_multipart()
            if len(frames) < 2:
                continue
            topic = frames[0].decode("utf-8", "replace")
            try:
                message = json.loads(frames[1])
            except ValueError:
                self.log.warning("event %s: payload is not JSON, ignored", topic)
                continue
            async with self._turn:
                await self.on_event(topic, message if isinstance(message, dict) else {})

    async def _periodic(self, interval: float, callback: Callback, first: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + first
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            async with self._turn:
                await callback()
            now = loop.time()
            due += interval
            if due < now:  # the callback overran: skip to the next tick on the grid
                due += interval * ((now - due) // interval + 1)

    async def _once(self, delay: float, callback: Callback) -> None:
        await asyncio.sleep(delay)
        async with self._turn:
            await callback()

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and self._done is not None and not self._done.done():
            self._done.set_exception(error)  # a hook failed: the plugin ends with its error


async def ignore_failures(plugin: Plugin, what: str, work: Awaitable[Any]) -> Any:
    """Await `work`; log (and swallow) the failures a built-in expects to meet now and then:
    the daemon busy or restarting, a command refused, a network error."""
    try:
        return await work
    except (CallError, CallTimeout, OSError) as exc:
        plugin.log.warning("%s: %s", what, exc)
        return None
