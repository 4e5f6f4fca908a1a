"""`bigtop <command>`: every Circus control command, with circusctl's arguments.

Exit status: 0 ok, 3 the daemon answered with an error, 1 no answer (timeout) or a bad
argument. Output is circusctl's plain text when piped (scripts keep working), aligned and
coloured on a terminal, or the raw reply with --json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from bigtop.config.coerce import CoercionError, to_bool, to_signal

Message = Callable[[argparse.Namespace], dict[str, Any]]
Render = Callable[[dict[str, Any], argparse.Namespace], str]
STATUS_COLOURS = {"active": "32", "stopped": "31", "starting": "33", "stopping": "33"}


class Spec:
    """One control command: its arguments, its request and how its reply is shown.

    A plain class, not a dataclass: the CLI's start-up time matters (`bigtop status`).
    """

    __slots__ = ("arguments", "description", "help", "message", "name", "render")

    def __init__(
        self,
        name: str,
        help: str,
        arguments: Callable[[argparse.ArgumentParser], object] = lambda parser: None,
        message: Message = lambda args: {},
        render: Render = lambda reply, args: "ok",
        description: str = "",
    ) -> None:
        self.name = name
        self.help = help
        self.arguments = arguments
        self.message = message
        self.render = render
        self.description = description


# ---- argument helpers ---------------------------------------------------------------------
def _name(required: bool) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        if required:
            parser.add_argument("name", help="the watcher")
        else:
            parser.add_argument("name", nargs="?", help="the watcher (default: all)")

    return add


def _waiting(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--waiting", action="store_true", help="answer only once the change is done"
    )


def _match(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--match",
        choices=["glob", "simple", "regex"],
        default="glob",
        help="how NAME is matched against watcher names (default glob)",
    )


def _both(
    *adders: Callable[[argparse.ArgumentParser], object],
) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        for adder in adders:
            adder(parser)

    return add


def _props(args: argparse.Namespace, *keys: str) -> dict[str, Any]:
    return {key: getattr(args, key) for key in keys if getattr(args, key, None) is not None}


# ---- renderers ----------------------------------------------------------------------------
def _colour(text: str, code: str, args: argparse.Namespace) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if args.tty else text


def render_status(reply: dict[str, Any], args: argparse.Namespace) -> str:
    text = _render_statuses(reply, args)
    if "history" not in reply:
        return text
    if "statuses" not in reply:
        histories = {args.name: reply["history"]}
        restarts = {args.name: reply.get("restarts", 0)}
    else:
        histories, restarts = reply["history"], reply.get("restarts", {})
    lines = [text, ""]
    for name in sorted(histories):
        lines.append(f"{name}: {restarts.get(name, 0)} restart(s)")
        lines.extend(_history_line(entry) for entry in histories[name])
    return "\n".join(lines)


def _history_line(entry: dict[str, Any]) -> str:
    import time

    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["time"]))
    pid = entry["pid"] if entry["pid"] is not None else "-"
    restart_in = entry.get("restart_in")
    then = "not restarted" if restart_in is None else f"restart in {restart_in:.3g}s"
    uptime = f"up {entry['uptime']:.3g}s"
    return f"  {when}  wid {entry['wid']}  pid {pid}  {entry['reason']}  {uptime}  {then}"


def _render_statuses(reply: dict[str, Any], args: argparse.Namespace) -> str:
    if "statuses" not in reply:
        return str(reply.get("status"))
    statuses = reply["statuses"]
    if not args.tty:
        return "\n".join(f"{name}: {statuses[name]}" for name in sorted(statuses))
    width = max([len("WATCHER"), *(len(n) for n in statuses)])
    processes = reply.get("processes", {})
    lines = [f"{'WATCHER':<{width}}  {'STATUS':<8}  PROCESSES"]
    for name in sorted(statuses):
        status = statuses[name]
        coloured = _colour(f"{status:<8}", STATUS_COLOURS.get(status, "0"), args)
        states = list(processes.get(name, {}).values())
        counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) or "-"
        lines.append(f"{name:<{width}}  {coloured}  {counts}")
    return "\n".join(lines)


def render_list(reply: dict[str, Any], args: argparse.Namespace) -> str:
    if "pids" in reply:
        return ",".join(str(p) for p in reply["pids"])
    return ",".join(reply.get("watchers", []))


def render_number(key: str) -> Render:
    return lambda reply, args: str(reply.get(key))


def render_scale(reply: dict[str, Any], args: argparse.Namespace) -> str:
    if reply.get("singleton"):
        return "This watcher is a Singleton - not changing the number of processes"
    return str(reply["numprocesses"]) if "numprocesses" in reply else "ok"


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value)


def render_options(reply: dict[str, Any], args: argparse.Namespace) -> str:
    options = reply.get("options", {})
    return "\n".join(f"{key}: {_value(options[key])}" for key in sorted(options))


def render_sockets(reply: dict[str, Any], args: argparse.Namespace) -> str:
    lines = []
    for sock in reply.get("sockets", []):
        where = sock.get("path") or f"{sock.get('host')}:{sock.get('port')}"
        lines.append(f"{sock.get('fd')}:socket '{sock.get('name')}' at {where}")
    return "\n".join(lines)


def _info_line(info: Any) -> str:
    if not isinstance(info, dict):
        return str(info)
    fields = ("cmdline", "username", "nice", "mem_info1", "mem_info2", "cpu", "mem", "ctime")
    return f"{info.get('pid')}  " + " ".join(str(info.get(f)) for f in fields)


def render_stats(reply: dict[str, Any], args: argparse.Namespace) -> str:
    lines: list[str] = []

    def process(pid: str, info: Any, indent: str = "") -> None:
        lines.append(f"{indent}{pid}: {_info_line(info)}")
        if isinstance(info, dict):
            for child in info.get("children", []):
                pid_text = child.get("pid") if isinstance(child, dict) else "?"
                lines.append(f"{indent}   {pid_text}: {_info_line(child)}")

    if "infos" in reply:
        for name in sorted(reply["infos"]):
            lines.append(f"{name}:")
            for pid, info in sorted(reply["infos"][name].items()):
                process(pid, info)
    elif "process" in reply:
        process(str(reply["process"]), reply.get("info"))
    else:
        lines.append(f"{reply.get('name')}:")
        for pid, info in sorted(reply.get("info", {}).items()):
            process(pid, info)
    return "\n".join(lines)


def render_dstats(reply: dict[str, Any], args: argparse.Namespace) -> str:
    info = reply.get("info", {})
    lines = ["Main Process:", f"    {_info_line(info)}"]
    children = info.get("children", []) if isinstance(info, dict) else []
    if children:
        lines.append("Children:")
        lines.extend(f"    {_info_line(child)}" for child in children)
    return "\n".join(lines)


def render_reloadconfig(reply: dict[str, Any], args: argparse.Namespace) -> str:
    if "plan" not in reply:
        return "ok"
    steps = reply["plan"]
    if not steps:
        return "nothing to do: the running config matches the file"
    return "\n".join(
        f"{s['action']:<15} {s.get('watcher') or '':<20} {s.get('detail', '')}".rstrip()
        for s in steps
    )


def render_info(reply: dict[str, Any], args: argparse.Namespace) -> str:
    info = reply.get("info")
    if not isinstance(info, dict):
        return "ok"
    parts = [f"{key}: {','.join(str(p) for p in pids)}" for key, pids in info.items() if pids]
    return "\n".join(parts) or "ok"


# ---- messages -----------------------------------------------------------------------------
def set_message(args: argparse.Namespace) -> dict[str, Any]:
    pairs = args.pairs
    if len(pairs) % 2:
        raise ValueError("set takes KEY VALUE pairs: the last key has no value")
    options = {}
    for key, value in zip(pairs[::2], pairs[1::2], strict=True):
        options[key.lower()] = convert_option(key.lower(), value)
    message: dict[str, Any] = {"name": args.name, "options": options}
    if args.waiting:
        message["waiting"] = True
    return message


INT_KEYS = {"numprocesses", "max_retry", "max_age", "max_age_variance", "priority"}
FLOAT_KEYS = {"warmup_delay", "retry_in", "graceful_timeout"}
BOOL_KEYS = {
    "send_hup", "shell", "copy_env", "respawn", "stop_children", "close_child_stdin",
    "close_child_stdout", "close_child_stderr", "singleton", "autostart",
}  # fmt: skip


def convert_option(key: str, value: str) -> Any:
    """circusctl's client-side conversions, so the daemon gets JSON types."""
    try:
        if key in INT_KEYS or key.endswith((".max_bytes", ".backup_count")):
            return int(value)
        if key in FLOAT_KEYS:
            return float(value)
        if key == "stop_signal":
            return to_signal(value)
        if key == "respawn" and value.lower() in ("on-failure", "always", "never"):
            return value.lower()
        if key in BOOL_KEYS:
            return to_bool(value)
    except (ValueError, CoercionError) as exc:
        raise ValueError(f"{key}: cannot use {value!r} ({exc})") from None
    if key == "hooks":
        return dict(item.split(":", 1) for item in value.split(",") if ":" in item)
    if key == "env":
        return dict(item.split("=", 1) for item in value.split(",") if "=" in item)
    if key.startswith("rlimit_"):
        return int(value) if value else None
    return value


