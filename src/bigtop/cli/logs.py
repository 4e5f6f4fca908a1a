"""`bigtop logs [WATCHER ...] [-n N] [-f] [--stdout | --stderr]`: what processes printed."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from bigtop.cli.ctl import add_global_options, control_endpoint, curve_keys

COLOURS = ("36", "32", "33", "35", "34", "96", "92", "93", "95", "94")
RENEW_EVERY = 5.0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "logs",
        help="show (and follow) what the processes print",
        description=(
            "Show the last lines each process printed, then with -f the live output, as "
            "'name[pid] | line'. Works whatever the watcher's output stream is (a file, the "
            "terminal, or none). WATCHER may be a glob. The daemon keeps the last 256 KiB "
            "of output of each process, and of the last 5 processes of each watcher that ended."
        ),
    )
    parser.add_argument("watchers", nargs="*", metavar="WATCHER", help="default: all")
    parser.add_argument("-n", "--lines", type=int, default=10, help="lines per process (10)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--stdout", action="store_const", const="stdout", dest="stream")
    which.add_argument("--stderr", action="store_const", const="stderr", dest="stream")
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handle, stream="both")


class Printer:
    def __init__(self, as_json: bool, colour: bool) -> None:
        self.as_json = as_json
        self.colour = colour
        self.assigned: dict[str, str] = {}

    def line(self, entry: list[Any]) -> None:
        when, watcher, pid, stream, text = entry
        if self.as_json:
            record = {"time": when, "watcher": watcher, "pid": pid, "stream": stream, "line": text}
            print(json.dumps(record))
            return
        prefix = f"{watcher}[{pid}]"
        if self.colour:
            code = self.assigned.setdefault(watcher, COLOURS[len(self.assigned) % len(COLOURS)])
            marker = "\x1b[31m!\x1b[0m" if stream == "stderr" else "|"
            print(f"\x1b[{code}m{prefix}\x1b[0m {marker} {text}")
        else:
            print(f"{prefix} {'!' if stream == 'stderr' else '|'} {text}")


def handle(args: argparse.Namespace) -> int:
    import zmq

    from bigtop.control.curve import secure_client_socket

    try:
        curve = curve_keys(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    endpoint = control_endpoint(args)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        secure_client_socket(sock, curve)
    sock.connect(endpoint)
    request_id = os.urandom(16).hex()
    properties: dict[str, Any] = {
        "names": args.watchers,
        "lines": args.lines,
        "stream": args.stream,
        "follow": args.follow,
        "key": request_id,
    }
    printer = Printer(args.json, sys.stdout.isatty() and not args.json)

    def send(renew: bool) -> None:
        props = {**properties, "renew": renew}
        sock.send(json.dumps({"id": request_id, "command": "logs", "properties": props}).encode())

    try:
        send(renew=False)
        if not sock.poll(int(args.timeout * 1000)):
            print(f"Timed out.\nno reply from {endpoint}; is bigtop running?", file=sys.stderr)
            return 1
        first = True
        renew_at = time.monotonic() + RENEW_EVERY
        while True:
            if first or sock.poll(500):
                reply = json.loads(sock.recv())
                if reply.get("id") != request_id:
                    continue
                if reply.get("status") == "error":
                    print(f"error: {reply.get('reason')}", file=sys.stderr)
                    return 3
                for entry in reply.get("lines", []):
                    printer.line(entry)
                if reply.get("dropped"):
                    print(
                        f"... {reply['dropped']} lines dropped (reading too slowly)",
                        file=sys.stderr,
                    )
                sys.stdout.flush()
                first = False
            if not args.follow:
                return 0
            if time.monotonic() >= renew_at:
                send(renew=True)
                renew_at = time.monotonic() + RENEW_EVERY
    except KeyboardInterrupt:
        return 0
    finally:
        sock.close(linger=0)
