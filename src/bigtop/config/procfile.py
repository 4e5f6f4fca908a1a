"""Run a Procfile as foreman and honcho do.

Each line `TYPE: command` is a process type; each of its processes becomes a watcher named
as foreman and honcho name it (`web.1`, `web.2`, `worker.1`), run through `/bin/sh -c` in
the Procfile's directory, with the `.env` file beside the Procfile, `PORT` assigned as foreman
assigns it, and output printed as `HH:MM:SS web.1 | line`. The result is the raw circus.ini
structure (`RawConfig`) that `bigtop.config.load` validates, so `bigtop check --to-ini`
shows it as a circus.ini.

How many processes of each type (`-s web=3,worker=2`) and the base port (`-p 5000`) come
from `bigtop run`'s options through the environment (`BIGTOP_PROCFILE_SCALE`,
`BIGTOP_PROCFILE_PORT`), so that `reloadconfig` and `restart` keep them.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from bigtop.config.ini import RawConfig, RawOption, RawSection
from bigtop.core.spawnplan import parse_env_file
from bigtop.errors import ConfigProblem

SCALE_ENV = "BIGTOP_PROCFILE_SCALE"
PORT_ENV = "BIGTOP_PROCFILE_PORT"
DEFAULT_PORT = 5000
PORT_STEP = 100  # foreman: each process type gets its own hundred ports
GRACEFUL_TIMEOUT = "5"  # foreman and honcho send SIGKILL 5 s after SIGTERM
COLOURS = ("cyan", "yellow", "green", "magenta", "red", "blue")
_LINE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+):\s*(?P<command>.+)$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_ENV_LINE = re.compile(r"^\s*(export\s+)?[A-Za-z_][A-Za-z0-9_.]*\s*=")


@dataclass(frozen=True)
class ProcessType:
    name: str
    command: str
    line: int


def looks_like_procfile(text: str) -> bool:
    """No [section] header, and at least one `name: command` line."""
    found = False
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            return False
        found = found or bool(_LINE.match(stripped))
    return found


def parse_procfile(text: str, filename: str) -> tuple[list[ProcessType], list[ConfigProblem]]:
    types: list[ProcessType] = []
    problems: list[ConfigProblem] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        if match is None:
            problems.append(
                ConfigProblem(
                    "not a process type, ignored: expected 'name: command' (name made of "
                    "letters, digits, '_' and '-')",
                    file=filename,
                    line=number,
                    value=stripped,
                    severity="warning",
                )
            )
            continue
        name = match.group("name")
        if name in seen:
            problems.append(
                ConfigProblem(
                    f"process type {name!r} is already defined on line {seen[name]}; rename "
                    "one of them",
                    file=filename,
                    line=number,
                    value=stripped,
                )
            )
            continue
        seen[name] = number
        types.append(ProcessType(name, match.group("command").strip(), number))
    if not types and not problems:
        problems.append(
            ConfigProblem("no process type: add lines like 'web: command'", file=filename)
        )
    return types, problems


def parse_scale(text: str) -> dict[str, int]:
    """`web=3,worker=2` (or spaces between); `all=N` sets every type not named. ValueError
    says what is wrong."""
    scale: dict[str, int] = {}
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        name, sep, count = item.partition("=")
        if not sep or not name or not count.isdigit():
            raise ValueError(f"expected TYPE=COUNT items like web=3,worker=2, not {item!r}")
        scale[name] = int(count)
    return scale


# Shell operators that make a command compound; `exec` in front would change its meaning.
_OPERATORS = frozenset({";", "&", "|", "&&", "||", "(", ")", ";;", "|&", "<(", ">("})
_NOT_PROGRAMS = frozenset(
    {
        "exec",
        "if",
        "while",
        "until",
        "for",
        "case",
        "{",
        "!",
        "cd",
        "export",
        ".",
        "source",
        "eval",
        "set",
        "trap",
        "ulimit",
        "umask",
    }
)


def with_exec(command: str) -> str:
    """`exec command` for a simple command, so that the program replaces `sh -c` and gets
    the stop signal itself (dash keeps waiting as the parent when a word is expanded, and a
    signalled shell would leave the program to be killed). A compound command (`a && b`,
    pipes, `;`) runs as written."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    try:
        tokens = list(lexer)
    except ValueError:
        return command  # unbalanced quotes: sh says what is wrong
    if not tokens or tokens[0] in _NOT_PROGRAMS or _ASSIGNMENT.match(tokens[0]):
        return command
    if any(token in _OPERATORS for token in tokens):
        return command
    return f"exec {command}"


