"""[socket:NAME]: bound by the daemon, shared by the workers at the same fd number."""

from __future__ import annotations

import asyncio
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
    await async_wait_until(
        lambda: not os.path.exists(f"/proc/{other}/fd/{fd}"),
        what="no socket in a watcher that does not use it",
    )


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


def _fds(pid: int) -> set[int]:
    return {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")}


async def test_v6_udp_and_unix_sockets_reach_children_and_nothing_else_leaks(
    daemon, tmp_path: Path
) -> None:
    d = await daemon(
        f"""
        [socket:six]
        host = ::1
        port = 0
        family = AF_INET6

        [socket:dgram]
        host = 127.0.0.1
        port = 0
        type = SOCK_DGRAM

        [socket:local]
        path = {tmp_path}/local.sock

        [watcher:all]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' $(circus.sockets.six) $(circus.sockets.dgram) $(circus.sockets.local)
        """
    )
    [pid] = await d.wait_pids("all", 1)
    sockets = {s["name"]: s for s in (await d.arbiter.controller.cmd_listsockets({}))["sockets"]}
    assert sockets["six"]["host"] == "::1" and sockets["six"]["port"] > 0
    expected = {0, 1, 2} | {s["fd"] for s in sockets.values()}
    # (polled: the interpreter opens files of its own while it starts up)
    await async_wait_until(
        lambda: _fds(pid) == expected, what="only stdio and the watcher's sockets open"
    )
    wanted = [str(sockets[n]["fd"]).encode() for n in ("six", "dgram", "local")]

    def argv_tail() -> list[bytes]:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().split(b"\0")[-4:-1]

    # (polled too: /proc/PID/cmdline is the new program's only once its exec is complete)
    await async_wait_until(lambda: argv_tail() == wanted, what=f"the sockets' fds in argv {wanted}")
    # UDP: a datagram sent to the port lands on the socket the child holds
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.sendto(b"x", ("127.0.0.1", sockets["dgram"]["port"]))
    probe.close()
    # the v6 listener accepts
    with socket.create_connection(("::1", sockets["six"]["port"]), timeout=5):
        pass


async def test_so_reuseport_gives_each_process_its_own_socket(daemon) -> None:
    d = await daemon(
        f"""
        [socket:web]
        host = 127.0.0.1
        port = 0
        so_reuseport = true

        [watcher:web]
        cmd = {SERVE} $(circus.sockets.web)
        numprocesses = 3
        """
    )
    pids = set(await d.wait_pids("web", 3))
    port = (await d.arbiter.controller.cmd_listsockets({}))["sockets"][0]["port"]
    seen: set[int] = set()

    def spread() -> bool:
        seen.add(_ask(port))
        return seen == pids

    await async_wait_until(spread, timeout=20, what="connections reaching all three")


async def test_on_demand_starts_on_the_first_connection(daemon) -> None:
    d = await daemon(
        f"""
        [socket:web]
        host = 127.0.0.1
        port = 0

        [watcher:lazy]
        cmd = {SERVE} $(circus.sockets.web)
        on_demand = true

        [watcher:other]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' other
        autostart = false
        """
    )
    await asyncio.sleep(0)
    port = (await d.arbiter.controller.cmd_listsockets({}))["sockets"][0]["port"]
    assert d.watcher("lazy").status == "stopped"
    answer = await asyncio.to_thread(_ask, port)
    [pid] = d.pids("lazy")
    assert answer == pid
    assert d.watcher("other").status == "stopped", "only the watcher of that socket starts"


def test_a_unix_socket_in_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    config = write_ini(
        tmp_path,
        f"""
        [circus]
        endpoint = ipc://{tmp_path}/c.sock
        pubsub_endpoint = ipc://{tmp_path}/e.sock

        [socket:app]
        path = {tmp_path}/missing/app.sock

        [watcher:app]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' $(circus.sockets.app)
        """,
    )
    result = subprocess.run(
        [sys.executable, "-m", "bigtop", "run", str(config)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 1
    assert (
        f"[socket:app]: cannot bind {tmp_path}/missing/app.sock: No such file or directory "
        f"(does the directory {tmp_path}/missing exist?)"
    ) in result.stdout
