"""`bigtop top`: its command line (the UI is in toptui, the pure view in topview)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bigtop.cli.ctl import add_global_options, control_endpoint, curve_keys


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "top",
        help="live view of watchers and processes: CPU, memory, age, restarts; act on them",
        description=(
            "A live view of the daemon's watchers and processes, refreshed every second. "
            "Keys: ↑/↓ select, Enter expands a watcher into its processes, c/m/a/r/n sort by "
            "CPU, memory, age, restarts or name (again: reverse), / filters by name (Esc "
            "clears), R restarts the selected watcher, +/- add or remove a process, k kills "
            "the selected process (the watcher replaces it), q quits. Actions ask for y first."
        ),
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (1)")
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(
            "error: bigtop top needs a terminal; for scripts use `bigtop stats` or "
            "`bigtop status --json`",
            file=sys.stderr,
        )
        return 1
    try:
        curve = curve_keys(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    import asyncio

    from bigtop.cli.toptui import Top  # the terminal UI's imports only when it runs

    interval = max(0.1, float(args.interval))
    return asyncio.run(Top(control_endpoint(args), curve, interval, args.timeout).run())