def port_for(base: int, type_index: int, process_index: int) -> int:
    """foreman's rule: base + 100 per process type (in Procfile order) + 1 per process."""
    return base + PORT_STEP * type_index + process_index


def env_file_problems(path: str) -> list[ConfigProblem]:
    """Lines of a .env that are not KEY=VALUE (they are skipped when it is read)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        return [ConfigProblem(f"cannot read: {exc}", file=path)]
    return [
        ConfigProblem(
            "not KEY=VALUE, skipped",
            file=path,
            line=number,
            value=line.strip(),
            severity="warning",
        )
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.strip().startswith("#") and not _ENV_LINE.match(line)
    ]


def _base_port(environ: Mapping[str, str], dotenv: Mapping[str, str], path: str) -> int:
    """`-p` first, then PORT in .env, then PORT in the environment, then 5000 (foreman)."""
    for source, text in (
        (f"the -p/--port option ({PORT_ENV})", environ.get(PORT_ENV)),
        (f"PORT in {os.path.join(os.path.dirname(path), '.env')}", dotenv.get("PORT")),
        ("PORT in the environment", environ.get("PORT")),
    ):
        if text:
            if not text.strip().isdigit():
                raise ValueError(f"{source}: expected a port number, got {text!r}")
            return int(text)
    return DEFAULT_PORT


def translate(path: str, environ: Mapping[str, str]) -> RawConfig:
    """A Procfile (and its .env) as the raw circus.ini structure, with every problem found."""
    out = RawConfig(main_file=path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"not valid UTF-8 ({exc.reason})"
        out.problems.append(ConfigProblem(f"cannot read the Procfile: {reason}", file=path))
        return out
    out.files.append(path)
    types, problems = parse_procfile(text, path)
    out.problems.extend(problems)
    root = os.path.dirname(os.path.abspath(path))
    env_path = os.path.join(root, ".env")
    dotenv: dict[str, str] = {}
    has_env = os.path.isfile(env_path)
    if has_env:
        out.problems.extend(env_file_problems(env_path))
        try:
            with open(env_path, encoding="utf-8") as handle:
                dotenv = parse_env_file(handle.read())
        except (OSError, UnicodeDecodeError):
            pass  # reported by env_file_problems
        out.files.append(env_path)
    try:
        scale = parse_scale(environ.get(SCALE_ENV, ""))
        base = _base_port(environ, dotenv, path)
    except ValueError as exc:
        out.problems.append(ConfigProblem(str(exc), file=path))
        return out
    names = {t.name for t in types}
    for name in sorted(set(scale) - names - {"all"}):
        out.problems.append(
            ConfigProblem(
                f"-s/--scale names {name!r}, which is not a process type of this Procfile "
                f"({', '.join(sorted(names)) or 'none'})",
                file=path,
            )
        )
    counts = [(t, scale.get(t.name, scale.get("all", 1))) for t in types]
    # the names line up, with bigtop's own "system" lines too (see cli/run.py)
    width = max([len("system"), *(len(f"{t.name}.{n}") for t, n in counts if n)])
    for index, (process_type, count) in enumerate(counts):
        for number in range(1, count + 1):
            name = f"{process_type.name}.{number}"
            port = port_for(base, index, number - 1)
            at = RawOption("", path, process_type.line)
            colour = COLOURS[index % len(COLOURS)]
            out.sections[f"watcher:{name}"] = RawSection(
                f"watcher:{name}",
                path,
                process_type.line,
                _watcher(process_type, at, root, env_path if has_env else None, width, colour),
            )
            out.sections[f"env:{name}"] = RawSection(
                f"env:{name}",
                path,
                process_type.line,
                {"PORT": _at(at, str(port)), "PS": _at(at, name)},
            )
    return out


def _at(where: RawOption, value: str) -> RawOption:
    return RawOption(value, where.file, where.line)


def _watcher(
    process_type: ProcessType,
    at: RawOption,
    root: str,
    env_path: str | None,
    width: int,
    colour: str,
) -> dict[str, RawOption]:
    options = {
        "cmd": _at(at, with_exec(process_type.command)),
        "shell": _at(at, "true"),  # foreman and honcho run each command with sh -c
        "copy_env": _at(at, "true"),
        "working_dir": _at(at, root),
        "graceful_timeout": _at(at, GRACEFUL_TIMEOUT),
    }
    if env_path is not None:
        options["env_file"] = _at(at, env_path)
    for stream in ("stdout_stream", "stderr_stream"):
        options[f"{stream}.class"] = _at(at, "ProcfileStream")
        options[f"{stream}.width"] = _at(at, str(width))
        options[f"{stream}.color"] = _at(at, colour)
    return options
