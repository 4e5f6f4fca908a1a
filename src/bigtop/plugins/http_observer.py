"""HttpObserver: fetch a URL every `loop_rate` seconds; time it; restart a watcher on errors.

Options are Circus's (whose version no longer runs on Tornado 6): `check_url`
(http://localhost/), `loop_rate` (60), `timeout` (10 s), `restart_on_error` (a watcher to
restart when a check fails), and the statsd options (application_name "http_observer").
A check fails on a connection error, a timeout, or an HTTP status of 400 or more.

Statsd: `http_stats.request_time` (ms) for each answer, `http_stats.error` and
`http_stats.error.<status>` for failures, `http_stats.restart_on_error` for each restart.
Each check is also logged with its timing (at debug level when it passes).
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from bigtop.plugins.base import PluginContext, ignore_failures
from bigtop.plugins.statsd import Observer


@dataclass(frozen=True)
class CheckResult:
    status: int | None  # the HTTP status, None when no answer came
    seconds: float
    error: str | None  # why the check failed, or None

    @property
    def ok(self) -> bool:
        return self.error is None


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def opener_for(url: str) -> urllib.request.OpenerDirector:
    """A local service is asked directly, never through the environment's http_proxy."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host in LOCAL_HOSTS or host.startswith("127."):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def fetch(url: str, timeout: float) -> CheckResult:
    """One blocking GET (run in a thread): its status, timing and what went wrong."""
    started = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": "bigtop-http-observer"})
    try:
        with opener_for(url).open(request, timeout=timeout) as response:
            response.read()
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return CheckResult(exc.code, time.monotonic() - started, f"HTTP {exc.code}")
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
        reason = getattr(exc, "reason", exc)
        return CheckResult(None, time.monotonic() - started, str(reason) or type(exc).__name__)
    elapsed = time.monotonic() - started
    if status >= 400:
        return CheckResult(status, elapsed, f"HTTP {status}")
    return CheckResult(status, elapsed, None)


class HttpObserver(Observer):
    name = "http_observer"
    default_app_name = "http_observer"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.check_url = self.options.text("check_url", "http://localhost/")
        if not self.check_url.startswith(("http://", "https://")):
            raise self.options.invalid("check_url", "an http:// or https:// URL")
        self.timeout = self.options.positive("timeout", 10.0)
        self.restart_on_error = self.options.optional_text("restart_on_error")

    async def look_after(self) -> None:
        result = await asyncio.to_thread(fetch, self.check_url, self.timeout)
        milliseconds = result.seconds * 1000
        if result.status is not None:
            self.statsd.timing("http_stats.request_time", milliseconds)
        if result.ok:
            self.log.debug("%s: %s in %.1f ms", self.check_url, result.status, milliseconds)
            return
        self.statsd.increment("http_stats.error")
        if result.status is not None:
            self.statsd.increment(f"http_stats.error.{result.status}")
        self.log.warning("%s failed after %.1f ms: %s", self.check_url, milliseconds, result.error)
        if self.restart_on_error:
            self.log.warning("restarting watcher %r", self.restart_on_error)
            self.statsd.increment("http_stats.restart_on_error")
            await ignore_failures(
                self,
                f"restart {self.restart_on_error}",
                self.call("restart", name=self.restart_on_error, waiting=True),
            )
