"""`bigtop`: one entry point for the daemon, config checks and (soon) control commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bigtop import __version__
from bigtop.cli import check, run

DESCRIPTION = """\
bigtop runs and watches processes: N copies of each command, restarted when they die,
stopped gracefully, configured with a Circus-compatible circus.ini.

  bigtop run app.ini          start the daemon in the foreground (Ctrl-C stops everything)
  bigtop check app.ini        validate a config and show what it resolves to
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bigtop",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bigtop {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run.add_parser(commands)
    check.add_parser(commands)
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
