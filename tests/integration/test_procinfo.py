"""Process figures checked against an independent reading of /proc (and psutil)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from bigtop.runtime import proctree
from bigtop.runtime.procinfo import GONE, ProcessInfo, cpu_percent, parse_stat
from tests.helpers import PYTHON

HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
UNITS = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def human_to_bytes(text: str) -> float:
    return float(text[:-1]) * UNITS[text[-1]]


def proc_stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat from field 3 on, parsed independently of bigtop."""
    with open(f"/proc/{pid}/stat") as handle:
        text = handle.read()
    return text[text.rindex(")") + 2 :].split()


def cpu_ticks(pid: int) -> int:
    fields = proc_stat(pid)
    return int(fields[11]) + int(fields[12])


def vm_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {predicate}")


@pytest.fixture
def spawn() -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start(code: str) -> subprocess.Popen[bytes]:
        child = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE)
        started.append(child)
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"  # set up before we measure
        return child

    yield start
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


BUSY = "import os; print('ready', flush=True)\nwhile True: pass"
IDLE = (
    "import os, time; os.nice(5); block = bytearray(48 << 20); block[::4096] = b'x' * len(block[::4096]);"
    " print('ready', flush=True); time.sleep(3600)"
)


def test_a_busy_and_an_idle_child_match_an_independent_reading(spawn) -> None:
    busy, idle = spawn(BUSY), spawn(IDLE)
    info = ProcessInfo()
    first = {pid: info.info(pid) for pid in (busy.pid, idle.pid)}
    assert first[busy.pid]["cpu"] == 0.0  # the first sample has nothing to compare with
    ticks_before, when_before = cpu_ticks(busy.pid), time.monotonic()
    time.sleep(1.0)  # the measured interval itself: CPU is a rate over time
    busy_info, idle_info = info.info(busy.pid), info.info(idle.pid)
    ticks_after, when_after = cpu_ticks(busy.pid), time.monotonic()
    expected = (ticks_after - ticks_before) / HZ / (when_after - when_before) * 100
    assert isinstance(busy_info, dict) and isinstance(idle_info, dict)
    assert busy_info["cpu"] > 20, busy_info  # it spins (less than 100 on a shared machine)
    assert abs(busy_info["cpu"] - expected) <= max(10.0, expected * 0.15), (busy_info, expected)
    assert idle_info["cpu"] == 0.0

    rss = vm_rss(idle.pid)
    assert rss > 48 << 20
    assert abs(human_to_bytes(idle_info["mem_info1"]) - rss) <= rss * 0.02, idle_info
    vms = int(proc_stat(idle.pid)[20])
    assert abs(human_to_bytes(idle_info["mem_info2"]) - vms) <= vms * 0.01
    assert idle_info["mem"] == pytest.approx(rss / psutil.virtual_memory().total * 100, abs=0.01)
    assert idle_info["nice"] == 5 and busy_info["nice"] == 0
    assert idle_info["username"] == pwd.getpwuid(os.getuid()).pw_name
    assert idle_info["cmdline"] == os.path.basename(sys.executable)
    created = psutil.Process(idle.pid).create_time()
    assert idle_info["create_time"] == pytest.approx(created, abs=0.05)
    assert idle_info["age"] == pytest.approx(time.time() - created, abs=0.5)
    user, system = int(proc_stat(idle.pid)[11]), int(proc_stat(idle.pid)[12])
    minutes, seconds = idle_info["ctime"].split(":")
    assert int(minutes) * 60 + float(seconds) == pytest.approx((user + system) / HZ, abs=0.05)
    assert idle_info["children"] == []


def test_direct_children_are_listed_without_further_nesting(spawn) -> None:
    parent = spawn(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        '\'import subprocess, sys, time; subprocess.Popen(["sleep", "3600"]); time.sleep(3600)\'])\n'
        "print('ready', flush=True); time.sleep(3600)"
    )

    def direct_once_all_started() -> list[psutil.Process] | None:
        family = psutil.Process(parent.pid).children(recursive=True)
        return psutil.Process(parent.pid).children() if len(family) == 2 else None

    children = wait_for(direct_once_all_started)
    try:
        data = ProcessInfo().info(parent.pid)
        assert isinstance(data, dict)
        assert [c["pid"] for c in data["children"]] == [children[0].pid]
        assert "children" not in data["children"][0]
    finally:
        for proc in psutil.Process(parent.pid).children(recursive=True):
            proc.kill()


MANY_CHILDREN = 1000  # the kernel's children file gives ~819 five-digit pids per read


