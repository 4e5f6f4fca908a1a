"""Options changed at run time (`set`, `add`): Circus's JSON type rules, then a new model.

Pure: takes a `WatcherConfig` and raw JSON values, returns the updated config and the names
that changed, or raises `OptionError` with Circus's wording ("'numprocesses' isn't an
integer", "unknown key 'x'").
"""

from __future__ import annotations

import math
import resource
import shlex
import signal
from typing import Any

import msgspec

from bigtop.config import coerce
from bigtop.config.model import (
    HOOK_NAMES,
    IGNORE_ERRORS_BY_DEFAULT,
    MAX_NUMPROCESSES,
    BackoffConfig,
    HookConfig,
    StreamConfig,
    WatcherConfig,
)

INTEGERS = ("numprocesses", "max_retry", "max_age", "max_age_variance", "priority")
NUMBERS = ("warmup_delay", "retry_in", "graceful_timeout")
BOOLEANS = (
    "send_hup",
    "shell",
    "copy_env",
    "stop_children",
    "close_child_stdin",
    "close_child_stdout",
    "close_child_stderr",
    "singleton",
    "autostart",
    "copy_path",
    "use_sockets",
    "on_demand",
)
STRINGS = ("cmd", "working_dir", "executable", "shell_args", "virtualenv", "env_file")
BACKOFF = ("backoff_initial", "backoff_max", "backoff_reset")
PREFIXES = ("stdout_stream.", "stderr_stream.", "hooks.", "rlimit_")
# Changing these restarts the processes gracefully (as Circus's `set` does).
NEEDS_RELOAD = frozenset(
    {
        "working_dir",
        "uid",
        "gid",
        "shell",
        "env",
        "cmd",
        "args",
        "max_age",
        "max_age_variance",
        "executable",
        "copy_env",
        "virtualenv",
        "env_file",
        "shell_args",
    }
)


class OptionError(ValueError):
    pass


def apply_options(config: WatcherConfig, options: dict[str, Any]) -> WatcherConfig:
    changes: dict[str, Any] = {}
    free = dict(config.options)
    for key, value in options.items():
        if not isinstance(key, str):
            raise OptionError(f"unknown key {key!r}")
        _apply_one(
            config,
            key.lower() if key.lower() != key and _known(key.lower()) else key,
            value,
            changes,
            free,
        )
    if free != config.options:
        changes["options"] = free
    updated = msgspec.structs.replace(config, **changes)
    if updated.singleton and updated.numprocesses > 1:
        updated = msgspec.structs.replace(updated, numprocesses=1)
    return updated


def _known(key: str) -> bool:
    return (
        key in INTEGERS
        or key in NUMBERS
        or key in BOOLEANS
        or key in STRINGS
        or key in BACKOFF
        or key in ("uid", "gid", "env", "args", "stop_signal", "respawn", "hooks")
        or key in ("stdout_stream", "stderr_stream", "success_exit_codes", "umask")
        or key.startswith(PREFIXES)
    )


def _apply_one(
    config: WatcherConfig,
    key: str,
    value: Any,
    changes: dict[str, Any],
    free: dict[str, str],
) -> None:
    if key in INTEGERS:
        if not _is_int(value):
            raise OptionError(f"{key!r} isn't an integer")
        if key == "numprocesses" and value > MAX_NUMPROCESSES:
            raise OptionError(f"'numprocesses' must be at most {MAX_NUMPROCESSES}")
        if key != "priority" and value < 0:
            value = 0 if key == "numprocesses" else value
            if key != "numprocesses":
                raise OptionError(f"{key!r} must not be negative")
        changes[key] = value
    elif key in NUMBERS:
        if not is_finite_number(value) or value < 0:
            raise OptionError(f"{key!r} isn't a number")
        if key != "retry_in":
            changes[key] = float(value)
    elif key in BOOLEANS:
        if not isinstance(value, bool):
            raise OptionError(f"{key!r} isn't a valid boolean")
        changes[key] = value
    elif key in STRINGS:
        if not isinstance(value, str):
            raise OptionError(f"{key!r} isn't a string")
        changes[key] = value if key == "cmd" else (value or None)
    elif key in ("uid", "gid"):
        if not (_is_int(value) or isinstance(value, str)):
            raise OptionError(f"{key!r} isn't an integer or string")
        changes[key] = str(value) if value != "" else None
    elif key == "args":
        if isinstance(value, list) and all(isinstance(a, str) for a in value):
            changes[key] = shlex.join(value)
        elif isinstance(value, str):
            changes[key] = value
        else:
            raise OptionError("'args' isn't a string or a list of strings")
    elif key == "stop_signal":
        changes[key] = _signal(value)
    elif key == "respawn":
        changes[key] = _respawn(value)
    elif key == "env":
        changes[key] = _env(value)
    elif key in BACKOFF:
        if not is_finite_number(value) or value < 0:
            raise OptionError(f"{key!r} isn't a number")
        backoff = changes.get("backoff", config.backoff)
        changes["backoff"] = msgspec.structs.replace(
            backoff, **{key.removeprefix("backoff_"): float(value)}
        )
        _check_backoff(changes["backoff"])
    elif key == "success_exit_codes":
        changes[key] = _exit_codes(value)
    elif key == "umask":
        changes[key] = _octal(value)
    elif key in ("stdout_stream", "stderr_stream"):
        changes[key] = _stream(key, value)
    elif key.startswith(("stdout_stream.", "stderr_stream.")):
        stream, sub = key.split(".", 1)
        current = changes.get(stream, getattr(config, stream)) or StreamConfig(
            class_name="FileStream"
        )
        if sub == "class":
            current = msgspec.structs.replace(current, class_name=str(value))
        else:
            current = msgspec.structs.replace(current, options={**current.options, sub: str(value)})
        changes[stream] = current
    elif key == "hooks":
        if not isinstance(value, dict):
            raise OptionError("'hooks' isn't a valid object")
        hooks = dict(changes.get("hooks", config.hooks))
        for name, target in value.items():
            hooks[name] = _hook(name, target)
        changes["hooks"] = hooks
    elif key.startswith("hooks."):
        hooks = dict(changes.get("hooks", config.hooks))
        hooks[key[6:]] = _hook(key[6:], value)
        changes["hooks"] = hooks
    elif key.startswith("rlimit_"):
        limit = key[7:].upper()
        if not hasattr(resource, f"RLIMIT_{limit}"):
            raise OptionError(f"{key!r} isn't a valid rlimit setting")
        if value is not None and not _is_int(value):
            raise OptionError(f"{key!r} isn't an integer or null")
        changes["rlimits"] = {**changes.get("rlimits", config.rlimits), limit: value}
    elif key in ("max_retry", "retry_in"):
        pass
    elif key in config.options:
        free[key] = str(value)
    else:
        raise OptionError(f"unknown key {key!r}")


