"""One daemon as the dashboard sees it: commands, the event stream and followed logs.

Everything goes through the daemon's public endpoints (control ROUTER, events PUB), the
same way `bigtop` commands and `bigtop logs -f` do, so a dashboard can watch a daemon on
another host (CURVE over TCP) or the daemon it runs in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq
import zmq.asyncio

from bigtop.control.client import AsyncClient, CallError, CallTimeout

if TYPE_CHECKING:
    from bigtop.control.curve import ClientKeys

log = logging.getLogger("bigtop.web")
RENEW_EVERY = 5.0  # the daemon forgets a log follower that has not renewed for 15 s
EventSink = Callable[[str, dict[str, Any]], None]
LinesSink = Callable[[str, list[Any], int], None]


class DaemonLink:
    """A connection to one daemon. `call` raises CallError or CallTimeout."""

    def __init__(
        self,
        ident: str,
        endpoint: str,
        label: str | None = None,
        timeout: float = 5.0,
        curve: ClientKeys | None = None,
    ) -> None:
        self.ident = ident
        self.endpoint = endpoint
        self.label = label or endpoint
        self.timeout = timeout
        self.curve = curve
        self.client = AsyncClient(endpoint, timeout=timeout, curve=curve)
        self.up = False
        self.error: str | None = "not contacted yet"
        self.pubsub: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._logs: zmq.asyncio.Socket | None = None
        self._followed: dict[str, str] = {}  # watcher -> request id
        self._watcher_of: dict[str, str] = {}  # request id -> watcher

    def describe(self) -> dict[str, Any]:
        return {"id": self.ident, "label": self.label, "endpoint": self.endpoint}

    async def call(self, command: str, **properties: Any) -> dict[str, Any]:
        try:
            reply = await self.client.call(command, **properties)
        except CallTimeout as exc:
            self.up, self.error = False, str(exc)
            raise
        self.up, self.error = True, None
        return reply

    # ---- events -----------------------------------------------------------------------
    def start(self, on_event: EventSink, on_lines: LinesSink) -> None:
        self._tasks = [
            asyncio.create_task(self._events(on_event)),
            asyncio.create_task(self._read_logs(on_lines)),
            asyncio.create_task(self._renew_logs()),
        ]

    async def _find_pubsub(self) -> str:
        while True:
            try:
                reply = await self.call("globaloptions")
                return str(reply["options"]["pubsub_endpoint"])
            except (CallError, CallTimeout, KeyError, TypeError) as exc:
                log.debug("%s: no events endpoint yet: %s", self.label, exc)
                await asyncio.sleep(1.0)

    async def _events(self, on_event: EventSink) -> None:
        self.pubsub = await self._find_pubsub()
        sub = zmq.asyncio.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 10_000)
        if self.curve is not None:
            from bigtop.control.curve import secure_client_socket

            secure_client_socket(sub, self.curve)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(self.pubsub)
        try:
            while True:
                frames = await sub.recv_multipart()
                if len(frames) != 2:
                    continue
                try:
                    data = json.loads(frames[1])
                except ValueError:
                    continue
                if isinstance(data, dict):
                    on_event(frames[0].decode(errors="replace"), data)
        finally:
            sub.close(linger=0)

    # ---- followed logs ----------------------------------------------------------------
    def _log_socket(self) -> zmq.asyncio.Socket:
        if self._logs is None:
            sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            if self.curve is not None:
                from bigtop.control.curve import secure_client_socket

                secure_client_socket(sock, self.curve)
            sock.connect(self.endpoint)
            self._logs = sock
        return self._logs

    async def _send_follow(self, watcher: str, request_id: str, renew: bool) -> None:
        properties = {
            "names": [watcher],
            "lines": 0,
            "follow": True,
            "key": f"web-{request_id}",
            "renew": renew,
        }
        message = {"id": request_id, "command": "logs", "properties": properties}
        with contextlib.suppress(zmq.ZMQError):
            await self._log_socket().send(json.dumps(message).encode())

    async def follow(self, watcher: str) -> None:
        """Receive `watcher`'s live output (on_lines) until `unfollow`."""
        if watcher in self._followed:
            return
        request_id = uuid.uuid4().hex
        self._followed[watcher] = request_id
        self._watcher_of[request_id] = watcher
        await self._send_follow(watcher, request_id, renew=False)

    def unfollow(self, watcher: str) -> None:
        """Stop renewing: the daemon drops the follower within its TTL; lines that still
        come meanwhile are ignored."""
        request_id = self._followed.pop(watcher, None)
        if request_id is not None:
            self._watcher_of.pop(request_id, None)

    async def _renew_logs(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            for watcher, request_id in list(self._followed.items()):
                await self._send_follow(watcher, request_id, renew=True)

    async def _read_logs(self, on_lines: LinesSink) -> None:
        sock = self._log_socket()
        while True:
            try:
                reply = json.loads(await sock.recv())
            except ValueError:
                continue
            if not isinstance(reply, dict):
                continue
            watcher = self._watcher_of.get(str(reply.get("id")))
            if watcher is None:
                continue
            if reply.get("status") == "error":
                log.warning("%s: following %s: %s", self.label, watcher, reply.get("reason"))
                self.unfollow(watcher)
                continue
            lines = reply.get("lines") or []
            dropped = reply.get("dropped") or 0
            if lines or dropped:
                on_lines(watcher, lines, int(dropped))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._logs is not None:
            self._logs.close(linger=0)
        self.client.close()
