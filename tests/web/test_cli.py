"""`bigtop web` as a user runs it: the URL it prints, the token rules, a clean stop."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.daemon import DaemonPool
from tests.helpers import sleeper

URL = re.compile(r"bigtop dashboard on (http://127\.0\.0\.1:(\d+)/)\?token=(\S+)")


@pytest.fixture
def pool(tmp_path) -> Iterator[DaemonPool]:
    daemons = DaemonPool(tmp_path)
    yield daemons
    assert not daemons.close()


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIGTOP_", "CIRCUSCTL_"))}
    return {**env, **extra}


def start_web(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bigtop", "web", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def printed_url(process: subprocess.Popen[str], timeout: float = 15.0) -> re.Match[str]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            found = URL.search(line)
            if found:
                return found
        if process.poll() is not None:
            break
    raise AssertionError(f"no URL printed; exit {process.poll()}, stderr: {stderr_of(process)}")


def stderr_of(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.kill()
    return process.communicate(timeout=10)[1]


def get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=10)
    process.communicate()
    return code


def test_listening_beyond_loopback_needs_a_token_set_on_purpose() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bigtop", "web", "--host", "0.0.0.0", "--endpoint", "ipc:///x"],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=30,
    )
    assert result.returncode == 1
    assert "--host 0.0.0.0 can be reached from other machines" in result.stderr
    assert "--token" in result.stderr and "TLS" in result.stderr


def test_the_printed_url_logs_in_and_the_token_guards_the_rest(pool: DaemonPool) -> None:
    daemon = pool.start(f"[watcher:web]\ncmd = {sleeper('cli-5521')}\n")
    daemon.wait_ready()
    web = start_web("--endpoint", f"here={daemon.control}", "--token", "tk-5521", env=environment())
    try:
        found = printed_url(web)
        base, token = found.group(1), found.group(3)
        assert token == "tk-5521"
        status, daemons = get(f"{base}api/daemons", token)
        assert status == 200
        assert [(d["id"], d["label"], d["endpoint"]) for d in daemons] == [
            ("d0", "here", daemon.control)
        ]
        status, reply = get(f"{base}api/d/d0/status", token)
        assert status == 200 and reply["statuses"] == {"web": "active"}
        assert get(f"{base}api/d/d0/status")[0] == 401
        assert get(f"{base}api/d/d0/status", "other")[0] == 401
    finally:
        assert stop(web) == 0


def test_without_a_token_a_random_one_is_printed_and_endpoints_resolve_as_usual(
    pool: DaemonPool,
) -> None:
    daemon = pool.start(f"[watcher:web]\ncmd = {sleeper('cli-5522')}\n")
    daemon.wait_ready()
    web = start_web(env=environment(BIGTOP_ENDPOINT=daemon.control))
    try:
        found = printed_url(web)
        token = found.group(3)
        assert len(token) >= 20
        status, daemons = get(f"{found.group(1)}api/daemons", token)
        assert status == 200 and daemons[0]["endpoint"] == daemon.control
    finally:
        assert stop(web) == 0


def test_a_busy_port_is_a_clear_error(pool: DaemonPool) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "bigtop", "web", "--port", str(port), "--endpoint", "ipc:///x"],
            capture_output=True,
            text=True,
            env=environment(),
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