def signal_message(args: argparse.Namespace) -> dict[str, Any]:
    if args.signum is None:
        pid, signum = None, args.pid_or_signum
    else:
        pid, signum = args.pid_or_signum, args.signum
    message: dict[str, Any] = {"name": args.name, "signum": signum}
    if pid is not None:
        message["pid"] = int(pid)
    for flag in ("children", "recursive"):
        if getattr(args, flag):
            message[flag] = True
    if args.childpid is not None:
        message["childpid"] = args.childpid
    return message


def stats_message(args: argparse.Namespace) -> dict[str, Any]:
    message: dict[str, Any] = {"extended": args.extended}
    if args.name:
        message["name"] = args.name
    if args.pid is not None:
        message["process"] = args.pid
    return message


def _signal_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the watcher")
    parser.add_argument("pid_or_signum", metavar="[PID] SIGNUM", help="a pid, then the signal")
    parser.add_argument("signum", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--children", action="store_true", help="signal the pids' children only")
    parser.add_argument("--recursive", action="store_true", help="signal every descendant too")
    parser.add_argument("--childpid", type=int, help="signal this child of PID")


def _kill_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the watcher")
    parser.add_argument("pid", nargs="?", type=int, help="one process (default: all)")
    parser.add_argument("--signum", help="the stop signal to send (default: stop_signal)")
    parser.add_argument("--graceful_timeout", "--graceful-timeout", type=float,
                        dest="graceful_timeout", help="seconds before SIGKILL")  # fmt: skip
    _waiting(parser)


def _stats_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="the watcher (default: all)")
    parser.add_argument("pid", nargs="?", type=int, help="one process")
    parser.add_argument("--extended", action="store_true", help="run extended_stats hooks")


