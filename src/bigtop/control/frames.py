"""Publishing two-frame messages (topic, body) with as little work per message as pyzmq
allows: a plain (not asyncio) view of the socket, integer flags, and pyzmq's compiled send,
without the Python layer above it (which only adds options never used here, and builds
enum flags on every send_multipart). Events and stats are published this way; at a stop of
200 processes or a stats round of 1,000, the per-message cost is what counts."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import zmq

FrameSender = Callable[[bytes, int], Any]
MORE = int(zmq.NOBLOCK | zmq.SNDMORE)
LAST = int(zmq.NOBLOCK)


def frame_sender(sock: zmq.Socket[bytes]) -> FrameSender:
    """`send(frame, flags)` on a plain socket (a `zmq.Socket.shadow` of an asyncio one)."""
    return functools.partial(zmq.backend.Socket.send, sock)


def publish(send: FrameSender, topic: bytes, body: bytes) -> bool:
    """Without blocking; False when the message was dropped (a subscriber's queue is full)."""
    try:
        send(topic, MORE)
    except zmq.Again:
        return False
    send(body, LAST)  # the rest of a message whose first frame was taken is taken too
    return True
