"""Plugins written against Circus's contract run under bigtop: on the real circus 0.19.0
(importable by the plugin process) and on bigtop's shim (no circus at all)."""

from __future__ import annotations

import json
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.e2e.circus_env import CircusEnvError, ensure_circus_env
from tests.helpers import PYTHON, async_wait_until

RECORDER = """
import json
from {base} import CircusPlugin


class Recorder(CircusPlugin):
    name = "recorder"

    def handle_init(self):
        self.out = open(self.config["out"], "a")

    def handle_recv(self, data):
        watcher, action, msg = self.split_data(data)
        message = self.load_message(msg)
        reply = self.call("status", name=watcher)
        row = [watcher, action, message.get("process_pid"), reply.get("status")]
        self.out.write(json.dumps(row) + "\\n")
        self.out.flush()

    def handle_stop(self):
        self.out.write(json.dumps(["stopped", self.config.get("greeting")]) + "\\n")
        self.out.close()
"""


def rows(path: Path) -> list[list[object]]:
    if not path.exists():
        return []
    text = path.read_text()  # a line being appended can show half written: skip it
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


async def run_recorder(daemon, tmp_path: Path, base: str) -> list[list[object]]:
    (tmp_path / "recorder.py").write_text(RECORDER.format(base=base))
    out = tmp_path / "events.jsonl"
    d = await daemon(
        f"""
        [watcher:web]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' circus-contract

        [plugin:recorder]
        use = recorder.Recorder
        out = {out}
        greeting = hello: world
        """
    )
    web = d.watcher("web")
    await d.wait_pids("web", 1)
    for _ in range(200):  # until the plugin's subscription is in place
        web.scale(2)
        await d.wait_pids("web", 2)
        web.scale(1)
        await d.wait_pids("web", 1)
        if any(row[1] == "spawn" for row in rows(out)):
            break
    web.scale(2)
    pids = await d.wait_pids("web", 2)
    await async_wait_until(lambda: [r for r in rows(out) if r[2] == max(pids)], what="the spawn")
    await d.quit()
    return rows(out)


def check(recorded: list[list[object]]) -> None:
    spawns = [row for row in recorded if row[1] == "spawn"]
    assert spawns and all(row[0] == "web" and row[3] == "active" for row in spawns)
    assert isinstance(spawns[0][2], int)  # the payload's process_pid, read with load_message
    assert recorded[-1] == ["stopped", "hello: world"]  # handle_stop runs; ':' in a value kept


async def test_a_plugin_on_the_real_circus_runs_under_bigtop(
    daemon, tmp_path: Path, monkeypatch
) -> None:
    try:
        circus = ensure_circus_env()
    except CircusEnvError as exc:
        pytest.fail(f"the Circus venv is needed for this test: {exc}")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = circus.root / "lib" / version / "site-packages"
    assert (site / "circus" / "plugins" / "__init__.py").exists(), site
    # circus becomes importable for the plugin process only (appended after bigtop's path)
    monkeypatch.setenv("PYTHONPATH", str(site))
    recorded = await run_recorder(daemon, tmp_path, "circus.plugins")
    check(recorded)
    assert "circus" not in sys.modules  # the daemon itself never imported it
    assert sysconfig.get_paths()["purelib"] != str(site)


async def test_a_plugin_on_bigtops_shim_runs_without_circus(daemon, tmp_path: Path) -> None:
    check(await run_recorder(daemon, tmp_path, "bigtop.plugins.circus_compat"))
