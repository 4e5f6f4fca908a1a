"""Prometheus metrics: `/metrics` from the plugin parses with prometheus_client's own parser,
and its figures are the daemon's `stats` and `status`."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bigtop.control.client import AsyncClient
from bigtop.metrics import CONTENT_TYPE, RestartCounter, collect, human_bytes, render
from tests.helpers import PYTHON, async_wait_until
from tests.plugins.conftest import free_port

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    samples: Samples = {}
    kinds: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        kinds[family.name] = family.type
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples, kinds


def value(samples: Samples, name: str, **labels: str) -> float:
    found = [
        v for have, v in samples.get(name, []) if all(have.get(k) == x for k, x in labels.items())
    ]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


def fetch(url: str) -> tuple[str, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.headers["Content-Type"], response.read().decode()
    except OSError:
        return None


CONFIG = """
[watcher:web]
cmd = {python} -c 'import time; time.sleep(3600)' metrics-web
numprocesses = 2

[watcher:idle]
cmd = {python} -c 'import time; time.sleep(3600)' metrics-idle
autostart = false

[watcher:crashy]
cmd = {python} -c 'import time; time.sleep(0.1); raise SystemExit(3)'
backoff_initial = 0.1
backoff_max = 0.1
"""


async def test_the_metrics_plugin_serves_what_stats_says(daemon) -> None:
    port = free_port()
    d = await daemon(
        CONFIG.format(python=PYTHON)
        + f"\n[plugin:metrics]\nuse = prometheus\nhost = 127.0.0.1\nport = {port}\n"
    )
    pids = await d.wait_pids("web", 2)
    url = f"http://127.0.0.1:{port}/metrics"

    # The daemon runs in this test's loop: fetch from a thread, never block the loop.
    async def restarts_counted() -> tuple[str, str]:
        for _ in range(400):
            answer = await asyncio.to_thread(fetch, url)
            if answer and 'reason="exited with code 3"' in answer[1]:
                return answer
            await asyncio.sleep(0.05)
        raise AssertionError(f"no restart counted at {url}; last answer {answer!r}")

    content_type, text = await restarts_counted()
    assert content_type == CONTENT_TYPE
    async with AsyncClient(d.arbiter.endpoints.control) as client:
        stats = (await client.call("stats"))["infos"]
        status = (await client.call("status"))["statuses"]
    samples, kinds = parse(text)
    assert kinds["bigtop_watcher_restarts"] == "counter"
    assert kinds["bigtop_process_memory_rss_bytes"] == "gauge"
    assert value(samples, "bigtop_watcher_restarts_total", watcher="crashy") >= 1
    assert not [s for s in samples["bigtop_watcher_restarts_total"] if s[0]["watcher"] == "web"]

    for name, state in status.items():
        assert value(samples, "bigtop_watcher_state", watcher=name, state=state) == 1
    assert value(samples, "bigtop_watcher_state", watcher="idle", state="active") == 0
    assert value(samples, "bigtop_watchers") == len(status) == 3
    assert value(samples, "bigtop_watcher_processes", watcher="web") == 2
    assert value(samples, "bigtop_watcher_ready_processes", watcher="web") == 2
    for pid in pids:
        info: dict[str, Any] = stats["web"][str(pid)]
        labels = {"watcher": "web", "pid": str(pid), "wid": str(info["wid"])}
        rss = value(samples, "bigtop_process_memory_rss_bytes", **labels)
        assert abs(rss - human_bytes(info["mem_info1"])) <= 0.01 * rss  # a sleeper's RSS
        assert abs(value(samples, "bigtop_process_uptime_seconds", **labels) - info["age"]) < 5
        assert value(samples, "bigtop_process_memory_percent", **labels) >= 0
        assert value(samples, "bigtop_process_ready", **labels) == 1
        assert value(samples, "bigtop_process_state", state="ready", **labels) == 1
        assert value(samples, "bigtop_process_cpu_seconds_total", **labels) >= 0
    web_rss = value(samples, "bigtop_watcher_memory_rss_bytes", watcher="web")
    assert web_rss == sum(
        value(samples, "bigtop_process_memory_rss_bytes", pid=str(p)) for p in pids
    )
    assert value(samples, "bigtop_daemon_memory_rss_bytes") > 0
    assert value(samples, "bigtop_daemon_uptime_seconds") >= 0


async def test_collect_and_render_over_the_control_api(daemon) -> None:
    d = await daemon(CONFIG.format(python=PYTHON))
    pids = await d.wait_pids("web", 2)
    counter = RestartCounter()
    d.arbiter.subscribers.append(counter.feed)  # the same events the pub/sub endpoint sends
    await async_wait_until(lambda: counter.counts, what="a restart of crashy")
    async with AsyncClient(d.arbiter.endpoints.control) as client:
        await client.call("kill", name="web", pid=pids[0], waiting=True)  # asked: not counted
        snapshot = await collect(client, counter)
    samples, _ = parse(render(snapshot))
    assert set(counter.counts) == {("crashy", "exited with code 3")}
    assert value(samples, "bigtop_watcher_restarts_total", watcher="crashy") >= 1
    assert value(samples, "bigtop_watcher_processes", watcher="web") == 2
    assert str(pids[0]) not in {labels["pid"] for labels, _ in samples["bigtop_process_ready"]}
