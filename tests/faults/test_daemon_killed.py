"""The daemon killed with SIGKILL, at scale and at the worst moment: the next `bigtop run` with
the same config stops what the dead one left (process groups included) before it starts fresh
processes, so at no moment do two copies run. (The basic case is tests/e2e/test_daemon_killed.py;
why bigtop stops leftovers rather than adopting them is in docs/restart-policy.md.)"""

from __future__ import annotations

import os
import signal
import threading
import time

from tests.e2e.daemon import Daemon, DaemonPool
from tests.faults import launch
from tests.faults.observe import report, tagged
from tests.helpers import alive, wait_until


class Sampler:
    """Counts the tagged processes every few milliseconds, keeping the largest count."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.most = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.most = max(self.most, len(tagged(self.tag)))
            self.samples += 1

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def kill_and_restart(pool: DaemonPool, first: Daemon, ini: str) -> Daemon:
    """SIGKILL `first`; start the same config again (the same endpoints, so the same record)."""
    os.kill(first.pid, signal.SIGKILL)
    first.process.wait(10)
    second = launch.start(pool, ini, sockets=first.sockets)
    second.wait_ready(timeout=30)
    return second


def test_never_two_copies_of_sixty_processes_and_their_children(
    bigtop: DaemonPool, tag: str
) -> None:
    ini = f"""
        [watcher:plain]
        cmd = sleep {tag}
        numprocesses = 40

        [watcher:family]
        cmd = sh -c 'sleep {tag} & exec sleep {tag}'
        numprocesses = 10
        """
    first = launch.start(bigtop, ini)
    first.wait_ready()
    wait_until(lambda: len(tagged(tag)) == 60, 20, what="40 processes and 10 families")
    old = set(tagged(tag))
    with Sampler(tag) as sampler:
        started = time.monotonic()
        second = kill_and_restart(bigtop, first, ini)
        wait_until(lambda: len(second.running(tag)) == 50, 30, what="50 fresh processes")
        wait_until(lambda: len(tagged(tag)) == 60, 30, what="fresh families complete")
        elapsed = time.monotonic() - started
    assert not [pid for pid in old if alive(pid)], "a leftover still runs"
    assert sampler.most <= 60, f"{sampler.most} copies ran at once"
    assert "left 50 process(es) running" in second.output()
    assert second.stop() == 0
    report(
        "daemon_killed",
        processes=50,
        grandchildren=10,
        most_running_at_once=sampler.most,
        samples=sampler.samples,
        seconds_to_fresh_processes=round(elapsed, 2),
    )


def test_killed_right_after_a_spawn(bigtop: DaemonPool, tag: str) -> None:
    """The process spawned just before the SIGKILL is in the record too (with the record
    written 50 ms after a spawn, it was not, and ran on unmanaged)."""
    ini = f"[watcher:web]\ncmd = sleep {tag}\nnumprocesses = 2\n"
    for attempt in range(3):
        first = launch.start(bigtop, ini)
        first.wait_ready()
        first.wait_running(tag, 2)
        reply = first.call("incr", name="web", waiting=True)
        assert reply["numprocesses"] == 3
        os.kill(first.pid, signal.SIGKILL)  # at once: no time for a delayed write
        first.process.wait(10)
        left = tagged(tag)
        assert len(left) == 3, left
        second = launch.start(bigtop, ini, sockets=first.sockets)
        second.wait_ready(timeout=30)
        wait_until(
            lambda left=left: not [p for p in left if alive(p)], 15, what="every leftover gone"
        )
        second.wait_running(tag, 2)
        assert len(tagged(tag)) == 2, f"attempt {attempt}: an unrecorded process still runs"
        assert second.stop() == 0
