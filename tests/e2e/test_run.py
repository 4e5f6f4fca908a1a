"""`bigtop run` as a user runs it: a real daemon process, real signals, real children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.e2e.conftest import isolated_endpoints
from tests.helpers import PYTHON, alive, children_of, wait_until, write_ini


def test_run_starts_watchers_and_sigterm_stops_everything(run_daemon, tmp_path) -> None:
    daemon = run_daemon(
        f"""
        [watcher:web]
        cmd = /bin/sh -c 'sleep 3600.21 & sleep 3600.22 & wait'
        numprocesses = 2
        graceful_timeout = 2

        [watcher:worker]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' e2e-worker
        """
    )
    children = daemon.wait_children(3)
    grandchildren = wait_until(
        lambda: (g := [p for c in children for p in children_of(c)]) and len(g) == 4 and g,
        what="grandchildren",
    )
    assert daemon.stop(signal.SIGTERM) == 0
    assert not [p for p in children + grandchildren if alive(p)]
    output = daemon.output()
    assert "started" in output and "bigtop stopped" in output


def test_ctrl_c_stops_and_a_second_one_kills_at_once(run_daemon) -> None:
    ignore_term = (
        f"{PYTHON} -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        'open("/dev/null"); time.sleep(3600)\''
    )
    daemon = run_daemon(
        f"""
        [watcher:stubborn]
        cmd = {ignore_term}
        graceful_timeout = 60
        """
    )
    [child] = daemon.wait_children(1)
    wait_until(lambda: _ignores(child, signal.SIGTERM), what="SIGTERM ignored by the child")
    daemon.process.send_signal(signal.SIGINT)
    wait_until(lambda: "stopping every watcher" in daemon.output(), what="the stop to begin")
    assert alive(child)
    daemon.process.send_signal(signal.SIGINT)
    assert daemon.process.wait(10) == 0
    assert not alive(child)


def _ignores(pid: int, signum: int) -> bool:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    return False


def test_sighup_reloads_with_new_processes(run_daemon) -> None:
    daemon = run_daemon(
        f"""
        [watcher:web]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' hup
        numprocesses = 2
        """
    )
    old = set(daemon.wait_children(2))
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(
        lambda: (c := set(daemon.children())) and len(c) == 2 and not c & old,
        what="two new processes",
    )
    assert daemon.stop() == 0


def test_a_config_with_errors_starts_nothing(run_daemon, tmp_path) -> None:
    daemon = run_daemon(
        """
        [watcher:good]
        cmd = sleep 3600.3

        [watcher:bad]
        cmd = sleep 3600.4
        numprocesses = -1
        stop_signal = SIGFOO
        """
    )
    assert daemon.process.wait(10) == 1
    output = daemon.output()
    assert "numprocesses: expected a non-negative integer (got '-1')" in output
    assert "stop_signal: expected a signal name or number" in output
    assert "not started" in output
    assert daemon.seen == set()


def test_a_missing_program_is_refused_at_run(run_daemon) -> None:
    daemon = run_daemon(
        """
        [watcher:ghost]
        cmd = /nonexistent/program --flag
        """
    )
    assert daemon.process.wait(10) == 1
    assert "[watcher:ghost] cmd: program does not exist (got '/nonexistent/program')" in (
        daemon.output()
    )


def test_pidfile_is_written_removed_and_guards_against_a_second_daemon(
    run_daemon, tmp_path
) -> None:
    pidfile = tmp_path / "run" / "bigtop.pid"
    ini = f"""
        [circus]
        pidfile = {pidfile}

        [watcher:one]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' pidfile
        """
    first = run_daemon(ini)
    first.wait_children(1)
    assert pidfile.read_text() == f"{first.pid}\n"
    assert oct(pidfile.stat().st_mode & 0o777) == "0o644"
    second = run_daemon(ini)
    assert second.process.wait(10) == 1
    assert f"names process {first.pid}, which is running" in second.output()
    assert first.stop() == 0
    assert not pidfile.exists()


def test_stale_pidfile_is_replaced(run_daemon, tmp_path) -> None:
    pidfile = tmp_path / "bigtop.pid"
    dead = subprocess.Popen(["true"])
    dead.wait()
    pidfile.write_text(f"{dead.pid}\n")
    daemon = run_daemon(
        f"""
        [watcher:one]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' stale
        """,
        "--pidfile",
        str(pidfile),
    )
    daemon.wait_children(1)
    assert pidfile.read_text() == f"{daemon.pid}\n"
    assert "replaced stale pidfile" in daemon.output()
    assert daemon.stop() == 0


def test_log_output_to_a_file(run_daemon, tmp_path) -> None:
    log_file = tmp_path / "bigtop.log"
    daemon = run_daemon(
        f"""
        [watcher:one]
        cmd = {PYTHON} -c 'import sys; sys.exit(3)'
        respawn = never
        """,
        "--log-output",
        str(log_file),
        "--log-level",
        "debug",
    )
    wait_until(lambda: log_file.exists() and "exited with code 3" in log_file.read_text())
    assert daemon.stop() == 0
    assert "bigtop[" in log_file.read_text()


def test_daemon_mode_detaches_and_writes_the_pidfile(tmp_path) -> None:
    pidfile = tmp_path / "d.pid"
    config = write_ini(
        tmp_path,
        f"""
        [watcher:bg]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' daemon-mode
        """,
    )
    config.write_text(isolated_endpoints(tmp_path) + config.read_text())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bigtop",
            "run",
            str(config),
            "--daemon",
            "--pidfile",
            str(pidfile),
            "--log-output",
            str(tmp_path / "log"),
        ],
        timeout=20,
        check=False,
    )
    assert result.returncode == 0
    pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip()))
    try:
        wait_until(lambda: [c for c in children_of(pid) if alive(c)], what="the child")
        children = children_of(pid)
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not alive(pid), what="the daemon to exit")
    assert not [c for c in children if alive(c)]