def test_a_thousand_children_are_all_found(spawn) -> None:
    """A list of children longer than a page comes in several reads: all of them count,
    for stats (kept-open files and not) and for the stop's sweep of descendants."""
    parent = spawn(
        "import signal, subprocess, sys, time\n"
        f"kids = [subprocess.Popen(['sleep', '3600']) for _ in range({MANY_CHILDREN})]\n"
        "def end(*_):\n"
        "    for kid in kids: kid.kill()\n"
        "    for kid in kids: kid.wait()\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, end)\n"
        "print('ready', flush=True); time.sleep(3600)"
    )
    try:
        expected = sorted(child.pid for child in psutil.Process(parent.pid).children())
        assert len(expected) == MANY_CHILDREN
        assert sorted(proctree.descendants(parent.pid)) == expected
        for keep_open in (False, True):
            info = ProcessInfo(keep_open=keep_open)
            for _ in range(2):  # (the second time, from the kept-open file)
                sample = info.sample(parent.pid)
                assert not isinstance(sample, str)
                assert sorted(sample.children) == expected
                info._known[parent.pid].children = None  # read them again next time
            info.close()
    finally:
        parent.terminate()  # it kills and reaps its children
        parent.wait(30)


def test_a_vanished_process_is_reported_as_circus_does(spawn) -> None:
    child = spawn("print('ready', flush=True); import time; time.sleep(3600)")
    info = ProcessInfo()
    assert isinstance(info.info(child.pid), dict)
    child.kill()
    wait_for(lambda: proc_stat(child.pid)[0] == "Z")
    assert info.info(child.pid) == GONE  # exited, not yet reaped
    child.wait()
    assert info.info(child.pid) == GONE


def test_a_recycled_pid_starts_a_fresh_cpu_measure() -> None:
    info = ProcessInfo()
    own = info.info(os.getpid())
    assert isinstance(own, dict)
    known = info._known[os.getpid()]
    known.start_ticks -= 1  # as if the pid had been another process's
    known.raw = b"another process's stat line"
    known.last = (0, time.monotonic() - 1)  # which would give an absurd figure
    again = info.info(os.getpid())
    assert isinstance(again, dict) and again["cpu"] == 0.0


def test_parse_stat_survives_odd_command_names() -> None:
    line = "42 (a) b (c) S 1 42 42 0 -1 4194560 10 0 0 0 7 3 0 0 20 -2 3 0 1234 5000 12 rest"
    fields = parse_stat((line + " 0" * 30).encode())
    assert (fields.state, fields.ppid, fields.cpu_ticks) == (b"S", 1, 10)
    assert (fields.nice, fields.threads, fields.start_ticks) == (-2, 3, 1234)
    assert (fields.vsize, fields.rss_pages) == (5000, 12)


def test_cpu_percent_between_two_samples() -> None:
    assert cpu_percent(500, 10.0, None, 100) == 0.0
    assert cpu_percent(150, 11.0, (100, 10.0), 100) == 50.0
    assert cpu_percent(400, 11.0, (100, 10.0), 100) == 300.0  # three busy threads
    assert cpu_percent(100, 10.0, (100, 10.0), 100) == 0.0
    assert cpu_percent(90, 11.0, (100, 10.0), 100) == 0.0  # never negative


def test_the_psutil_fallback_gives_the_same_fields(spawn) -> None:
    from bigtop.runtime.procinfo_psutil import PsutilInfo

    child = spawn(IDLE)
    fast, fallback = ProcessInfo().info(child.pid), PsutilInfo().info(child.pid)
    assert isinstance(fast, dict) and isinstance(fallback, dict)
    assert set(fast) == set(fallback)
    for key in ("pid", "cmdline", "username", "nice"):
        assert fast[key] == fallback[key], key
    rss = human_to_bytes(fallback["mem_info1"])
    assert human_to_bytes(fast["mem_info1"]) == pytest.approx(rss, rel=0.02)
    assert fast["create_time"] == pytest.approx(fallback["create_time"], abs=0.05)


def test_kept_open_stat_files_see_a_process_go_and_are_closed(spawn) -> None:
    child = spawn("print('ready', flush=True); import time; time.sleep(3600)")
    info = ProcessInfo(keep_open=True)
    assert isinstance(info.info(child.pid), dict) and isinstance(info.info(child.pid), dict)
    fd = info._stat_files.fds[child.pid]
    assert os.readlink(f"/proc/self/fd/{fd}") == f"/proc/{child.pid}/stat"
    child.kill()
    child.wait()
    assert info.info(child.pid) == GONE  # the open file says so, even if the pid were reused
    assert child.pid not in info._stat_files.fds
    assert (
        not os.path.exists(f"/proc/self/fd/{fd}")
        or os.readlink(f"/proc/self/fd/{fd}") != f"/proc/{child.pid}/stat"
    )
    own = info.info(os.getpid())
    assert isinstance(own, dict) and info._stat_files.fds
    info.close()
    assert info._stat_files.fds == {}