def _is_int(value: Any) -> bool:
    """An integer a process manager can use (JSON allows any size; C wants 64 bits)."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63


def is_finite_number(value: Any) -> bool:
    """A finite number (JSON as Python reads it has NaN and Infinity)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer past what a float holds
        return False


def _signal(value: Any) -> int:
    if _is_int(value):
        if 0 < value < signal.NSIG:
            return int(value)
        raise OptionError(f"'stop_signal' isn't a valid signal (1 to {signal.NSIG - 1})")
    if isinstance(value, str):
        try:
            return coerce.to_signal(value)
        except coerce.CoercionError:
            pass
    raise OptionError("'stop_signal' isn't a valid signal")


def _respawn(value: Any) -> str:
    if isinstance(value, bool):
        return "always" if value else "never"
    if isinstance(value, str):
        try:
            return coerce.to_respawn(value)
        except coerce.CoercionError:
            pass
    raise OptionError("'respawn' isn't a valid boolean or one of always, on-failure, never")


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise OptionError("'env' isn't a valid object")
    for name, item in value.items():
        if not isinstance(item, str):
            raise OptionError(f"{name!r} isn't a string")
    return dict(value)


def _exit_codes(value: Any) -> tuple[int, ...]:
    if isinstance(value, list) and value and all(_is_int(v) and 0 <= v <= 255 for v in value):
        return tuple(value)
    if isinstance(value, str):
        try:
            return coerce.to_exit_codes(value)
        except coerce.CoercionError:
            pass
    raise OptionError("'success_exit_codes' isn't a list of exit codes")


def _octal(value: Any) -> int:
    if _is_int(value) and 0 <= value <= 0o777:
        return int(value)
    if isinstance(value, str):
        try:
            return coerce.to_octal(value)
        except coerce.CoercionError:
            pass
    raise OptionError("'umask' isn't an octal mode")


def _stream(key: str, value: Any) -> StreamConfig:
    if not isinstance(value, dict):
        raise OptionError(f"{key!r} isn't a valid object")
    if "class" not in value:
        raise OptionError(f"{key!r} must have a 'class' key")
    rest = {k: str(v) for k, v in value.items() if k != "class"}
    return StreamConfig(class_name=str(value["class"]), options=rest)


def _hook(name: str, target: Any) -> HookConfig:
    if name not in HOOK_NAMES:
        raise OptionError(f"unknown hook {name!r}")
    ignore = name in IGNORE_ERRORS_BY_DEFAULT
    if isinstance(target, list | tuple) and len(target) == 2:
        target, ignore = target[0], bool(target[1])
    if not isinstance(target, str) or not target.strip():
        raise OptionError(f"hook {name!r} isn't a dotted path")
    path, _, flag = target.partition(",")
    if flag.strip():
        try:
            ignore = coerce.to_bool(flag)
        except coerce.CoercionError:
            raise OptionError(f"hook {name!r}: bad ignore-errors flag {flag.strip()!r}") from None
    return HookConfig(name=name, target=path.strip(), ignore_errors=ignore)


def _check_backoff(backoff: BackoffConfig) -> None:
    if backoff.max < backoff.initial:
        raise OptionError("'backoff_max' must not be smaller than 'backoff_initial'")


def new_watcher(name: str, cmd: str, args: Any, options: dict[str, Any]) -> WatcherConfig:
    """The config of a watcher created by `add`."""
    if not isinstance(name, str) or not name.strip():
        raise OptionError("'name' isn't a valid watcher name")
    if not isinstance(cmd, str) or not cmd.strip():
        raise OptionError("'cmd' isn't a command")
    base = WatcherConfig(name=name, cmd=cmd)
    extra: dict[str, Any] = dict(options)
    if args:
        extra["args"] = args
    return apply_options(base, extra)
