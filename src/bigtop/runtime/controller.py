"""Every Circus control command, carried out on the arbiter.

Commands on one watcher run one at a time, in arrival order (the watcher's lock); commands
on different watchers run side by side. Nothing is refused for being busy: where Circus
answered errno 5 "arbiter is already running ...", bigtop queues. Without `waiting`, an
asynchronous command is answered as soon as it is queued, as in Circus.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from bigtop.config.coerce import CoercionError, to_signal
from bigtop.config.model import MAX_NUMPROCESSES
from bigtop.config.options import (
    NEEDS_RELOAD,
    OptionError,
    apply_options,
    is_finite_number,
    new_watcher,
)
from bigtop.protocol.codec import Request
from bigtop.protocol.errors import CommandError, Errno
from bigtop.runtime import proctree
from bigtop.runtime.hooks import HookError
from bigtop.runtime.procinfo import GONE, NA, ProcessInfo

if TYPE_CHECKING:
    from bigtop.runtime.arbiter import Arbiter
    from bigtop.runtime.watcher import Watcher

log = logging.getLogger("bigtop.controller")
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]

OPTIONS_KEYS = (
    "numprocesses",
    "warmup_delay",
    "working_dir",
    "uid",
    "gid",
    "send_hup",
    "stop_signal",
    "stop_children",
    "shell",
    "shell_args",
    "env",
    "max_retry",
    "cmd",
    "args",
    "respawn",
    "graceful_timeout",
    "executable",
    "use_sockets",
    "priority",
    "copy_env",
    "singleton",
    "stdout_stream_conf",
    "on_demand",
    "stderr_stream_conf",
    "max_age",
    "max_age_variance",
    "close_child_stdin",
    "close_child_stdout",
    "close_child_stderr",
)
ASYNC_COMMANDS = frozenset(
    {
        "add",
        "rm",
        "start",
        "stop",
        "restart",
        "reload",
        "reloadconfig",
        "incr",
        "decr",
        "set",
        "kill",
        "quit",
    }
)


# What a stopping daemon refuses: each would start processes the stop has already passed.
REFUSED_WHEN_STOPPING = frozenset(
    {"add", "start", "restart", "reload", "reloadconfig", "incr", "set"}
)


class Controller:
    def __init__(self, arbiter: Arbiter) -> None:
        self.arbiter = arbiter
        self.procinfo = ProcessInfo()
        self._background: set[asyncio.Task[Any]] = set()
        self._handlers: dict[str, Handler] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("cmd_")
        }

    @property
    def commands(self) -> list[str]:
        return sorted(self._handlers)

    async def handle(self, request: Request) -> dict[str, Any] | None:
        """Run a request; the reply's fields, or raise CommandError."""
        if request.command == "logs":
            return self.logs(request.properties, request.push)
        handler = self._handlers.get(request.command)
        if handler is None:
            raise CommandError(f"unknown command: {request.command!r}", Errno.UNKNOWN_COMMAND)
        if request.command in REFUSED_WHEN_STOPPING and self.arbiter.stopping:
            raise CommandError(
                f"{request.command}: bigtop is stopping; send it again once it runs",
                Errno.COMMAND_ERROR,
            )
        try:
            return await handler(request.properties)
        except CommandError:
            raise
        except OptionError as exc:
            raise CommandError(str(exc), Errno.MESSAGE_ERROR) from None
        except OSError as exc:
            raise CommandError(f"{request.command}: {exc}", Errno.OS_ERROR) from None
        finally:
            self.arbiter.flush_state()  # what the reply may name is in the record first

    # ---- helpers --------------------------------------------------------------------------
    def _watcher(self, props: dict[str, Any], key: str = "name") -> Watcher:
        name = _required(props, key, str)
        watcher = self.arbiter.get_watcher(name)
        if watcher is None:
            raise CommandError(f"program {name} not found")
        return watcher

    def _matching(self, props: dict[str, Any]) -> list[Watcher]:
        name = props.get("name")
        if not isinstance(name, str):
            raise CommandError("'name' isn't a string")
        match = props.get("match", "glob")
        watchers = list(self.arbiter.watchers.values())
        if match == "simple":
            found = [w for w in watchers if w.name.lower() == name.lower()]
        elif match == "regex":
            try:
                pattern = re.compile(name)
            except re.error as exc:
                raise CommandError(f"invalid regex {name!r}: {exc}") from None
            found = [w for w in watchers if pattern.fullmatch(w.name)]
        elif match == "glob":
            found = [w for w in watchers if fnmatch.fnmatch(w.name.lower(), name.lower())]
        else:
            raise CommandError(f"invalid match mode {match!r}: use glob, simple or regex")
        if not found:
            raise CommandError(f"program {name} not found")
        return sorted(found, key=lambda w: (-w.config.priority, w.name))

    async def _run(
        self, props: dict[str, Any], work: Coroutine[Any, Any, Any]
    ) -> dict[str, Any] | None:
        """Await `work` when the client asked for `waiting`, else start it and reply now."""
        if props.get("waiting"):
            result: dict[str, Any] | None = await work
            return result
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._done)
        return None

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background command failed: %s", task.exception())

    # ---- listing ----------------------------------------------------------------------------
    async def cmd_list(self, props: dict[str, Any]) -> dict[str, Any]:
        if props.get("name") is not None:
            return {"pids": self._watcher(props).pids}
        return {"watchers": sorted(self.arbiter.watchers)}

    async def cmd_status(self, props: dict[str, Any]) -> dict[str, Any]:
        # bigtop: with `processes: true`, also each process's state ({pid: state}); without
        # it the reply is exactly Circus's.
        # With `history: true`, each watcher's restart count and its recent process ends.
        detail = bool(props.get("processes"))
        history = bool(props.get("history"))
        if props.get("name") is not None:
            watcher = self._watcher(props)
            reply: dict[str, Any] = {"status": watcher.status}
            if detail:
                reply["processes"] = _states(watcher)
            if history:
                reply["restarts"] = watcher.core.restarts
                reply["history"] = _history(watcher)
            return reply
        watchers = self.arbiter.watchers.values()
        reply = {"statuses": {w.name: w.status for w in watchers}}
        if detail:
            reply["processes"] = {w.name: _states(w) for w in watchers}
        if history:
            reply["restarts"] = {w.name: w.core.restarts for w in watchers}
            reply["history"] = {w.name: _history(w) for w in watchers}
        return reply

    async def cmd_numwatchers(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"numwatchers": len(self.arbiter.watchers)}

    async def cmd_numprocesses(self, props: dict[str, Any]) -> dict[str, Any]:
        if props.get("name") is not None:
            watcher = self._watcher(props)
            return {"numprocesses": len(watcher.core.procs), "watcher_name": props["name"]}
        return {"numprocesses": sum(len(w.core.procs) for w in self.arbiter.watchers.values())}

    async def cmd_listsockets(self, props: dict[str, Any]) -> dict[str, Any]:
        entries = [bound.describe() for bound in self.arbiter.sockets.values()]
        return {"sockets": sorted(entries, key=lambda e: int(str(e["fd"])))}

    async def cmd_globaloptions(self, props: dict[str, Any]) -> dict[str, Any]:
        endpoints = self.arbiter.endpoints
        options = {
            "endpoint": endpoints.control,
            "pubsub_endpoint": endpoints.pubsub,
            "stats_endpoint": endpoints.stats,
            "check_delay": float(self.arbiter.config.circus.check_delay),
            "multicast_endpoint": self.arbiter.config.circus.multicast_endpoint,
        }
        key = props.get("option")
        if key is not None:
            if not isinstance(key, str) or key not in options:
                raise CommandError(f"{key!r} not an existing option")
            return {"options": {key: options[key]}}
        return {"options": options}

    async def cmd_options(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"options": watcher_options(self._watcher(props))}

    async def cmd_get(self, props: dict[str, Any]) -> dict[str, Any]:
        watcher = self._watcher(props)
        keys = _required(props, "keys", list)
        options = watcher_options(watcher)
        result = {}
        for key in keys:
            if not isinstance(key, str) or key not in options:
                raise CommandError(f"{key!r} option not found")
            result[key] = options[key]
        return {"options": result}

    # ---- start / stop / restart / reload ------------------------------------------------------
    async def cmd_start(self, props: dict[str, Any]) -> dict[str, Any] | None:
        if props.get("name") is None:
            return await self._run(props, self._start_all())
        watchers = self._matching(props)
        if len(watchers) > 1:
            watchers = [w for w in watchers if w.config.autostart]
            return await self._run(props, self._each(watchers, self._start_one))
        return await self._run(props, self._start_single(watchers[0]))

    async def _start_all(self) -> None:
        await self.arbiter.start_watchers()

    async def _each(
        self, watchers: list[Watcher], action: Callable[[Watcher], Awaitable[Any]]
    ) -> None:
        await asyncio.gather(*(action(w) for w in watchers))

    async def _start_one(self, watcher: Watcher) -> None:
        async with watcher.lock:
            await watcher.start_and_wait()

    async def _start_single(self, watcher: Watcher) -> dict[str, Any]:
        async with watcher.lock:
            before = set(watcher.pids)
            await watcher.start_and_wait()
            await watcher.settle()
            after = watcher.pids
        return {"info": {"started": sorted(set(after) - before), "kept": sorted(before)}}

    async def cmd_stop(self, props: dict[str, Any]) -> dict[str, Any] | None:
        if props.get("name") is None:
            return await self._run(props, self.arbiter.stop_watchers())
        watchers = self._matching(props)
        result = await self._run(props, self._each(watchers, self._stop_one))
        if props.get("waiting") and len(watchers) == 1:
            return {"info": None}
        return result

    async def _stop_one(self, watcher: Watcher) -> None:
        async with watcher.lock:
            await watcher.stop()

    async def cmd_restart(self, props: dict[str, Any]) -> dict[str, Any] | None:
        if props.get("name") is None:
            self.arbiter.request("restart")
            return None
        watchers = self._matching(props)
        if len(watchers) == 1:
            return await self._run(props, self._restart_single(watchers[0]))
        return await self._run(props, self._each(watchers, self._restart_one))

    async def _restart_one(self, watcher: Watcher) -> None:
        async with watcher.lock:
            await watcher.stop()
            await watcher.start_and_wait()

    async def _restart_single(self, watcher: Watcher) -> dict[str, Any]:
        async with watcher.lock:
            before = watcher.pids
            await watcher.stop()
            await watcher.start_and_wait()
            await watcher.settle()
            after = watcher.pids
        return {"info": {"stopped": before, "started": after, "kept": []}}

    async def cmd_reload(self, props: dict[str, Any]) -> dict[str, Any] | None:
        name = props.get("name")
        graceful = props.get("graceful", True)
        if name is None:
            return await self._run(props, self.arbiter.reload())
        watcher = self._watcher(props)
        sequential = bool(props.get("sequential"))
        return await self._run(props, self._reload_one(watcher, bool(graceful), sequential))

    async def _reload_one(
        self, watcher: Watcher, graceful: bool, sequential: bool = False
    ) -> dict[str, Any]:
        async with watcher.lock:
            before = watcher.pids
            if not graceful or watcher.is_stopped():
                if not watcher.is_stopped():
                    await watcher.stop()
                await watcher.start_and_wait()
            elif sequential:
                # Circus's --sequential: one process at a time, stopped, then replaced
                for pid in before:
                    watcher.kill(pid)
                    await watcher.wait_until(_gone(watcher, pid))
                    await watcher.settle()
                    await watcher.wait_until(watcher.all_ready)
            else:
                watcher.reload()
            await watcher.settle()
            after = watcher.pids
        return {
            "info": {
                "stopped": sorted(set(before) - set(after)),
                "started": sorted(set(after) - set(before)),
                "kept": sorted(set(before) & set(after)),
            }
        }

    async def cmd_reloadconfig(self, props: dict[str, Any]) -> dict[str, Any] | None:
        if props.get("dry_run"):
            return {"plan": self.arbiter.plan_reload_config()}
        return await self._run(props, self.arbiter.reload_config())

    async def cmd_quit(self, props: dict[str, Any]) -> dict[str, Any] | None:
        self.arbiter.request("quit")
        if props.get("waiting"):
            await self.arbiter.wait_stopped()
        return None

    # ---- scaling ----------------------------------------------------------------------------
    async def cmd_incr(self, props: dict[str, Any]) -> dict[str, Any] | None:
        return await self._scale(props, +1)

    async def cmd_decr(self, props: dict[str, Any]) -> dict[str, Any] | None:
        return await self._scale(props, -1)

    async def _scale(self, props: dict[str, Any], direction: int) -> dict[str, Any] | None:
        watcher = self._watcher(props)
        nb = props.get("nb", 1)
        if not isinstance(nb, int) or isinstance(nb, bool):
            raise CommandError("'nb' isn't an integer")
        if watcher.config.singleton:
            return {"numprocesses": watcher.numprocesses, "singleton": True}

        wanted = watcher.numprocesses + direction * nb
        if wanted > MAX_NUMPROCESSES:
            raise CommandError(
                f"'nb' would take {watcher.name!r} to {wanted} processes; "
                f"a watcher runs at most {MAX_NUMPROCESSES}"
            )

        async def scale() -> dict[str, Any]:
            async with watcher.lock:
                target = max(0, watcher.numprocesses + direction * nb)
                target = min(target, MAX_NUMPROCESSES)  # incr calls queued behind each other
                watcher.scale(target)
                await watcher.settle()
                return {"numprocesses": watcher.numprocesses}

        return await self._run(props, scale())

    async def cmd_set(self, props: dict[str, Any]) -> dict[str, Any] | None:
        watcher = self._watcher(props)
        options = _required(props, "options", dict)
        updated = apply_options(watcher.config, options)
        try:
            watcher.apply_config(updated)  # validates hooks by importing them
        except HookError as exc:
            raise CommandError(str(exc)) from None
        for _ in options:
            self.arbiter.publish(watcher.name, "updated", {})

        async def effect() -> None:
            async with watcher.lock:
                if updated.numprocesses != watcher.numprocesses or "numprocesses" in options:
                    watcher.scale(updated.numprocesses)
                if NEEDS_RELOAD & {k.lower() for k in options} and not watcher.is_stopped():
                    watcher.reload()
                await watcher.settle()

        return await self._run(props, effect())

    # ---- signals ----------------------------------------------------------------------------
    async def cmd_signal(self, props: dict[str, Any]) -> dict[str, Any] | None:
        watcher = self._watcher(props)
        signum = _signum(_required(props, "signum", (int, str)))
        pid = props.get("pid")
        childpid = props.get("childpid", props.get("child_pid"))
        if childpid is not None and pid is None:
            raise CommandError("'childpid' needs 'pid'")
        pids = watcher.pids
        if pid is not None:
            pid = _as_int(pid, "pid")
            if pid not in pids:
                return _not_ours(watcher, pid)
            pids = [pid]
        for target in pids:
            if childpid is not None:
                child = _as_int(childpid, "childpid")
                if child not in proctree.direct_children(target):
                    raise CommandError(f"process {child} is not a child of {target}")
                proctree.kill_pids([child], signum)
                continue
            if props.get("children"):
                proctree.kill_pids(proctree.direct_children(target), signum)
                continue
            family = proctree.descendants(target) if props.get("recursive") else []
            watcher.services.reaper.send_signal(target, signum)
            proctree.kill_pids(family, signum)
        return None

    async def cmd_kill(self, props: dict[str, Any]) -> dict[str, Any] | None:
        watcher = self._watcher(props)
        timeout = props.get("graceful_timeout")
        if timeout is not None and not (is_finite_number(timeout) and timeout >= 0):
            raise CommandError("'graceful_timeout' isn't a number")
        signum = props.get("signum")
        number = _signum(signum) if signum is not None else None
        pid = props.get("pid")
        pids = watcher.pids
        if pid is not None:
            pid = _as_int(pid, "pid")
            if pid not in pids:
                return _not_ours(watcher, pid)
            pids = [pid]

        async def kill() -> None:
            for target in pids:
                watcher.kill(target, None if timeout is None else float(timeout), number)
            await watcher.wait_until(lambda: not set(pids) & set(watcher.core.procs))

        return await self._run(props, kill())

    # ---- add / rm -----------------------------------------------------------------------------
    async def cmd_add(self, props: dict[str, Any]) -> dict[str, Any] | None:
        name = _required(props, "name", str)
        cmd = _required(props, "cmd", str)
        options = props.get("options") or {}
        if not isinstance(options, dict):
            raise CommandError("'options' isn't an object")
        owner = self.arbiter.config.circus.endpoint_owner
        ipc = self.arbiter.endpoints.control.startswith("ipc://")
        if owner and ipc and str(options.get("uid", "")) != owner:
            raise CommandError(f"'uid' must be {owner!r} (the endpoint_owner)")
        if self.arbiter.get_watcher(name) is not None:
            raise CommandError(f"{name!r} already exist", Errno.COMMAND_ERROR)
        config = new_watcher(name, cmd, props.get("args"), options)
        try:
            watcher = self.arbiter.add_watcher(config)
        except HookError as exc:
            raise CommandError(str(exc)) from None
        self.arbiter.publish(watcher.name, "add", {})
        if not props.get("start"):
            return None

        async def start() -> dict[str, Any]:
            async with watcher.lock:
                await watcher.start_and_wait()
                await watcher.settle()
                return {"started": watcher.pids, "kept": []}

        return await self._run(props, start())

    async def cmd_rm(self, props: dict[str, Any]) -> dict[str, Any] | None:
        watcher = self._watcher(props)
        self.arbiter.publish(watcher.name, "remove", {})
        nostop = bool(props.get("nostop"))

        async def remove() -> None:
            async with watcher.lock:
                await self.arbiter.remove_watcher(watcher, stop=not nostop)

        return await self._run(props, remove())

    # ---- stats ------------------------------------------------------------------------------
    async def cmd_stats(self, props: dict[str, Any]) -> dict[str, Any]:
        extended = bool(props.get("extended"))
        if props.get("name") is None:
            return {
                "infos": {
                    w.name: self._watcher_stats(w, extended) for w in self.arbiter.watchers.values()
                }
            }
        watcher = self._watcher(props)
        name = props["name"]  # echoed as the client wrote it, as Circus does
        process = props.get("process")
        if process is not None:
            pid = _as_int(process, "process")
            if pid not in watcher.pids:
                raise CommandError(f"process {pid} not found in {name!r}")
            return {"process": pid, "info": self._process_stats(watcher, pid, extended)}
        return {"name": name, "info": self._watcher_stats(watcher, extended)}

    def _watcher_stats(self, watcher: Watcher, extended: bool) -> dict[str, Any]:
        return {str(pid): self._process_stats(watcher, pid, extended) for pid in watcher.pids}

    def _process_stats(self, watcher: Watcher, pid: int, extended: bool) -> Any:
        info = self.procinfo.info(pid)
        if isinstance(info, dict):
            if info.get("cmdline") == NA:  # caught inside execve: its argv is not set up yet
                info["cmdline"] = _spawned_name(watcher, pid)
            record = watcher.core.procs.get(pid)
            info["started"] = watcher.spawned_at.get(pid)
            info["wid"] = record.wid if record else None
            info["state"] = record.condition if record else "stopped"  # bigtop additions
            slot = watcher.core.slots.get(record.wid) if record else None
            info["restarts"] = slot.restarts if slot else 0
            if extended and "extended_stats" in watcher.hooks:
                watcher.hooks.run("extended_stats", watcher, self.arbiter, pid=pid, stats=info)
        return info

    async def cmd_dstats(self, props: dict[str, Any]) -> dict[str, Any]:
        info = self.procinfo.info(os.getpid())
        if isinstance(info, dict):
            info["children"] = []
        return {"info": info if info != GONE else {}}

    def logs(self, props: dict[str, Any], push: Any) -> dict[str, Any]:
        """bigtop: the last lines of each process; with `follow`, live lines until the client
        stops renewing (it sends the same request again every few seconds)."""
        names = props.get("names") or ([props["name"]] if props.get("name") else [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CommandError("'names' isn't a list of watcher names")
        for name in names:
            if not any(fnmatch.fnmatch(w, name.lower()) for w in self.arbiter.watchers):
                raise CommandError(f"program {name} not found")
        stream = props.get("stream") or "both"
        if stream not in ("stdout", "stderr", "both"):  # (a list is not hashable)
            raise CommandError("'stream' must be stdout, stderr or both")
        streams = {"stdout": ("stdout",), "stderr": ("stderr",)}.get(stream, ("stdout", "stderr"))
        lines = props.get("lines", 10)
        if not isinstance(lines, int) or isinstance(lines, bool) or lines < 0:
            raise CommandError("'lines' isn't a non-negative integer")
        book = self.arbiter.services.logbook
        reply: dict[str, Any] = {}
        if not props.get("renew"):
            reply["lines"] = book.tail(names, lines, streams)
        if props.get("follow"):
            if push is None:
                raise CommandError("'follow' needs a connection that can receive messages")
            book.follow(str(props.get("key") or id(push)), names, streams, push)
        return reply

    async def cmd_ipython(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"shell": False, "msg": "bigtop does not embed an IPython kernel"}

    async def cmd_listen(self, props: dict[str, Any]) -> dict[str, Any]:
        raise CommandError("invalid message. use a pub/sub socket")


def watcher_options(watcher: Watcher) -> dict[str, Any]:
    """`options` as Circus shows them, plus the watcher's free-form keys."""
    config = watcher.config
    values: dict[str, Any] = {}
    for key in OPTIONS_KEYS:
        if key in ("stdout_stream_conf", "stderr_stream_conf"):
            stream = getattr(config, key[: -len("_conf")])
            values[key] = dict(stream.options) if stream else {}
        elif key == "numprocesses":
            values[key] = watcher.numprocesses
        elif key == "env":
            values[key] = dict(config.env) or None
        elif key == "respawn":
            values[key] = config.respawn != "never"
        elif key == "args":
            values[key] = config.args or None  # Circus shows null for no args
        else:
            values[key] = getattr(config, key)
    values.update(config.options)
    return values


def _states(watcher: Watcher) -> dict[str, str]:
    return {str(pid): p.condition for pid, p in sorted(watcher.core.procs.items())}


def _history(watcher: Watcher) -> list[dict[str, Any]]:
    """The watcher's recent process ends, oldest first, with wall-clock times."""
    offset = time.time() - time.monotonic()
    return [
        {
            "time": round(entry.time + offset, 3),
            "pid": entry.pid,
            "wid": entry.wid,
            "exit_code": entry.exit_code,
            "signal": entry.signal,
            "reason": entry.reason,
            "uptime": round(entry.uptime, 3),
            "restart_in": entry.restart_in,
        }
        for entry in watcher.history
    ]


def _gone(watcher: Watcher, pid: int) -> Callable[[], bool]:
    return lambda: pid not in watcher.core.procs


def _not_ours(watcher: Watcher, pid: int) -> dict[str, Any]:
    """Circus answers ok and does nothing; bigtop says why in an extra field."""
    message = f"process {pid} is not one of {watcher.name!r}'s processes; nothing done"
    log.warning("%s", message)
    return {"warning": message}


def _required(props: dict[str, Any], key: str, kind: Any) -> Any:
    if key not in props:
        raise CommandError(f"message invalid {key!r} is missing")
    value = props[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CommandError(f"{key!r} has the wrong type")
    return value


def _as_int(value: Any, key: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
        raise CommandError(f"{key!r} isn't an integer") from None


def _signum(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 < value < signal.NSIG:
            return value
    elif isinstance(value, str):
        try:
            return to_signal(value)
        except CoercionError:
            pass
    raise CommandError(f"{value!r} isn't a valid signal")


def _spawned_name(watcher: Watcher, pid: int) -> str:
    """The program name a process was started with (its argv[0]'s base name), for when its
    /proc entry cannot say yet."""
    popen = watcher.popens.get(pid)
    args = popen.args if popen is not None else None
    if isinstance(args, (list, tuple)) and args:
        return os.path.basename(os.fsdecode(args[0]))
    return NA
