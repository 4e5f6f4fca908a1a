"""A dashboard served on a free loopback port in the test's loop, for in-process daemons."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bigtop.web.app import HUB, Served, create_app, serve
from bigtop.web.hub import Hub
from bigtop.web.source import DaemonLink
from tests.conftest import Daemon
from tests.e2e.daemon import DaemonPool

TOKEN = "test-token-0123456789"


@dataclass
class Dashboard:
    served: Served
    hub: Hub
    session: aiohttp.ClientSession  # no cookies of its own unless the test logs in

    @property
    def url(self) -> str:
        return self.served.url.rstrip("/")

    @property
    def origin(self) -> str:
        return self.url

    def bearer(self, token: str = TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @contextlib.asynccontextmanager
    async def websocket(self) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """A websocket as a script opens it: the Bearer token, no cookie, no Origin."""
        async with (
            aiohttp.ClientSession() as api,
            api.ws_connect(f"{self.url}/ws", headers=self.bearer()) as ws,
        ):
            yield ws

    async def log_in(self) -> str:
        """Log this session in with the token URL; the session's CSRF token."""
        async with self.session.get(f"{self.url}/?token={TOKEN}", allow_redirects=False) as r:
            assert r.status == 303, await r.text()
        async with self.session.get(f"{self.url}/api/session") as r:
            assert r.status == 200
            return str((await r.json())["csrf"])


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[DaemonPool]:
    """`bigtop run` daemons as subprocesses (two in-process arbiters would fight over the
    test process's children)."""
    daemons = DaemonPool(tmp_path)
    yield daemons
    leaked = daemons.close()
    assert not leaked, f"left running: {leaked}"


@pytest.fixture
async def dashboard(
    daemon: Any, pool: DaemonPool
) -> AsyncIterator[Callable[..., Awaitable[Dashboard]]]:
    # depends on the daemon fixtures so that the dashboard stops before the daemons it watches
    made: list[Dashboard] = []

    async def start(*daemons: Daemon | str, **options: Any) -> Dashboard:
        """A dashboard for in-process daemons or control endpoints."""
        endpoints = [d if isinstance(d, str) else d.arbiter.endpoints.control for d in daemons]
        links = [
            DaemonLink(f"d{n}", endpoint, f"daemon {n}", timeout=5.0)
            for n, endpoint in enumerate(endpoints)
        ]
        app = create_app(links, TOKEN, **options)
        served = await serve(app, "127.0.0.1", 0, TOKEN)
        jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for an IP address host
        board = Dashboard(served, app[HUB], aiohttp.ClientSession(cookie_jar=jar))
        made.append(board)
        return board

    yield start
    for board in made:
        await board.session.close()
        await board.served.close()
