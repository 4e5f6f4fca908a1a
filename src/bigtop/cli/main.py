"""`bigtop`: one entry point for the daemon, config checks and (soon) control commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from bigtop import __version__
from bigtop.cli import ctl

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


# Commands with a module of their own (the others are control commands, in ctl), imported
# only when named: the daemon then carries none of the client commands' code.
COMMAND_MODULES = ("run", "check", "events", "logs", "keygen", "top", "web")

# Global options that take a value: the token after them is not the command.
VALUED_OPTIONS = frozenset(
    {"--endpoint", "--timeout", "-c", "--config", "--curve-client-key", "--curve-server-key"}
)


class _Skipped:
    """Stands in for the parser of a command that is not being run: building all ~35
    command parsers took a quarter of `bigtop status`'s own time."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


class _OnlyOne:
    """Subparsers that build the one command named on the command line, and skip the rest."""

    def __init__(self, commands: Any, wanted: str) -> None:
        self.commands = commands
        self.wanted = wanted
        self.found = False

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name == self.wanted:
            self.found = True
            return self.commands.add_parser(name, **kwargs)
        return _Skipped()


def command_named(argv: Sequence[str]) -> str | None:
    """The command in argv (the first word that is not an option or an option's value)."""
    after_value = False
    for token in argv:
        if after_value:
            after_value = False
        elif token in VALUED_OPTIONS:
            after_value = True
        elif token in ("-h", "--help"):
            return None  # the general help lists every command
        elif not token.startswith("-"):
            return token
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or (`only`) the global options and that one command; the
    whole one when `only` is not a command, so that argparse lists the choices."""
    parser = argparse.ArgumentParser(
        prog="bigtop",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bigtop {__version__}")
    ctl.add_global_options(parser)
    commands: Any = parser.add_subparsers(dest="command", metavar="COMMAND")
    if only is not None:
        commands = selected = _OnlyOne(commands, only)
    for name in COMMAND_MODULES:
        if only is None or only == name:
            importlib.import_module(f"bigtop.cli.{name}").add_parser(commands)
        if name == "check":
            ctl.add_parsers(commands)  # (in the help, control commands come after these two)
    if only is not None and not selected.found:
        return build_parser()
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=command_named(words))
    args = parser.parse_args(words)
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
