"""CommandReloader: restart a watcher when its executable is replaced or modified.

Every `loop_rate` seconds (default 1) it reads each watcher's `cmd`, finds the executable
(its first word, looked up on PATH when it has no slash), follows symlinks, and remembers
its path, inode and modification time. When one of them changes, the watcher is restarted.
A deploy that swaps a symlink, renames a new file over the old one, or rewrites it in
place is noticed. Unlike Circus's, it copes with a `cmd` that has arguments, and a watcher
whose executable cannot be found is skipped (and logged once) instead of crashing the plugin.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass

from bigtop.plugins.base import Plugin, PluginContext, ignore_failures


@dataclass(frozen=True)
class Executable:
    path: str
    inode: int
    mtime_ns: int


def executable_of(cmd: str, cwd: str | None = None) -> str | None:
    """The file a command line runs: its first word, found on PATH if needed."""
    try:
        words = shlex.split(cmd)
    except ValueError:
        words = cmd.split()
    if not words:
        return None
    first = words[0]
    if "/" not in first:
        return shutil.which(first)
    return first if os.path.isabs(first) or cwd is None else os.path.join(cwd, first)


def identify(path: str) -> Executable | None:
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except OSError:
        return None
    return Executable(real, info.st_ino, info.st_mtime_ns)


def changed(before: Executable | None, now: Executable | None) -> bool:
    """A watcher is restarted when its executable was seen before and is now different."""
    return before is not None and now is not None and before != now


class CommandReloader(Plugin):
    name = "command_reloader"
    topics = ()

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.loop_rate = self.options.positive("loop_rate", 1.0)
        self.seen: dict[str, Executable] = {}
        self._missing: set[str] = set()

    async def on_start(self) -> None:
        await self.look_after()
        self.log.info("watching the executables of %d watcher(s)", len(self.seen))
        self.every(self.loop_rate, self.look_after)

    async def look_after(self) -> None:
        listing = await ignore_failures(self, "list", self.call("list"))
        if listing is None:
            return
        names = [n for n in listing.get("watchers", []) if not n.startswith("plugin:")]
        for gone in set(self.seen) - set(names):
            del self.seen[gone]
        for name in names:
            reply = await ignore_failures(
                self, f"get {name}", self.call("get", name=name, keys=["cmd", "working_dir"])
            )
            if reply is None:
                continue
            options = reply.get("options", {})
            path = executable_of(str(options.get("cmd") or ""), options.get("working_dir"))
            now = identify(path) if path else None
            if now is None:
                if name not in self._missing:
                    self._missing.add(name)
                    self.log.info("%s: cannot find the executable of its cmd; not watched", name)
                continue
            self._missing.discard(name)
            if changed(self.seen.get(name), now):
                self.log.warning("%s: %s changed; restarting the watcher", name, now.path)
                await ignore_failures(
                    self, f"restart {name}", self.call("restart", name=name, waiting=True)
                )
            self.seen[name] = now
