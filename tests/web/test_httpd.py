"""The dashboard served by the daemon itself ([circus] httpd = true), and what a client that
stops reading does to the daemon's memory: nothing lasting."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.daemon import Daemon, DaemonPool
from tests.helpers import PYTHON, sleeper, wait_until

TOKEN = "httpd-token-6631"
DASHBOARD = re.compile(r"dashboard on (http://127\.0\.0\.1:(\d+)/)")


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[DaemonPool]:
    daemons = DaemonPool(tmp_path)
    yield daemons
    assert not daemons.close()


def httpd(port: int = 0) -> str:
    return f"httpd = true\nhttpd_host = 127.0.0.1\nhttpd_port = {port}\nhttpd_token = {TOKEN}\n\n"


def start_with_httpd(pool: DaemonPool, ini: str, port: int = 0) -> Daemon:
    # DaemonPool writes its own [circus] section first; these lines continue it
    return pool.start(httpd(port) + ini)


def dashboard_url(daemon: Daemon) -> str:
    found = wait_until(
        lambda: DASHBOARD.search(daemon.output()), timeout=15, what="the dashboard's address"
    )
    return found.group(1)


def get(url: str, token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
            is_json = reply.headers.get_content_type() == "application/json"
            return reply.status, json.loads(body) if is_json else body.decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def maps_aiohttp(pid: int) -> bool:
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
        return "/aiohttp/" in maps.read()


def test_the_daemon_serves_the_dashboard_and_only_such_a_daemon_loads_aiohttp(
    pool: DaemonPool,
) -> None:
    served = start_with_httpd(pool, f"[watcher:web]\ncmd = {sleeper('httpd-6631')}\n")
    plain = pool.start(f"[watcher:other]\ncmd = {sleeper('httpd-6632')}\n")
    url = dashboard_url(served)
    assert TOKEN not in served.output()  # a configured token is not written to the log
    status, page = get(url, token=None)
    assert status == 401 and "/login" in page
    status, reply = get(f"{url}api/d/d0/status")
    assert status == 200 and reply["statuses"] == {"web": "active"}
    status, daemons = get(f"{url}api/daemons")
    assert daemons[0]["label"] == socket.gethostname() and daemons[0]["up"] is True
    plain.wait_ready()
    assert maps_aiohttp(served.pid)
    assert not maps_aiohttp(plain.pid)  # no dashboard, no aiohttp in the daemon


def test_a_port_in_use_leaves_the_daemon_running_without_a_dashboard(pool: DaemonPool) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = start_with_httpd(pool, f"[watcher:web]\ncmd = {sleeper('httpd-6633')}\n", port)
        daemon.wait_ready()
        wait_until(lambda: "the dashboard is off" in daemon.output(), what="the error in the log")
    assert f"cannot listen on 127.0.0.1:{port}" in daemon.output()
    assert "httpd_port" in daemon.output()
    daemon.wait_running("httpd-6633", 1)


def masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    header = struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask
    return header + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def watching_websocket(port: int, small_buffer: bool) -> socket.socket:
    """Handshake and ask for a busy watcher's live output; what is read next is up to the
    caller (the stalled client never reads again)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if small_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    watch = {"type": "watch", "daemon": "d0", "watcher": "chatty"}
    sock.sendall(masked_text_frame(json.dumps(watch)))
    return sock


def test_a_client_that_stops_reading_does_not_grow_the_daemons_memory(
    pool: DaemonPool, tmp_path: Path
) -> None:
    chatty = tmp_path / "chatty.py"
    chatty.write_text(  # about 1 MB/s of output for the dashboard to relay
        "import sys, time\n"
        "line = 'x' * 200 + '\\n'\n"
        "while True:\n"
        "    sys.stdout.write(line * 50); sys.stdout.flush(); time.sleep(0.01)\n"
    )
    daemon = start_with_httpd(pool, f"[watcher:chatty]\ncmd = {PYTHON} {chatty}\n")
    url = dashboard_url(daemon)
    port = int(DASHBOARD.search(daemon.output()).group(2))  # type: ignore[union-attr]
    # A first client that reads: the daemon's memory after serving one, as the baseline.
    reader = watching_websocket(port, small_buffer=False)
    received = 0
    while received < 512 << 10:
        received += len(reader.recv(65536))
    reader.close()
    wait_until(lambda: get(f"{url}api/hub")[1]["clients"] == 0, what="the reader to leave")
    baseline = rss(daemon.pid)

    stalled = watching_websocket(port, small_buffer=True)
    try:
        wait_until(
            lambda: get(f"{url}api/hub")[1]["dropped"] == 1,
            timeout=30,
            what="the daemon to drop the client that stopped reading",
        )
        at_drop = rss(daemon.pid)
        samples = []
        end = time.monotonic() + 2.0  # an observation window, the output still flowing
        while time.monotonic() < end:
            samples.append(rss(daemon.pid))
            time.sleep(0.1)
    finally:
        stalled.close()
    mib = 1 << 20
    figures = (
        f"baseline {baseline / mib:.1f} MiB, at drop {at_drop / mib:.1f} MiB, "
        f"2 s later max {max(samples) / mib:.1f} MiB"
    )
    print(figures)
    assert at_drop - baseline < 16 * mib, figures
    assert max(samples) - at_drop < 2 * mib, figures
    assert get(f"{url}api/hub")[1] == {"clients": 0, "dropped": 1}
