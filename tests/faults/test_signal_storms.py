"""Signal storms to the daemon: SIGHUP x100, SIGCHLD floods, SIGTERM during a reload. Each
ends in a consistent state: the right processes (no old one left, no zombie), a daemon that
answers, and for SIGTERM a prompt, clean exit with every child gone."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.e2e.daemon import Daemon, DaemonPool
from tests.faults.observe import EventLog, report, settled_footprint, zombies_of
from tests.helpers import alive, children_of, wait_until

TWO_WATCHERS = """
    [watcher:a]
    cmd = sleep 3600.{tag}
    numprocesses = 2
    graceful_timeout = 1

    [watcher:b]
    cmd = sleep 3601.{tag}
    numprocesses = 2
    graceful_timeout = 1
    """


def consistent(daemon: Daemon, counts: dict[str, int]) -> bool:
    """Each watcher active with exactly its processes, all alive, and nothing else running."""
    for name, count in counts.items():
        if daemon.call("status", name=name)["status"] != "active":
            return False
        pids = daemon.call("list", name=name)["pids"]
        if len(pids) != count or not all(alive(p) for p in pids):
            return False
    live = [p for p in children_of(daemon.pid) if alive(p)]
    return len(live) == sum(counts.values()) and not zombies_of(daemon.pid)


def test_a_hundred_sighups_in_a_row(bigtop: DaemonPool) -> None:
    daemon = bigtop.start(TWO_WATCHERS.format(tag=20))
    daemon.wait_ready()
    before = daemon.wait_running("sleep 360", 4)
    started = time.monotonic()
    for _ in range(100):
        os.kill(daemon.pid, signal.SIGHUP)
    counts = {"a": 2, "b": 2}

    def reloads() -> tuple[int, int]:
        """(reloads started, reloads finished by both watchers), from the daemon's log."""
        log = daemon.output()
        return log.count("reloading every watcher"), log.count("reloaded every watcher")

    def settled() -> bool:
        begun, done = reloads()
        return begun > 0 and begun == done and consistent(daemon, counts)

    wait_until(settled, 30, interval=0.05, what="the reloads to end in a consistent state")
    elapsed = time.monotonic() - started
    after = daemon.running("sleep 360")
    assert not set(after) & set(before), "every process was replaced"
    begun, _ = reloads()
    # a SIGHUP that arrives while a reload waits to run adds nothing: the one waiting will
    # read the same config and replace the same processes
    assert begun <= 3, f"{begun} reloads for one burst of SIGHUPs"
    assert daemon.stop() == 0
    report("sighup_storm", signals=100, reloads=begun, seconds_to_settle=round(elapsed, 2))


def test_a_sigchld_flood_changes_nothing(bigtop: DaemonPool) -> None:
    daemon = bigtop.start(TWO_WATCHERS.format(tag=21))
    daemon.wait_ready()
    before = daemon.wait_running("sleep 360", 4)
    fds = settled_footprint(daemon.pid).fds  # the last client's connection closed
    started = time.monotonic()
    slowest = 0.0
    for index in range(100_000):
        os.kill(daemon.pid, signal.SIGCHLD)
        if index % 10_000 == 0:  # the daemon keeps answering during the flood
            asked = time.monotonic()
            assert daemon.call("numwatchers", timeout=5)["numwatchers"] == 2
            slowest = max(slowest, time.monotonic() - asked)
    elapsed = time.monotonic() - started
    assert consistent(daemon, {"a": 2, "b": 2})
    assert daemon.running("sleep 360") == before
    assert settled_footprint(daemon.pid).fds == fds
    assert daemon.stop() == 0
    report(
        "sigchld_flood",
        signals=100_000,
        seconds=round(elapsed, 2),
        slowest_reply_ms=round(slowest * 1000, 1),
    )


