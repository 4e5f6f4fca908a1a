"""Circus's multicast discovery, only when `[circus] multicast_endpoint` is set.

A client sends any datagram to the group (`udp://237.219.251.97:12027` in Circus's
examples); the daemon answers the sender with `{"endpoint": "<control endpoint>"}`. Circus
ran this on every daemon by default, listening on all interfaces; bigtop never starts it
unless asked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger("bigtop.discovery")


class DiscoveryError(ValueError):
    pass


def parse(endpoint: str) -> tuple[str, int]:
    parsed = urlparse(endpoint)
    if parsed.scheme != "udp" or not parsed.hostname or not parsed.port:
        raise DiscoveryError(
            f"multicast_endpoint {endpoint!r}: expected udp://GROUP:PORT, "
            "like udp://237.219.251.97:12027"
        )
    return parsed.hostname, parsed.port


class _Responder(asyncio.DatagramProtocol):
    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # a datagram transport (asyncio's class is internal)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.transport is not None:
            self.transport.sendto(self.answer, addr)


async def start(endpoint: str, control_endpoint: str) -> asyncio.BaseTransport:
    group, port = parse(endpoint)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        sock.bind(("", port))
        membership = struct.pack("4sl", socket.inet_aton(group), socket.INADDR_ANY)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    except OSError as exc:
        sock.close()
        raise DiscoveryError(f"multicast discovery on {endpoint}: {exc.strerror}") from None
    answer = json.dumps({"endpoint": control_endpoint}).encode()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Responder(answer), sock=sock)
    log.info("answering discovery on %s", endpoint)
    return transport
