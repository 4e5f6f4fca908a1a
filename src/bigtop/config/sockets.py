"""`[socket:NAME]` options, typed. Pure: names stay names until the runtime binds them.

Differences from Circus: `umask` is octal like every other umask (Circus read it as a
decimal number, so unix sockets ended up mode 0767), and the default, 002, leaves no
socket writable (hence connectable) by every user.
"""

from __future__ import annotations

from bigtop.config import coerce
from bigtop.config.model import Frozen, SocketConfig

FAMILIES = ("AF_INET", "AF_INET6", "AF_UNIX")
TYPES = ("SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET")
KNOWN = frozenset(
    {
        "host", "port", "family", "type", "proto", "backlog", "path", "umask", "replace",
        "so_reuseport", "blocking", "interface",
    }
)  # fmt: skip


class SocketSpec(Frozen, frozen=True, kw_only=True):
    name: str
    host: str = "localhost"
    port: int = 8080
    family: str = "AF_INET"
    type: str = "SOCK_STREAM"
    proto: str | None = None
    backlog: int = 2048
    path: str | None = None
    umask: int = 0o002
    replace: bool = False
    so_reuseport: bool = False
    blocking: bool = False
    interface: str | None = None

    def address(self) -> str:
        if self.path:
            return self.path
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class SocketError(ValueError):
    def __init__(self, option: str, value: str, expected: str) -> None:
        super().__init__(f"{option}: expected {expected} (got {value!r})")
        self.option = option
        self.value = value
        self.expected = expected


def parse_socket(config: SocketConfig) -> SocketSpec:
    values: dict[str, object] = {}
    options = config.options
    for key, coercer in (
        ("port", lambda t: coerce.to_int(t, minimum=0)),
        ("backlog", lambda t: coerce.to_int(t, minimum=0)),
        ("umask", coerce.to_octal),
        ("replace", coerce.to_bool),
        ("so_reuseport", coerce.to_bool),
        ("blocking", coerce.to_bool),
    ):
        if key in options:
            try:
                values[key] = coercer(options[key])
            except coerce.CoercionError as exc:
                raise SocketError(key, options[key], exc.expected) from None
    if options.get("port") is not None and values.get("port", 0) > 65535:  # type: ignore[operator]
        raise SocketError("port", options["port"], "a port number between 0 and 65535")
    for key, choices in (("family", FAMILIES), ("type", TYPES)):
        if key in options:
            word = options[key].strip().upper()
            if word not in choices:
                raise SocketError(key, options[key], "one of " + ", ".join(choices))
            values[key] = word
    for key in ("host", "proto", "path", "interface"):
        if options.get(key):
            values[key] = options[key].strip()
    if values.get("path"):
        values["family"] = "AF_UNIX"  # a path means a unix socket, host and port ignored
    elif values.get("family") == "AF_UNIX":
        raise SocketError("path", "", "a path for an AF_UNIX socket")
    return SocketSpec(name=config.name, **values)  # type: ignore[arg-type]