def slow_reload_config(ready: Path, tag: int) -> str:
    """Processes are ready only while `ready` exists: without it a reload never completes
    (old processes keep serving while their replacements are not ready)."""
    return f"""
        [watcher:web]
        cmd = sleep 3600.{tag}
        numprocesses = 2
        graceful_timeout = 1
        ready_check = test -e {ready}
        ready_timeout = 60

        [watcher:other]
        cmd = sleep 3601.{tag}
        graceful_timeout = 1
        """


def start_stuck_reload(bigtop: DaemonPool, tmp_path: Path, tag: int) -> tuple[Daemon, EventLog]:
    ready = tmp_path / "ready"
    ready.touch()
    daemon = bigtop.start(slow_reload_config(ready, tag))
    daemon.wait_ready()
    events = EventLog(daemon.pubsub).start()
    wait_until(
        lambda: (
            daemon.call("set", name="other", options={"graceful_timeout": 1}) and events.mark() > 0
        ),
        10,
        interval=0.1,
        what="the events subscription",
    )
    daemon.wait_running(f"sleep 3600.{tag}", 2)
    wait_until(
        lambda: all(
            state == "ready"
            for state in daemon.call("status", name="web", processes=True)["processes"].values()
        ),
        what="both processes ready",
    )
    ready.unlink()
    mark = events.mark()
    os.kill(daemon.pid, signal.SIGHUP)
    # the reload is under way: a replacement was spawned, and it cannot become ready
    events.wait_for(lambda topic, _: topic == "watcher.web.spawn", timeout=10)
    assert events.mark() > mark
    return daemon, events


def test_sigterm_during_a_reload_stops_at_once(bigtop: DaemonPool, tmp_path: Path) -> None:
    daemon, events = start_stuck_reload(bigtop, tmp_path, 22)
    try:
        # two old web processes, the new one (once it has exec'd), and other's
        daemon.wait_running("sleep 360", 4)
        children = daemon.children()  # with the readiness probes running now
        started = time.monotonic()
        assert daemon.stop(signal.SIGTERM, timeout=15) == 0
        elapsed = time.monotonic() - started
    finally:
        events.close()
    assert not [pid for pid in children if alive(pid)]
    assert "stopping every watcher" in daemon.output()
    assert not (daemon.sockets / "state.json").exists()
    assert elapsed < 5, f"SIGTERM took {elapsed:.1f}s during a reload"
    report("sigterm_during_reload", seconds_to_exit=round(elapsed, 2))


def test_sigterm_after_a_storm_of_sighups_stops_at_once(bigtop: DaemonPool, tmp_path: Path) -> None:
    daemon, events = start_stuck_reload(bigtop, tmp_path, 23)
    try:
        for _ in range(100):
            os.kill(daemon.pid, signal.SIGHUP)
        children = daemon.children()
        started = time.monotonic()
        assert daemon.stop(signal.SIGTERM, timeout=15) == 0
        elapsed = time.monotonic() - started
    finally:
        events.close()
    assert not [pid for pid in children if alive(pid)]
    assert elapsed < 5, f"SIGTERM took {elapsed:.1f}s behind queued reloads"


def test_sigterm_stops_a_suspended_process_at_once(bigtop: DaemonPool) -> None:
    """A process stopped with SIGSTOP (or Ctrl-Z) keeps a SIGTERM pending until it is
    continued: the stop signal is followed by SIGCONT, as systemd does, so it need not wait
    for graceful_timeout and a SIGKILL."""
    daemon = bigtop.start(
        """
        [watcher:a]
        cmd = sleep 3600.25
        numprocesses = 2
        graceful_timeout = 20
        """
    )
    daemon.wait_ready()
    pids = daemon.wait_running("sleep 3600.25", 2)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: all(_state(pid) == "T" for pid in pids), what="both suspended")
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM, timeout=30) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"stopping suspended processes took {elapsed:.1f}s"
    assert "killed by SIGKILL" not in daemon.output()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0]
