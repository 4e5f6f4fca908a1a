"""The dashboard's aiohttp application: pages, the JSON API, the websocket.

GET  /                          the dashboard (or the login form)
GET  /ws                        live updates (see hub.py for the messages)
GET  /api/session               this browser's CSRF token and the daemons
GET  /api/daemons               the daemons, reachable or not
GET  /api/d/D/status|stats      the daemon's own replies, as they are
GET  /api/d/D/sockets           its sockets, with connections where they can be seen
GET  /api/d/D/reloadconfig      what `reloadconfig` would do (the dry-run plan)
POST /api/d/D/reloadconfig      do it
POST /api/d/D/w/W/ACTION        start, stop, restart, reload, incr, decr ({"nb": N}),
                                kill ({"pid": P})
GET  /metrics                   Prometheus exposition (when bigtop.metrics is installed)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from bigtop.control.client import CallError, CallTimeout
from bigtop.web.auth import Guard, middleware, redirect, refuse
from bigtop.web.hub import OUTBOX_BYTES, Hub, Subscriber
from bigtop.web.model import tcp_activity
from bigtop.web.source import DaemonLink

STATIC = Path(__file__).parent / "static"
HUB = web.AppKey("hub", Hub)
GUARD = web.AppKey("guard", Guard)
WATCHER_ACTIONS = ("start", "stop", "restart", "reload", "incr", "decr", "kill")
MAX_BODY = 64 * 1024
SEND_BUFFER = 256 * 1024  # per websocket: the kernel keeps at most this for a stalled client
CSP = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    links: Iterable[DaemonLink],
    token: str,
    interval: float = 1.0,
    allowed_origins: Iterable[str] = (),
    outbox_bytes: int = OUTBOX_BYTES,
) -> web.Application:
    guard = Guard(token, allowed_origins)
    hub = Hub(links, interval=interval, outbox_bytes=outbox_bytes)
    app = web.Application(middlewares=[_headers, middleware(guard)], client_max_size=MAX_BODY)
    app[HUB] = hub
    app[GUARD] = guard
    app.on_startup.append(_start)
    app.on_shutdown.append(_stop)
    app.router.add_get("/", index)
    app.router.add_route("*", "/login", index)  # answered by the auth middleware
    app.router.add_post("/logout", logout)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/api/session", session)
    app.router.add_get("/api/daemons", daemons)
    app.router.add_get("/api/hub", hub_state)
    app.router.add_get("/api/d/{daemon}/status", passthrough("status", processes=True))
    app.router.add_get("/api/d/{daemon}/stats", passthrough("stats"))
    app.router.add_get("/api/d/{daemon}/sockets", sockets)
    app.router.add_get("/api/d/{daemon}/reloadconfig", reload_plan)
    app.router.add_post("/api/d/{daemon}/reloadconfig", reload_apply)
    app.router.add_post("/api/d/{daemon}/w/{watcher}/{action}", watcher_action)
    app.router.add_get("/metrics", metrics)
    app.router.add_static("/static", STATIC, append_version=False)
    return app


async def _start(app: web.Application) -> None:
    app[HUB].start()


async def _stop(app: web.Application) -> None:
    await app[HUB].close()


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # not "no-referrer": Chromium then sends "Origin: null" with form posts
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


# ---- pages ------------------------------------------------------------------------------
async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def logout(request: web.Request) -> web.StreamResponse:
    response = redirect("/")
    request.app[GUARD].log_out(request, response)
    return response


async def session(request: web.Request) -> web.Response:
    identity = request.app[GUARD].identify(request, time.time())  # the middleware let it in
    hub = request.app[HUB]
    csrf = identity.session.csrf if identity is not None and identity.session else None
    return web.json_response(
        {
            "csrf": csrf,
            "interval": hub.interval,
            "daemons": [link.describe() for link in hub.links.values()],
        }
    )


async def daemons(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return web.json_response(
        [{**link.describe(), "up": link.up, "error": link.error} for link in hub.links.values()]
    )


async def hub_state(request: web.Request) -> web.Response:
    return web.json_response(request.app[HUB].state())


# ---- the API ------------------------------------------------------------------------------
def _link(request: web.Request) -> DaemonLink:
    link = request.app[HUB].links.get(request.match_info["daemon"])
    if link is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no daemon {request.match_info['daemon']!r}"}),
            content_type="application/json",
        )
    return link


async def _call(link: DaemonLink, command: str, **properties: Any) -> web.Response:
    try:
        reply = await link.call(command, **properties)
    except CallError as exc:
        return web.json_response({"error": exc.reason, "errno": exc.errno}, status=409)
    except CallTimeout as exc:
        return web.json_response({"error": str(exc)}, status=504)
    return web.json_response(reply)


def passthrough(command: str, **properties: Any) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await _call(_link(request), command, **properties)

    return handle


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "the body is not JSON"}), content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "the body must be a JSON object"}),
            content_type="application/json",
        )
    return body


def _positive_int(value: Any, key: str, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{key!r} must be a positive integer"}),
            content_type="application/json",
        )
    return value


async def watcher_action(request: web.Request) -> web.StreamResponse:
    link = _link(request)
    action = request.match_info["action"]
    if action not in WATCHER_ACTIONS:
        return refuse(404, f"no action {action!r}: use one of {', '.join(WATCHER_ACTIONS)}")
    body = await _body(request)
    properties: dict[str, Any] = {"name": request.match_info["watcher"]}
    if action in ("start", "stop", "restart"):
        properties["match"] = "simple"  # this watcher, even if its name looks like a glob
    elif action in ("incr", "decr"):
        properties["nb"] = _positive_int(body.get("nb"), "nb", default=1)
    elif action == "kill":
        properties["pid"] = _positive_int(body.get("pid"), "pid")
    return await _call(link, action, **properties)


async def reload_plan(request: web.Request) -> web.StreamResponse:
    return await _call(_link(request), "reloadconfig", dry_run=True)


async def reload_apply(request: web.Request) -> web.StreamResponse:
    return await _call(_link(request), "reloadconfig")


def _local(endpoint: str) -> bool:
    return endpoint.startswith("ipc://") or endpoint.startswith(
        ("tcp://127.", "tcp://localhost", "tcp://[::1]")
    )


def _tcp_tables() -> str:
    text = ""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(path, encoding="ascii") as table:
            lines = table.read().splitlines()
            text += "\n".join(lines[1:] if text else lines) + "\n"
    return text


async def sockets(request: web.Request) -> web.StreamResponse:
    link = _link(request)
    try:
        reply = await link.call("listsockets")
    except CallError as exc:
        return refuse(409, exc.reason)
    except CallTimeout as exc:
        return refuse(504, str(exc))
    entries = [e for e in reply.get("sockets") or [] if isinstance(e, dict)]
    # Connections are read from this machine's /proc: only meaningful for a local daemon.
    if _local(link.endpoint) and any(isinstance(e.get("port"), int) for e in entries):
        table = await asyncio.to_thread(_tcp_tables)
        for entry in entries:
            if isinstance(entry.get("port"), int):
                entry["activity"] = tcp_activity(table, entry["port"])
    return web.json_response({"sockets": entries, "local": _local(link.endpoint)})


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus text for one daemon (`?daemon=ID`, the first by default), rendered by
    bigtop.metrics; restarts are counted from the events this dashboard has received."""
    hub = request.app[HUB]
    exposition = hub.metrics
    if exposition is None:
        return refuse(404, "metrics are not available in this bigtop")
    ident = request.query.get("daemon") or next(iter(hub.links))
    link = hub.links.get(ident)
    if link is None:
        return refuse(404, f"no daemon {ident!r}")
    try:
        text = await exposition.scrape(link, hub.restart_counters.get(ident))
    except CallError as exc:
        return refuse(409, exc.reason)
    except CallTimeout as exc:
        return refuse(504, str(exc))
    return web.Response(body=text.encode(), headers={"Content-Type": exposition.CONTENT_TYPE})


