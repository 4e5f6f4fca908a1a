"""The dashboard's HTTP and websocket side against real daemons: auth, CSRF, Origin, the API,
live updates, and a client that stops reading."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bigtop.control.client import AsyncClient
from tests.helpers import PYTHON, async_wait_until, sleeper
from tests.web.conftest import TOKEN, Dashboard

TWO_SLEEPERS = f"""
[watcher:web]
cmd = {sleeper("web-4411")}
numprocesses = 2
graceful_timeout = 2
"""


async def receive(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 10.0) -> Any:
    """The next message of type `kind` (others are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive_json()
            if message["type"] == kind:
                return message


async def control(d: Any, command: str, **properties: Any) -> dict[str, Any]:
    async with AsyncClient(d.arbiter.endpoints.control, timeout=10) as client:
        return await client.call(command, **properties)


# ---- authentication ------------------------------------------------------------------------
async def test_without_the_token_everything_is_refused(daemon, dashboard) -> None:
    d = await daemon(TWO_SLEEPERS)
    board: Dashboard = await dashboard(d)
    url = board.url
    async with board.session.get(f"{url}/") as page:
        assert page.status == 401
        text = await page.text()
        assert '<form method="post" action="/login"' in text
        assert "web" not in text.replace("bigtop web", "")  # nothing of the daemons shows
    for path in ("/api/daemons", "/api/session", "/api/d/d0/status", "/static/app.js", "/metrics"):
        async with board.session.get(f"{url}{path}") as reply:
            assert reply.status == 401, path
            assert "web-4411" not in await reply.text()
    async with board.session.get(f"{url}/?token=wrong", allow_redirects=False) as reply:
        assert reply.status == 401 and "not right" in await reply.text()
        assert not reply.cookies
    async with board.session.get(f"{url}/api/daemons", headers=board.bearer("wrong")) as reply:
        assert reply.status == 401
    async with board.session.post(f"{url}/api/d/d0/w/web/incr") as reply:
        assert reply.status == 401
    async with board.session.post(f"{url}/login", data={"token": "wrong"}) as reply:
        assert reply.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await board.session.ws_connect(f"{url}/ws", origin=board.origin)
    assert refused.value.status == 401
    assert len(d.pids("web")) == 2


async def test_the_token_url_sets_a_strict_cookie_and_posts_need_the_csrf_token(
    daemon, dashboard
) -> None:
    d = await daemon(TWO_SLEEPERS)
    await d.wait_pids("web", 2)
    board: Dashboard = await dashboard(d)
    async with board.session.get(f"{board.url}/?token={TOKEN}", allow_redirects=False) as reply:
        assert reply.status == 303 and reply.headers["Location"] == "/"  # token off the URL
        cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    async with board.session.get(f"{board.url}/") as page:
        assert page.status == 200 and "app.js" in await page.text()
    async with board.session.get(f"{board.url}/api/session") as reply:
        csrf = (await reply.json())["csrf"]
    incr = f"{board.url}/api/d/d0/w/web/incr"
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        async with board.session.post(incr, headers=headers) as reply:
            assert reply.status == 403 and "CSRF" in (await reply.json())["error"]
    evil = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    async with board.session.post(incr, headers=evil) as reply:
        assert reply.status == 403 and "Origin" in (await reply.json())["error"]
    assert len(d.pids("web")) == 2  # none of those did anything
    good = {"X-CSRF-Token": csrf, "Origin": board.origin}
    async with board.session.post(incr, headers=good, json={"nb": 2}) as reply:
        assert reply.status == 200, await reply.text()
    await d.wait_pids("web", 4)
    async with board.session.post(f"{board.url}/logout", headers=good) as reply:
        assert reply.status == 401 and "/login" in await reply.text()  # back to the form
    async with board.session.get(f"{board.url}/api/session") as reply:
        assert reply.status == 401


async def test_the_login_form_works_too(daemon, dashboard) -> None:
    board: Dashboard = await dashboard(await daemon(TWO_SLEEPERS))
    form = {"token": TOKEN}
    async with board.session.post(
        f"{board.url}/login", data=form, headers={"Origin": "http://evil.example"}
    ) as reply:
        assert reply.status == 403
    async with board.session.post(f"{board.url}/login", data=form) as reply:
        assert reply.status == 200 and "app.js" in await reply.text()


async def test_a_bearer_token_works_for_api_clients_without_csrf(daemon, dashboard) -> None:
    d = await daemon(TWO_SLEEPERS)
    before = set(await d.wait_pids("web", 2))
    board: Dashboard = await dashboard(d)
    async with board.session.get(f"{board.url}/api/d/d0/status", headers=board.bearer()) as r:
        reply = await r.json()
    assert reply["statuses"] == {"web": "active"} and len(reply["processes"]["web"]) == 2
    restart = f"{board.url}/api/d/d0/w/web/restart"
    async with board.session.post(restart, headers=board.bearer()) as r:
        assert r.status == 200, await r.text()
    await async_wait_until(
        lambda: len(d.pids("web")) == 2 and not before & set(d.pids("web")),
        what="two new processes",
    )


# ---- websocket ------------------------------------------------------------------------------
async def test_the_websocket_checks_the_origin_of_browser_sessions(daemon, dashboard) -> None:
    board: Dashboard = await dashboard(await daemon(TWO_SLEEPERS))
    await board.log_in()
    for origin in ("http://evil.example", None):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await board.session.ws_connect(f"{board.url}/ws", origin=origin)
        assert refused.value.status == 403
    async with board.session.ws_connect(f"{board.url}/ws", origin=board.origin) as ws:
        hello = await receive(ws, "hello")
        assert [d["id"] for d in hello["daemons"]] == ["d0"]
    async with board.websocket() as ws:  # a script: no cookie, no Origin, the token
        await receive(ws, "hello")


async def test_live_ticks_process_figures_logs_history_and_events(
    daemon, dashboard, tmp_path: Path
) -> None:
    script = tmp_path / "talk.py"
    script.write_text(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGUSR1, lambda *a: print(open(sys.argv[1]).read(), flush=True))\n"
        "print('started', flush=True)\n"
        "while True: time.sleep(1)\n"
    )
    message = tmp_path / "message"
    d = await daemon(
        f"""
        [watcher:talk]
        cmd = {PYTHON} {script} {message}
        numprocesses = 2
        """
    )
    [first, second] = await d.wait_pids("talk", 2)
    book = d.arbiter.services.logbook  # both have printed before the page asks for the tail
    await async_wait_until(
        lambda: [line[4] for line in book.tail(["talk"], 10, ("stdout",))].count("started") == 2,
        what="both processes' first line",
    )
    board: Dashboard = await dashboard(d, interval=0.2)
    async with board.websocket() as ws:
        await receive(ws, "hello")
        ticks = [await receive(ws, "tick") for _ in range(3)]
        assert ticks[0]["t"] < ticks[1]["t"] < ticks[2]["t"]
        [talk] = ticks[-1]["watchers"]
        assert talk["name"] == "talk" and talk["n"] == 2 and talk["mem"] > 1 << 20
        await ws.send_json({"type": "watch", "daemon": "d0", "watcher": "talk"})
        watching = await receive(ws, "watching")
        assert [line[4] for line in watching["log"]["lines"]].count("started") == 2
        procs = await receive(ws, "procs")
        assert {p["pid"] for p in procs["processes"]} == {first, second}
        message.write_text("hello from the test 7731")
        await control(d, "signal", name="talk", pid=first, signum="USR1")
        async with asyncio.timeout(10):
            while True:
                log = await receive(ws, "log")
                texts = [(line[2], line[4]) for line in log["lines"]]
                if (first, "hello from the test 7731") in texts:
                    break
        os.kill(second, 9)
        reap = await receive(ws, "event")
        while reap["action"] != "reap":
            reap = await receive(ws, "event")
        assert reap["watcher"] == "talk" and reap["data"]["process_pid"] == second
        history = await receive(ws, "history")
        [ended] = [e for e in history["entries"] if e["pid"] == second]
        assert ended["signal"] == 9 and "SIGKILL" in ended["reason"]


