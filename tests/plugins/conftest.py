"""Helpers for plugin tests: a real UDP listener (a statsd server, a heartbeat target)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.helpers import async_wait_until


class UdpListener:
    """A UDP socket on 127.0.0.1 (port chosen by the kernel) that keeps every line it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.received: list[str] = []

    def lines(self) -> list[str]:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return self.received
            self.received.extend(data.decode().splitlines())

    async def wait_for(self, predicate, what: str, timeout: float = 10.0) -> list[str]:
        return await async_wait_until(
            lambda: [line for line in self.lines() if predicate(line)], timeout, what=what
        )

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def udp() -> Iterator[UdpListener]:
    listener = UdpListener()
    yield listener
    listener.close()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free right now on 127.0.0.1 (for a plugin that must be told where to listen)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
