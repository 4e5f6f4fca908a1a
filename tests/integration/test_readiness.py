"""Readiness, health, dependencies and the zero-downtime rolling reload."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

from tests.helpers import PYTHON, alive, async_wait_until

WORKER = Path(__file__).with_name("pid_server.py")
SLEEP = f"{PYTHON} -c 'import time; time.sleep(3600)'"


def _ask(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        return int(conn.recv(64))


def _states(d, name: str) -> dict[int, str]:
    return {pid: p.condition for pid, p in d.watcher(name).core.procs.items()}


async def test_command_ready_check_marks_processes_ready(daemon, tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    d = await daemon(
        f"""
        [watcher:app]
        cmd = {SLEEP} app
        ready_check = test -e {flag}
        ready_timeout = 30
        """
    )
    [pid] = await d.wait_pids("app", 1)
    assert _states(d, "app") == {pid: "starting"}
    flag.write_text("")
    await async_wait_until(lambda: _states(d, "app") == {pid: "ready"}, what="ready")
    assert ("watcher.app.ready", {"process_pid": pid}) in [
        (t, {k: v for k, v in m.items() if k != "time"}) for t, m in d.events
    ]
    stats = await d.arbiter.controller.cmd_stats({"name": "app"})
    assert stats["info"][str(pid)]["state"] == "ready"


async def test_notify_ready_check(daemon) -> None:
    d = await daemon(
        f"""
        [socket:web]
        host = 127.0.0.1
        port = 0

        [watcher:web]
        cmd = {PYTHON} {WORKER} $(circus.sockets.web) 0.2
        ready_check = notify
        """
    )
    [pid] = await d.wait_pids("web", 1)
    await async_wait_until(lambda: _states(d, "web") == {pid: "ready"}, what="READY=1")


async def test_a_process_never_ready_is_restarted_with_backoff(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:slow]
        cmd = {SLEEP} never-ready
        ready_check = false
        ready_timeout = 0.3
        backoff_initial = 0.1
        backoff_reset = 5
        graceful_timeout = 1
        """
    )
    watcher = d.watcher("slow")
    await async_wait_until(lambda: len(watcher.history) >= 3, timeout=15, what="three timeouts")
    assert "not ready within 0.3s" in watcher.history[0].reason
    assert [e.restart_in for e in watcher.history[:3]] == [0.0, 0.1, 0.2]


async def test_failing_health_check_restarts_the_process(daemon, tmp_path: Path) -> None:
    healthy = tmp_path / "healthy"
    healthy.write_text("")
    d = await daemon(
        f"""
        [watcher:svc]
        cmd = {SLEEP} health
        health_check = test -e {healthy}
        health_interval = 0.1
        health_threshold = 2
        graceful_timeout = 1
        """
    )
    [pid] = await d.wait_pids("svc", 1)
    await asyncio.sleep(0)
    healthy.unlink()
    new = await async_wait_until(
        lambda: (p := d.pids("svc")) and p[0] != pid and p[0], timeout=10, what="a restart"
    )
    assert not alive(pid) and new
    reasons = [e.reason for e in d.watcher("svc").history]
    assert any("health_check" in r for r in reasons)
    assert "watcher.svc.unhealthy" in d.topics(".unhealthy")


async def test_depends_on_starts_after_and_stops_before(daemon, tmp_path: Path) -> None:
    flag = tmp_path / "db-ready"
    d = await daemon(
        f"""
        [watcher:app]
        cmd = {SLEEP} dep-app
        depends_on = db
        priority = 100

        [watcher:db]
        cmd = {SLEEP} dep-db
        ready_check = test -e {flag}
        """
    )
    await d.wait_pids("db", 1)
    assert d.watcher("app").status == "stopped", "waits for db to be ready"
    flag.write_text("")
    await d.wait_pids("app", 1)
    spawns = [t.split(".")[1] for t in d.topics(".spawn")]
    assert spawns == ["db", "app"]
    await d.quit()
    stops = [t.split(".")[1] for t in d.topics(".stop")]
    assert stops == ["app", "db"]


async def test_rolling_reload_drops_no_connection(daemon) -> None:
    d = await daemon(
        f"""
        [socket:web]
        host = 127.0.0.1
        port = 0

        [watcher:web]
        cmd = {PYTHON} {WORKER} $(circus.sockets.web) 0.2
        numprocesses = 2
        ready_check = notify
        graceful_timeout = 2
        """
    )
    old = set(await d.wait_pids("web", 2))
    await async_wait_until(lambda: set(_states(d, "web").values()) == {"ready"}, what="ready")
    port = (await d.arbiter.controller.cmd_listsockets({}))["sockets"][0]["port"]
    answers: list[int] = []
    failures: list[str] = []
    stop = asyncio.Event()

    async def hammer() -> None:
        while not stop.is_set():
            try:
                answers.append(await asyncio.to_thread(_ask, port))
            except OSError as exc:
                failures.append(repr(exc))

    client = asyncio.create_task(hammer())
    started = time.monotonic()
    reply = await d.arbiter.controller.cmd_reload({"name": "web", "waiting": True})
    stop.set()
    await client
    assert sorted(reply["info"]["stopped"]) == sorted(old)
    new = set(d.pids("web"))
    assert len(new) == 2 and not new & old
    assert failures == [], "a connection was refused or dropped during the reload"
    assert set(answers) & old and set(answers) & new, "served by old, then by new workers"
    assert time.monotonic() - started < 20
    assert all(os.path.exists(f"/proc/{p}") for p in new)


async def test_tcp_ready_check(daemon) -> None:
    probe_target = socket.socket()
    probe_target.bind(("127.0.0.1", 0))  # bound, not listening yet: connections are refused
    port = probe_target.getsockname()[1]
    try:
        d = await daemon(
            f"""
            [watcher:app]
            cmd = {SLEEP} tcp-ready
            ready_check = tcp://127.0.0.1:{port}
            """
        )
        [pid] = await d.wait_pids("app", 1)
        assert _states(d, "app") == {pid: "starting"}
        probe_target.listen()
        await async_wait_until(lambda: _states(d, "app") == {pid: "ready"}, what="tcp ready")
    finally:
        probe_target.close()


async def test_http_ready_check_wants_a_2xx(daemon) -> None:
    import http.server
    import threading

    answers = {"code": 503}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answers["code"])
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        d = await daemon(
            f"""
            [watcher:app]
            cmd = {SLEEP} http-ready
            ready_check = http://127.0.0.1:{server.server_address[1]}/health
            """
        )
        [pid] = await d.wait_pids("app", 1)
        await async_wait_until(lambda: len(d.events) > 0, what="events")
        assert _states(d, "app") == {pid: "starting"}, "503 is not ready"
        answers["code"] = 200
        await async_wait_until(lambda: _states(d, "app") == {pid: "ready"}, what="http ready")
    finally:
        server.shutdown()
        server.server_close()
