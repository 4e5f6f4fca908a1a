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
import resource
import time
from dataclasses import dataclass
from typing import Any

from bigtop.runtime.proctree import direct_children, read_all

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
@dataclass(slots=True)
class StatFields:
    """What one line of /proc/PID/stat says (times in clock ticks, sizes in bytes/pages).
    (Not frozen: a frozen dataclass's __init__ doubled the cost of a sample.)"""

    state: bytes
    ppid: int
    cpu_ticks: int  # utime + stime
    user_ticks: int
    system_ticks: int
    nice: int
    threads: int
    start_ticks: int  # since boot
    vsize: int  # bytes
    rss_pages: int


def parse_stat(raw: bytes) -> StatFields:
    """Parse /proc/PID/stat. The command name (field 2) may hold spaces and parentheses,
    so the fields are counted from its last closing parenthesis."""
    rest = raw[raw.rindex(b")") + 2 :].split()
    # rest[0] is field 3 (state): field n is rest[n - 3]
    utime, stime = int(rest[11]), int(rest[12])
    return StatFields(
        rest[0],
        int(rest[1]),
        utime + stime,
        utime,
        stime,
        int(rest[16]),
        int(rest[17]),
        int(rest[19]),
        int(rest[20]),
        int(rest[21]),
    )


def cpu_percent(ticks: int, when: float, previous: tuple[int, float] | None, hz: int) -> float:
    """Percent of one core used between two samples (above 100 for a multi-threaded process
    on several cores, as psutil reports it); 0.0 for the first sample."""
    if previous is None:
        return 0.0
    last_ticks, last_when = previous
    if ticks == last_ticks:
        return 0.0
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


@dataclass(frozen=True, slots=True)
class Derived:
    """The figures one reading of /proc/PID/stat gives, formatted as Circus shows them. An
    idle process's stat file reads the same from one second to the next, so these are kept
    and reused until it changes."""

    stat: StatFields
    mem_info1: str
    mem_info2: str
    mem: float | str
    ctime: str
    create_time: float


def derive(stat: StatFields, machine: Machine) -> Derived:
    rss = stat.rss_pages * machine.page_size
    return Derived(
        stat,
        mem_info1=bytes2human(rss),
        mem_info2=bytes2human(stat.vsize),
        mem=round(rss / machine.mem_total * 100, 3) if machine.mem_total else NA,
        ctime=cpu_time(stat.cpu_ticks / machine.hz),
        create_time=machine.boot_time + stat.start_ticks / machine.hz,
    )


@dataclass(slots=True)
class Sample:
    """One process at one moment: its figures, and its direct children's pids (read every
    few samples)."""

    pid: int
    derived: Derived
    cpu: float
    age: float
    username: str
    cmdline: str
    children: list[int]


def figures(sample: Sample) -> dict[str, Any]:
    """Circus's process info fields from one sample (children are added by the caller)."""
    derived = sample.derived
    return {
        "pid": sample.pid,
        "mem_info1": derived.mem_info1,
        "mem_info2": derived.mem_info2,
        "cpu": sample.cpu,
        "mem": derived.mem,
        "ctime": derived.ctime,
        "username": sample.username,
        "nice": derived.stat.nice,
        "create_time": derived.create_time,
        "age": sample.age,
        "cmdline": sample.cmdline,
    }


# ---- I/O ----------------------------------------------------------------------------------
_READ_FLAGS = int(os.O_RDONLY | os.O_CLOEXEC)


