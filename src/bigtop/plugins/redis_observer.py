"""RedisObserver: gauges of a Redis server's INFO; restart a watcher when it stops answering.

Needs the `redis` package (`pip install bigtop[redis]`); without it the plugin stops at
start with that advice. Options are Circus's: `redis_url` (redis://localhost:6379/0),
`timeout` (5 s), `loop_rate` (60), `restart_on_timeout` (a watcher to restart when Redis
does not answer), and the statsd options (application_name "redis_observer"). Statsd:
`redis_stats.<field>` gauges, `redis_stats.error`, `redis_stats.restart_on_error`.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from bigtop.plugins.base import PluginContext, ignore_failures
from bigtop.plugins.options import PluginConfigError
from bigtop.plugins.statsd import Observer

OBSERVED = (
    "blocked_clients",
    "client_biggest_input_buf",
    "client_longest_output_list",
    "connected_clients",
    "connected_slaves",
    "evicted_keys",
    "expired_keys",
    "keyspace_hits",
    "keyspace_misses",
    "lru_clock",
    "mem_fragmentation_ratio",
    "pubsub_channels",
    "pubsub_patterns",
    "total_commands_processed",
    "total_connections_received",
    "uptime_in_seconds",
    "used_cpu_sys",
    "used_cpu_sys_children",
    "used_cpu_user",
    "used_memory",
    "used_memory_peak",
    "used_memory_rss",
)


def info_gauges(info: dict[str, Any]) -> list[tuple[str, float | int]]:
    return [
        (f"redis_stats.{key}", info[key])
        for key in OBSERVED
        if isinstance(info.get(key), int | float) and not isinstance(info.get(key), bool)
    ]


class RedisObserver(Observer):
    name = "redis_observer"
    default_app_name = "redis_observer"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        try:
            redis: Any = importlib.import_module("redis")  # optional: bigtop[redis]
        except ImportError:
            raise PluginConfigError(
                f"[{context.section}] the redis observer needs the redis package: "
                "pip install 'bigtop[redis]' (or redis) into bigtop's environment"
            ) from None
        self._redis_errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        url = self.options.text("redis_url", "redis://localhost:6379/0")
        timeout = self.options.positive("timeout", 5.0)
        try:
            self.redis = redis.from_url(url, socket_timeout=timeout)
        except ValueError as exc:
            raise self.options.invalid("redis_url", f"a redis:// URL ({exc})") from None
        self.restart_on_timeout = self.options.optional_text("restart_on_timeout")

    async def look_after(self) -> None:
        try:
            info = await asyncio.to_thread(self.redis.info)
        except self._redis_errors as exc:
            self.log.warning("redis did not answer: %s", exc)
            self.statsd.increment("redis_stats.error")
            if self.restart_on_timeout:
                self.statsd.increment("redis_stats.restart_on_error")
                await ignore_failures(
                    self,
                    f"restart {self.restart_on_timeout}",
                    self.call("restart", name=self.restart_on_timeout),
                )
            return
        self.statsd.gauges(info_gauges(info))
