"""Process figures through psutil, for systems without /proc (Linux uses procinfo's reader)."""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

from bigtop.runtime.procinfo import GONE, NA, bytes2human, cpu_time


class PsutilInfo:
    """One psutil handle per pid, so CPU percentages are measured between calls."""

    def __init__(self) -> None:
        self._handles: dict[int, psutil.Process] = {}

    def info(self, pid: int, with_children: bool = True) -> dict[str, Any] | str:
        try:
            handle = self._handles.get(pid)
            if handle is None or not handle.is_running():
                handle = psutil.Process(pid)
                handle.cpu_percent(None)
                self._handles[pid] = handle
            with handle.oneshot():
                data = _psutil_read(handle)
                if with_children:
                    data["children"] = [self.info(child.pid, False) for child in handle.children()]
        except psutil.NoSuchProcess:
            self._handles.pop(pid, None)
            return GONE
        except psutil.Error:
            return NA
        return data


def _psutil_read(handle: psutil.Process) -> dict[str, Any]:
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
