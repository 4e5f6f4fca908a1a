"""`python -m bigtop run CONFIG` as a subprocess with private ipc endpoints, for e2e tests.

The endpoints live in a short directory of their own (a unix socket path must stay under
108 bytes, which pytest's tmp_path does not promise under xdist). Every pid the daemon is
seen with is recorded; `DaemonPool.close()` stops every daemon still running with SIGTERM
(as a user would), then SIGKILLs and reports any recorded process still alive.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path
from typing import IO, Any

import zmq

from tests.helpers import alive, argv_of, children_of, wait_until


def cmdline(pid: int) -> str:
    """The command line as one string (read again while a fresh process is mid-exec)."""
    return b" ".join(argv_of(pid)).decode(errors="replace").strip()


class Daemon:
    def __init__(
        self, process: subprocess.Popen[str], sockets: Path, config: Path, log: Path, sink: IO[str]
    ) -> None:
        self.process = process
        self.sockets = sockets
        self.config = config
        self.log = log
        self.sink = sink
        self.seen: set[int] = set()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def control(self) -> str:
        return f"ipc://{self.sockets}/control.sock"

    @property
    def pubsub(self) -> str:
        return f"ipc://{self.sockets}/events.sock"

    def output(self) -> str:
        self.sink.flush()
        return self.log.read_text()

    # ---- what runs, seen from /proc (independent of the control API) -----------------------
    def children(self) -> list[int]:
        found = [pid for pid in children_of(self.pid) if alive(pid)]
        self.seen.update(found)
        return found

    def running(self, tag: str) -> list[int]:
        """Live children of the daemon whose command line contains `tag`."""
        return sorted(pid for pid in self.children() if tag in cmdline(pid))

    def wait_running(self, tag: str, count: int, timeout: float = 10.0) -> list[int]:
        def ready() -> list[int] | None:
            pids = self.running(tag)
            return pids if len(pids) == count else None

        return wait_until(ready, timeout, what=f"{count} live processes running {tag!r}")

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Until the control endpoint answers (fail early with the log if the daemon died)."""

        def answered() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"bigtop exited with {self.process.returncode}:\n{self.output()}"
                )
            if not (self.sockets / "control.sock").exists():
                return False
            try:
                return self.call("numwatchers", timeout=1.0).get("status") == "ok"
            except TimeoutError:
                return False

        wait_until(answered, timeout, what="the control endpoint to answer")

    # ---- a raw DEALER client (plain pyzmq, not bigtop's own client) ------------------------
    def call(self, command: str, timeout: float = 10.0, **properties: Any) -> dict[str, Any]:
        request = {"id": uuid.uuid4().hex, "command": command, "properties": properties}
        return self.send_raw(json.dumps(request).encode(), timeout=timeout, expect_id=request["id"])

    def send_raw(
        self, payload: bytes, timeout: float = 10.0, expect_id: Any = None
    ) -> dict[str, Any]:
        replies = exchange(self.control, [payload], timeout=timeout)
        for reply in replies:
            if expect_id is None or reply.get("id") == expect_id:
                return reply
        raise TimeoutError(f"no reply to {payload!r} within {timeout}s")

    # ---- stopping -----------------------------------------------------------------------------
    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        self.children()
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout)


def exchange(
    endpoint: str,
    frames: list[bytes],
    timeout: float = 5.0,
    kind: int = zmq.DEALER,
    count: int = 1,
) -> list[dict[str, Any]]:
    """Send one message (multi-frame), return up to `count` JSON replies seen before `timeout`."""
    context = zmq.Context.instance()
    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send_multipart(frames)
        replies: list[dict[str, Any]] = []
        while len(replies) < count and sock.poll(int(timeout * 1000)):
            reply = sock.recv_multipart()
            replies.append(json.loads(reply[-1]))
            if kind == zmq.REQ:
                break
        return replies
    finally:
        sock.close(linger=0)


class DaemonPool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Daemon] = []

    def start(self, ini: str, *extra: str) -> Daemon:
        sockets = Path(tempfile.mkdtemp(prefix="btc-", dir="/tmp"))
        index = len(self.started)
        config = self.directory / f"circus-{index}.ini"
        ini = textwrap.dedent(ini).lstrip().replace("{sockets}", str(sockets))
        config.write_text(endpoints_section(sockets) + ini)
        log = self.directory / f"daemon-{index}.log"
        sink = log.open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "bigtop", "run", str(config), *extra],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.directory,
        )
        daemon = Daemon(process, sockets, config, log, sink)
        self.started.append(daemon)
        return daemon

    def close(self) -> list[int]:
        """Stop what still runs; the pids that were left running (now killed)."""
        leaked: list[int] = []
        for daemon in self.started:
            if daemon.process.poll() is None:
                try:
                    daemon.stop(signal.SIGTERM, timeout=20)
                except subprocess.TimeoutExpired:
                    daemon.children()
                    daemon.process.kill()
                    daemon.process.wait()
            daemon.sink.close()
            for pid in sorted(daemon.seen):
                if alive(pid):
                    leaked.append(pid)
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(daemon.sockets, ignore_errors=True)
        return leaked


def endpoints_section(sockets: Path) -> str:
    return (
        "[circus]\n"
        f"endpoint = ipc://{sockets}/control.sock\n"
        f"pubsub_endpoint = ipc://{sockets}/events.sock\n\n"
    )
