"""A low soft limit on open files does not cap the number of processes."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import isolated_endpoints
from tests.helpers import alive, children_of, wait_until, write_ini


def test_hundreds_of_processes_under_a_soft_limit_of_256_files(tmp_path: Path) -> None:
    config = write_ini(
        tmp_path,
        """
        [watcher:many]
        cmd = sleep 3600
        numprocesses = 150
        """,
    )
    config.write_text(isolated_endpoints(tmp_path) + config.read_text())
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "bigtop", "run", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=low_limit,  # three descriptors per process: 150 need 450
    )
    seen: set[int] = set()
    try:
        wait_until(
            lambda: seen.update(children_of(daemon.pid)) or len(children_of(daemon.pid)) == 150,
            timeout=30,
            what="150 processes under a soft limit of 256 open files",
        )
        with open(f"/proc/{daemon.pid}/limits") as limits:
            line = next(li for li in limits if li.startswith("Max open files"))
        assert int(line.split()[3]) > 256, line
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        log.close()
    assert not [pid for pid in seen if alive(pid)]
    assert "Too many open files" not in (tmp_path / "daemon.log").read_text()
