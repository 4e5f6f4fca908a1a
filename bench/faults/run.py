"""Run the fault tests' long variants and print what they measured.

    python bench/faults/run.py                  # every fault, long variants (about 10 minutes)
    python bench/faults/run.py kill_storm churn # some of them
    python bench/faults/run.py --short          # the suite's sizes, same report

The long variants are the suite's own tests (tests/faults/) run with BIGTOP_FAULTS_LONG=1:
a 60 s kill storm, 10,000 churn cycles, 100,000 fuzzed control messages, 5,000 fuzzed config
files for `bigtop check` and 100 for `bigtop run`. Each test writes its figures as JSON lines
to $BIGTOP_FAULTS_REPORT; this script collects them into bench/faults/results/ and prints
them. Run it from the repository root, as root (the disk tests mount a small tmpfs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAULTS = {
    "kill_storm": "tests/faults/test_kill_storm.py",
    "churn": "tests/faults/test_churn.py",
    "protocol_fuzz": "tests/faults/test_protocol_fuzz_long.py",
    "config_fuzz": "tests/faults/test_config_fuzz.py",
    "signal_storms": "tests/faults/test_signal_storms.py",
    "daemon_killed": "tests/faults/test_daemon_killed.py",
    "slow_consumers": "tests/faults/test_slow_consumers.py",
    "disk_trouble": "tests/faults/test_disk_trouble.py",
    "internal_errors": "tests/faults/test_internal_errors.py",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("faults", nargs="*", choices=[*FAULTS, []], metavar="FAULT")
    parser.add_argument("--short", action="store_true", help="the suite's sizes")
    args = parser.parse_args()
    chosen = args.faults or list(FAULTS)
    results = ROOT / "bench" / "faults" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    report = results / f"faults-{stamp}.jsonl"
    env = {**os.environ, "BIGTOP_FAULTS_REPORT": str(report)}
    if not args.short:
        env["BIGTOP_FAULTS_LONG"] = "1"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "faulthandler_timeout=0",  # the long variants run for minutes on purpose
        *(FAULTS[name] for name in chosen),
    ]
    started = time.monotonic()
    status = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    print(f"\n{' '.join(command[2:])}: exit {status} in {time.monotonic() - started:.0f} s")
    if report.exists():
        print(f"figures ({report.relative_to(ROOT)}):")
        for line in report.read_text().splitlines():
            figures = json.loads(line)
            name = figures.pop("fault")
            print(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    return status


if __name__ == "__main__":
    sys.exit(main())
