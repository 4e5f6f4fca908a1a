#!/usr/bin/env python3
"""Benchmark bigtop beside Circus 0.19.0 and Supervisor 4.3.0, in one run, on this machine.

    python3 bench/bench.py                          # the scenarios below, N=200
    python3 bench/bench.py --scenario control,spawn --n 200,500

Creates throw-away venvs (default /tmp/peers: circus, supervisor, and bigtop installed
from this checkout), runs the harness (bench/run.py) against every manager and the floor
(tools/refmgr.py, a minimal manager), then writes docs/benchmarks.md: medians, ranges and
the ratios bigtop/Circus and bigtop/Supervisor. Medians on a shared 2-core machine are
noisy; judge the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS = os.environ.get("BENCH_PEERS", "/tmp/peers")
MANAGERS = ["bigtop", "circus", "supervisor", "floor"]
DEFAULT_SCENARIOS = "control"
PACKAGES = {"circus": "circus==0.19.0", "supervisor": "supervisor==4.3.0"}


def ensure_venv(name: str, requirement: str, force: bool = False) -> str:
    venv = os.path.join(PEERS, name)
    python = os.path.join(venv, "bin", "python")
    if force or not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", requirement], check=True)
    return venv


def run_harness(scenarios: str, ns: str, out: str, extra: list[str]) -> None:
    env = dict(os.environ)
    env.setdefault("BENCH_CIRCUS_VENV", os.path.join(PEERS, "circus"))
    env.setdefault("BENCH_SUPERVISOR_VENV", os.path.join(PEERS, "supervisor"))
    env.setdefault("BENCH_BIGTOP_VENV", os.path.join(PEERS, "bigtop"))
    command = [
        sys.executable, os.path.join(HERE, "run.py"), "--manager", ",".join(MANAGERS),
        "--scenario", scenarios, "--n", ns, "--out", out, *extra,
    ]  # fmt: skip
    subprocess.run(command, check=True, env=env)


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def report(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    table: dict[tuple[str, int], dict[str, dict[str, dict[str, float | str]]]] = {}
    for record in document["results"]:
        key = (record["scenario"], record["n"])
        for metric, value in record["metrics"].items():
            table.setdefault(key, {}).setdefault(metric, {})[record["manager"]] = value
    meta = document["meta"]
    lines = [
        "# Benchmarks",
        "",
        "bigtop beside Circus 0.19.0, Supervisor 4.3.0 and the floor (a ~250-line reference "
        "manager: what the OS allows), measured in **one run** on this project's machines "
        f"({meta['cpus']} CPUs, Python {meta['python']}, started {meta['started_utc']} UTC). "
        "Medians, with [min .. max]; lower is better unless the metric says otherwise. "
        "Ratios below 1 mean bigtop is faster or cheaper.",
        "",
        "Reproduce: `python3 bench/bench.py --scenario "
        + ",".join(sorted({k[0] for k in table}))
        + " --n "
        + ",".join(str(n) for n in sorted({k[1] for k in table}))
        + "` (creates throw-away venvs in /tmp/peers).",
        "",
    ]
    for (scenario, n), metrics in sorted(table.items()):
        lines += [
            f"## {scenario}, N={n}",
            "",
            "| metric | bigtop | Circus | Supervisor | floor | bigtop / Circus | bigtop / Supervisor |",
            "|---|---|---|---|---|---|---|",
        ]
        for metric, by_manager in sorted(metrics.items()):
            cells = []
            for manager in MANAGERS:
                value = by_manager.get(manager)
                if not isinstance(value, dict) or not isinstance(value.get("median"), int | float):
                    cells.append("—")
                    continue
                unit = value.get("unit", "")
                cells.append(
                    f"{fmt(value['median'])} {unit} [{fmt(value['min'])} .. {fmt(value['max'])}]"
                )
            ratios = []
            mine = by_manager.get("bigtop", {})
            for peer in ("circus", "supervisor"):
                theirs = by_manager.get(peer, {})
                if mine.get("median") and theirs.get("median"):
                    ratios.append(f"{mine['median'] / theirs['median']:.2f}")
                else:
                    ratios.append("—")
            lines.append(f"| {metric} | " + " | ".join(cells + ratios) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default=DEFAULT_SCENARIOS)
    parser.add_argument("--n", default="200")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    parser.add_argument("--results", help="write the raw JSON here (default: bench/results/)")
    parser.add_argument("--report-only", help="only turn this results JSON into the report")
    args, extra = parser.parse_known_args()
    if args.report_only:
        results = args.report_only
    else:
        for name, requirement in PACKAGES.items():
            ensure_venv(name, requirement)
        ensure_venv("bigtop", ROOT, force=True)  # always this checkout
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        results = args.results or os.path.join(HERE, "results", f"run-{stamp}.json")
        os.makedirs(os.path.dirname(results), exist_ok=True)
        run_harness(args.scenario, args.n, results, extra)
    text = report(results)
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
