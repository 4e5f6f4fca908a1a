"""Where the daemon listens: defaults, safety checks, and permissions.

By default every endpoint is an ipc socket in a per-user runtime directory that only its
owner can enter (0700), and the sockets themselves are 0600: another user cannot talk to
the daemon. TCP is used only when configured, and a TCP endpoint reachable from other hosts
is refused unless the operator explicitly accepts an unauthenticated one (--insecure).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import stat
from dataclasses import dataclass

from bigtop.errors import BigtopError


class EndpointError(BigtopError):
    pass


@dataclass(frozen=True)
class Endpoints:
    control: str
    pubsub: str
    stats: str


def runtime_dir(uid: int | None = None) -> str:
    """The per-user directory for default sockets (not created here)."""
    uid = os.getuid() if uid is None else uid
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and uid == os.getuid() and os.path.isdir(xdg):
        return os.path.join(xdg, "bigtop")
    if uid == 0 and os.path.isdir("/run") and os.access("/run", os.W_OK):
        return "/run/bigtop"
    user_run = f"/run/user/{uid}"
    if os.path.isdir(user_run):
        return os.path.join(user_run, "bigtop")
    return f"/tmp/bigtop-{uid}"


def default_endpoints(directory: str | None = None) -> Endpoints:
    base = directory or runtime_dir()
    return Endpoints(
        control=f"ipc://{base}/control.sock",
        pubsub=f"ipc://{base}/events.sock",
        stats=f"ipc://{base}/stats.sock",
    )


def resolve(
    control: str | None, pubsub: str | None, stats: str | None, directory: str | None = None
) -> Endpoints:
    defaults = default_endpoints(directory)
    return Endpoints(
        control=control or defaults.control,
        pubsub=pubsub or defaults.pubsub,
        stats=stats or defaults.stats,
    )


def ipc_path(endpoint: str) -> str | None:
    return endpoint[len("ipc://") :] if endpoint.startswith("ipc://") else None


def prepare_ipc(endpoint: str) -> None:
    """Make the socket's directory safe, and refuse to steal a live daemon's socket.

    ZeroMQ silently unlinks and rebinds an existing ipc path, which would cut a running
    daemon off its clients; so we first try to connect: if something answers, we stop.
    """
    path = ipc_path(endpoint)
    if path is None:
        return
    directory = os.path.dirname(path) or "."
    _secure_directory(directory)
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)  # stale: nobody listens
        else:
            raise EndpointError(
                f"{endpoint} is in use by a running daemon: is bigtop already running? "
                "Stop it, or give this one its own endpoint in [circus]."
            )
        finally:
            probe.close()


def _secure_directory(directory: str) -> None:
    is_default = os.path.basename(directory) == "bigtop" or os.path.basename(directory).startswith(
        "bigtop-"
    )
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise EndpointError(f"cannot create {directory}: {exc.strerror}") from None
        os.chmod(directory, 0o700)
        return
    if not is_default:
        return  # a directory the operator chose: their permissions
    info = os.stat(directory)
    if info.st_uid != os.getuid():
        owner = _user_name(info.st_uid)
        raise EndpointError(
            f"{directory} belongs to {owner}, not to you: refusing to put control sockets "
            "there. Remove it or set an endpoint in [circus]."
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(directory, 0o700)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def restrict_ipc(endpoint: str, owner: str | None = None) -> None:
    """After bind: socket file 0600, and chowned to endpoint_owner when configured."""
    path = ipc_path(endpoint)
    if path is None or not os.path.exists(path):
        return
    os.chmod(path, 0o600)
    if owner:
        entry = pwd.getpwnam(owner) if not owner.isdigit() else pwd.getpwuid(int(owner))
        os.chown(path, entry.pw_uid, entry.pw_gid)


def is_public_tcp(endpoint: str) -> bool:
    """A TCP endpoint other hosts could reach (not loopback)."""
    if not endpoint.startswith("tcp://"):
        return False
    import ipaddress
    from urllib.parse import urlparse

    host = urlparse(endpoint.replace("tcp://", "http://", 1)).hostname or ""
    if host in ("localhost",):
        return False
    if host in ("*", "0.0.0.0", "::", ""):
        return True
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # an interface or host name: assume reachable


def remove_ipc(endpoint: str) -> None:
    path = ipc_path(endpoint)
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)
