"""The runtime with real children: spawning, respawn policy, stopping, recycling."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.helpers import PYTHON, alive, argv_of, async_wait_until

SLEEP = f"{PYTHON} -c 'import time; time.sleep(3600)'"
IGNORE_TERM = (
    f"{PYTHON} -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print(1, flush=True); time.sleep(3600)'"
)


async def test_spawns_numprocesses_real_children(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:sleepers]
        cmd = {SLEEP} spawns
        numprocesses = 3
        """
    )
    pids = await d.wait_pids("sleepers", 3)
    for pid in pids:
        assert os.getpgid(pid) == pid, "each child leads its own session/process group"
        assert argv_of(pid)[-1] == b"spawns"
    assert d.watcher("sleepers").status == "active"
    assert d.topics(".spawn") == ["watcher.sleepers.spawn"] * 3
    assert d.topics(".start") == ["watcher.sleepers.start"]


async def test_sigkill_of_one_process_is_replaced_at_once(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} sigkill
        numprocesses = 2
        """
    )
    first, second = await d.wait_pids("web", 2)
    killed_at = time.monotonic()
    os.kill(first, signal.SIGKILL)
    pids = await async_wait_until(
        lambda: (p := d.pids("web")) and first not in p and len(p) == 2 and p,
        what="a replacement",
    )
    assert time.monotonic() - killed_at < 2.0
    assert second in pids
    entry = d.watcher("web").history[-1]
    assert (entry.pid, entry.signal, entry.restart_in) == (first, 9, 0.0)
    reap = [m for t, m in d.events if t == "watcher.web.reap"]
    assert reap[-1]["process_pid"] == first and reap[-1]["exit_code"] == -9


async def test_clean_exit_under_on_failure_is_not_replaced(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:job]
        cmd = {PYTHON} -c 'import sys; sys.exit(0)'
        respawn = on-failure
        """
    )
    await async_wait_until(lambda: d.watcher("job").status == "stopped", what="job finished")
    assert len(d.topics(".spawn")) == 1
    entry = d.watcher("job").history[-1]
    assert entry.exit_code == 0 and entry.restart_in is None


async def test_failure_under_on_failure_is_replaced(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:job]
        cmd = {PYTHON} -c 'import sys; sys.exit(4)'
        respawn = on-failure
        backoff_initial = 0.05
        backoff_max = 0.05
        """
    )
    await async_wait_until(lambda: len(d.topics(".spawn")) >= 3, what="respawns")
    assert d.watcher("job").history[0].exit_code == 4


async def test_crash_loop_backs_off_and_resets_after_a_stable_run(daemon, tmp_path: Path) -> None:
    flag = tmp_path / "stable"
    script = (
        f"{PYTHON} -c 'import os, sys, time; "
        f'sys.exit(1) if not os.path.exists("{flag}") else time.sleep(3600)\''
    )
    d = await daemon(
        f"""
        [watcher:crashy]
        cmd = {script}
        backoff_initial = 0.1
        backoff_max = 0.4
        backoff_reset = 1.0
        """
    )
    watcher = d.watcher("crashy")
    await async_wait_until(lambda: len(watcher.history) >= 5, timeout=15, what="five crashes")
    delays = [entry.restart_in for entry in watcher.history[:5]]
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.4]
    flag.write_text("now stay up")
    [pid] = await d.wait_pids("crashy", 1, timeout=5)
    await async_wait_until(
        lambda: (
            time.monotonic() - watcher.core.procs[pid].started_at >= 1.1
            if pid in watcher.core.procs
            else False
        ),
        what="a stable run",
    )
    flag.unlink()
    os.kill(pid, signal.SIGKILL)
    # its replacement may crash and be reaped in the same loop turn: look the entry up by pid
    [entry] = await async_wait_until(
        lambda: [e for e in watcher.history if e.pid == pid], what="the reap"
    )
    assert entry.restart_in == 0.0, "a stable run resets the backoff"


async def test_graceful_stop_escalates_to_sigkill_after_graceful_timeout(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:stubborn]
        cmd = {IGNORE_TERM}
        graceful_timeout = 0.5
        """
    )
    [pid] = await d.wait_pids("stubborn", 1)
    await async_wait_until(lambda: _ignores_term(pid), what="the handler installed")
    started = time.monotonic()
    await d.watcher("stubborn").stop()
    elapsed = time.monotonic() - started
    assert not alive(pid)
    assert 0.45 <= elapsed < 5
    entry = d.watcher("stubborn").history[-1]
    assert entry.signal == signal.SIGKILL
    kills = [m["process_pid"] for t, m in d.events if t == "watcher.stubborn.kill"]
    assert kills == [pid, pid], "one kill event for SIGTERM, one for the SIGKILL escalation"


