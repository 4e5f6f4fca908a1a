"""CommandReloader: replacing a watcher's executable restarts that watcher, only that one."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tests.helpers import PYTHON, alive, async_wait_until


def write_script(path: Path, tag: str) -> None:
    """Write the new version beside the old and rename it over (what a deploy does)."""
    fresh = path.with_suffix(".new")
    fresh.write_text(f"#!/bin/sh\nexec {PYTHON} -c 'import time; time.sleep(3600)' {tag}\n")
    fresh.chmod(0o755)
    os.replace(fresh, path)


async def test_replacing_an_executable_restarts_its_watcher(daemon, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="bigtop")  # the plugin runs at the daemon's level
    app = tmp_path / "app.sh"
    write_script(app, "reloader-v1")
    d = await daemon(
        f"""
        [watcher:app]
        cmd = {app} --port 8000
        numprocesses = 2

        [watcher:other]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' reloader-other

        [plugin:reloader]
        use = circus.plugins.command_reloader.CommandReloader
        loop_rate = 0.1
        """
    )
    old = await d.wait_pids("app", 2)
    [other] = await d.wait_pids("other", 1)
    supervisor = d.arbiter.plugins
    await async_wait_until(
        lambda: any(
            "watching the executables of 2" in line for line in supervisor.output("reloader")
        ),
        what="the reloader's first look",
    )
    write_script(app, "reloader-v2")
    await async_wait_until(lambda: not any(alive(p) for p in old), what="the old version stopped")
    new = await d.wait_pids("app", 2)
    assert not set(new) & set(old)
    assert d.pids("other") == [other]
    assert any(
        "app.sh changed; restarting the watcher" in line for line in supervisor.output("reloader")
    )
