"""Checks that depend on the machine a config is checked on: programs, directories,
users, groups, virtualenvs, env files. Warnings for `bigtop check`, errors with `--strict`
and always for `bigtop run`."""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import shutil

from bigtop.config.model import Config, WatcherConfig
from bigtop.errors import ConfigProblem


def machine_problems(config: Config) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for watcher in config.watchers:
        problems.extend(_watcher_problems(config, watcher))
    return problems


def _problem(watcher: WatcherConfig, option: str, message: str, value: str) -> ConfigProblem:
    return ConfigProblem(
        message,
        file=watcher.source or None,
        section=f"watcher:{watcher.name}",
        option=option,
        value=value,
        severity="warning",
    )


def _watcher_problems(config: Config, watcher: WatcherConfig) -> list[ConfigProblem]:
    problems = []
    if watcher.working_dir and not os.path.isdir(watcher.working_dir):
        problems.append(
            _problem(watcher, "working_dir", "directory does not exist", watcher.working_dir)
        )
    if watcher.uid:
        try:
            _ = (
                pwd.getpwuid(int(watcher.uid))
                if watcher.uid.isdigit()
                else pwd.getpwnam(watcher.uid)
            )
        except KeyError:
            problems.append(_problem(watcher, "uid", "no such user on this machine", watcher.uid))
    if watcher.gid:
        try:
            _ = (
                grp.getgrgid(int(watcher.gid))
                if watcher.gid.isdigit()
                else grp.getgrnam(watcher.gid)
            )
        except KeyError:
            problems.append(_problem(watcher, "gid", "no such group on this machine", watcher.gid))
    if watcher.virtualenv and not os.path.isdir(os.path.join(watcher.virtualenv, "bin")):
        problems.append(
            _problem(watcher, "virtualenv", "not a virtualenv (no bin/ in it)", watcher.virtualenv)
        )
    if watcher.env_file:
        path = os.path.join(os.path.dirname(config.path), watcher.env_file)
        if not os.path.isfile(path):
            problems.append(_problem(watcher, "env_file", "file does not exist", path))
    problem = _program_problem(watcher)
    if problem:
        option, message, value = problem
        problems.append(_problem(watcher, option, message, value))
    return problems


def _program_problem(watcher: WatcherConfig) -> tuple[str, str, str] | None:
    """Is the program there and executable? Skipped where only spawn time can tell."""
    if watcher.shell and not watcher.executable:
        return None
    option = "executable" if watcher.executable else "cmd"
    if watcher.executable:
        program = watcher.executable
    else:
        try:
            words = shlex.split(watcher.cmd)
        except ValueError as exc:
            return "cmd", f"cannot split into words: {exc}", watcher.cmd
        if not words:
            return None
        program = words[0]
    if "circus." in program.lower():
        return None  # completed at spawn time
    cwd = watcher.working_dir or os.getcwd()
    if "/" in program:
        full = os.path.join(cwd, program)
        if not os.path.exists(full):
            return option, "program does not exist", program
        if os.path.isdir(full) or not os.access(full, os.X_OK):
            return option, "program is not executable (chmod +x?)", program
        return None
    path = _child_path(watcher)
    if shutil.which(program, path=path) is None:
        return option, f"program not found in PATH ({path})", program
    return None


def _child_path(watcher: WatcherConfig) -> str:
    if "PATH" in watcher.env:
        path = watcher.env["PATH"]
    elif watcher.copy_env:
        path = os.environ.get("PATH", os.defpath)
    else:
        path = os.defpath
    if watcher.virtualenv:
        path = f"{watcher.virtualenv.rstrip('/')}/bin:{path}"
    return path
