"""`bigtop keygen NAME [--dir D]`: a CURVE certificate pair for a TCP endpoint."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "keygen",
        help="create CURVE keys for a TCP endpoint",
        description=(
            "Write DIR/NAME.key (public) and DIR/NAME.key_secret (secret, mode 0600). "
            "For the daemon: [circus] curve_secret_key = DIR/server.key_secret and "
            "curve_authorized_keys = a directory holding each client's NAME.key. For a "
            "client: --curve-client-key DIR/NAME.key_secret --curve-server-key server.key."
        ),
    )
    parser.add_argument("name", help="whose keys: 'server', or a client's name")
    parser.add_argument("--dir", default=".", help="where to write them (default: here)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from bigtop.control.curve import generate

    public, secret = generate(args.dir, args.name)
    print(f"public key: {public}\nsecret key: {secret} (keep it private)")
    return 0
