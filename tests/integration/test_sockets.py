"""[socket:NAME]: bound by the daemon, shared by the workers at the same fd number."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

from tests.helpers import PYTHON, async_wait_until, write_ini

# A worker that answers every connection on the inherited fd with its pid.
WORKER = Path(__file__).with_name("pid_server.py")
SERVE = f"{PYTHON} {WORKER}"


def _ask(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        return int(conn.recv(64))


async def test_workers_share_one_listening_socket(daemon) -> None:
    d = await daemon(
        f"""
        [socket:Web]
        host = 127.0.0.1
        port = 0

        [watcher:web]
        cmd = {SERVE} $(circus.sockets.web)
        numprocesses = 2
        use_sockets = true

        [watcher:other]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' no-sockets
        """
    )
    pids = set(await d.wait_pids("web", 2))
    [entry] = (await d.arbiter.controller.cmd_listsockets({}))["sockets"]
    assert (entry["name"], entry["host"], entry["backlog"]) == ("web", "127.0.0.1", 2048)
    port = entry["port"]
    assert port > 0
    seen: set[int] = set()

    def both_answered() -> bool:
        seen.add(_ask(port))
        return seen == pids

    await async_wait_until(both_answered, what="both workers answering")
    fd = entry["fd"]
    for pid in pids:
        assert os.path.exists(f"/proc/{pid}/fd/{fd}"), "the socket sits at the same fd number"
    [other] = d.pids("other")
    assert not os.path.exists(f"/proc/{other}/fd/{fd}"), "not passed to a watcher without it"


async def test_restarting_workers_keeps_the_socket_open(daemon) -> None:
    d = await daemon(
        f"""
        [socket:web]
        host = 127.0.0.1
        port = 0

        [watcher:web]
        cmd = {SERVE} $(circus.sockets.web)
        """
    )
    [old] = await d.wait_pids("web", 1)
    port = (await d.arbiter.controller.cmd_listsockets({}))["sockets"][0]["port"]
    assert _ask(port) == old
    await d.watcher("web").stop()
    # while no worker runs, connections wait in the backlog instead of being refused
    pending = socket.create_connection(("127.0.0.1", port), timeout=5)
    d.watcher("web").start()
    [new] = await d.wait_pids("web", 1)
    assert int(pending.recv(64)) == new
    pending.close()


async def test_unix_socket_mode_and_cleanup(daemon, tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    d = await daemon(
        f"""
        [socket:app]
        path = {path}

        [watcher:app]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' $(circus.sockets.app)
        """
    )
    await d.wait_pids("app", 1)
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o775, "umask 002 by default: no world write"
    [entry] = (await d.arbiter.controller.cmd_listsockets({}))["sockets"]
    assert entry["path"] == str(path) and "port" not in entry
    await d.quit()
    assert not path.exists(), "unix socket files are removed at exit"


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        config = write_ini(
            tmp_path,
            f"""
            [circus]
            endpoint = ipc://{tmp_path}/c.sock
            pubsub_endpoint = ipc://{tmp_path}/e.sock

            [socket:web]
            host = 127.0.0.1
            port = {port}

            [watcher:web]
            cmd = {PYTHON} -c 'import time; time.sleep(3600)' $(circus.sockets.web)
            """,
        )
        result = subprocess.run(
            [sys.executable, "-m", "bigtop", "run", str(config)],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    finally:
        holder.close()
    assert result.returncode == 1
    assert f"[socket:web]: cannot bind 127.0.0.1:{port}: Address already in use" in result.stdout
