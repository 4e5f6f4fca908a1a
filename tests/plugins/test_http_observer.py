"""HttpObserver against a real HTTP server: timings to statsd; a failing check restarts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers import PYTHON, alive, async_wait_until


class Service:
    """A local HTTP server in a thread whose answer the test switches (200 or 500)."""

    def __init__(self) -> None:
        self.status = 200
        self.hits = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.hits += 1
                self.send_response(service.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service() -> Iterator[Service]:
    running = Service()
    yield running
    running.close()


async def test_a_failing_check_restarts_the_watcher(daemon, service, udp) -> None:
    d = await daemon(
        f"""
        [watcher:api]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' http-observed
        numprocesses = 2

        [plugin:http]
        use = circus.plugins.http_observer.HttpObserver
        check_url = {service.url}
        loop_rate = 0.1
        timeout = 2
        restart_on_error = api
        host = 127.0.0.1
        port = {udp.port}
        """
    )
    before = await d.wait_pids("api", 2)
    timings = await udp.wait_for(
        lambda line: line.startswith("circus.http_observer.watcher.http_stats.request_time:"),
        "a request timing",
    )
    assert all(line.endswith("|ms") for line in timings)
    assert float(timings[0].split(":")[1].removesuffix("|ms")) < 2000
    assert d.pids("api") == before  # healthy: nothing restarted

    service.status = 500
    await async_wait_until(
        lambda: not any(alive(pid) for pid in before), timeout=10, what="the restart"
    )
    service.status = 200
    after = await d.wait_pids("api", 2)
    assert not set(after) & set(before)
    errors = await udp.wait_for(lambda line: "http_stats.error" in line, "the error counters")
    assert "circus.http_observer.watcher.http_stats.error.500:1|c" in errors
    assert any(".http_stats.restart_on_error:1|c" in line for line in udp.lines())
