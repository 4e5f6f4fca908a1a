"""From a watcher's config to exactly what to exec: argv, environment, directory, user.

Pure: everything read from the machine (the daemon's environment, its cwd, a virtualenv's
site-packages, an env_file's lines) is passed in by the runtime.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from bigtop.config.model import WatcherConfig
from bigtop.config.substitute import env_keys, substitute

SHELL = "/bin/sh"


@dataclass(frozen=True)
class SpawnPlan:
    watcher: str
    wid: int
    argv: list[str]
    env: dict[str, str]
    cwd: str
    executable: str | None = None
    uid: str | None = None
    gid: str | None = None
    umask: int | None = None
    rlimits: dict[str, int | None] = field(default_factory=dict)
    pass_fds: tuple[int, ...] = ()
    stdin_fd: int | None = None
    close_stdin: bool = True
    close_stdout: bool = False
    close_stderr: bool = False


@dataclass(frozen=True)
class SpawnContext:
    """What the runtime read from the machine for this spawn."""

    environ: Mapping[str, str]
    cwd: str
    python_path: tuple[str, ...] = ()
    virtualenv_paths: tuple[str, ...] = ()  # site-packages dirs and their .pth entries
    env_file: Mapping[str, str] = field(default_factory=dict)
    sockets: Mapping[str, int] = field(default_factory=dict)


class PlanError(ValueError):
    """The command cannot be turned into argv (e.g. unbalanced quotes)."""


def child_environment(config: WatcherConfig, context: SpawnContext) -> dict[str, str]:
    env: dict[str, str] = dict(context.environ) if config.copy_env else {}
    env.update(context.env_file)
    env.update(config.env)
    if config.copy_path and context.python_path and "PYTHONPATH" not in config.env:
        env["PYTHONPATH"] = ":".join(context.python_path)
    if config.virtualenv:
        venv_bin = f"{config.virtualenv.rstrip('/')}/bin"
        env["PATH"] = ":".join(p for p in (venv_bin, env.get("PATH", "")) if p)
        paths = [*context.virtualenv_paths]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        if paths:
            env["PYTHONPATH"] = ":".join(paths)
    return env


def spawn_keys(
    config: WatcherConfig, wid: int, env: Mapping[str, str], context: SpawnContext
) -> dict[str, str]:
    """The `$(circus.X)` keys known at spawn time."""
    keys = env_keys(env)
    keys.update({f"sockets.{name.lower()}": str(fd) for name, fd in context.sockets.items()})
    keys.update(
        {
            "wid": str(wid),
            "name": config.name,
            "numprocesses": str(config.numprocesses),
            "shell": str(config.shell),
            "args": config.args,
            "cmd": config.cmd,
            "working_dir": config.working_dir or context.cwd,
            "uid": config.uid or "",
            "gid": config.gid or "",
            "executable": config.executable or "",
            "use_fds": str(config.use_sockets),
            "rlimits": str(config.rlimits),
            "priority": str(config.priority),
        }
    )
    keys.update({k.lower(): v for k, v in config.options.items()})
    return keys


def build_plan(config: WatcherConfig, wid: int, context: SpawnContext) -> SpawnPlan:
    env = child_environment(config, context)
    keys = spawn_keys(config, wid, env, context)
    cmd = substitute(config.cmd, keys)
    args = substitute(config.args, keys)
    cmd = cmd.replace("$WID", str(wid))  # Circus's legacy spelling
    if config.shell:
        script = f"{cmd} {args}".strip() if args else cmd
        argv = [SHELL, "-c", script, *_split(config.shell_args or "", "shell_args")]
    else:
        argv = _split(cmd, "cmd") + _split(args, "args")
        if not argv:
            raise PlanError("cmd is empty after substitution")
    pass_fds = tuple(sorted(context.sockets.values()))  # the runtime gives only this one's
    stdin_fd = context.sockets.get(config.stdin_socket.lower()) if config.stdin_socket else None
    return SpawnPlan(
        watcher=config.name,
        wid=wid,
        argv=argv,
        env=env,
        cwd=config.working_dir or context.cwd,
        executable=config.executable,
        uid=config.uid,
        gid=config.gid,
        umask=config.umask,
        rlimits=dict(config.rlimits),
        pass_fds=pass_fds,
        stdin_fd=stdin_fd,
        close_stdin=config.close_child_stdin,
        close_stdout=config.close_child_stdout,
        close_stderr=config.close_child_stderr,
    )


def _split(text: str, option: str) -> list[str]:
    try:
        return list(_words(text))
    except ValueError as exc:
        raise PlanError(f"cannot split {option} into words: {exc} in {text!r}") from None


@functools.lru_cache(maxsize=1024)
def _words(text: str) -> tuple[str, ...]:
    """shlex's split, remembered: a respawn splits the same command line again, and shlex
    costs a tenth of the time from a death to the fork of its replacement."""
    return tuple(shlex.split(text))


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped; optional quotes and `export`."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if key:
            env[key] = value
    return env