def _add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the new watcher's name")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="the command line")
    parser.add_argument("--start", action="store_true", help="start it right away")


SPECS: list[Spec] = [
    Spec("add", "add a watcher", _add_args,
         lambda a: {"name": a.name, "cmd": " ".join(a.cmd), "start": a.start}),
    Spec("rm", "remove a watcher (stopping it unless --nostop)",
         _both(_name(True), _waiting, lambda p: p.add_argument(
             "--nostop", action="store_true", help="leave its processes running")),
         lambda a: _props(a, "name") | ({"nostop": True} if a.nostop else {})
         | ({"waiting": True} if a.waiting else {})),
    Spec("list", "list watchers, or the pids of one", _name(False),
         lambda a: _props(a, "name"), render_list),
    Spec("listsockets", "list the sockets", render=render_sockets),
    Spec("status", "status of every watcher, or of one (on a terminal: with process states)",
         _both(_name(False), lambda p: p.add_argument(
             "--history", action="store_true",
             help="also each watcher's restart count and the recent ends of its processes")),
         lambda a: _props(a, "name") | ({"processes": True} if a.tty else {})
         | ({"history": True} if a.history else {}),
         render_status),
    Spec("start", "start watchers", _both(_name(False), _waiting, _match),
         lambda a: _props(a, "name", "match") | {"waiting": a.waiting}, render_info),
    Spec("stop", "stop watchers", _both(_name(False), _waiting, _match),
         lambda a: _props(a, "name", "match") | {"waiting": a.waiting}, render_info),
    Spec("restart", "restart watchers (no name: restart the daemon from its config file)",
         _both(_name(False), _waiting, _match),
         lambda a: _props(a, "name", "match") | {"waiting": a.waiting}, render_info),
    Spec("reload", "reload watchers: new processes first, then the old ones stop",
         _both(_name(False), _waiting, lambda p: (
             p.add_argument("--terminate", action="store_true", help="stop, then start"),
             p.add_argument("--sequential", action="store_true", help="one process at a time"))),
         lambda a: _props(a, "name") | {"graceful": not a.terminate, "waiting": a.waiting,
                                         "sequential": a.sequential}, render_info),
    Spec("reloadconfig", "apply the config file's changes (exactly what changed)",
         _both(_waiting, lambda p: p.add_argument(
             "--dry-run", action="store_true", help="only show what would change")),
         lambda a: {"waiting": a.waiting} | ({"dry_run": True} if a.dry_run else {}),
         render_reloadconfig),
    Spec("incr", "add processes to a watcher", _both(_name(True), lambda p: p.add_argument(
         "nb", nargs="?", type=int, default=1, help="how many (default 1)"), _waiting),
         lambda a: {"name": a.name, "nb": a.nb, "waiting": a.waiting}, render_scale),
    Spec("decr", "remove processes from a watcher (oldest first)", _both(
         _name(True), lambda p: p.add_argument("nb", nargs="?", type=int, default=1,
                                                help="how many (default 1)"), _waiting),
         lambda a: {"name": a.name, "nb": a.nb, "waiting": a.waiting}, render_scale),
    Spec("numprocesses", "number of processes (of one watcher, or in all)", _name(False),
         lambda a: _props(a, "name"), render_number("numprocesses")),
    Spec("numwatchers", "number of watchers", render=render_number("numwatchers")),
    Spec("set", "change watcher options: set NAME KEY VALUE [KEY VALUE ...]",
         _both(_name(True), lambda p: p.add_argument("pairs", nargs="+", metavar="KEY VALUE"),
               _waiting), set_message),
    Spec("get", "read watcher options", _both(_name(True), lambda p: p.add_argument(
         "keys", nargs="+", metavar="KEY")), lambda a: {"name": a.name, "keys": a.keys},
         render_options),
    Spec("options", "every option of a watcher", _name(True), lambda a: {"name": a.name},
         render_options),
    Spec("globaloptions", "the daemon's options", lambda p: p.add_argument(
         "option", nargs="?", help="one option"), lambda a: _props(a, "option"),
         render_options),
    Spec("signal", "send a signal: signal NAME [PID] SIGNUM", _signal_args, signal_message),
    Spec("kill", "stop processes gracefully (they are replaced as the policy says)",
         _kill_args, lambda a: _props(a, "name", "pid", "signum", "graceful_timeout")
         | {"waiting": a.waiting}),
    Spec("stats", "process figures (cpu, memory, age ...)", _stats_args, stats_message,
         render_stats),
    Spec("dstats", "the daemon's own figures", render=render_dstats),
    Spec("quit", "stop every watcher and the daemon", _waiting,
         lambda a: {"waiting": a.waiting}),
    Spec("ipython", "not supported (Circus embedded an IPython kernel)",
         render=lambda r, a: str(r.get("msg", ""))),
]  # fmt: skip


