"""`bigtop <command>` against a real daemon: endpoint precedence, output, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import PYTHON, alive, wait_until

SLEEP = f"{PYTHON} -c 'import time; time.sleep(3600)'"


def bigtop(
    *args: str, env: dict[str, str] | None = None, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bigtop", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_endpoint_precedence_and_plain_output(run_daemon, tmp_path: Path) -> None:
    daemon = run_daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} cli-web
        numprocesses = 2

        [watcher:db]
        cmd = {SLEEP} cli-db
        """
    )
    daemon.wait_children(3)
    config = tmp_path / "circus.ini"
    endpoint = f"ipc://{tmp_path}/control.sock"
    # -c CONFIG finds the endpoint in [circus]
    result = bigtop("-c", str(config), "status")
    assert (result.returncode, result.stdout) == (0, "db: active\nweb: active\n")
    # the environment beats -c; --endpoint beats the environment
    wrong = {"BIGTOP_ENDPOINT": f"ipc://{tmp_path}/nothing.sock"}
    assert bigtop("-c", str(config), "--timeout", "0.3", "status", env=wrong).returncode == 1
    result = bigtop("--endpoint", endpoint, "list", env=wrong)
    assert (result.returncode, result.stdout) == (0, "db,web\n")
    result = bigtop("list", env={"CIRCUSCTL_ENDPOINT": endpoint})
    assert result.stdout == "db,web\n"
    # options may also follow the command
    result = bigtop("incr", "web", "--waiting", "--endpoint", endpoint)
    assert (result.returncode, result.stdout) == (0, "3\n")
    result = bigtop("--endpoint", endpoint, "status", "nosuch")
    assert (result.returncode, result.stderr) == (3, "error: program nosuch not found\n")
    result = bigtop("--endpoint", endpoint, "--json", "numwatchers")
    reply = json.loads(result.stdout)
    assert (reply["status"], reply["numwatchers"]) == ("ok", 2)
    result = bigtop("--endpoint", endpoint, "get", "web", "numprocesses", "graceful_timeout")
    assert result.stdout == "graceful_timeout: 30.0\nnumprocesses: 3\n"


def test_no_daemon_means_exit_1_with_a_hint(tmp_path: Path) -> None:
    result = bigtop("--endpoint", f"ipc://{tmp_path}/none.sock", "--timeout", "0.2", "status")
    assert result.returncode == 1
    assert "no reply from" in result.stderr and "is bigtop running" in result.stderr


def test_events_prints_one_line_per_event(run_daemon, tmp_path: Path) -> None:
    daemon = run_daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} events
        """
    )
    daemon.wait_children(1)
    endpoint = f"ipc://{tmp_path}/control.sock"
    follower = subprocess.Popen(
        [sys.executable, "-m", "bigtop", "-c", str(tmp_path / "circus.ini"), "events",
         "--json", "--count", "3", "watcher.web."],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        # publish until the follower is connected and has seen three events
        def done() -> bool:
            if follower.poll() is not None:
                return True
            bigtop("--endpoint", endpoint, "set", "web", "graceful_timeout", "5")
            return False

        wait_until(done, timeout=20, interval=0.1, what="three events")
        lines = follower.stdout.read().splitlines() if follower.stdout else []
    finally:
        if follower.poll() is None:
            follower.kill()
        follower.wait()
        if follower.stdout:
            follower.stdout.close()
    events = [json.loads(line) for line in lines]
    assert len(events) == 3
    assert {e["topic"] for e in events} == {"watcher.web.updated"}
    assert all(isinstance(e["time"], float) for e in events)


def test_restart_without_a_name_rereads_the_config(run_daemon, tmp_path: Path) -> None:
    daemon = run_daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} restart-web
        """
    )
    [old] = daemon.wait_children(1)
    config = tmp_path / "circus.ini"
    config.write_text(config.read_text() + f"\n[watcher:added]\ncmd = {SLEEP} restart-added\n")
    result = bigtop("-c", str(config), "restart")
    assert result.returncode == 0
    children = daemon.wait_children(2, timeout=20)
    assert old not in children
    wait_until(lambda: bigtop("-c", str(config), "list").stdout == "added,web\n", what="re-read")
    assert daemon.process.poll() is None, "the same daemon process"
    assert daemon.stop() == 0


def test_quit_stops_the_daemon(run_daemon, tmp_path: Path) -> None:
    daemon = run_daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} quit
        """
    )
    children = daemon.wait_children(1)
    result = bigtop("-c", str(tmp_path / "circus.ini"), "quit", "--waiting")
    assert result.returncode in (0, 1)  # the daemon may close before its reply leaves
    assert daemon.process.wait(20) == 0
    assert not [c for c in children if alive(c)]


def test_status_history_shows_why_processes_ended(run_daemon, tmp_path: Path) -> None:
    daemon = run_daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} cli-history
        """
    )
    [pid] = daemon.wait_children(1)
    endpoint = f"ipc://{tmp_path}/control.sock"
    os.kill(pid, 9)
    wait_until(lambda: not alive(pid) and len(daemon.children()) == 1)
    result = bigtop("--endpoint", endpoint, "status", "web", "--history")
    lines = result.stdout.splitlines()
    assert (result.returncode, lines[:3]) == (0, ["active", "", "web: 1 restart(s)"]), result
    assert f"wid 1  pid {pid}  killed by SIGKILL (9)" in lines[3] and "restart in 0s" in lines[3]


def test_a_malformed_endpoint_is_named_and_explained() -> None:
    result = bigtop("--endpoint", "status", "list")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: --endpoint 'status' is not an endpoint")
    result = bigtop("list", env={"BIGTOP_ENDPOINT": "tcp://no-port"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'tcp://no-port'" in result.stderr and "tcp://HOST:PORT" in result.stderr


def test_only_the_command_run_is_built_but_help_lists_them_all() -> None:
    from bigtop.cli.main import build_parser, command_named

    assert command_named(["--endpoint", "list", "status", "web"]) == "status"
    assert command_named(["--timeout", "1", "-c", "x.ini", "incr", "web"]) == "incr"
    assert command_named(["--help"]) is None and command_named([]) is None
    every = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"run", "check", "status", "top", "web", "logs", "quit"} <= set(every)
    one = build_parser(only="status")._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(one) == {"status"}
    result = bigtop("--help")
    assert result.returncode == 0 and all(c in result.stdout for c in ("reloadconfig", "top"))
    result = bigtop("nosuch")
    assert result.returncode == 2 and "invalid choice: 'nosuch'" in result.stderr
