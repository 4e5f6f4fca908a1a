"""Python clients for a bigtop (or circusd) control endpoint.

    with Client("ipc:///run/bigtop/control.sock") as client:
        client.call("incr", name="web", nb=2, waiting=True)   # -> {"status": "ok", ...}

`call` returns the reply of an ok request and raises `CallError` (with Circus's errno) for
an error reply and `CallTimeout` when no reply came in time. Replies are matched to requests
by id, so a late reply to an earlier, timed-out call is never taken for the next one's.
"""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import zmq

from bigtop.control.endpoints import EndpointError, default_endpoints

if TYPE_CHECKING:
    import asyncio

    from bigtop.control.curve import ClientKeys
from bigtop.errors import BigtopError
from bigtop.protocol.codec import encode

DEFAULT_TIMEOUT = 5.0


class CallError(BigtopError):
    def __init__(self, command: str, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.reason = str(reply.get("reason", "error"))
        self.errno = int(reply.get("errno", 0) or 0)
        super().__init__(f"{command}: {self.reason}")


class CallTimeout(BigtopError):
    def __init__(self, command: str, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        super().__init__(
            f"{command}: no reply from {endpoint} within {timeout:g}s; is bigtop running, and "
            "is this its endpoint? (see --endpoint, BIGTOP_ENDPOINT, -c CONFIG)"
        )


def _request(command: str, properties: dict[str, Any], cast: bool) -> tuple[str, bytes]:
    request_id = os.urandom(16).hex()
    message: dict[str, Any] = {"id": request_id, "command": command, "properties": properties}
    if cast:
        message["msg_type"] = "cast"
    return request_id, encode(message)


def _decode(frame: bytes) -> dict[str, Any] | None:
    import json

    try:
        reply = json.loads(frame)
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None


class Client:
    """A blocking client (a ZMQ DEALER), for scripts and the CLI."""

    def __init__(
        self,
        endpoint: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        curve: ClientKeys | None = None,
    ) -> None:
        self.endpoint = endpoint or default_endpoints().control
        self.timeout = timeout
        self._context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            from bigtop.control.curve import secure_client_socket

            secure_client_socket(self._socket, curve)
        _connect(self._socket, self.endpoint)

    def call(self, command: str, **properties: Any) -> dict[str, Any]:
        reply = self.send(command, properties)
        if reply.get("status") == "error":
            raise CallError(command, reply)
        return reply

    def send(self, command: str, properties: dict[str, Any]) -> dict[str, Any]:
        """The raw reply, whatever its status."""
        request_id, payload = _request(command, properties, cast=False)
        self._socket.send(payload)
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._socket.poll(int(remaining * 1000) + 1):
                raise CallTimeout(command, self.endpoint, self.timeout)
            reply = _decode(self._socket.recv())
            if reply is not None and reply.get("id") == request_id:
                return reply

    def cast(self, command: str, **properties: Any) -> None:
        self._socket.send(_request(command, properties, cast=True)[1])

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient:
    """The same, for asyncio code (plugins, tests, the web dashboard)."""

    def __init__(
        self,
        endpoint: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        curve: ClientKeys | None = None,
    ) -> None:
        self.endpoint = endpoint or default_endpoints().control
        self.timeout = timeout
        import asyncio

        import zmq.asyncio  # only asyncio users pay for it

        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._receiving = asyncio.Lock()

        self._context = zmq.asyncio.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            from bigtop.control.curve import secure_client_socket

            secure_client_socket(self._socket, curve)
        _connect(self._socket, self.endpoint)

    async def call(self, command: str, **properties: Any) -> dict[str, Any]:
        reply = await self.send(command, properties)
        if reply.get("status") == "error":
            raise CallError(command, reply)
        return reply

    async def send(self, command: str, properties: dict[str, Any]) -> dict[str, Any]:
        """The raw reply, whatever its status. Calls may run at once on one client (the
        dashboard does): each waits for the reply carrying its own id."""
        import asyncio

        request_id, payload = _request(command, properties, cast=False)
        slot: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = slot
        try:
            await self._socket.send(payload)
            async with asyncio.timeout(self.timeout):
                return await self._receive_until(slot)
        except TimeoutError:
            raise CallTimeout(command, self.endpoint, self.timeout) from None
        finally:
            del self._waiting[request_id]

    async def _receive_until(self, slot: asyncio.Future[dict[str, Any]]) -> dict[str, Any]:
        # One caller at a time reads the socket and hands every reply to the call it
        # answers; a caller that read only its neighbours' replies would drop them.
        while not slot.done():
            async with self._receiving:
                if slot.done():
                    break
                reply = _decode(await self._socket.recv())
                if reply is None:
                    continue
                owner = self._waiting.get(str(reply.get("id")))
                if owner is not None and not owner.done():
                    owner.set_result(reply)
        return slot.result()

    async def cast(self, command: str, **properties: Any) -> None:
        await self._socket.send(_request(command, properties, cast=True)[1])

    def close(self) -> None:
        self._socket.close(linger=0)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _connect(sock: Any, endpoint: str) -> None:
    """Connect, or say clearly which endpoint is malformed (ZeroMQ only says EINVAL)."""
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        raise EndpointError(
            f"cannot use the endpoint {endpoint!r}: {exc.strerror}; an endpoint looks like "
            "ipc:///path/to/control.sock or tcp://HOST:PORT"
        ) from None