async def test_one_dashboard_shows_two_daemons(pool, dashboard) -> None:
    one = pool.start(TWO_SLEEPERS)
    two = pool.start(f"[watcher:db]\ncmd = {sleeper('db-4412')}\n")
    board: Dashboard = await dashboard(one.control, two.control, interval=0.2)
    async with board.websocket() as ws:
        hello = await receive(ws, "hello")
        assert [d["label"] for d in hello["daemons"]] == ["daemon 0", "daemon 1"]
        seen: dict[str, list[str]] = {}
        async with asyncio.timeout(10):
            while len(seen) < 2:
                tick = await receive(ws, "tick")
                if tick["up"]:
                    seen[tick["daemon"]] = [w["name"] for w in tick["watchers"]]
    assert seen == {"d0": ["web"], "d1": ["db"]}


async def test_a_daemon_that_does_not_answer_is_shown_down(daemon, dashboard) -> None:
    d = await daemon(TWO_SLEEPERS)
    board: Dashboard = await dashboard(d, interval=0.2)
    board.hub.links["d0"].client.timeout = 0.3
    async with board.websocket() as ws:
        await receive(ws, "tick")
        await d.quit()
        async with asyncio.timeout(10):
            while (tick := await receive(ws, "tick"))["up"]:
                pass
    assert "no reply" in tick["error"]


