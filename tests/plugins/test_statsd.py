"""statsd plugins against a real UDP listener: event counters and FullStats gauges."""

from __future__ import annotations

from bigtop.metrics import human_bytes
from tests.helpers import PYTHON, async_wait_until

SLEEP = f"{PYTHON} -c 'import time; time.sleep(3600)'"


async def test_statsd_emitter_counts_every_event(daemon, udp) -> None:
    d = await daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} statsd-emitter
        numprocesses = 1

        [watcher:other]
        cmd = {SLEEP} statsd-emitter-other
        numprocesses = 0

        [plugin:statsd]
        use = circus.plugins.statsd.StatsdEmitter
        host = 127.0.0.1
        port = {udp.port}
        application_name = shop
        """
    )
    web = d.watcher("web")
    await d.wait_pids("web", 1)
    # The plugin subscribes a moment after it starts: make events until it is heard.
    for _ in range(200):
        web.scale(2)
        await d.wait_pids("web", 2)
        web.scale(1)
        await d.wait_pids("web", 1)
        if udp.lines():
            break
    await udp.wait_for(lambda line: ".reap:" in line, "a reap counter")
    d.watcher("other").scale(1)
    await d.wait_pids("other", 1)
    other = await udp.wait_for(lambda line: ".other." in line, "the other watcher's spawn")
    assert other == ["circus.shop.watcher.other.spawn:1|c"]
    buckets = {line.partition(":")[0] for line in udp.lines()}
    assert {"circus.shop.watcher.web.spawn", "circus.shop.watcher.web.kill"} <= buckets
    assert all(line.endswith(":1|c") for line in udp.lines())  # sample_rate 1: no |@rate


async def test_full_stats_sends_gauges_of_each_watcher(daemon, udp) -> None:
    d = await daemon(
        f"""
        [watcher:api]
        cmd = {SLEEP} full-stats
        numprocesses = 2

        [plugin:stats]
        use = circus.plugins.statsd.FullStats
        host = 127.0.0.1
        port = {udp.port}
        loop_rate = 0.2
        """
    )
    await d.wait_pids("api", 2)
    gauges = (
        "watchers_num",
        "cpu_max",
        "cpu_sum",
        "mem_pct_max",
        "mem_pct_sum",
        "mem_max",
        "mem_sum",
    )
    wanted = {f"circus.app.watcher._stats.api.{g}" for g in gauges}

    def complete() -> dict[str, str] | None:
        seen = {}
        for line in udp.lines():
            bucket, _, rest = line.partition(":")
            seen[bucket] = rest
        return seen if wanted <= set(seen) else None

    seen = await async_wait_until(complete, 15, what="every FullStats gauge of 'api'")
    assert seen["circus.app.watcher._stats.api.watchers_num"] == "2|g"
    assert all(seen[bucket].endswith("|g") for bucket in wanted)
    stats = await d.arbiter.controller.cmd_stats({"name": "api"})
    sizes = [human_bytes(info["mem_info1"]) for info in stats["info"].values()]
    reported = int(seen["circus.app.watcher._stats.api.mem_max"].removesuffix("|g"))
    assert abs(reported - max(sizes)) <= 0.05 * max(sizes)  # a sleeping process: stable RSS
