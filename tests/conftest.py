"""Suite-wide fixtures: run an in-process arbiter on real processes and leave nothing behind."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from bigtop.config.load import load_config
from bigtop.control.endpoints import default_endpoints
from bigtop.runtime.arbiter import Arbiter
from tests.helpers import alive, async_wait_until, write_ini

Events = list[tuple[str, dict[str, Any]]]

# No per-example deadline: on a busy 2-core CI machine one slow example is not a failure
# (the tests that measure time do it themselves, with margins).
settings.register_profile("bigtop", deadline=None)
settings.load_profile("bigtop")


class Daemon:
    """An arbiter running in the test's loop, with every event it published."""

    def __init__(self, arbiter: Arbiter, task: asyncio.Task[None]) -> None:
        self.arbiter = arbiter
        self.task = task
        self.events: Events = []
        self.seen_pids: set[int] = set()
        arbiter.subscribers.append(self._record)

    def _record(self, topic: str, message: dict[str, Any]) -> None:
        self.events.append((topic, message))
        if topic.endswith(".spawn"):
            self.seen_pids.add(message["process_pid"])

    def watcher(self, name: str) -> Any:
        watcher = self.arbiter.get_watcher(name)
        assert watcher is not None, f"no watcher {name!r}"
        return watcher

    def pids(self, name: str) -> list[int]:
        return list(self.watcher(name).pids)

    async def wait_pids(self, name: str, count: int, timeout: float = 10.0) -> list[int]:
        def ready() -> list[int] | None:
            pids = self.pids(name)
            return pids if len(pids) == count and all(alive(p) for p in pids) else None

        return await async_wait_until(ready, timeout, what=f"{count} live processes of {name!r}")

    def topics(self, suffix: str = "") -> list[str]:
        return [t for t, _ in self.events if t.endswith(suffix)]

    async def quit(self, timeout: float = 30.0) -> None:
        if not self.task.done():
            self.arbiter.request("quit")
        await asyncio.wait_for(asyncio.shield(self.task), timeout)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Daemon]]]:
    running: list[Daemon] = []

    async def start(ini: str, environ: dict[str, str] | None = None) -> Daemon:
        # Lines are stripped so interpolated multi-line pieces need no matching indent.
        path = write_ini(tmp_path, "\n".join(line.strip() for line in ini.splitlines()))
        config = load_config(str(path), environ)
        sockets = tmp_path / f"sockets-{len(running)}"
        arbiter = Arbiter(config, endpoints=default_endpoints(str(sockets)))
        task = asyncio.create_task(arbiter.run())
        handle = Daemon(arbiter, task)
        running.append(handle)
        await asyncio.sleep(0)
        return handle

    yield start
    leaked: list[int] = []
    for handle in running:
        try:
            await handle.quit()
        finally:
            for pid in handle.seen_pids:
                if alive(pid):
                    leaked.append(pid)
                    os.kill(pid, signal.SIGKILL)
    assert not leaked, f"processes left running after the daemon stopped: {leaked}"
