"""Plugins: processes that watch a bigtop daemon's events and act through its commands.

`Plugin` is bigtop's typed base class (see base.py); `circus_compat.CircusPlugin` is
Circus's contract; the built-ins are in this package (registry.py lists their names).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bigtop.plugins.base import CallError, CallTimeout, Plugin, PluginContext, split_topic
    from bigtop.plugins.options import Options, PluginConfigError

# Resolved when first used (PEP 562): the daemon imports this package for its registry of
# names and never needs the plugin-side classes (nor the client they bring).
_WHERE = {
    "CallError": "base",
    "CallTimeout": "base",
    "Plugin": "base",
    "PluginContext": "base",
    "split_topic": "base",
    "Options": "options",
    "PluginConfigError": "options",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bigtop.plugins' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bigtop.plugins.{module}"), name)


__all__ = [
    "CallError",
    "CallTimeout",
    "Options",
    "Plugin",
    "PluginConfigError",
    "PluginContext",
    "split_topic",
]
