"""Plugin processes under the daemon: started, restarted with backoff, stopped, reloaded."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from bigtop.control.client import AsyncClient
from tests.e2e.daemon import DaemonPool, cmdline
from tests.helpers import PYTHON, alive, async_wait_until, children_of, wait_until

SLEEP = f"{PYTHON} -c 'import time; time.sleep(3600)'"
CRASHER = """
from bigtop.plugins import Plugin

class Crasher(Plugin):
    async def on_event(self, topic, message):
        raise RuntimeError(f"boom on {topic}")
"""
NOTER = """
from pathlib import Path
from bigtop.plugins import Plugin

class Noter(Plugin):
    async def on_start(self):
        self.path = Path(self.options.text("path", ""))
        self.path.write_text("started\\n")

    async def on_stop(self):
        with self.path.open("a") as out:
            out.write("stopped\\n")
"""


def plugin_pid(d, name: str) -> int | None:
    process = d.arbiter.plugins.plugins.get(name)
    return process.pid if process else None


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bigtop.plugins"]


async def test_a_plugin_that_raises_on_every_event_is_restarted_with_backoff(
    daemon, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="bigtop.plugins")
    (tmp_path / "crasher.py").write_text(CRASHER)
    d = await daemon(
        f"""
        [watcher:churn]
        cmd = {PYTHON} -c 'import time; time.sleep(0.05); raise SystemExit(1)'
        backoff_initial = 0.05
        backoff_max = 0.05

        [watcher:steady]
        cmd = {SLEEP} steady-beside-crasher

        [plugin:crash]
        use = crasher.Crasher
        """
    )
    [steady] = await d.wait_pids("steady", 1)
    supervisor = d.arbiter.plugins
    await async_wait_until(
        lambda: supervisor.plugins["crash"].restarts >= 3, timeout=20, what="three restarts"
    )
    restarts = [m for m in messages(caplog) if m.startswith("plugin 'crash' exited")]
    assert restarts[:3] == [
        "plugin 'crash' exited with code 1; restarting now",
        "plugin 'crash' exited with code 1; restarting in 0.5s",
        "plugin 'crash' exited with code 1; restarting in 1s",
    ]
    assert any("RuntimeError: boom on watcher.churn." in m for m in messages(caplog))
    # the daemon is unaffected: it answers commands, the other watcher was never touched
    async with AsyncClient(d.arbiter.endpoints.control) as client:
        reply = await client.call("incr", name="steady", waiting=True)
        assert reply["numprocesses"] == 2
        assert (await client.call("status", name="steady"))["status"] == "active"
    assert steady in d.pids("steady")
    pid = plugin_pid(d, "crash")
    await d.quit()
    assert pid is None or not alive(pid)
    assert supervisor.plugins == {}


async def test_stopped_first_with_sigterm_so_on_stop_runs(daemon, tmp_path: Path) -> None:
    (tmp_path / "noter.py").write_text(NOTER)
    notes = tmp_path / "notes.txt"
    d = await daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} noter-web

        [plugin:noter]
        use = noter.Noter
        path = {notes}
        """
    )
    await async_wait_until(notes.exists, what="the plugin's on_start")
    pid = plugin_pid(d, "noter")
    assert pid is not None and "bigtop.plugins.runner" in cmdline(pid)
    assert "noter.Noter" in cmdline(pid)
    assert str(notes) not in cmdline(pid)  # options travel in the environment, not argv
    await d.quit()
    assert notes.read_text() == "started\nstopped\n"
    assert not alive(pid)


async def test_a_plugin_that_cannot_run_is_reported_and_not_restarted(
    daemon, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="bigtop.plugins")
    d = await daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} cannot-run

        [plugin:ghost]
        use = nosuchmodule.Plugin

        [plugin:dog]
        use = watchdog
        loop_rate = soon

        [plugin:off]
        use = statsd
        active = false

        [plugin:flapping]
        use = circus.plugins.flapping.Flapping
        """
    )
    supervisor = d.arbiter.plugins
    assert set(supervisor.plugins) == {"ghost", "dog"}  # inactive and flapping: no process
    await async_wait_until(
        lambda: all(p.given_up for p in supervisor.plugins.values()), what="both given up"
    )
    logged = messages(caplog)
    assert any(
        m.startswith("plugin ghost[")
        and "[plugin:ghost] use = nosuchmodule.Plugin: cannot import 'nosuchmodule'" in m
        for m in logged
    ), logged
    assert any("[plugin:dog] loop_rate = 'soon': expected a number" in m for m in logged), logged
    assert "plugin 'off' is not active (active = false); not started" in logged
    assert all(p.restarts == 0 for p in supervisor.plugins.values())
    assert any("cannot run with its configuration" in m for m in logged)


async def test_reloadconfig_starts_new_plugins_and_stops_removed_ones(
    daemon, tmp_path: Path
) -> None:
    (tmp_path / "noter.py").write_text(NOTER)
    notes = tmp_path / "notes.txt"
    base = f"[watcher:web]\ncmd = {SLEEP} reloadconfig-plugins\n"
    d = await daemon(base)
    assert d.arbiter.plugins.plugins == {}
    ini = Path(d.arbiter.config.path)
    ini.write_text(base + f"[plugin:noter]\nuse = noter.Noter\npath = {notes}\n")
    await d.arbiter.reload_config()
    await async_wait_until(notes.exists, what="the new plugin's on_start")
    pid = plugin_pid(d, "noter")
    ini.write_text(base)
    await d.arbiter.reload_config()
    assert d.arbiter.plugins.plugins == {}
    assert notes.read_text() == "started\nstopped\n"
    assert pid is not None and not alive(pid)


async def test_a_plugin_from_an_installed_package_entry_point(daemon, tmp_path: Path) -> None:
    dist = tmp_path / "greeter_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: greeter-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[bigtop.plugins]\ngreeter = greeter_mod:Greeter\n")
    (tmp_path / "greeter_mod.py").write_text(NOTER.replace("Noter", "Greeter"))
    notes = tmp_path / "greeted.txt"
    d = await daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} entry-point

        [plugin:hello]
        use = greeter
        path = {notes}
        """
    )
    await async_wait_until(notes.exists, what="the entry point's plugin to start")
    await d.quit()
    assert notes.read_text() == "started\nstopped\n"


def test_plugins_end_when_the_daemon_is_killed(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: a daemon killed with SIGKILL leaves no plugin running."""
    pool = DaemonPool(tmp_path)
    try:
        daemon = pool.start(
            """
            [plugin:metrics]
            use = prometheus
            port = 0
            """
        )
        daemon.wait_ready()
        plugin = wait_until(
            lambda: [p for p in children_of(daemon.pid) if "bigtop.plugins.runner" in cmdline(p)],
            what="the plugin process",
        )[0]
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.process.wait(10)
        wait_until(lambda: not alive(plugin), what="the plugin to end with its daemon")
    finally:
        assert pool.close() == []


def test_the_runner_explains_its_usage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bigtop.plugins.runner", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--endpoint" in result.stdout and "USE" not in result.stderr


async def test_reloadconfig_tries_again_a_plugin_given_up_on(daemon, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    d = await daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} given-up

        [plugin:late]
        use = late_module.Noter
        path = {notes}
        """
    )
    supervisor = d.arbiter.plugins
    await async_wait_until(lambda: supervisor.plugins["late"].given_up, what="given up")
    (tmp_path / "late_module.py").write_text(NOTER)  # what it lacked, installed now
    await d.arbiter.reload_config()
    await async_wait_until(notes.exists, what="the plugin to start this time")
    assert not supervisor.plugins["late"].given_up
