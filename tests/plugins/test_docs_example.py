"""The plugin written out in docs/plugins.md runs as documented."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from tests.helpers import PYTHON, async_wait_until

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    return next(block for block in blocks if "class CrashAlert(Plugin)" in block)


async def test_the_documented_plugin_runs(daemon, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="bigtop")
    (tmp_path / "crash_alert.py").write_text(example())
    d = await daemon(
        f"""
        [watcher:web]
        cmd = {PYTHON} -c 'import time; time.sleep(0.2); raise SystemExit(3)'
        backoff_initial = 0.1
        backoff_max = 0.1

        [plugin:alerts]
        use = crash_alert.CrashAlert
        watchers = web|api
        summary_every = 0.3
        """
    )
    output = d.arbiter.plugins.output

    def alerted() -> list[str]:
        return [line for line in output("alerts") if "web crashed (code 3); it is active" in line]

    await async_wait_until(alerted, timeout=20, what="the documented warning")
    await async_wait_until(
        lambda: any(re.search(r"\d+ crashes so far", line) for line in output("alerts")),
        what="the periodic summary",
    )
    assert d.arbiter.plugins.plugins["alerts"].restarts == 0
