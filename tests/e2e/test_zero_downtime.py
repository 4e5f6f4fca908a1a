"""Zero downtime, measured: HTTP requests as fast as a client can send them, 15 s, while
the demo web app is reloaded three times. No request may fail."""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path

import pytest

from bigtop.control.client import Client
from tests.helpers import PYTHON, alive, wait_until

APP = Path(__file__).parents[2] / "examples" / "webapp.py"


@pytest.mark.slow
def test_three_rolling_reloads_under_load_fail_no_request(run_daemon, tmp_path: Path) -> None:
    daemon = run_daemon(
        f"""
        [socket:web]
        host = 127.0.0.1
        port = 0

        [watcher:web]
        cmd = {PYTHON} -u {APP} $(circus.sockets.web) $(circus.wid)
        numprocesses = 3
        ready_check = notify
        graceful_timeout = 5
        """
    )
    daemon.wait_children(3)
    with Client(f"ipc://{tmp_path}/control.sock", timeout=30) as client:
        wait_until(
            lambda: all(
                i.get("state") == "ready" for i in client.call("stats", name="web")["info"].values()
            ),
            what="three ready workers",
        )
        port = client.call("listsockets")["sockets"][0]["port"]
        first_pids = set(client.call("list", name="web")["pids"])
        ok, failures = [0], []
        served_by: set[str] = set()
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    connection.request("GET", "/")
                    response = connection.getresponse()
                    body = response.read().decode()
                    connection.close()
                    if response.status != 200:
                        failures.append(f"HTTP {response.status}")
                        continue
                    ok[0] += 1
                    served_by.add(body.rsplit("pid ", 1)[1].rstrip(")\n"))
                except (OSError, http.client.HTTPException) as exc:
                    failures.append(repr(exc))

        thread = threading.Thread(target=load)
        started = time.monotonic()
        thread.start()
        try:
            seen_pids = set(first_pids)
            for _ in range(3):
                time.sleep(3)  # let the load run between reloads (wall-clock load test)
                reply = client.call("reload", name="web", waiting=True)
                seen_pids |= set(reply["info"]["started"])
            while time.monotonic() - started < 15:
                time.sleep(0.2)
        finally:
            stop.set()
            thread.join(30)
        final = set(client.call("list", name="web")["pids"])
    assert failures == [], f"{len(failures)} failed requests out of {ok[0] + len(failures)}"
    assert ok[0] > 100, "the client kept the app busy"
    assert len(final) == 3 and not final & first_pids
    assert not [pid for pid in seen_pids - final if alive(pid)], "every old pid is gone"
    assert {str(p) for p in first_pids} & served_by and {str(p) for p in final} & served_by