def _open_files_budget() -> int:
    """How many stat files may stay open: a quarter of the open files limit, so that the
    processes' pipes never run short of descriptors because of the stats."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft // 4


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
    raw: bytes = b""  # the last reading of /proc/PID/stat
    derived: Derived | None = None  # and what it gave

    @property
    def last_when(self) -> float:
        return self.last[1] if self.last else 0.0


class _KeptOpen:
    """One /proc file of each process, kept open and re-read with pread: the stats stream
    reads it every second, and the open and close cost more than the read. At most `budget`
    stay open; past that, files are opened for each read."""

    def __init__(self, template: str, budget: int, *, paged: bool = False) -> None:
        self.template = template  # e.g. "/proc/{pid}/stat"
        self.budget = budget
        self.paged = paged  # may take more than one read (a list, not one line)
        self.fds: dict[int, int] = {}

    def read(self, pid: int) -> bytes:
        fd = self.fds.get(pid)
        if fd is None:
            path = self.template.format(pid=pid)
            if len(self.fds) >= self.budget:
                return read_all(path)
            fd = os.open(path, _READ_FLAGS)
            self.fds[pid] = fd
        data = os.pread(fd, 4096, 0)  # ESRCH once that process is gone, even if pid is reused
        if not self.paged:
            return data
        chunks = [data]  # a long list of children comes a page at a time: read to the end
        while chunks[-1]:
            chunks.append(os.pread(fd, 65536, sum(map(len, chunks))))
        return b"".join(chunks)

    def drop(self, pid: int) -> None:
        fd = self.fds.pop(pid, None)
        if fd is not None:
            os.close(fd)

    def keep_only(self, pids: set[int] | dict[int, Any]) -> None:
        for pid in [pid for pid in self.fds if pid not in pids]:
            self.drop(pid)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


class ProcessInfo:
    """Samples processes; keeps the previous sample of each so CPU is measured between calls."""

    def __init__(self, keep_open: bool = False) -> None:
        # keep_open: the stats stream samples every process every second; keeping each
        # /proc/PID/stat (and children file) open saves an open and a close per sample
        budget = _open_files_budget() // 2 if keep_open else 0
        self._stat_files = _KeptOpen("/proc/{pid}/stat", budget)
        self._children_files = _KeptOpen("/proc/{pid}/task/{pid}/children", budget, paged=True)
        self._known: dict[int, _Known] = {}
        self._machine = Machine.read() if _HAVE_PROC else None
        self._users: dict[int, str] = {}
        self._fallback: Any = None  # psutil, where there is no /proc
        self._samples = 0

    def forget(self, pid: int) -> None:
        self._known.pop(pid, None)
        self._stat_files.drop(pid)
        self._children_files.drop(pid)

    def keep_only(self, pids: set[int]) -> None:
        """Close the files kept open for processes not in `pids` (children of watched
        processes are sampled through their parent and keep no file)."""
        self._stat_files.keep_only(pids)
        self._children_files.keep_only(pids)

    def close(self) -> None:
        """Release the descriptors kept open (sampling can go on: they are reopened)."""
        self._stat_files.close()
        self._children_files.close()

    def _read_stat(self, pid: int) -> bytes:
        return self._stat_files.read(pid)

    def _prune(self, when: float) -> None:
        """Drop what is kept for processes not sampled for a while (they died between
        samples): the cache never outgrows the processes actually watched."""
        self._samples = 0
        stale = [pid for pid, known in self._known.items() if known.last_when < when - STALE]
        for pid in stale:
            self.forget(pid)
        self._stat_files.keep_only(self._known)
        self._children_files.keep_only(self._known)

    @property
    def reads_proc(self) -> bool:
        """False where there is no /proc: `sample` cannot serve, `info` goes through psutil."""
        return self._machine is not None

    def info(self, pid: int, with_children: bool = True) -> dict[str, Any] | str:
        """Circus's figures of one process (with its children's), or GONE or NA."""
        if self._machine is None:
            if self._fallback is None:
                from bigtop.runtime.procinfo_psutil import PsutilInfo

                self._fallback = PsutilInfo()
            return self._fallback.info(pid, with_children)  # type: ignore[no-any-return]
        sample = self.sample(pid, with_children)
        if isinstance(sample, str):
            return sample
        data = figures(sample)
        if with_children:
            data["children"] = self.children_figures(sample)
        return data

    def children_figures(self, sample: Sample) -> list[dict[str, Any]]:
        """The figures of those of the sample's children still there."""
        found = []
        for pid in sample.children:
            child = self.sample(pid, with_children=False)
            if not isinstance(child, str):
                found.append(figures(child))
        return found

    def sample(self, pid: int, with_children: bool = True) -> Sample | str:
        """One reading of /proc/PID/stat (reads_proc must be true), or GONE or NA."""
        assert self._machine is not None
        try:
            raw = self._read_stat(pid)
        except (FileNotFoundError, ProcessLookupError):
            self.forget(pid)
            return GONE
        except OSError:
            return NA
        when = time.monotonic()
        self._samples += 1
        if self._samples >= PRUNE_EVERY:
            self._prune(when)
        known = self._known.get(pid)
        if known is not None and raw == known.raw and known.derived is not None:
            derived = known.derived  # nothing changed since the last second: idle
        else:
            try:
                stat = parse_stat(raw)
            except (ValueError, IndexError):
                return NA
            if stat.state in (b"Z", b"X"):
                return GONE  # exited, not yet reaped: Circus's psutil reports it gone as well
            if known is None or known.start_ticks != stat.start_ticks:
                known = self._learn(pid, stat.start_ticks)
            elif not known.exec_seen:  # (an exec changes the stat line: its command name)
                known.cmdline, known.exec_seen = self._cmdline(pid), True
            derived = known.derived = derive(stat, self._machine)
            known.raw = raw
        stat = derived.stat
        cpu = cpu_percent(stat.cpu_ticks, when, known.last, self._machine.hz)
        known.last = (stat.cpu_ticks, when)
        age = max(0.0, time.time() - derived.create_time)
        children = self._children(known, pid, stat) if with_children else []
        return Sample(pid, derived, cpu, age, known.username, known.cmdline, children)

    def _children(self, known: _Known, pid: int, stat: StatFields) -> list[int]:
        """Direct children, re-read every few samples: a process's set of children changes
        rarely, and their figures are still sampled every time (a child that ended is
        dropped as gone)."""
        known.children_age += 1
        if known.children is None or known.children_age >= CHILDREN_EVERY:
            known.children = self._read_children(pid, stat.threads)
            known.children_age = 0
        return known.children

    def _read_children(self, pid: int, threads: int) -> list[int]:
        """Direct children; a single-threaded process has them all in one file."""
        if threads == 1:
            try:
                return [int(child) for child in self._children_files.read(pid).split()]
            except FileNotFoundError:
                pass  # no CONFIG_PROC_CHILDREN, or the process is going: the general path
            except OSError:
                return []
        self._children_files.drop(pid)  # (threads came: the main thread's file is not enough)
        return direct_children(pid)

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
            argv0 = read_all(f"/proc/{pid}/cmdline").split(b"\0", 1)[0]
        except OSError:
            return NA
        return os.path.basename(argv0.decode("utf-8", "replace")) if argv0 else NA