# ---- the websocket ------------------------------------------------------------------------
def _bound_send_buffer(request: web.Request) -> None:
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)


async def websocket(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_BODY)
    await ws.prepare(request)
    _bound_send_buffer(request)
    transport = request.transport

    def abort() -> None:
        if transport is not None:
            transport.abort()

    sub = Subscriber(ws.send_str, abort, hub.outbox_bytes)
    hub.join(sub)
    pump = asyncio.create_task(sub.pump())
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(message.data)
            except ValueError:
                continue
            await hub.handle(sub, data)
    finally:
        hub.leave(sub)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await pump
        if not ws.closed:
            with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
                await asyncio.wait_for(ws.close(), 1.0)
    return ws


# ---- running it -------------------------------------------------------------------------
class Served:
    """A running dashboard: its address and how to stop it."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, token: str) -> None:
        self.runner = runner
        self.host = host
        self.port = port
        self.token = token

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def login_url(self) -> str:
        return f"{self.url}?token={self.token}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(app: web.Application, host: str, port: int, token: str) -> Served:
    """Listen on host:port (port 0: any free one) in the running loop."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    addresses = runner.addresses
    bound = int(addresses[0][1]) if addresses else port
    return Served(runner, host, bound, token)


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback one."""
    if host in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    if not host:
        return False  # every interface
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    import ipaddress

    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def exposure_error(host: str, token_set: bool, how: str) -> str | None:
    """Why the dashboard must not listen on `host`: beyond loopback, the token must have
    been chosen on purpose (`how` says where to set it)."""
    if token_set or is_loopback(host):
        return None
    return (
        f"{host or 'every interface'} can be reached from other machines: set the token "
        f"yourself ({how}), and put TLS in front (the dashboard speaks plain HTTP)"
    )


def environment_token() -> str | None:
    return os.environ.get("BIGTOP_WEB_TOKEN") or None
