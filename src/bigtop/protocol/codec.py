"""Bytes on the wire <-> requests and replies (Circus's JSON envelope).

Request: `{"id", "command", "properties", "msg_type"?}`; reply `{"status": "ok", "time",
..., "id"}` or `{"status": "error", "reason", "tb": null, "time", "errno", "id"}`. Anything a
client sends is turned into a `Request` or a `DecodeError` that still knows the id when it
could be read, so every malformed request can get an error reply.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from bigtop.protocol.errors import Errno

MAX_REQUEST_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Request:
    id: Any
    command: str
    properties: dict[str, Any] = field(default_factory=dict)
    cast: bool = False
    # Set by the server: sends a later message to the same client with this id (`logs -f`).
    push: Any = field(default=None, compare=False)


class DecodeError(Exception):
    def __init__(self, reason: str, errno: Errno, request_id: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errno = errno
        self.request_id = request_id


def decode_request(payload: bytes) -> Request:
    if len(payload) > MAX_REQUEST_BYTES:
        raise DecodeError(
            f"request too large ({len(payload)} bytes; the limit is {MAX_REQUEST_BYTES})",
            Errno.MESSAGE_ERROR,
        )
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise DecodeError("json invalid", Errno.INVALID_JSON) from None
    if not isinstance(data, dict):
        raise DecodeError("json invalid: expected an object", Errno.INVALID_JSON)
    request_id = data.get("id")
    if not isinstance(request_id, str | int | float | type(None)) or (
        isinstance(request_id, float) and not math.isfinite(request_id)
    ):
        request_id = None  # (NaN and Infinity would make the reply invalid JSON)
    command = data.get("command")
    if not isinstance(command, str) or not command:
        raise DecodeError("message invalid: 'command' is missing", Errno.MESSAGE_ERROR, request_id)
    properties = data.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise DecodeError(
            "message invalid: 'properties' must be an object", Errno.MESSAGE_ERROR, request_id
        )
    return Request(
        id=request_id,
        command=command.lower(),
        properties=properties,
        cast=data.get("msg_type") == "cast",
    )


def ok_reply(request_id: Any, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"status": "ok", "time": time.time()}
    if fields:
        reply.update(fields)
    reply["id"] = request_id
    return reply


def error_reply(request_id: Any, reason: str, errno: Errno) -> dict[str, Any]:
    return {
        "status": "error",
        "reason": reason,
        "tb": None,
        "time": time.time(),
        "errno": int(errno),
        "id": request_id,
    }


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, default=str).encode()
