"""`bigtop check CONFIG [--strict] [--json]`: validate and show the resolved config."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bigtop.config.model import Config, WatcherConfig
    from bigtop.errors import ConfigProblem

# Heavy modules are imported inside the functions: the CLI starts fast for other commands.


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "check",
        help="validate a config file and print what it resolves to",
        description=(
            "Validate CONFIG and print what it resolves to. Every problem is reported with "
            "its file, line, section, option, the value and what was expected; the exit "
            "status is 1 when there is any error. Problems that depend on this machine "
            "(a missing program, directory, user, group, virtualenv or hook module) are "
            "warnings, or "
            "errors with --strict; `bigtop run` always treats them as errors."
        ),
    )
    parser.add_argument(
        "config", metavar="CONFIG", help="a circus.ini, a supervisord.conf or a Procfile"
    )
    parser.add_argument(
        "--strict", action="store_true", help="treat machine-dependent warnings as errors"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the resolved config (or the errors) as JSON"
    )
    parser.add_argument(
        "--to-ini",
        action="store_true",
        help="print CONFIG as a circus.ini (for a supervisord.conf or a Procfile: the "
        "equivalent circus.ini)",
    )
    from bigtop.cli.run import add_procfile_options

    add_procfile_options(parser)
    parser.set_defaults(handler=handle)


def gather(path: str, strict: bool) -> tuple[Config | None, list[ConfigProblem]]:
    """The model and every problem; machine problems become errors when `strict`."""
    from bigtop.config.load import check_config
    from bigtop.config.machine import machine_problems
    from bigtop.errors import ConfigProblem
    from bigtop.runtime.arbiter import check_hooks

    config, problems = check_config(path)
    if config is not None:
        for problem in [*machine_problems(config), *check_hooks(config)]:
            if strict:
                problem = ConfigProblem(**{**problem.__dict__, "severity": "error"})
            problems.append(problem)
    return config, problems


def handle(args: argparse.Namespace) -> int:
    from bigtop.cli.run import procfile_environment

    procfile_environment(args)
    config, problems = gather(args.config, args.strict)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    if args.json:
        if errors or config is None:
            document: dict[str, Any] = {
                "errors": [problem_json(p) for p in errors],
                "warnings": [problem_json(p) for p in warnings],
            }
        else:
            document = config_json(config)
            document["warnings"] = [problem_json(p) for p in warnings]
        print(json.dumps(document, indent=2, sort_keys=False))
        return 1 if errors or config is None else 0
    for problem in warnings:
        print(f"warning: {problem}", file=sys.stderr)
    if errors or config is None:
        for problem in errors:
            print(f"error: {problem}", file=sys.stderr)
        print(f"{args.config}: {len(errors)} error(s); nothing was started", file=sys.stderr)
        return 1
    if args.to_ini:
        return print_ini(args.config)
    print(describe(config))
    return 0


def print_ini(path: str) -> int:
    """The file as a circus.ini that loads to the same config."""
    import os

    from bigtop.config.detect import config_format, read_any
    from bigtop.config.toini import render_ini

    header = f"circus.ini equivalent of {path} ({config_format(path)}), by bigtop check --to-ini"
    text, problems = render_ini(read_any(path, os.environ), header)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    sys.stdout.write(text)
    return 0


def problem_json(problem: ConfigProblem) -> dict[str, Any]:
    return {k: v for k, v in problem.__dict__.items() if v is not None}


def describe(config: Config) -> str:
    from bigtop.config.coerce import signal_name

    lines = [f"{config.path}: OK ({', '.join(config.files)})", ""]
    for watcher in sorted(config.watchers, key=lambda w: (-w.priority, w.name)):
        command = watcher.cmd + (f" {watcher.args}" if watcher.args else "")
        command = command.replace("\n", " ")  # continuation lines: shlex reads them as spaces
        flags = [
            f"{watcher.numprocesses} process{'es' if watcher.numprocesses != 1 else ''}",
            f"priority {watcher.priority}",
            f"respawn {watcher.respawn}",
            f"stop {signal_name(watcher.stop_signal)} then SIGKILL after "
            f"{watcher.graceful_timeout:g}s",
        ]
        if not watcher.autostart:
            flags.append("not autostarted")
        if watcher.uid:
            flags.append(f"as {watcher.uid}" + (f":{watcher.gid}" if watcher.gid else ""))
        lines.append(f"[watcher:{watcher.name}] {', '.join(flags)}")
        lines.append(f"    $ {command}")
        if watcher.working_dir:
            lines.append(f"    in {watcher.working_dir}")
        for key, value in sorted(watcher.env.items()):
            lines.append(f"    {key}={shlex.quote(value)}")
    for socket in config.sockets:
        lines.append(f"[socket:{socket.name}] {socket.options}")
    for plugin in config.plugins:
        lines.append(f"[plugin:{plugin.name}] use = {plugin.use}")
    return "\n".join(lines)


def config_json(config: Config) -> dict[str, Any]:
    import msgspec

    circus = msgspec.to_builtins(config.circus)
    circus.update(circus.pop("options"))
    return {
        "circus": circus,
        "watchers": [watcher_json(w) for w in config.watchers],
        "sockets": [{"name": s.name, **s.options} for s in config.sockets],
        "plugins": [{"name": p.name, "use": p.use, **p.options} for p in config.plugins],
    }


def watcher_json(watcher: WatcherConfig) -> dict[str, Any]:
    """A watcher keyed by Circus's option names (free-form options at the top level)."""
    import msgspec

    data: dict[str, Any] = msgspec.to_builtins(watcher)
    for key in ("backoff", "flapping", "hooks", "rlimits", "options", "source"):
        data.pop(key)
    data["success_exit_codes"] = list(watcher.success_exit_codes)
    data["backoff_initial"] = watcher.backoff.initial
    data["backoff_max"] = watcher.backoff.max
    data["backoff_reset"] = watcher.backoff.reset
    if watcher.flapping is not None:
        for key, value in msgspec.to_builtins(watcher.flapping).items():
            data[f"flapping.{key}"] = value
    for name, hook in watcher.hooks.items():
        data[f"hooks.{name}"] = f"{hook.target}, {str(hook.ignore_errors).lower()}"
    for name, limit in watcher.rlimits.items():
        data[f"rlimit_{name.lower()}"] = limit
    for stream in ("stdout_stream", "stderr_stream"):
        stream_config = data.pop(stream)
        if stream_config:
            data[f"{stream}.class"] = stream_config["class_name"]
            for key, value in stream_config["options"].items():
                data[f"{stream}.{key}"] = value
    for key, value in watcher.options.items():
        data.setdefault(key, value)
    return data
