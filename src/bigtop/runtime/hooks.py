"""Hooks: user callables run at points of a watcher's life, with Circus's semantics.

A hook is called with keyword arguments only (`watcher`, `arbiter`, `hook_name`, plus the
extras of its kind). Its result is its return value taken as a bool; if it raises, the
error is logged and published as `hook_failure`, and the result is True for hooks whose
errors are ignored (by default before_stop, after_stop, before_signal, after_signal,
extended_stats, or any configured with `, true`) and False otherwise.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

from bigtop.config.model import HookConfig

log = logging.getLogger("bigtop.hooks")

HookFunction = Callable[..., Any]
Publisher = Callable[[str, dict[str, Any]], None]


class HookError(Exception):
    """A hook could not be imported."""


def resolve(target: str, extra_paths: list[str] | None = None) -> HookFunction:
    """Import `pkg.module.func` or `pkg.module:func`, trying `extra_paths` too."""
    for path in extra_paths or []:
        if path and path not in sys.path:
            sys.path.append(path)
    module_name, sep, attribute = target.partition(":")
    if not sep:
        module_name, _, attribute = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or any error the module raises on import
        raise HookError(f"cannot import {module_name!r}: {exc}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise HookError(f"{module_name!r} has no callable named {attribute!r}")
    return function  # type: ignore[no-any-return]


class HookRunner:
    """Resolved hooks of one watcher."""

    def __init__(self, hooks: dict[str, tuple[HookConfig, HookFunction]], publish: Publisher):
        self._hooks = hooks
        self._publish = publish

    def __contains__(self, name: str) -> bool:
        return name in self._hooks

    def run(self, name: str, watcher: Any, arbiter: Any, **extra: Any) -> bool:
        entry = self._hooks.get(name)
        if entry is None:
            return True
        config, function = entry
        try:
            result = function(watcher=watcher, arbiter=arbiter, hook_name=name, **extra)
        except Exception as exc:
            log.exception("hook %s (%s) of watcher %r failed", name, config.target, watcher.name)
            self._publish("hook_failure", {"name": name, "error": str(exc)})
            return config.ignore_errors
        self._publish("hook_success", {"name": name})
        return bool(result)