# ---- the API --------------------------------------------------------------------------------
async def test_actions_reach_the_daemon_and_bad_ones_are_explained(daemon, dashboard) -> None:
    d = await daemon(TWO_SLEEPERS)
    [victim, other] = await d.wait_pids("web", 2)
    board: Dashboard = await dashboard(d)
    api, auth = board.session, board.bearer()

    async def post(path: str, body: Any = None) -> tuple[int, Any]:
        async with api.post(f"{board.url}{path}", headers=auth, json=body) as reply:
            return reply.status, await reply.json()

    assert (await post("/api/d/d0/w/web/kill", {"pid": victim}))[0] == 200
    await async_wait_until(lambda: victim not in d.pids("web") and len(d.pids("web")) == 2)
    assert other in d.pids("web")
    assert (await post("/api/d/d0/w/web/decr"))[0] == 200
    await d.wait_pids("web", 1)
    assert (await post("/api/d/d0/w/web/stop"))[0] == 200
    await async_wait_until(lambda: d.watcher("web").status == "stopped")
    assert (await post("/api/d/d0/w/web/start"))[0] == 200
    await d.wait_pids("web", 1)
    status, reply = await post("/api/d/d0/w/web/kill", {})
    assert status == 400 and reply["error"] == "'pid' must be a positive integer"
    status, reply = await post("/api/d/d0/w/web/incr", {"nb": "many"})
    assert status == 400 and "'nb'" in reply["error"]
    status, reply = await post("/api/d/d0/w/nosuch/restart")
    assert status == 409 and reply["error"] == "program nosuch not found"
    assert (await post("/api/d/d9/w/web/restart"))[0] == 404
    assert (await post("/api/d/d0/w/web/explode"))[0] == 404
    async with api.post(
        f"{board.url}/api/d/d0/w/web/incr", headers=auth, data=b"{not json"
    ) as reply:
        assert reply.status == 400


async def test_reloadconfig_shows_its_plan_before_applying_it(
    daemon, dashboard, tmp_path: Path
) -> None:
    d = await daemon(TWO_SLEEPERS)
    await d.wait_pids("web", 2)
    board: Dashboard = await dashboard(d)
    config = Path(d.arbiter.config.path)
    config.write_text(config.read_text().replace("numprocesses = 2", "numprocesses = 3"))
    url = f"{board.url}/api/d/d0/reloadconfig"
    async with board.session.get(url, headers=board.bearer()) as reply:
        plan = (await reply.json())["plan"]
    assert plan == [{"action": "resize", "watcher": "web", "detail": "numprocesses 2 -> 3"}]
    assert len(d.pids("web")) == 2  # only shown
    async with board.session.post(url, headers=board.bearer()) as reply:
        assert reply.status == 200
    await d.wait_pids("web", 3)


