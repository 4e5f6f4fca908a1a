"""Finding and killing a process's descendants."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal


def descendants(pid: int) -> list[int]:
    """Every descendant, walking the kernel's per-task children lists: it costs a few reads
    per descendant (psutil scans all of /proc, which at stop time is once per process)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        children = direct_children(pending.pop())
        found.extend(children)
        pending.extend(children)
    return found


def direct_children(pid: int) -> list[int]:
    children = _children_from_proc(pid)
    if children is not None:
        return children
    import psutil  # only where the kernel has no /proc/PID/task/*/children

    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def _children_from_proc(pid: int) -> list[int] | None:
    """/proc/PID/task/*/children (CONFIG_PROC_CHILDREN); None where the kernel lacks it."""
    try:
        # procfs counts a process's threads in the links of its task directory (two more):
        # a single-threaded process (most) has all its children in one file, and this stat
        # costs a fraction of listing the directory (which, per process, was a fifth of
        # stopping 200 of them)
        threads = os.stat(f"/proc/{pid}/task").st_nlink - 2
        tasks = [str(pid)] if threads == 1 else os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []  # the process is gone
    found: list[int] = []
    for task in tasks:
        try:
            found.extend(
                int(child) for child in read_all(f"/proc/{pid}/task/{task}/children").split()
            )
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{task}"):
                continue  # the thread ended meanwhile
            return None
        except OSError:
            continue
    return found


def read_all(path: str) -> bytes:
    """A whole /proc file, read to its end (a long list of children comes a page at a time)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def own_children() -> list[int]:
    """Direct children of this process, read from /proc (all threads)."""
    found: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as handle:
                found.extend(int(pid) for pid in handle.read().split())
        except OSError:
            continue
    return found


PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def set_subreaper(enabled: bool) -> bool:
    """Become (or stop being) the reaper of orphaned descendants. False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def is_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        value = ctypes.c_int(0)
        libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0)
        return bool(value.value)
    except (OSError, AttributeError):
        return False


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def ancestors(pid: int, depth: int) -> list[int]:
    found: list[int] = []
    current: int | None = pid
    for _ in range(depth):
        current = parent_of(current) if current else None
        if not current or current <= 1:
            break
        found.append(current)
    return found


def kill_group(pgid: int, signum: int = signal.SIGKILL) -> None:
    """Signal a process group; quiet when it is already empty."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def kill_pids(pids: list[int], signum: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
