"""Who may talk to the daemon: private ipc sockets, CURVE on TCP, no open TCP by default."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bigtop.config.load import load_config
from bigtop.control.client import AsyncClient, CallTimeout
from bigtop.control.curve import client_keys, generate
from bigtop.control.endpoints import default_endpoints
from bigtop.runtime.arbiter import Arbiter
from tests.helpers import PYTHON, async_wait_until, write_ini

SLEEP = f"{PYTHON} -c 'import time; time.sleep(3600)'"
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by nobody, unlike a venv under /root


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
async def test_another_user_cannot_reach_the_default_endpoints(daemon, tmp_path) -> None:
    base = Path(tempfile.mkdtemp(prefix="bigtop-sec-"))
    base.chmod(0o755)  # the parent is open: the runtime dir itself must protect the sockets
    try:
        endpoints = default_endpoints(str(base / "bigtop"))
        config = load_config(str(write_ini(tmp_path, f"[watcher:w]\ncmd = {SLEEP} sec\n")))
        import asyncio

        arbiter = Arbiter(config, endpoints=endpoints)
        task = asyncio.create_task(arbiter.run())
        socket_path = base / "bigtop" / "control.sock"
        await async_wait_until(socket_path.exists, what="the control socket")
        assert stat.S_IMODE((base / "bigtop").stat().st_mode) == 0o700
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
        probe = (
            "import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    print('denied')\n"
            "else:\n    print('connected')\n"
        )
        result = await asyncio.to_thread(
            subprocess.run,
            [SYSTEM_PYTHON, "-c", probe, str(socket_path)],
            user="nobody",
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert result.stdout.strip() == "denied", result.stderr
        # Even with the directory opened up, the socket's own mode keeps others out.
        (base / "bigtop").chmod(0o755)
        result = await asyncio.to_thread(
            subprocess.run,
            [SYSTEM_PYTHON, "-c", probe, str(socket_path)],
            user="nobody",
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert result.stdout.strip() == "denied", result.stderr
        arbiter.request("quit")
        await asyncio.wait_for(task, 30)
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def test_curve_admits_authorised_clients_only(tmp_path) -> None:
    import asyncio

    keys = tmp_path / "keys"
    clients = tmp_path / "clients"
    clients.mkdir()
    generate(str(keys), "server")
    generate(str(keys), "alice")
    generate(str(keys), "mallory")
    shutil.copy(keys / "alice.key", clients / "alice.key")
    path = write_ini(
        tmp_path,
        f"""
        [circus]
        endpoint = tcp://127.0.0.1:*
        pubsub_endpoint = tcp://127.0.0.1:*
        curve_secret_key = {keys / "server.key_secret"}
        curve_authorized_keys = {clients}

        [watcher:w]
        cmd = {SLEEP} curve
        """,
    )
    arbiter = Arbiter(load_config(str(path)))
    task = asyncio.create_task(arbiter.run())
    try:
        await async_wait_until(lambda: ":*" not in arbiter.endpoints.control, what="binding")
        endpoint = arbiter.endpoints.control
        alice = client_keys(str(keys / "alice.key_secret"), str(keys / "server.key"))
        async with AsyncClient(endpoint, timeout=5, curve=alice) as client:
            assert (await client.call("numwatchers"))["numwatchers"] == 1
        mallory = client_keys(str(keys / "mallory.key_secret"), str(keys / "server.key"))
        async with AsyncClient(endpoint, timeout=1, curve=mallory) as client:
            with pytest.raises(CallTimeout):
                await client.call("numwatchers")
        async with AsyncClient(endpoint, timeout=1) as client:  # no keys at all
            with pytest.raises(CallTimeout):
                await client.call("numwatchers")
    finally:
        arbiter.request("quit")
        await asyncio.wait_for(task, 30)


def test_a_public_tcp_endpoint_without_curve_refuses_to_start(tmp_path) -> None:
    path = write_ini(
        tmp_path,
        f"""
        [circus]
        endpoint = tcp://0.0.0.0:5555

        [watcher:w]
        cmd = {SLEEP} public
        """,
    )
    result = subprocess.run(
        [sys.executable, "-m", "bigtop", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 1
    assert "tcp://0.0.0.0:5555 can be reached from other hosts" in result.stderr
    assert "--insecure" in result.stderr


def test_keygen_writes_a_private_secret_key(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bigtop", "keygen", "server", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert "secret key" in result.stdout
    assert stat.S_IMODE((tmp_path / "server.key_secret").stat().st_mode) == 0o600
    assert (tmp_path / "server.key").read_text().startswith("#")