async def test_sockets_show_their_address_and_waiting_connections(daemon, dashboard) -> None:
    d = await daemon(
        f"""
        [socket:front]
        host = 127.0.0.1
        port = 0

        [watcher:lazy]
        cmd = {sleeper("lazy-4413")}
        use_sockets = true
        """
    )
    board: Dashboard = await dashboard(d)
    port = d.arbiter.sockets["front"].sock.getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)  # never accepted
    try:
        async with board.session.get(
            f"{board.url}/api/d/d0/sockets", headers=board.bearer()
        ) as reply:
            [entry] = (await reply.json())["sockets"]
    finally:
        writer.close()
    assert (entry["name"], entry["host"], entry["port"]) == ("front", "127.0.0.1", port)
    assert entry["activity"] == {"connections": 1, "waiting": 1}


# ---- a client that stops reading ------------------------------------------------------------
def masked_text_frame(text: str) -> bytes:
    """A client-to-server websocket text frame (clients must mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    assert len(payload) < 126
    header = struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask
    return header + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def stalled_websocket(host: str, port: int, token: str) -> socket.socket:
    """A websocket that completes its handshake, then never reads again."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    received = b""
    while b"\r\n\r\n" not in received:
        received += await loop.sock_recv(sock, 1)  # byte by byte: leave the rest unread
    assert received.startswith(b"HTTP/1.1 101"), received
    return sock


async def test_a_client_that_stops_reading_is_dropped_and_others_carry_on(
    daemon, dashboard, tmp_path: Path
) -> None:
    chatty = tmp_path / "chatty.py"
    chatty.write_text(
        "import sys, time\n"
        "line = 'x' * 200 + '\\n'\n"
        "while True:\n"
        "    sys.stdout.write(line * 50); sys.stdout.flush(); time.sleep(0.01)\n"
    )
    d = await daemon(f"[watcher:chatty]\ncmd = {PYTHON} {chatty}\n")
    await d.wait_pids("chatty", 1)
    board: Dashboard = await dashboard(d, interval=0.2, outbox_bytes=256 * 1024)
    sock = await stalled_websocket("127.0.0.1", board.served.port, TOKEN)
    loop = asyncio.get_running_loop()
    try:
        watch = json.dumps({"type": "watch", "daemon": "d0", "watcher": "chatty"})
        await loop.sock_sendall(sock, masked_text_frame(watch))
        await async_wait_until(
            lambda: board.hub.dropped == 1, timeout=20, what="the stalled client to be dropped"
        )
        assert board.hub.state() == {"clients": 0, "dropped": 1}
        assert board.hub.process_series == {}  # what it watched is let go
        async with board.websocket() as ws:
            await receive(ws, "hello")
            await receive(ws, "tick")
    finally:
        sock.close()


async def test_metrics_need_the_token_and_parse_as_prometheus_text(daemon, dashboard) -> None:
    pytest.importorskip("bigtop.metrics", reason="bigtop.metrics renders the exposition")
    from prometheus_client.parser import text_string_to_metric_families

    d = await daemon(TWO_SLEEPERS)
    [pid, _] = await d.wait_pids("web", 2)
    board: Dashboard = await dashboard(d)
    async with board.session.get(f"{board.url}/metrics") as reply:
        assert reply.status == 401
    os.kill(pid, 9)  # a restart the counter sees through the events
    await async_wait_until(lambda: pid not in d.pids("web") and len(d.pids("web")) == 2)
    async with board.session.get(f"{board.url}/metrics", headers=board.bearer()) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await reply.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families, text
    samples = [s for f in families.values() for s in f.samples]
    assert any(s.labels.get("watcher") == "web" for s in samples), text
    async with board.session.get(f"{board.url}/metrics?daemon=d7", headers=board.bearer()) as reply:
        assert reply.status == 404
