"""What `use = …` in a `[plugin:NAME]` section names, and how to load it.

In this order:

1. Circus's flapping plugin (`circus.plugins.flapping.Flapping`, `flapping`): no process at
   all, it is the watcher core's built-in flapping policy (see config/load.py).
2. Circus's built-in plugins by their dotted names (`circus.plugins.statsd.StatsdEmitter`, ...)
   and bigtop's short names (`statsd`, `watchdog`, ...): bigtop's own implementations.
3. Entry points of installed packages, group `bigtop.plugins` (`use = NAME`):
       [project.entry-points."bigtop.plugins"]
       NAME = "package.module:Class"
4. A dotted path to a class: `package.module.Class` or `package.module:Class`.
"""

from __future__ import annotations

import importlib
from typing import Any

from bigtop.plugins.options import PluginConfigError

ENTRY_POINT_GROUP = "bigtop.plugins"
# The same names as config.load.FLAPPING_ALIASES (a test keeps them equal); not imported
# from there, to keep the plugin process's start-up light.
FLAPPING_NAMES = frozenset(
    {"circus.plugins.flapping.Flapping", "flapping", "bigtop.plugins.flapping"}
)
BUILTINS: dict[str, str] = {
    "statsd": "bigtop.plugins.statsd:StatsdEmitter",
    "full_stats": "bigtop.plugins.statsd:FullStats",
    "watchdog": "bigtop.plugins.watchdog:WatchDog",
    "resource_watcher": "bigtop.plugins.resource_watcher:ResourceWatcher",
    "http_observer": "bigtop.plugins.http_observer:HttpObserver",
    "command_reloader": "bigtop.plugins.command_reloader:CommandReloader",
    "redis_observer": "bigtop.plugins.redis_observer:RedisObserver",
    "prometheus": "bigtop.plugins.prometheus:Prometheus",
}
CIRCUS_NAMES: dict[str, str] = {
    "circus.plugins.statsd.StatsdEmitter": "statsd",
    "circus.plugins._statsd.StatsdEmitter": "statsd",
    "circus.plugins.statsd.FullStats": "full_stats",
    "circus.plugins.watchdog.WatchDog": "watchdog",
    "circus.plugins.resource_watcher.ResourceWatcher": "resource_watcher",
    "circus.plugins.http_observer.HttpObserver": "http_observer",
    "circus.plugins.command_reloader.CommandReloader": "command_reloader",
    "circus.plugins.redis_observer.RedisObserver": "redis_observer",
}
ALIASES: dict[str, str] = {
    "statsd_emitter": "statsd",
    "fullstats": "full_stats",
    "stats": "full_stats",
    "resources": "resource_watcher",
    "http": "http_observer",
    "reloader": "command_reloader",
    "redis": "redis_observer",
    "metrics": "prometheus",
}


def is_flapping(use: str) -> bool:
    return use.strip() in FLAPPING_NAMES


def builtin_name(use: str) -> str | None:
    """The short name of the built-in `use` designates, or None."""
    use = use.strip()
    if use in CIRCUS_NAMES:
        return CIRCUS_NAMES[use]
    short = use.lower().replace("-", "_")
    short = ALIASES.get(short, short)
    return short if short in BUILTINS else None


def target(use: str) -> str:
    """`module:Class` for `use` (built-in, entry point, or the dotted path itself)."""
    use = use.strip()
    builtin = builtin_name(use)
    if builtin is not None:
        return BUILTINS[builtin]
    import importlib.metadata  # only for a name that is not a built-in: it is a heavy import

    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == use:
            return str(entry.value)
    return use


def load(use: str, section: str) -> Any:
    """Import the class `use` names; PluginConfigError says why when it cannot."""
    if is_flapping(use):
        raise PluginConfigError(
            f"[{section}] use = {use}: flapping detection is built into the daemon; "
            "it runs no plugin process"
        )
    path = target(use)
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise PluginConfigError(
            f"[{section}] use = {use!r}: not a plugin name ({', '.join(sorted(BUILTINS))}), "
            f"an entry point of group {ENTRY_POINT_GROUP!r}, nor a dotted path module.Class"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginConfigError(
            f"[{section}] use = {use}: cannot import {module_name!r}: {exc}; install the "
            "package that provides it, or put its directory beside the config file"
        ) from None
    plugin = getattr(module, attribute, None)
    if not isinstance(plugin, type):
        raise PluginConfigError(
            f"[{section}] use = {use}: {module_name!r} has no class {attribute!r}"
        )
    return plugin
