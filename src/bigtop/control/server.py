"""The control endpoint (ZMQ ROUTER) and the events endpoint (ZMQ PUB).

Each request is answered by its own task, so a slow command never delays another client.
Both DEALER framing (identity, payload) and REQ framing (identity, empty, payload) are
answered. A request that cannot be decoded still gets an error reply; `cast` requests get
none, as in Circus. Publishing never blocks: a slow subscriber loses messages (ZMQ's
high-water mark), it never slows the daemon.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import msgspec
import zmq
import zmq.asyncio

from bigtop.control.curve import ServerKeys, secure_server_socket, start_authenticator
from bigtop.control.endpoints import Endpoints, prepare_ipc, remove_ipc, restrict_ipc
from bigtop.control.frames import FrameSender, frame_sender, publish
from bigtop.protocol.codec import (
    MAX_REQUEST_BYTES,
    DecodeError,
    Request,
    decode_request,
    encode,
    error_reply,
    ok_reply,
)
from bigtop.protocol.errors import CommandError, Errno
from bigtop.runtime.controller import ASYNC_COMMANDS, Controller

log = logging.getLogger("bigtop.control")
_encode_event = msgspec.json.Encoder().encode  # event payloads: plain JSON values


def _bound(sock: zmq.asyncio.Socket, asked: str) -> str:
    if not asked.startswith("tcp://"):
        return asked
    last = sock.getsockopt(zmq.LAST_ENDPOINT)
    return last.decode() if isinstance(last, bytes) else str(last)


class ControlServer:
    def __init__(
        self,
        controller: Controller,
        endpoints: Endpoints,
        endpoint_owner: str | None = None,
        curve: ServerKeys | None = None,
    ) -> None:
        self.controller = controller
        self.curve = curve
        self._authenticator: Any = None
        self.endpoints = endpoints
        self.endpoint_owner = endpoint_owner
        self.context = zmq.asyncio.Context()
        self.router: zmq.asyncio.Socket | None = None
        self.pub: zmq.asyncio.Socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self._replies: zmq.Socket[bytes] | None = None
        self._events: zmq.Socket[bytes] | None = None
        self._send_event: FrameSender | None = None

    def bind(self) -> None:
        """Bind both endpoints (raises EndpointError / zmq.ZMQError with the endpoint named)."""
        for endpoint in (self.endpoints.control, self.endpoints.pubsub):
            prepare_ipc(endpoint)
        if self.curve is not None:
            self._authenticator = start_authenticator(self.context, self.curve)
        # Options are given before bind: a listener copies them when it binds, and what is
        # set later never reaches its connections (the size limit was not enforced).
        self.pub = self._bind(zmq.PUB, self.endpoints.pubsub, {zmq.SNDHWM: 10_000})
        self.router = self._bind(
            zmq.ROUTER, self.endpoints.control, {zmq.MAXMSGSIZE: MAX_REQUEST_BYTES * 4}
        )
        # Plain views of the same sockets for sends: non-blocking, no future per message.
        self._replies = zmq.Socket.shadow(self.router.underlying)
        self._events = zmq.Socket.shadow(self.pub.underlying)
        self._send_event = frame_sender(self._events)
        # An ephemeral TCP port ("tcp://127.0.0.1:*") is known only now: report the real one.
        self.endpoints = Endpoints(
            control=_bound(self.router, self.endpoints.control),
            pubsub=_bound(self.pub, self.endpoints.pubsub),
            stats=self.endpoints.stats,
        )
        restrict_ipc(self.endpoints.control, self.endpoint_owner)
        restrict_ipc(self.endpoints.pubsub, self.endpoint_owner)

    def _bind(
        self, kind: int, endpoint: str, options: dict[int, int] | None = None
    ) -> zmq.asyncio.Socket:
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        for option, value in (options or {}).items():
            sock.setsockopt(option, value)
        if self.curve is not None:
            secure_server_socket(sock, self.curve)
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            sock.close()
            raise zmq.ZMQError(exc.errno, f"cannot bind {endpoint}: {exc.strerror}") from None
        return sock

    def start(self) -> None:
        self._task = asyncio.create_task(self._serve())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for task in list(self._requests):
            task.cancel()
        self._replies = self._events = self._send_event = (
            None  # views: closing the sockets is enough
        )
        for sock in (self.router, self.pub):
            if sock is not None:
                sock.close(linger=0)
        if self._authenticator is not None:
            self._authenticator.stop()
        self.context.term()
        for endpoint in (self.endpoints.control, self.endpoints.pubsub):
            remove_ipc(endpoint)

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        if self._send_event is None:
            return
        publish(self._send_event, topic.encode(), _encode_event(message))

    async def _serve(self) -> None:
        assert self.router is not None
        while True:
            frames = await self.router.recv_multipart()
            if len(frames) >= 3 and frames[1] == b"":
                envelope, payload = frames[:2], b"".join(frames[2:])  # REQ framing
            elif len(frames) >= 2:
                envelope, payload = frames[:1], b"".join(frames[1:])
            else:
                log.warning("dropped a request without a body from a client")
                continue
            request = self.decode(payload, envelope)
            if isinstance(request, Request) and request.command in ASYNC_COMMANDS:
                # May wait (a stop, a reload): in a task of its own, so nobody else waits.
                task = asyncio.create_task(self._answer(envelope, request))
                self._requests.add(task)
                task.add_done_callback(self._requests.discard)
            else:
                # Errors and read-only commands are answered in line, in arrival order.
                await self._answer(envelope, request)

    def decode(self, payload: bytes, envelope: list[bytes] | None) -> Request | dict[str, Any]:
        """The request, or the error reply for what could not be read."""
        if not payload.strip():
            return error_reply(None, "empty request", Errno.INVALID_JSON)
        try:
            request = decode_request(payload)
        except DecodeError as exc:
            return error_reply(exc.request_id, exc.reason, exc.errno)
        if envelope is not None:
            request = dataclasses.replace(request, push=self._pusher(envelope, request.id))
        return request

    async def _answer(self, envelope: list[bytes], request: Request | dict[str, Any]) -> None:
        reply = await self.run(request) if isinstance(request, Request) else request
        if reply is not None and self._replies is not None:
            try:
                # a ROUTER never blocks on send: at its high-water mark it drops the message
                self._send_reply([*envelope, encode(reply)])
            except zmq.ZMQError as exc:
                log.warning("could not send a reply: %s", exc)

    def _send_reply(self, frames: list[bytes]) -> None:
        """Send on the plain view of the ROUTER, then have the asyncio socket look at its
        events: ZMQ's readiness signal is edge-triggered, and a send can consume the edge of
        a request that arrived meanwhile, which `_serve` would then never be woken for (a
        stalled follower's pushes made other clients wait until some later message)."""
        assert self._replies is not None
        assert self.router is not None
        try:
            self._replies.send_multipart(frames, zmq.NOBLOCK)
        finally:
            self.router.get(zmq.EVENTS)  # schedules the reading of what is waiting

    async def respond(
        self, payload: bytes, envelope: list[bytes] | None = None
    ) -> dict[str, Any] | None:
        """The reply to one request, or None for a cast."""
        request = self.decode(payload, envelope)
        return await self.run(request) if isinstance(request, Request) else request

    def _pusher(self, envelope: list[bytes], request_id: Any) -> Any:
        """Send further messages for one request (never blocks: False when the client's
        queue is full, so a slow follower loses lines instead of slowing the daemon)."""

        def push(fields: dict[str, Any]) -> bool:
            if self._replies is None:
                return False
            try:
                message = ok_reply(request_id, fields)
                self._send_reply([*envelope, encode(message)])
            except zmq.ZMQError:
                return False
            return True

        return push

    async def run(self, request: Request) -> dict[str, Any] | None:
        try:
            fields = await self.controller.handle(request)
        except CommandError as exc:
            reply = error_reply(request.id, exc.reason, exc.errno)
        except Exception as exc:
            log.exception("command %r failed", request.command)
            reply = error_reply(
                request.id, f"command {request.command}: {exc}", Errno.COMMAND_ERROR
            )
        else:
            reply = ok_reply(request.id, fields)
        return None if request.cast else reply
