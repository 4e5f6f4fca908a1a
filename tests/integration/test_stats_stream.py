"""The stats stream: Circus's `stat.*` topics and payloads, from the daemon itself."""

from __future__ import annotations

import json
import time
from typing import Any

import zmq
import zmq.asyncio

from bigtop.runtime.statsstream import aggregate
from tests.helpers import PYTHON, async_wait_until

SLEEP = f"{PYTHON} -c 'import time; time.sleep(3600)'"
INFO_FIELDS = {
    "pid", "mem_info1", "mem_info2", "cpu", "mem", "ctime", "username", "nice",
    "create_time", "age", "cmdline", "children", "subtopic", "name",
}  # fmt: skip


async def test_a_subscriber_gets_circus_topics_and_payloads(daemon, tmp_path) -> None:
    d = await daemon(
        f"""
        [circus]
        statsd = true

        [socket:web]
        host = 127.0.0.1
        port = 0

        [watcher:Web]
        cmd = {SLEEP} stats $(circus.sockets.web)
        numprocesses = 2
        """
    )
    pids = sorted(await d.wait_pids("Web", 2))
    sub = zmq.asyncio.Context.instance().socket(zmq.SUB)
    sub.connect(d.arbiter.endpoints.stats)
    sub.setsockopt(zmq.SUBSCRIBE, b"stat.")
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline and not {
            f"stat.web.{pids[0]}",
            "stat.web",
            "stat.circus",
            "stat.sockets",
        } <= set(seen):
            if await sub.poll(500):
                topic, body = await sub.recv_multipart()
                seen[topic.decode()] = json.loads(body)
    finally:
        sub.close(linger=0)
    process = seen[f"stat.web.{pids[0]}"]
    assert set(process) == INFO_FIELDS
    assert (process["pid"], process["subtopic"], process["name"]) == (pids[0], pids[0], None)
    summary = seen["stat.web"]
    assert sorted(summary["pid"]) == pids and isinstance(summary["cpu"], float)
    assert seen["stat.circus"]["pid"] and set(seen["stat.sockets"]) == {"addresses", "reads"}


def test_aggregate_is_circus_summary() -> None:
    infos = [
        {"pid": 1, "cpu": 10.0, "mem": 1.5, "age": 3.0},
        {"pid": 2, "cpu": 30.0, "mem": 2.5, "age": 9.0},
    ]
    assert aggregate(infos) == {"pid": [1, 2], "cpu": 20.0, "mem": 4.0, "age": 9.0}
    assert aggregate([]) == {"pid": [], "cpu": 0.0, "mem": 0.0, "age": 0.0}
    assert aggregate([{"pid": 1, "cpu": "N/A", "mem": 1.0, "age": 1.0}])["cpu"] == "N/A"


async def test_no_stream_unless_asked(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:w]
        cmd = {SLEEP} nostats
        """
    )
    await d.wait_pids("w", 1)
    assert d.arbiter._stats is None


async def test_nothing_is_measured_while_nobody_listens(daemon) -> None:
    d = await daemon(
        f"""
        [circus]
        statsd = true

        [watcher:w]
        cmd = {SLEEP} quiet-stats
        numprocesses = 3
        """
    )
    pids = await d.wait_pids("w", 3)
    stream = d.arbiter._stats
    # two periods with no subscriber: not one process sampled
    started = d.arbiter.loop.time()
    await async_wait_until(lambda: d.arbiter.loop.time() - started > 2.2, timeout=5)
    assert stream.subscribers == 0 and stream.info._known == {}
    sub = zmq.asyncio.Context.instance().socket(zmq.SUB)
    sub.connect(d.arbiter.endpoints.stats)
    sub.setsockopt(zmq.SUBSCRIBE, b"stat.w.")
    try:
        assert await sub.poll(5000), "no stats once someone subscribed"
        await async_wait_until(lambda: set(pids) <= set(stream.info._known))
    finally:
        sub.close(linger=0)
    await async_wait_until(lambda: stream.subscribers == 0, what="the unsubscription seen")
