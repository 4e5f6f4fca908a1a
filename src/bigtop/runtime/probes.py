"""Readiness and health probes: is this process ready / still healthy?

A probe is `tcp://HOST:PORT` (a connection is accepted), `http://...` (a GET answers 2xx),
or a shell command (exits 0; it gets $BIGTOP_PID and $BIGTOP_WID). `$(circus.pid)` and
`$(circus.wid)` in the probe are replaced first, so each process can be probed on its own
port. With several workers on one shared socket, a tcp or http probe can be answered by
any of them; use `notify` (the process says READY=1 on $NOTIFY_SOCKET) or a command to
know about one process in particular.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from bigtop.config.substitute import substitute

log = logging.getLogger("bigtop.probes")


def expand(check: str, pid: int, wid: int) -> str:
    return substitute(check, {"pid": str(pid), "wid": str(wid)})


Runner = Callable[[list[str], dict[str, str]], Awaitable[int]]


async def probe(check: str, pid: int, wid: int, timeout: float, run: Runner) -> tuple[bool, str]:
    """Run one probe; (passed, what happened). `run` runs a command and gives its status."""
    target = expand(check, pid, wid)
    try:
        async with asyncio.timeout(timeout):
            if target.startswith("tcp://"):
                return await _tcp(target)
            if target.startswith(("http://", "https://")):
                return await _http(target)
            return await _command(target, pid, wid, run)
    except TimeoutError:
        return False, f"no answer within {timeout:g}s"
    except OSError as exc:
        return False, exc.strerror or str(exc)


async def _tcp(target: str) -> tuple[bool, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(target)
    _, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, "connected"


async def _http(target: str) -> tuple[bool, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(target)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=secure or None)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    request = f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nUser-Agent: bigtop\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    fields = status_line.decode("latin-1").split()
    if len(fields) >= 2 and fields[1].isdigit():
        code = int(fields[1])
        return 200 <= code < 300, f"HTTP {code}"
    return False, "not an HTTP answer"


async def _command(target: str, pid: int, wid: int, run: Runner) -> tuple[bool, str]:
    env = {**os.environ, "BIGTOP_PID": str(pid), "BIGTOP_WID": str(wid)}
    code = await run(["/bin/sh", "-c", target], env)
    return code == 0, f"exit status {code}"


class NotifyListener:
    """A `NOTIFY_SOCKET` (as systemd's): processes send READY=1; we learn who by SO_PASSCRED."""

    def __init__(self, path: str, on_ready: Callable[[int], None]) -> None:
        self.path = path
        self.on_ready = on_ready
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        os.chmod(path, 0o777)  # processes run as other users must reach it too
        self.sock.setblocking(False)
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            pid = _sender(ancillary)
            if pid and any(line.strip() == b"READY=1" for line in data.splitlines()):
                self.on_ready(pid)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def _sender(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= 12:
            return int.from_bytes(data[:4], "little", signed=True)
    return None
