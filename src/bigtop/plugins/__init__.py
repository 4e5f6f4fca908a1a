"""Plugins: processes that watch a bigtop daemon's events and act through its commands.

`Plugin` is bigtop's typed base class (see base.py); `circus_compat.CircusPlugin` is
Circus's contract; the built-ins are in this package (registry.py lists their names).
"""

from bigtop.plugins.base import CallError, CallTimeout, Plugin, PluginContext, split_topic
from bigtop.plugins.options import Options, PluginConfigError

__all__ = [
    "CallError",
    "CallTimeout",
    "Options",
    "Plugin",
    "PluginConfigError",
    "PluginContext",
    "split_topic",
]
