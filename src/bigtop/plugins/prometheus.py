"""Prometheus: serve `/metrics` on a port of its own, for daemons that run no web server.

    [plugin:metrics]
    use = prometheus
    host = 127.0.0.1     ; default
    port = 9720          ; default; 0 picks a free port (logged at start)

Each scrape asks the daemon for `status`, `stats` and `dstats` and answers in the text
exposition format (see bigtop.metrics); restarts are counted from the events this plugin
receives, so they start at zero when it starts.
"""

from __future__ import annotations

from typing import Any

from bigtop.metrics import CONTENT_TYPE, RestartCounter, scrape
from bigtop.plugins.base import CallError, CallTimeout, Plugin, PluginContext

DEFAULT_PORT = 9720


class Prometheus(Plugin):
    name = "prometheus"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.host = self.options.text("host", "127.0.0.1")
        self.port = self.options.integer("port", DEFAULT_PORT, minimum=0)
        self.path = self.options.text("path", "/metrics")
        self.restarts = RestartCounter()
        self._runner: Any = None

    async def on_start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_get(self.path, self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        for address in self._runner.addresses:
            host, port = address[:2]
            self.log.info("serving metrics on http://%s:%s%s", host, port, self.path)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def on_event(self, topic: str, message: dict[str, Any]) -> None:
        self.restarts.feed(topic, message)

    async def _metrics(self, request: Any) -> Any:
        from aiohttp import web

        try:
            text = await scrape(self, self.restarts)
        except (CallError, CallTimeout) as exc:
            return web.Response(status=503, text=f"bigtop did not answer: {exc}\n")
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})
