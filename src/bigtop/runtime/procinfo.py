"""Per-process figures in Circus's `stats` format (psutil; a faster path comes with stats).

One `psutil.Process` is kept per pid so CPU percentages are measured between calls, as
Circus does (the first reading of a process is 0.0).
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

GONE = "No such process (stopped?)"
NA = "N/A"
_SYMBOLS = ("K", "M", "G", "T", "P", "E", "Z", "Y")


def bytes2human(value: int) -> str:
    """9.91M, 12.80M, 512B: two decimals and a unit letter (powers of 1024)."""
    for index in range(len(_SYMBOLS) - 1, -1, -1):
        unit = 1 << (index + 1) * 10
        if value >= unit:
            return f"{value / unit:.2f}{_SYMBOLS[index]}"
    return f"{value}B"


def cpu_time(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{int(rest):02d}.{round(rest * 100) % 100:02d}"


class ProcessInfo:
    """Cache of psutil handles, so repeated `stats` calls give CPU since the last call."""

    def __init__(self) -> None:
        self._handles: dict[int, psutil.Process] = {}

    def _handle(self, pid: int) -> psutil.Process:
        handle = self._handles.get(pid)
        if handle is None or not handle.is_running():
            handle = psutil.Process(pid)
            handle.cpu_percent(None)
            self._handles[pid] = handle
        return handle

    def forget(self, pid: int) -> None:
        self._handles.pop(pid, None)

    def info(self, pid: int, with_children: bool = True) -> dict[str, Any] | str:
        try:
            handle = self._handle(pid)
            with handle.oneshot():
                data = _read(handle)
                if with_children:
                    data["children"] = [
                        self.info(child.pid, with_children=False) for child in handle.children()
                    ]
        except psutil.NoSuchProcess:
            self.forget(pid)
            return GONE
        except psutil.Error:
            return NA
        return data


def _read(handle: psutil.Process) -> dict[str, Any]:
    data: dict[str, Any] = {"pid": handle.pid}
    memory = _try(handle.memory_info)
    data["mem_info1"] = bytes2human(memory.rss) if memory != NA else NA
    data["mem_info2"] = bytes2human(memory.vms) if memory != NA else NA
    data["cpu"] = _try(lambda: handle.cpu_percent(None))
    mem = _try(handle.memory_percent)
    data["mem"] = round(mem, 3) if mem != NA else NA
    times = _try(handle.cpu_times)
    data["ctime"] = cpu_time(times.user + times.system) if times != NA else NA
    data["username"] = _try(handle.username)
    data["nice"] = _try(handle.nice)
    created = _try(handle.create_time)
    data["create_time"] = created
    data["age"] = time.time() - created if created != NA else NA
    cmdline = _try(handle.cmdline)
    data["cmdline"] = os.path.basename(cmdline[0]) if cmdline != NA and cmdline else NA
    return data


def _try(read: Any) -> Any:
    try:
        return read()
    except psutil.NoSuchProcess:
        raise
    except (psutil.Error, OSError):
        return NA
