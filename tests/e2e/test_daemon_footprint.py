"""What a daemon loads: only what its config uses. Client commands, CURVE, plugins' classes,
supervisord.conf translation, logging.config and the stats stream each cost memory in a
process that lives for months, so a plain config must not import them (docs/benchmarks.md
has the RSS figures)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import wait_until

DUMP_MODULES = """
import json, os, sys

def after_start(watcher, arbiter, hook_name, **kwargs):
    with open(os.environ["BT_MODULES_OUT"] + ".tmp", "w") as handle:
        json.dump(sorted(sys.modules), handle)
    os.rename(os.environ["BT_MODULES_OUT"] + ".tmp", os.environ["BT_MODULES_OUT"])
    return True
"""
NOT_FOR_A_PLAIN_DAEMON = (
    "bigtop.cli.top",
    "bigtop.cli.toptui",
    "bigtop.cli.web",
    "bigtop.cli.logs",
    "bigtop.cli.events",
    "bigtop.cli.keygen",
    "bigtop.web",
    "rich",
    "aiohttp",
    "ssl",
    "zmq.auth",
    "bigtop.config.supervisor",
    "bigtop.config.diff",
    "bigtop.plugins.base",
    "bigtop.control.client",
    "bigtop.control.discovery",
    "bigtop.runtime.statsstream",
    "logging.config",
    "logging.handlers",
    "psutil",
)


def test_a_plain_daemon_loads_only_what_it_uses(run_daemon, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "modules.json"
    (tmp_path / "dumpmods.py").write_text(DUMP_MODULES)
    monkeypatch.setenv("BT_MODULES_OUT", str(out))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    daemon = run_daemon(
        """
        [watcher:plain]
        cmd = sleep 3600
        hooks.after_start = dumpmods.after_start
        """
    )
    daemon.wait_children(1)
    wait_until(out.exists, 15, what="the hook to list the daemon's modules")
    loaded = set(json.loads(out.read_text()))
    assert "bigtop.runtime.arbiter" in loaded and "bigtop.cli.run" in loaded
    unexpected = sorted(
        name
        for name in loaded
        if any(name == banned or name.startswith(banned + ".") for banned in NOT_FOR_A_PLAIN_DAEMON)
    )
    assert unexpected == []
