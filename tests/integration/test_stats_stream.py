"""The stats stream: Circus's `stat.*` topics and payloads, from the daemon itself."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import zmq
import zmq.asyncio

from bigtop.runtime.procinfo import Derived, Sample, StatFields, figures
from bigtop.runtime.statsstream import Payloads, aggregate
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


def make_sample(pid: int, cpu: float, age: float, rss_pages: int = 100) -> Sample:
    stat = StatFields(b"S", 1, 5, 3, 2, 0, 1, 1000, 8 << 20, rss_pages)
    derived = Derived(stat, f"{rss_pages * 4}.00K", "8.00M", 0.5, "0:00.05", 1.7e9)
    return Sample(pid, derived, cpu, age, "root", "sleep", [])


def expected(sample: Sample, children: list[dict[str, Any]]) -> dict[str, Any]:
    return {**figures(sample), "children": children, "subtopic": sample.pid, "name": None}


def test_payloads_reencode_only_the_age_of_an_unchanged_process() -> None:
    payloads = Payloads()
    first = make_sample(7, 0.0, 10.25)
    assert json.loads(payloads.payload(first, [])) == expected(first, [])
    later = Sample(7, first.derived, 0.0, 11.5, "root", "sleep", [])  # same reading, older
    assert json.loads(payloads.payload(later, [])) == expected(later, [])
    busy = Sample(7, first.derived, 12.5, 12.5, "root", "sleep", [])  # same reading, new cpu
    assert json.loads(payloads.payload(busy, []))["cpu"] == 12.5
    grown = make_sample(7, 12.5, 13.5, rss_pages=200)  # a new reading
    assert json.loads(payloads.payload(grown, []))["mem_info1"] == "800.00K"
    child = figures(make_sample(8, 1.0, 2.0))
    with_child = make_sample(7, 1.0, 14.0)
    assert json.loads(payloads.payload(with_child, [child])) == expected(with_child, [child])
    payloads.keep_only({9})
    assert payloads._heads == {}


async def test_each_second_brings_fresh_figures(daemon) -> None:
    """An idle process's age advances and a busy one's CPU shows, second after second; a
    process's children are listed; the same through psutil where there is no /proc."""
    d = await daemon(
        f"""
        [circus]
        statsd = true

        [watcher:idle]
        cmd = {SLEEP} idle

        [watcher:busy]
        cmd = {PYTHON} -c 'while True: pass'

        [watcher:parent]
        cmd = {PYTHON} -c 'import subprocess, time; subprocess.Popen(["sleep", "3600"]); time.sleep(3600)'
        """
    )
    (idle,) = await d.wait_pids("idle", 1)
    (busy,) = await d.wait_pids("busy", 1)
    (parent,) = await d.wait_pids("parent", 1)
    sub = zmq.asyncio.Context.instance().socket(zmq.SUB)
    sub.connect(d.arbiter.endpoints.stats)
    sub.setsockopt(zmq.SUBSCRIBE, b"stat.")

    async def messages(topic: str, count: int) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + 15
        while len(got) < count and time.monotonic() < deadline:
            if await sub.poll(500):
                name, body = await sub.recv_multipart()
                if name.decode() == topic:
                    got.append(json.loads(body))
        assert len(got) == count, f"{topic}: {got}"
        return got

    try:
        idle_seen = await messages(f"stat.idle.{idle}", 3)
        ages = [message.pop("age") for message in idle_seen]
        assert ages == sorted(ages) and ages[2] - ages[1] == pytest.approx(1.0, abs=0.5)
        assert idle_seen[1] == idle_seen[2] and idle_seen[2]["cpu"] == 0.0
        assert (await messages(f"stat.busy.{busy}", 3))[2]["cpu"] > 20
        parent_seen = await messages(f"stat.parent.{parent}", 2)
        assert [child["cmdline"] for child in parent_seen[1]["children"]] == ["sleep"]
        d.arbiter._stats.info._machine = None  # as where there is no /proc: psutil
        fallback = (await messages(f"stat.idle.{idle}", 2))[1]
        assert set(fallback) == INFO_FIELDS and fallback["age"] > ages[2]
    finally:
        sub.close(linger=0)


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