def _ignores_term(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


async def test_stop_leaves_no_descendant_even_ones_that_left_the_group(daemon) -> None:
    # The child starts a grandchild in its own group and one in a new session; a TERM makes
    # the child exit at once, orphaning both: bigtop must still kill them.
    tree = (
        f"{PYTHON} -c 'import subprocess, time, sys; "
        'a = subprocess.Popen(["sleep", "3600.5"]); '
        'b = subprocess.Popen(["sleep", "3600.6"], start_new_session=True); '
        "print(a.pid, b.pid, flush=True); time.sleep(3600)'"
    )
    d = await daemon(
        f"""
        [watcher:tree]
        cmd = {tree}
        graceful_timeout = 2
        """
    )
    [pid] = await d.wait_pids("tree", 1)
    from bigtop.runtime.proctree import descendants

    grandchildren = await async_wait_until(
        lambda: (g := descendants(pid)) and len(g) == 2 and g, what="two grandchildren"
    )
    await d.watcher("tree").stop()
    await async_wait_until(
        lambda: not any(alive(p) for p in [pid, *grandchildren]), what="every descendant gone"
    )


async def test_max_age_recycles_processes(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:aged]
        cmd = {SLEEP} aged
        max_age = 1
        max_age_variance = 0
        graceful_timeout = 1
        """
    )
    [first] = await d.wait_pids("aged", 1)
    born = d.watcher("aged").core.procs[first].started_at  # the loop's clock is monotonic
    second = await async_wait_until(
        lambda: (p := d.pids("aged")) and p[0] != first and p[0], timeout=10, what="recycling"
    )
    assert time.monotonic() - born >= 0.9
    assert not alive(first) and alive(second)
    assert d.watcher("aged").history[-1].reason == "max_age reached"


async def test_scale_up_and_down_stops_oldest_first(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:pool]
        cmd = {SLEEP} pool
        numprocesses = 2
        """
    )
    await d.wait_pids("pool", 2)
    watcher = d.watcher("pool")
    oldest = min(watcher.core.procs.values(), key=lambda p: p.started_at).pid
    watcher.scale(4)
    await d.wait_pids("pool", 4)
    watcher.scale(3)
    pids = await d.wait_pids("pool", 3)
    assert oldest not in pids
    await async_wait_until(lambda: len(watcher.core.procs) == 3, what="the surplus gone")
    assert not alive(oldest)
    assert sorted(p.wid for p in watcher.core.procs.values()) == [2, 3, 4]


async def test_missing_command_is_retried_with_backoff_and_daemon_stays_up(
    daemon, tmp_path: Path
) -> None:
    program = tmp_path / "app.sh"
    program.write_text("#!/bin/sh\nexec sleep 3600.7\n")
    program.chmod(0o755)
    d = await daemon(
        f"""
        [watcher:app]
        cmd = {program}
        backoff_initial = 0.05
        backoff_max = 0.2

        [watcher:other]
        cmd = {SLEEP} other
        """
    )
    [pid] = await d.wait_pids("app", 1)
    program.unlink()  # a deploy removed the binary
    os.kill(pid, signal.SIGKILL)
    watcher = d.watcher("app")
    await async_wait_until(
        lambda: sum("cannot start" in e.reason for e in watcher.history) >= 4,
        what="spawn failures",
    )
    failures = [e for e in watcher.history if "cannot start" in e.reason]
    assert "does not exist" in failures[0].reason and str(program) in failures[0].reason
    assert [e.restart_in for e in failures[:3]] == [0.05, 0.1, 0.2]
    # the daemon is alive and its other watcher untouched
    assert len(d.pids("other")) == 1
    program.write_text("#!/bin/sh\nexec sleep 3600.8\n")
    program.chmod(0o755)
    await d.wait_pids("app", 1, timeout=5)


async def test_not_executable_command_gives_a_clear_reason(daemon, tmp_path: Path) -> None:
    program = tmp_path / "app.sh"
    program.write_text("#!/bin/sh\nexec sleep 3600.9\n")
    program.chmod(0o755)
    d = await daemon(
        f"""
        [watcher:app]
        cmd = {program}
        backoff_initial = 0.05
        """
    )
    [pid] = await d.wait_pids("app", 1)
    program.chmod(0o644)
    os.kill(pid, signal.SIGKILL)
    watcher = d.watcher("app")
    await async_wait_until(
        lambda: any("permission denied" in e.reason for e in watcher.history), what="failure"
    )


async def test_no_zombie_is_left_after_crashes(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:crash]
        cmd = {PYTHON} -c 'raise SystemExit(2)'
        numprocesses = 3
        backoff_initial = 0.01
        backoff_max = 0.02
        """
    )
    await async_wait_until(lambda: len(d.topics(".reap")) >= 15, what="many crashes")
    await d.quit()
    me = os.getpid()
    zombies = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == me:
                zombies.append(int(entry))
    assert zombies == []
