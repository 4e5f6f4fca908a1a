"""CurveZMQ for TCP endpoints: key files, the server side (ZAP) and the client side.

Keys are ZeroMQ certificate files, as `bigtop keygen` writes them: NAME.key (public) and
NAME.key_secret (public + secret). The daemon holds its secret certificate and a directory of
the clients' public certificates; only those clients are let in. A client holds its own
secret certificate and the server's public one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

# zmq.auth is imported where keys are made or read: daemons without CURVE never need it.
from bigtop.errors import BigtopError


class CurveKeyError(BigtopError):
    """A key file is missing or not a ZeroMQ certificate."""


@dataclass(frozen=True)
class ServerKeys:
    public: bytes
    secret: bytes
    authorized_dir: str


@dataclass(frozen=True)
class ClientKeys:
    public: bytes
    secret: bytes
    server_public: bytes


def generate(directory: str, name: str) -> tuple[str, str]:
    os.makedirs(directory, exist_ok=True)
    import zmq.auth

    public, secret = zmq.auth.create_certificates(directory, name)
    os.chmod(secret, 0o600)
    return public, secret


def _load(path: str, need_secret: bool) -> tuple[bytes, bytes | None]:
    if not os.path.isfile(path):
        raise CurveKeyError(f"key file {path} does not exist (create keys with `bigtop keygen`)")
    try:
        import zmq.auth

        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as exc:
        raise CurveKeyError(f"{path} is not a ZeroMQ certificate: {exc}") from None
    if need_secret and not secret:
        raise CurveKeyError(f"{path} holds no secret key: give the .key_secret file")
    return public, secret


def server_keys(secret_file: str, authorized_dir: str) -> ServerKeys:
    public, secret = _load(secret_file, need_secret=True)
    if not os.path.isdir(authorized_dir):
        raise CurveKeyError(
            f"curve_authorized_keys {authorized_dir} is not a directory of client .key files"
        )
    assert secret is not None
    return ServerKeys(public, secret, authorized_dir)


def client_keys(client_secret_file: str, server_public_file: str) -> ClientKeys:
    public, secret = _load(client_secret_file, need_secret=True)
    server_public, _ = _load(server_public_file, need_secret=False)
    assert secret is not None
    return ClientKeys(public, secret, server_public)


def secure_server_socket(sock: Any, keys: ServerKeys) -> None:
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_server = True


def secure_client_socket(sock: Any, keys: ClientKeys) -> None:
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_serverkey = keys.server_public


def start_authenticator(context: zmq.asyncio.Context, keys: ServerKeys) -> Any:
    """ZAP handler that admits only the authorised clients' public keys."""
    from zmq.auth.asyncio import AsyncioAuthenticator

    authenticator = AsyncioAuthenticator(context)
    authenticator.start()
    authenticator.configure_curve(domain="*", location=keys.authorized_dir)
    return authenticator


def client_keys_from_env(
    client_key: str | None = None, server_key: str | None = None
) -> ClientKeys | None:
    """Keys given as arguments, else $BIGTOP_CURVE_CLIENT_KEY / $BIGTOP_CURVE_SERVER_KEY."""
    client_key = client_key or os.environ.get("BIGTOP_CURVE_CLIENT_KEY")
    server_key = server_key or os.environ.get("BIGTOP_CURVE_SERVER_KEY")
    if not client_key and not server_key:
        return None
    if not client_key or not server_key:
        raise CurveKeyError(
            "CURVE needs both keys: the client's secret certificate (--curve-client-key) "
            "and the server's public certificate (--curve-server-key)"
        )
    return client_keys(client_key, server_key)