# ---- running --------------------------------------------------------------------------------
def add_global_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--endpoint", default=default, help="the daemon's control endpoint")
    parser.add_argument(
        "--timeout",
        type=float,
        default=argparse.SUPPRESS if suppress else 5.0,
        help="seconds to wait for an answer (default 5)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print the daemon's raw reply as JSON",
    )
    parser.add_argument(
        "-c", "--config", default=default, help="take the endpoints from this config file"
    )
    parser.add_argument(
        "--curve-client-key",
        default=default,
        help="your secret certificate (NAME.key_secret) for a CURVE endpoint "
        "(or $BIGTOP_CURVE_CLIENT_KEY)",
    )
    parser.add_argument(
        "--curve-server-key",
        default=default,
        help="the daemon's public certificate (NAME.key) (or $BIGTOP_CURVE_SERVER_KEY)",
    )


def add_parsers(commands: Any) -> None:
    for spec in SPECS:
        parser = commands.add_parser(
            spec.name,
            help=spec.help,
            description=spec.description or spec.help[0].upper() + spec.help[1:] + ".",
        )
        spec.arguments(parser)
        add_global_options(parser, suppress=True)
        parser.set_defaults(handler=run_command, spec=spec)


def config_endpoints(path: str) -> dict[str, str]:
    import configparser

    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return {}
    if not parser.has_section("circus"):
        return {}
    return {k: v.split(" ;")[0].strip() for k, v in parser.items("circus")}


