"""Property-based fuzzing of the control protocol against a real daemon process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import PYTHON, alive, children_of, wait_until, write_ini

SAFE_COMMANDS = [
    "list", "listsockets", "status", "start", "stop", "reload", "incr", "decr",
    "numprocesses", "numwatchers", "get", "options", "globaloptions", "signal", "kill",
    "stats", "dstats", "ipython", "listen", "rm", "nosuch", "STATUS",
]  # fmt: skip
PROPERTY_KEYS = [
    "name", "nb", "waiting", "keys", "options", "pid", "signum", "match", "process",
    "extended", "graceful", "sequential", "graceful_timeout", "childpid", "children",
    "recursive", "option", "nostop",
]  # fmt: skip
WATCHER_STATUSES = {"active", "stopped", "starting", "stopping"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
names = st.sampled_from(["web", "WEB", "nosuch", "w*", ""]) | st.text(max_size=8)
properties = st.dictionaries(
    st.sampled_from(PROPERTY_KEYS), json_values | names | st.integers(-5, 5), max_size=5
)
requests = st.fixed_dictionaries(
    {"command": st.sampled_from(SAFE_COMMANDS), "properties": properties},
    optional={"id": st.text(max_size=8) | st.integers()},
)
payloads = (
    requests.map(lambda r: json.dumps(r).encode())
    | st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.just(b"")
    | st.just(b"{}")
    | st.just(b'{"command": null}')
    | st.just(b'{"command": "status", "properties": []}')
)


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[zmq.Socket[bytes], int]]:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    config = write_ini(
        directory,
        f"""
        [circus]
        endpoint = ipc://{directory}/control.sock
        pubsub_endpoint = ipc://{directory}/events.sock

        [watcher:web]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' fuzz
        numprocesses = 2
        graceful_timeout = 1
        backoff_initial = 0.01
        """,
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "bigtop", "run", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    context = zmq.Context.instance()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(f"ipc://{directory}/control.sock")
    seen: set[int] = set()
    wait_until(lambda: seen.update(children_of(daemon.pid)) or len(children_of(daemon.pid)) == 2)
    try:
        yield dealer, daemon.pid
    finally:
        dealer.close(linger=0)
        seen.update(children_of(daemon.pid))
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        leaked = [p for p in seen if alive(p)]
        for pid in leaked:
            os.kill(pid, signal.SIGKILL)
        assert not leaked


def _ask(dealer: zmq.Socket[bytes], payload: bytes) -> dict[str, Any]:
    dealer.send(payload)
    assert dealer.poll(10_000), f"no reply to {payload[:80]!r}"
    reply = json.loads(dealer.recv())
    assert isinstance(reply, dict)
    return reply


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=payloads)
def test_every_request_gets_a_well_formed_reply(control, payload: bytes) -> None:
    dealer, pid = control
    reply = _ask(dealer, payload)
    assert isinstance(reply.get("time"), float)
    assert "id" in reply
    if reply["status"] == "error":
        assert reply["tb"] is None
        assert isinstance(reply["errno"], int) and 0 <= reply["errno"] <= 6
        assert isinstance(reply["reason"], str) and reply["reason"]
    else:
        assert reply["status"] == "ok" or reply["status"] in WATCHER_STATUSES
    assert alive(pid)


def test_the_daemon_still_answers_after_fuzzing(control) -> None:
    dealer, _ = control
    reply = _ask(dealer, b'{"id": "after", "command": "numwatchers"}')
    # the fuzzer may have removed the watcher (rm is among its commands): any count will do
    assert (reply["status"], reply["id"]) == ("ok", "after")
    assert reply["numwatchers"] in (0, 1)
