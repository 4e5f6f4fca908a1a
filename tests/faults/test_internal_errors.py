"""Errors inside the daemon itself (a bug, a value nothing validated) while it starts or
stops: it may fail, but it never exits leaving processes running. These are safety nets, so
the error is injected (a watcher method replaced) into a daemon running in this process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bigtop.config.load import load_config
from bigtop.control.endpoints import default_endpoints
from bigtop.runtime.arbiter import Arbiter
from tests.helpers import alive, wait_until, write_ini


async def test_a_stop_that_fails_still_leaves_nothing_running(
    daemon, monkeypatch, tag: str
) -> None:
    """(`set stop_signal 10**30` once made the stop raise: every process was left running.)"""
    d = await daemon(
        f"""
        [watcher:a]
        cmd = sleep {tag}
        numprocesses = 3
        """
    )
    pids = await d.wait_pids("a", 3)

    async def broken() -> None:
        raise RuntimeError("stop failed")

    monkeypatch.setattr(d.watcher("a"), "stop", broken)
    await d.quit()
    wait_until(lambda: not [p for p in pids if alive(p)], 10, what="every process killed")


async def test_a_start_that_fails_leaves_nothing_running(tmp_path: Path, tag: str) -> None:
    """(A max_age past what a float holds once made the start raise after the first spawn:
    the daemon exited and the process ran on.)"""
    path = write_ini(
        tmp_path,
        f"""
        [watcher:first]
        cmd = sleep {tag}
        numprocesses = 2
        priority = 10

        [watcher:second]
        cmd = sleep {tag}
        """,
    )
    arbiter = Arbiter(load_config(str(path)), endpoints=default_endpoints(str(tmp_path / "s")))

    def broken() -> bool:
        raise RuntimeError("start failed")

    arbiter.watchers["second"].start = broken  # type: ignore[method-assign]
    spawned: list[int] = []
    arbiter.subscribers.append(
        lambda topic, message: topic.endswith(".spawn") and spawned.append(message["process_pid"])
    )
    with pytest.raises(RuntimeError, match="start failed"):
        await asyncio.wait_for(arbiter.run(), 20)
    assert len(spawned) == 2, spawned
    assert not [p for p in spawned if alive(p)], "the daemon failed and left processes running"
