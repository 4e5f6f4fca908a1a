"""Per-process figures in Circus's `stats` format.

On Linux they come straight from /proc: one read of `/proc/PID/stat` gives CPU times, memory,
nice and start time, and `/proc/PID/task/PID/children` the direct children, so a sample costs
two small reads (the command line and user are read once per process and cached). Elsewhere
psutil does the work (procinfo_psutil). CPU percentages are measured between two samples of
the same process, as Circus does: the first reading of a process is 0.0.
"""

from __future__ import annotations

import os
import pwd
import time
from dataclasses import dataclass
from typing import Any

GONE = "No such process (stopped?)"
NA = "N/A"
_SYMBOLS = ("K", "M", "G", "T", "P", "E", "Z", "Y")
_HAVE_PROC = os.path.exists("/proc/self/stat")
PRUNE_EVERY = 4096  # samples between two sweeps of the cache
STALE = 300.0  # seconds without a sample after which a process is forgotten
CHILDREN_EVERY = 5  # samples between two reads of a process's list of children


def bytes2human(value: int) -> str:
    """9.91M, 12.80M, 512B: two decimals and a unit letter (powers of 1024)."""
    if value < 1024:
        return f"{value}B"
    index = min((value.bit_length() - 1) // 10, len(_SYMBOLS)) - 1
    return f"{value / (1 << (index + 1) * 10):.2f}{_SYMBOLS[index]}"


def cpu_time(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{int(rest):02d}.{round(rest * 100) % 100:02d}"


# ---- pure: parsing /proc/PID/stat and turning samples into figures --------------------------
@dataclass(frozen=True, slots=True)
class StatFields:
    """What one line of /proc/PID/stat says (times in clock ticks, sizes in bytes/pages)."""

    state: str
    ppid: int
    cpu_ticks: int  # utime + stime
    user_ticks: int
    system_ticks: int
    nice: int
    threads: int
    start_ticks: int  # since boot
    vsize: int  # bytes
    rss_pages: int


def parse_stat(text: str) -> StatFields:
    """Parse /proc/PID/stat. The command name (field 2) may hold spaces and parentheses,
    so the fields are counted from its last closing parenthesis."""
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state): field n is rest[n - 3]
    utime, stime = int(rest[11]), int(rest[12])
    return StatFields(
        state=rest[0],
        ppid=int(rest[1]),
        cpu_ticks=utime + stime,
        user_ticks=utime,
        system_ticks=stime,
        nice=int(rest[16]),
        threads=int(rest[17]),
        start_ticks=int(rest[19]),
        vsize=int(rest[20]),
        rss_pages=int(rest[21]),
    )


def cpu_percent(ticks: int, when: float, previous: tuple[int, float] | None, hz: int) -> float:
    """Percent of one core used between two samples (above 100 for a multi-threaded process
    on several cores, as psutil reports it); 0.0 for the first sample."""
    if previous is None:
        return 0.0
    last_ticks, last_when = previous
    elapsed = when - last_when
    if elapsed <= 0:
        return 0.0
    return round(max(0, ticks - last_ticks) / hz / elapsed * 100, 1)


@dataclass(frozen=True, slots=True)
class Machine:
    """Constants of this machine the figures depend on."""

    hz: int
    page_size: int
    boot_time: float
    mem_total: int

    @classmethod
    def read(cls) -> Machine:
        return cls(
            hz=os.sysconf("SC_CLK_TCK"),
            page_size=os.sysconf("SC_PAGE_SIZE"),
            boot_time=_proc_value("/proc/stat", b"btime"),
            mem_total=int(_proc_value("/proc/meminfo", b"MemTotal:")) * 1024,
        )


def _proc_value(path: str, key: bytes) -> float:
    """The number after `key` at the start of a line of a /proc file (0 when missing)."""
    with open(path, "rb") as handle:
        for line in handle:
            if line.startswith(key):
                return float(line.split()[1])
    return 0.0


def figures(
    pid: int,
    stat: StatFields,
    machine: Machine,
    cpu: float,
    username: str,
    cmdline: str,
    now: float,
) -> dict[str, Any]:
    """Circus's process info fields from one sample (children are added by the caller)."""
    rss = stat.rss_pages * machine.page_size
    created = machine.boot_time + stat.start_ticks / machine.hz
    return {
        "pid": pid,
        "mem_info1": bytes2human(rss),
        "mem_info2": bytes2human(stat.vsize),
        "cpu": cpu,
        "mem": round(rss / machine.mem_total * 100, 3) if machine.mem_total else NA,
        "ctime": cpu_time(stat.cpu_ticks / machine.hz),
        "username": username,
        "nice": stat.nice,
        "create_time": created,
        "age": max(0.0, now - created),
        "cmdline": cmdline,
    }


# ---- I/O ----------------------------------------------------------------------------------
_READ_FLAGS = int(os.O_RDONLY | os.O_CLOEXEC)


def _read(path: str) -> bytes:
    fd = os.open(path, _READ_FLAGS)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


@dataclass(slots=True)
class _Known:
    """What stays true for the life of one process (a recycled pid has a new start time)."""

    start_ticks: int
    username: str
    cmdline: str
    exec_seen: bool  # the command line was read after the spawn's exec
    last: tuple[int, float] | None = None
    children: list[int] | None = None
    children_age: int = 0  # samples since the children were last read

    @property
    def last_when(self) -> float:
        return self.last[1] if self.last else 0.0


class ProcessInfo:
    """Samples processes; keeps the previous sample of each so CPU is measured between calls."""

    def __init__(self, keep_open: bool = False) -> None:
        # keep_open: the stats stream samples every process every second; keeping each
        # /proc/PID/stat open saves an open and a close per sample (pread reads it afresh)
        self._keep_open = keep_open
        self._stat_fds: dict[int, int] = {}
        self._known: dict[int, _Known] = {}
        self._machine = Machine.read() if _HAVE_PROC else None
        self._users: dict[int, str] = {}
        self._fallback: Any = None  # psutil, where there is no /proc
        self._samples = 0

    def forget(self, pid: int) -> None:
        self._known.pop(pid, None)
        fd = self._stat_fds.pop(pid, None)
        if fd is not None:
            os.close(fd)

    def keep_only(self, pids: set[int]) -> None:
        """Close the files kept open for processes not in `pids` (children of watched
        processes are sampled through their parent and keep no file)."""
        for pid in [pid for pid in self._stat_fds if pid not in pids]:
            fd = self._stat_fds.pop(pid)
            os.close(fd)

    def close(self) -> None:
        """Release the descriptors kept open (sampling can go on: they are reopened)."""
        for fd in self._stat_fds.values():
            os.close(fd)
        self._stat_fds.clear()

    def _read_stat(self, pid: int) -> bytes:
        if not self._keep_open:
            return _read(f"/proc/{pid}/stat")
        fd = self._stat_fds.get(pid)
        if fd is None:
            fd = os.open(f"/proc/{pid}/stat", _READ_FLAGS)
            self._stat_fds[pid] = fd
        return os.pread(fd, 4096, 0)  # ESRCH once that process is gone, even if pid is reused

    def _prune(self, when: float) -> None:
        """Drop what is kept for processes not sampled for a while (they died between
        samples): the cache never outgrows the processes actually watched."""
        self._samples = 0
        stale = [pid for pid, known in self._known.items() if known.last_when < when - STALE]
        for pid in stale:
            self.forget(pid)
        for pid in [pid for pid in self._stat_fds if pid not in self._known]:
            self.forget(pid)

    def info(self, pid: int, with_children: bool = True) -> dict[str, Any] | str:
        if self._machine is None:
            if self._fallback is None:
                from bigtop.runtime.procinfo_psutil import PsutilInfo

                self._fallback = PsutilInfo()
            return self._fallback.info(pid, with_children)  # type: ignore[no-any-return]
        try:
            stat = parse_stat(self._read_stat(pid).decode("utf-8", "replace"))
        except (FileNotFoundError, ProcessLookupError):
            self.forget(pid)
            return GONE
        except (OSError, ValueError, IndexError):
            return NA
        if stat.state in ("Z", "X"):
            return GONE  # exited, not yet reaped: Circus's psutil reports it gone as well
        now = time.time()
        when = time.monotonic()
        self._samples += 1
        if self._samples >= PRUNE_EVERY:
            self._prune(when)
        known = self._known.get(pid)
        if known is None or known.start_ticks != stat.start_ticks:
            known = self._learn(pid, stat.start_ticks)
        elif not known.exec_seen:
            known.cmdline, known.exec_seen = self._cmdline(pid), True
        cpu = cpu_percent(stat.cpu_ticks, when, known.last, self._machine.hz)
        known.last = (stat.cpu_ticks, when)
        data = figures(pid, stat, self._machine, cpu, known.username, known.cmdline, now)
        if with_children:
            data["children"] = [
                child
                for child in (self.info(c, False) for c in self._children(known, pid, stat))
                if isinstance(child, dict)
            ]
        return data

    def _children(self, known: _Known, pid: int, stat: StatFields) -> list[int]:
        """Direct children, re-read every few samples: a process's set of children changes
        rarely, and their figures are still sampled every time (a child that ended is
        dropped as gone)."""
        known.children_age += 1
        if known.children is None or known.children_age >= CHILDREN_EVERY:
            known.children = _read_children(pid, stat.threads)
            known.children_age = 0
        return known.children

    def _learn(self, pid: int, start_ticks: int) -> _Known:
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
            username = self._username(uid)
        except OSError:
            username = NA
        known = _Known(start_ticks, username, self._cmdline(pid), exec_seen=False)
        self._known[pid] = known
        return known

    def _username(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)  # as psutil does for a uid with no passwd entry
            self._users[uid] = name
        return name

    @staticmethod
    def _cmdline(pid: int) -> str:
        try:
            argv0 = _read(f"/proc/{pid}/cmdline").split(b"\0", 1)[0]
        except OSError:
            return NA
        return os.path.basename(argv0.decode("utf-8", "replace")) if argv0 else NA


def _read_children(pid: int, threads: int) -> list[int]:
    """Direct children; a single-threaded process has them all in one file."""
    if threads == 1:
        try:
            return [int(child) for child in _read(f"/proc/{pid}/task/{pid}/children").split()]
        except FileNotFoundError:
            pass  # no CONFIG_PROC_CHILDREN, or the process is going: the general path
        except OSError:
            return []
    from bigtop.runtime.proctree import direct_children

    return direct_children(pid)
