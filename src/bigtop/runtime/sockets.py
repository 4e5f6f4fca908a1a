"""Binding `[socket:NAME]` sockets in the daemon, to hand them to its children.

The daemon binds every socket before any watcher starts, so a pre-fork server's workers
all inherit the same listening socket, and a restart or reload of the workers never closes
it: connections wait in the backlog instead of being refused. Each socket is passed only
to the watchers that use it, at the same fd number (`$(circus.sockets.NAME)`).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
from dataclasses import dataclass

import msgspec

from bigtop.config.model import WatcherConfig
from bigtop.config.sockets import SocketSpec
from bigtop.errors import BigtopError

_REFERENCE = re.compile(r"(?:\$\(|\(\()circus\.sockets\.([\w.-]+)\)\)?", re.IGNORECASE)


class SocketBindError(BigtopError):
    pass


@dataclass
class BoundSocket:
    spec: SocketSpec
    sock: socket.socket

    @property
    def fd(self) -> int:
        return self.sock.fileno()

    def queued(self) -> int:
        """Connections waiting in the accept queue now (TCP listening sockets; 0 otherwise):
        what the stats stream reports as a socket's `reads`."""
        if self.spec.family == "AF_UNIX" or self.sock.type != socket.SOCK_STREAM:
            return 0
        try:
            info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
        except OSError:
            return 0
        # struct tcp_info: 8 bytes of u8 fields, then u32 rto, ato, snd_mss, rcv_mss, unacked;
        # on a listening socket the kernel reports its accept backlog as tcpi_unacked
        return int.from_bytes(info[24:28], sys.byteorder) if len(info) >= 28 else 0

    def describe(self) -> dict[str, object]:
        """`listsockets` entry, as Circus shapes it."""
        entry: dict[str, object] = {"fd": self.fd, "name": self.spec.name}
        entry["backlog"] = self.spec.backlog
        if self.spec.family == "AF_UNIX":
            entry["path"] = self.spec.path
        else:
            host, port = self.sock.getsockname()[:2]
            entry["host"], entry["port"] = host, port
        return entry


_TCP_INFO_SIZE = 104


def bind(spec: SocketSpec) -> BoundSocket:
    """Bind a socket for the daemon to hand out. An so_reuseport socket only reserves its
    address here (bound, not listening: it takes no connection); each process gets a fresh
    socket of its own (`bind_fresh`) and the kernel spreads connections over them."""
    return _bind(spec, listen=not per_process(spec))


def per_process(spec: SocketSpec) -> bool:
    """so_reuseport on an IP socket: every process gets a socket of its own."""
    return spec.so_reuseport and spec.family != "AF_UNIX"


def bind_fresh(bound: BoundSocket) -> socket.socket:
    """A new SO_REUSEPORT socket on the same address, for one process."""
    spec = bound.spec
    host, port = bound.sock.getsockname()[:2]
    fresh = _bind(msgspec.structs.replace(spec, host=host, port=port), listen=True)
    return fresh.sock


def _bind(spec: SocketSpec, listen: bool) -> BoundSocket:
    family = getattr(socket, spec.family)
    kind = getattr(socket, spec.type)
    proto = socket.getprotobyname(spec.proto) if spec.proto else 0
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if spec.so_reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if spec.interface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, spec.interface.encode())
        if family == socket.AF_UNIX:
            _bind_unix(sock, spec)
        else:
            sock.bind(_address(spec, family))
        if listen and kind in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
            sock.listen(spec.backlog)
        sock.setblocking(spec.blocking)
        sock.set_inheritable(True)
    except OSError as exc:
        sock.close()
        hint = " (is another server using it?)" if exc.errno == 98 else ""
        if exc.errno == 2 and spec.path:
            hint = f" (does the directory {os.path.dirname(spec.path)} exist?)"
        raise SocketBindError(
            f"[socket:{spec.name}]: cannot bind {spec.address()}: {exc.strerror}{hint}"
        ) from None
    return BoundSocket(spec, sock)


def _address(spec: SocketSpec, family: int) -> tuple[str, int]:
    infos = socket.getaddrinfo(spec.host, spec.port, family, socket.SOCK_STREAM)
    address = infos[0][4]
    return (str(address[0]), int(address[1]))


def _bind_unix(sock: socket.socket, spec: SocketSpec) -> None:
    assert spec.path is not None
    if os.path.exists(spec.path):
        if not spec.replace:
            raise OSError(17, f"{spec.path} exists; remove it or set replace = true")
        os.unlink(spec.path)
    previous = os.umask(spec.umask)
    try:
        sock.bind(spec.path)
    finally:
        os.umask(previous)


def close(bound: BoundSocket) -> None:
    with contextlib.suppress(OSError):
        bound.sock.close()
    if bound.spec.family == "AF_UNIX" and bound.spec.path:
        with contextlib.suppress(OSError):
            os.unlink(bound.spec.path)


def used_by(watcher: WatcherConfig, names: list[str]) -> list[str]:
    """The sockets a watcher gets: those its command names, its stdin_socket, or every
    socket when it sets use_sockets without naming any (what Circus's children inherited)."""
    text = f"{watcher.cmd} {watcher.args}"
    wanted = {m.group(1).lower() for m in _REFERENCE.finditer(text)}
    if watcher.stdin_socket:
        wanted.add(watcher.stdin_socket.lower())
    if not wanted and watcher.use_sockets:
        return list(names)
    return [name for name in names if name in wanted]
