"""Slow consumers: an events subscriber that never reads, and a `bigtop logs -f` that stops
reading (suspended, as with Ctrl-Z), do not grow the daemon's memory or slow other clients."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import zmq

from bigtop.control.client import Client
from bigtop.runtime.logbook import MAX_UNRENEWED_BYTES
from tests.e2e.daemon import Daemon, DaemonPool
from tests.faults.observe import EventLog, report, rss_kib, settled_footprint
from tests.helpers import PYTHON, wait_until

# About 5 MB/s of 100-byte lines, in bursts of 5,000 lines.
CHATTY = """\
import sys, time
block = "".join(f"{i:08} {'x' * 90}\\n" for i in range(5000))
while True:
    sys.stdout.write(block)
    sys.stdout.flush()
    time.sleep(0.1)
"""
# `set` publishes one `updated` event per option; these change nothing that matters here.
TEN_OPTIONS = {
    "graceful_timeout": 1, "warmup_delay": 0, "max_retry": 5, "priority": 0,
    "send_hup": False, "stop_children": False, "autostart": True, "backoff_initial": 0.5,
    "backoff_max": 30, "backoff_reset": 1,
}  # fmt: skip
RSS_MARGIN_KIB = 24 * 1024


def chatty_config(output: Path, tag: int) -> str:
    script = output.with_suffix(".py")
    script.write_text(CHATTY)
    return f"""
        [watcher:chatty]
        cmd = {PYTHON} {script} {tag}
        stdout_stream.class = FileStream
        stdout_stream.filename = {output}

        [watcher:quiet]
        cmd = sleep 3600.{tag}
        """


def round_trips(daemon: Daemon, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.monotonic()
        assert daemon.call("numwatchers", timeout=5)["status"] == "ok"
        times.append(time.monotonic() - started)
    return times


def test_a_suspended_logs_follower_holds_a_bounded_amount(
    bigtop: DaemonPool, tmp_path: Path
) -> None:
    output = tmp_path / "chatty.log"
    daemon = bigtop.start(chatty_config(output, 30))
    daemon.wait_ready()
    wait_until(lambda: output.exists() and output.stat().st_size > 5_000_000, 30)
    before = settled_footprint(daemon.pid)
    quick = round_trips(daemon, 20)
    follower = subprocess.Popen(
        [sys.executable, "-m", "bigtop", "logs", "-f", "chatty", "--endpoint", daemon.control],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        # it follows (a first line arrives), then it is suspended like a Ctrl-Z'd terminal
        assert follower.stdout is not None
        assert follower.stdout.readline()
        os.kill(follower.pid, signal.SIGSTOP)
        size = output.stat().st_size
        peaks = [0, 0]  # while the first 20 MB are printed, and the next 20 MB
        slow: list[float] = []

        def printed(megabytes: int, half: int) -> bool:
            peaks[half] = max(peaks[half], rss_kib(daemon.pid))
            slow.extend(round_trips(daemon, 1))
            return output.stat().st_size > size + megabytes * 1_000_000

        wait_until(lambda: printed(20, 0), 40, interval=0.05, what="20 MB more output")
        wait_until(lambda: printed(40, 1), 40, interval=0.05, what="40 MB more output")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(follower.pid, signal.SIGKILL)
            os.kill(follower.pid, signal.SIGCONT)
        follower.wait(10)
        if follower.stdout is not None:
            follower.stdout.close()
    figures = {
        "printed_mb": round((output.stat().st_size - size) / 1e6),
        "rss_kib_before": before.rss_kib,
        "rss_kib_peak_first_20mb": peaks[0],
        "rss_kib_peak_next_20mb": peaks[1],
        "round_trip_median_ms_before": round(statistics.median(quick) * 1000, 2),
        "round_trip_median_ms_during": round(statistics.median(slow) * 1000, 2),
        "round_trip_max_ms_during": round(max(slow) * 1000, 1),
    }
    report("slow_logs_follower", **figures)
    # what it may hold: its renewal budget of output, as JSON lines (about 1.5x)
    assert max(peaks) - before.rss_kib < MAX_UNRENEWED_BYTES * 2.5 / 1024, figures
    assert peaks[1] - peaks[0] < 4096, f"still growing: {figures}"
    assert statistics.median(slow) < 0.05, figures


def publish_many(client: Client, sets: int) -> None:
    """`sets` x 10 events: casts sent in bursts, each burst closed by a call."""
    for burst in range(0, sets, 500):
        for _ in range(min(500, sets - burst) - 1):
            client.cast("set", name="quiet", options=TEN_OPTIONS)
        client.call("set", name="quiet", options=TEN_OPTIONS)


def test_an_events_subscriber_that_never_reads(bigtop: DaemonPool) -> None:
    daemon = bigtop.start("[watcher:quiet]\ncmd = sleep 3600.31\n")
    daemon.wait_ready()
    events = EventLog(daemon.pubsub).start()
    client = Client(daemon.control, timeout=10)
    stuck = zmq.Context.instance().socket(zmq.SUB)
    try:
        wait_until(
            lambda: client.call("set", name="quiet", options={"priority": 0}) and events.mark() > 0,
            10,
            interval=0.1,
            what="the events subscription",
        )
        publish_many(client, 2000)  # warm up: every path has run, the buffers exist
        before = settled_footprint(daemon.pid)
        stuck.setsockopt(zmq.LINGER, 0)
        stuck.setsockopt(zmq.RCVHWM, 1)  # what it does not read stays in the daemon
        stuck.setsockopt(zmq.SUBSCRIBE, b"")
        stuck.connect(daemon.pubsub)
        mark = events.mark()
        wait_until(
            lambda: client.call("set", name="quiet", options={"priority": 0}) and stuck.poll(0),
            10,
            interval=0.1,
            what="the stuck subscriber to be connected",
        )
        started = time.monotonic()
        publish_many(client, 10_000)  # 100,000 events
        elapsed = time.monotonic() - started
        quick = round_trips(daemon, 20)
        after = settled_footprint(daemon.pid)
        # the subscriber that reads got them all
        wait_until(lambda: events.mark() - mark >= 100_000, 20, what="every event for the reader")
    finally:
        stuck.close(linger=0)
        client.close()
        events.close()
    figures = {
        "events": 100_000,
        "events_per_second": round(100_000 / elapsed),
        "rss_kib": [before.rss_kib, after.rss_kib],
        "round_trip_median_ms_after": round(statistics.median(quick) * 1000, 2),
    }
    report("stuck_events_subscriber", **figures)
    assert after.rss_kib - before.rss_kib < RSS_MARGIN_KIB, figures
