"""The benchmark runs (tiny N, bigtop only): the figures themselves live in docs/benchmarks.md,
never in a timed test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)  # its runs have their own deadlines (240 s)
def test_the_harness_measures_bigtop_and_the_report_shows_the_targets(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    environ = {**os.environ, "BENCH_BIGTOP_VENV": sys.prefix}  # this venv has bin/bigtop
    command = [
        sys.executable, str(ROOT / "bench" / "run.py"), "--manager", "bigtop",
        "--scenario", "spawn,respawn,control,stats,stop", "--n", "3", "--quick",
        "--repeats", "1", "--kills", "2", "--stats-window", "2", "--out", str(results),
    ]  # fmt: skip
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env=environ, check=False
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    document = json.loads(results.read_text())
    by_scenario = {r["scenario"]: r for r in document["results"]}
    assert set(by_scenario) == {"spawn", "respawn", "control", "stats", "stop"}
    for record in by_scenario.values():
        assert not [n for n in record["notes"] if n.startswith("ERROR")], record
    spawn = by_scenario["spawn"]["metrics"]
    assert spawn["all_running_s"]["median"] > 0 and spawn["per_child_ms"]["median"] >= 0
    assert by_scenario["control"]["metrics"]["api_status_ms"]["median"] > 0
    assert by_scenario["stats"]["metrics"]["msgs_per_s"]["median"] > 0

    report = tmp_path / "benchmarks.md"
    render = [sys.executable, str(ROOT / "bench" / "bench.py"), "--report-only", str(results)]
    subprocess.run([*render, "--out", str(report)], check=True, timeout=60)
    text = report.read_text()
    assert "## Targets" in text and "| spawn, per child |" in text
    assert "## stats, N=3" in text
