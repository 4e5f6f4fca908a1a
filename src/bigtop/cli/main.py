"""`bigtop`: one entry point for the daemon, config checks and (soon) control commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bigtop import __version__
from bigtop.cli import check, ctl, events, keygen, logs, run, top, web

DESCRIPTION = """\
bigtop runs and watches processes: N copies of each command, restarted when they die,
stopped gracefully, configured with a Circus-compatible circus.ini.

  bigtop run app.ini          start the daemon in the foreground (Ctrl-C stops everything)
  bigtop check app.ini        validate a config and show what it resolves to
  bigtop status               ask a running daemon (every circusctl command works)
  bigtop events               follow what happens, live
  bigtop logs -f web          what the processes print, live
  bigtop top                  live view of watchers and processes
  bigtop web                  the dashboard in a browser (prints the URL to open)

Clients find the daemon with --endpoint, then $BIGTOP_ENDPOINT, then $CIRCUSCTL_ENDPOINT,
then -c CONFIG's [circus] endpoint, then the default ipc socket in your runtime directory.
Exit status of control commands: 0 ok, 3 the daemon refused, 1 no answer.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bigtop",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bigtop {__version__}")
    ctl.add_global_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run.add_parser(commands)
    check.add_parser(commands)
    ctl.add_parsers(commands)
    events.add_parser(commands)
    logs.add_parser(commands)
    keygen.add_parser(commands)
    top.add_parser(commands)
    web.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
