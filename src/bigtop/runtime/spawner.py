"""Turn a `SpawnPlan` into a running child with `subprocess.Popen`.

Only keyword options CPython can honour on its vfork path are used (cwd, env, umask,
start_new_session, pass_fds). A user switch takes the fork path without Python code in the
child; only rlimits need a `preexec_fn`. Exec failures are raised in the parent by Popen, and
are turned here into a `SpawnError` a user can act on.
"""

from __future__ import annotations

import grp
import os
import pwd
import resource
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from bigtop.core.spawnplan import SpawnPlan
from bigtop.errors import SpawnError


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str | None


def resolve_identity(uid: str | None, gid: str | None) -> Identity | None:
    """Look up the user and group to run as; KeyError/ValueError with a readable message."""
    if uid is None and gid is None:
        return None
    entry: pwd.struct_passwd | None = None
    if uid is not None:
        entry = _user(uid)
    user_id = entry.pw_uid if entry else os.getuid()
    if gid is not None:
        group_id = _group(gid)
    elif entry is not None:
        group_id = entry.pw_gid
    else:
        group_id = os.getgid()
    name = entry.pw_name if entry else None
    groups = tuple(os.getgrouplist(name, group_id)) if name else (group_id,)
    return Identity(user_id, group_id, groups, name)


def _user(uid: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwuid(int(uid)) if uid.isdigit() else pwd.getpwnam(uid)
    except KeyError:
        raise KeyError(f"no such user: {uid!r}") from None


def _group(gid: str) -> int:
    try:
        return grp.getgrgid(int(gid)).gr_gid if gid.isdigit() else grp.getgrnam(gid).gr_gid
    except KeyError:
        raise KeyError(f"no such group: {gid!r}") from None


def spawn(
    plan: SpawnPlan,
    stdout: int | None = None,
    stderr: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start the process; `stdout`/`stderr` are pipe write ends, or None to inherit ours."""
    try:
        identity = resolve_identity(plan.uid, plan.gid)
    except KeyError as exc:
        raise SpawnError(plan.watcher, plan.argv, exc.args[0]) from None
    kwargs: dict[str, object] = {}
    if plan.rlimits:
        kwargs["preexec_fn"] = _preexec(plan.rlimits, identity)
    elif identity is not None:
        kwargs.update(user=identity.uid, group=identity.gid, extra_groups=list(identity.groups))
    stdin: int = subprocess.DEVNULL if plan.close_stdin else 0
    if plan.stdin_fd is not None:
        stdin = plan.stdin_fd
    out = subprocess.DEVNULL if plan.close_stdout else stdout
    err = subprocess.DEVNULL if plan.close_stderr else stderr
    try:
        popen: subprocess.Popen[bytes] = subprocess.Popen(
            plan.argv,
            executable=plan.executable,
            env=plan.env,
            cwd=plan.cwd,
            stdin=stdin,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
            pass_fds=plan.pass_fds,
            umask=-1 if plan.umask is None else plan.umask,
            **kwargs,  # type: ignore[call-overload]
        )
    except FileNotFoundError as exc:
        raise SpawnError(plan.watcher, plan.argv, _not_found(plan, exc)) from None
    except PermissionError as exc:
        raise SpawnError(plan.watcher, plan.argv, _denied(plan, exc)) from None
    except subprocess.SubprocessError as exc:
        reason = f"{exc}; setting rlimits failed (raising a hard limit needs CAP_SYS_RESOURCE)"
        raise SpawnError(plan.watcher, plan.argv, reason) from None
    except OSError as exc:
        raise SpawnError(plan.watcher, plan.argv, f"{exc.strerror} ({exc.filename})") from None
    return popen


def _not_found(plan: SpawnPlan, exc: FileNotFoundError) -> str:
    if not os.path.isdir(plan.cwd):
        return f"working_dir {plan.cwd!r} does not exist"
    program = plan.executable or plan.argv[0]
    if "/" in program:
        return f"command not found: {program!r} does not exist"
    path = plan.env.get("PATH", os.defpath)
    return f"command not found: {program!r} is not in PATH ({path})"


def _denied(plan: SpawnPlan, exc: PermissionError) -> str:
    program = plan.executable or plan.argv[0]
    where = shutil.which(program, path=plan.env.get("PATH", os.defpath)) or program
    if os.path.isdir(where):
        return f"{where!r} is a directory, not a program"
    if plan.uid or plan.gid:
        if os.geteuid() != 0:
            return (
                f"cannot switch to user {plan.uid or '-'} / group {plan.gid or '-'}: bigtop "
                "runs unprivileged; run it as root or drop uid/gid"
            )
        if os.access(where, os.X_OK):
            return (
                f"user {plan.uid} cannot run {where!r}: it (or a directory above it) is not "
                "readable and executable for that user"
            )
    return f"permission denied running {where!r}: is it executable (chmod +x) and readable?"


def _preexec(rlimits: dict[str, int | None], identity: Identity | None) -> Callable[[], None]:
    """Limits first, then the user switch, as Circus does (so hard limits can be set)."""
    limits = []
    for name, value in rlimits.items():
        which = getattr(resource, f"RLIMIT_{name}")
        if value is None:
            value = resource.RLIM_INFINITY
            if name == "NOFILE":
                value = resource.getrlimit(which)[1]
        limits.append((which, value))

    def apply() -> None:
        for which, value in limits:
            resource.setrlimit(which, (value, value))
        if identity is not None:
            os.setgroups(list(identity.groups))
            os.setgid(identity.gid)
            os.setuid(identity.uid)

    return apply