ENDPOINT_SCHEMES = ("ipc://", "tcp://")


def control_endpoint(args: argparse.Namespace) -> str:
    """The endpoint to use, checked: a malformed one stops the command with a clear message."""
    endpoint, where = _endpoint_and_source(args)
    if not endpoint.startswith(ENDPOINT_SCHEMES) or len(endpoint) <= len("tcp://"):
        raise SystemExit(
            f"error: {where} {endpoint!r} is not an endpoint; write ipc:///path/to/control.sock "
            "or tcp://HOST:PORT"
        )
    return endpoint


def _endpoint_and_source(args: argparse.Namespace) -> tuple[str, str]:
    """--endpoint > BIGTOP_ENDPOINT > CIRCUSCTL_ENDPOINT > -c CONFIG > the default."""
    from bigtop.control.endpoints import default_endpoints

    if args.endpoint:
        return str(args.endpoint), "--endpoint"
    for variable in ("BIGTOP_ENDPOINT", "CIRCUSCTL_ENDPOINT"):
        if os.environ.get(variable):
            return os.environ[variable], f"${variable}"
    if args.config:
        endpoint = config_endpoints(args.config).get("endpoint")
        if endpoint:
            return endpoint, f"[circus] endpoint in {args.config}"
    return default_endpoints().control, "the default endpoint"


def curve_keys(args: argparse.Namespace) -> Any:
    """Client CURVE keys from the options or the environment (imported only when used)."""
    wanted = (
        args.curve_client_key
        or args.curve_server_key
        or os.environ.get("BIGTOP_CURVE_CLIENT_KEY")
        or os.environ.get("BIGTOP_CURVE_SERVER_KEY")
    )
    if not wanted:
        return None
    from bigtop.control.curve import CurveKeyError, client_keys_from_env

    try:
        return client_keys_from_env(args.curve_client_key, args.curve_server_key)
    except CurveKeyError as exc:
        raise ValueError(str(exc)) from None


def run_command(args: argparse.Namespace) -> int:
    from bigtop.control.client import CallTimeout, Client
    from bigtop.control.endpoints import EndpointError

    spec: Spec = args.spec
    args.tty = sys.stdout.isatty() and not args.json and not os.environ.get("NO_COLOR")
    try:
        message = spec.message(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    endpoint = control_endpoint(args)
    try:
        curve = curve_keys(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        with Client(endpoint, timeout=args.timeout, curve=curve) as client:
            reply = client.send(spec.name, message)
    except CallTimeout as exc:
        print(f"Timed out.\n{exc}", file=sys.stderr)
        return 1
    except EndpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(reply, indent=2 if args.tty or sys.stdout.isatty() else None))
        return 3 if reply.get("status") == "error" else 0
    if reply.get("status") == "error":
        print(f"error: {reply.get('reason')}", file=sys.stderr)
        return 3
    if reply.get("warning"):
        print(f"warning: {reply['warning']}", file=sys.stderr)
    output = spec.render(reply, args)
    if output:
        print(output)
    return 0
