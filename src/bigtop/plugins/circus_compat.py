"""Circus's plugin contract without Circus: a base class for plugins written against it.

A plugin written for Circus 0.19 subclasses `circus.plugins.CircusPlugin`. bigtop runs such
a class as it is when the `circus` package is importable by the plugin process. When it is
not, change one import and it runs on this shim, which needs nothing but pyzmq:

    from bigtop.plugins.circus_compat import CircusPlugin   # was: from circus.plugins import ...

The contract kept: the constructor `(endpoint, pubsub_endpoint, check_delay, ssh_server,
**config)`, `config`, `active`, `handle_init()`, `handle_recv(data)` with `data` the two
frames `[topic, message]`, `handle_stop()`, `call()` (blocking, returns the reply mapping),
`cast()`, `split_data()`, `load_message()`, `start()` and `stop()`. `self.loop` is an asyncio
event loop (Circus's is a Tornado IOLoop): schedule work with `self.loop.call_later(...)`.

Two fixes over Circus: `call` gives up after `call_timeout` seconds (default 10) with an
error reply instead of blocking forever, and it matches the reply to its request, so a
late reply is never taken for the next one's. SSH tunnels (`ssh_server`) are not supported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import zmq
import zmq.asyncio

from bigtop.config.coerce import CoercionError, to_bool
from bigtop.plugins.base import split_topic


class CircusPlugin:
    name = ""

    def __init__(
        self,
        endpoint: str,
        pubsub_endpoint: str,
        check_delay: float,
        ssh_server: str | None = None,
        **config: Any,
    ) -> None:
        self.daemon = True
        self.config = config
        try:
            self.active = to_bool(str(config.get("active", True)))
        except CoercionError:
            self.active = True
        self.endpoint = endpoint
        self.pubsub_endpoint = pubsub_endpoint
        self.check_delay = check_delay
        self.ssh_server = ssh_server
        self.call_timeout = float(config.get("call_timeout", 10.0))
        self.running = False
        self.loop = asyncio.new_event_loop()
        self._identity = uuid.uuid4().hex.encode()
        self.context: zmq.Context[Any] | None = None
        self.client: zmq.Socket[Any] | None = None
        self.sub_socket: Any = None
        self._reader: asyncio.Task[None] | None = None

    # ---- lifecycle -----------------------------------------------------------------------
    def initialize(self) -> None:
        self.context = zmq.Context()
        self.client = self.context.socket(zmq.DEALER)
        self.client.setsockopt(zmq.IDENTITY, self._identity)
        self.client.setsockopt(zmq.LINGER, 0)
        self.client.connect(self.endpoint)
        subscriber = zmq.asyncio.Context.instance().socket(zmq.SUB)
        subscriber.setsockopt(zmq.LINGER, 0)
        subscriber.setsockopt(zmq.SUBSCRIBE, b"watcher.")
        subscriber.connect(self.pubsub_endpoint)
        self.sub_socket = subscriber
        self._reader = self.loop.create_task(self._read_events())

    async def _read_events(self) -> None:
        while True:
            frames = await self.sub_socket.recv_multipart()
            self.handle_recv(frames)

    def start(self) -> None:
        """Run until `stop()` (blocking, like Circus's)."""
        if not self.active:
            raise ValueError("Will not start an inactive plugin")
        asyncio.set_event_loop(self.loop)
        self.handle_init()
        self.initialize()
        self.running = True
        self.loop.run_forever()
        self._close()

    def stop(self) -> None:
        if not self.running:
            self._close()
            return
        try:
            self.handle_stop()
        finally:
            self.running = False
            if self.loop.is_running():
                self.loop.stop()
            else:
                self._close()

    def _close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            if not self.loop.is_running() and not self.loop.is_closed():
                with contextlib.suppress(asyncio.CancelledError):
                    self.loop.run_until_complete(reader)
        for sock in (self.sub_socket, self.client):
            if sock is not None:
                sock.close(linger=0)
        self.sub_socket = self.client = None
        if self.context is not None:
            self.context.term()
            self.context = None
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()

    # ---- talking to the daemon -------------------------------------------------------------
    def _message(self, command: str, props: dict[str, Any], cast: bool) -> tuple[str, bytes]:
        message: dict[str, Any] = {"id": uuid.uuid4().hex, "command": command}
        message["properties"] = props
        if cast:
            message["msg_type"] = "cast"
        return message["id"], json.dumps(message).encode()

    def call(self, command: str, **props: Any) -> dict[str, Any]:
        """Send a command and wait for its reply (an error reply after call_timeout)."""
        if self.client is None:
            raise RuntimeError("call() before the plugin started")
        request_id, payload = self._message(command, props, cast=False)
        self.client.send(payload)
        deadline = time.monotonic() + self.call_timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if not self.client.poll(int(remaining * 1000) + 1):
                break
            try:
                reply = json.loads(self.client.recv())
            except ValueError:
                continue
            if isinstance(reply, dict) and reply.get("id") == request_id:
                return reply
        return {
            "id": request_id,
            "status": "error",
            "reason": f"{command}: no reply from {self.endpoint} within {self.call_timeout:g}s",
        }

    def cast(self, command: str, **props: Any) -> None:
        if self.client is None:
            raise RuntimeError("cast() before the plugin started")
        self.client.send(self._message(command, props, cast=True)[1])

    # ---- to override ---------------------------------------------------------------------
    def handle_recv(self, data: list[bytes]) -> None:
        raise NotImplementedError()

    def handle_stop(self) -> None:
        pass

    def handle_init(self) -> None:
        pass

    # ---- helpers -----------------------------------------------------------------------
    @staticmethod
    def split_data(data: list[bytes]) -> tuple[str, str, bytes]:
        topic, message = data[0], data[1]
        watcher, action = split_topic(topic.decode("utf-8", "replace"))
        return watcher, action, message

    @staticmethod
    def load_message(msg: bytes | str) -> Any:
        return json.loads(msg)
