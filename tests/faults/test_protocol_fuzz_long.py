"""Protocol fuzzing, the long variant: property-based requests (valid commands with wrong
types, random JSON, random bytes, multipart, huge and empty frames) sent in pipelined
batches to a real `bigtop run`. No crash, no stall, every message gets exactly one
well-formed reply, and the daemon's log shows no unexpected exception.

It reuses the strategies of tests/e2e/test_protocol_fuzz.py. The suite sends 5,000
messages; `python bench/faults/run.py protocol_fuzz` sends 100,000.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigtop.config.model import MAX_NUMPROCESSES
from bigtop.protocol.codec import MAX_REQUEST_BYTES
from tests.e2e.daemon import Daemon, DaemonPool
from tests.e2e.test_protocol_fuzz import WATCHER_STATUSES, payloads
from tests.faults.observe import report, scaled
from tests.helpers import alive

MESSAGES = scaled(5_000, 100_000)
BATCH = (40, 60)  # messages per example, sent before any reply is read
REPLY_DEADLINE = 10.0  # a batch answered later than this is a stall


def over_the_limit(extra: int) -> bytes:
    return b"{" + b" " * (MAX_REQUEST_BYTES + extra) + b"}"


def just_under_the_limit(pad: int) -> bytes:
    filler = b"x" * (MAX_REQUEST_BYTES - 100 - pad)
    return b'{"id": "big", "command": "status", "properties": {"pad": "' + filler + b'"}}'


# Built by functions so that Hypothesis never prints a megabyte of example
huge = st.integers(1, 64).map(over_the_limit)
just_under = st.integers(0, 64).map(just_under_the_limit)
# A message of several frames: the server joins the frames after the client's identity.
multipart = st.lists(payloads, min_size=2, max_size=3)

# Edge values the shared strategies leave out (NaN and infinities, integers past any limit,
# containers where a name or a number is expected), for more commands (set, add, get, logs).
# Safe by construction: no string here names a real program or a file, and no positive
# integer is small enough to be a real process count (they are 0, 1 or refused).
EDGE_VALUES = [
    float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 10**30, -(10**30), 2**63, 0, 1,
    -1, True, False, None, "", "web", "WEB", "w*", "nosuch", "é", "\u0000", [], [[]], {},
    {"a": []}, ["web"], [1, 2], {"web": 1},
]  # fmt: skip
EDGE_COMMANDS = [
    "list", "status", "numprocesses", "get", "options", "globaloptions", "incr", "decr",
    "signal", "kill", "stats", "set", "add", "rm", "logs", "reload", "start", "stop",
]  # fmt: skip
EDGE_KEYS = [
    "name", "names", "nb", "pid", "signum", "keys", "option", "process", "graceful_timeout",
    "stream", "lines", "match", "waiting", "childpid", "extended", "cmd", "start", "options",
]  # fmt: skip
SET_KEYS = [
    "graceful_timeout", "warmup_delay", "max_retry", "priority", "singleton", "send_hup",
    "stop_signal", "respawn", "max_age", "numprocesses", "backoff_initial", "backoff_max",
]  # fmt: skip
edge_values = st.sampled_from(EDGE_VALUES)
edge_options = st.dictionaries(st.sampled_from(SET_KEYS), edge_values, max_size=3)
edge_properties = st.dictionaries(
    st.sampled_from(EDGE_KEYS), edge_values | edge_options, max_size=4
).map(lambda props: {**props, "cmd": "/nonexistent/bigtop-fuzz"} if "cmd" in props else props)
edge_requests = st.fixed_dictionaries(
    {"command": st.sampled_from(EDGE_COMMANDS), "properties": edge_properties},
    optional={"id": edge_values},
).map(lambda request: json.dumps(request).encode())  # NaN and Infinity as Python writes them

messages = (
    payloads.map(lambda p: [p]) | edge_requests.map(lambda p: [p]) | multipart | st.just([b"", b""])
)


class Fuzzer:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(daemon.control)
        self.sent = 0
        self.replies = 0
        self.errors = 0
        self.slowest = 0.0

    def batch(self, batch: list[list[bytes]]) -> None:
        started = time.monotonic()
        for frames in batch:
            self.sock.send_multipart(frames)
        for _ in batch:
            remaining = started + REPLY_DEADLINE - time.monotonic()
            assert self.sock.poll(max(1, int(remaining * 1000))), "the daemon stalled"
            # [b"", reply] when the message started with an empty frame (REQ framing)
            check_reply(json.loads(self.sock.recv_multipart()[-1]))
            self.replies += 1
        assert not self.sock.poll(0), "more replies than requests"
        self.sent += len(batch)
        self.slowest = max(self.slowest, time.monotonic() - started)
        assert self.daemon.process.poll() is None, "the daemon died"

    def close(self) -> None:
        self.sock.close(linger=0)


def check_reply(reply: Any) -> None:
    assert isinstance(reply, dict)
    assert isinstance(reply.get("time"), float)
    assert "id" in reply
    if reply["status"] == "error":
        assert reply["tb"] is None
        assert isinstance(reply["errno"], int) and 0 <= reply["errno"] <= 6
        assert isinstance(reply["reason"], str) and reply["reason"]
    else:
        assert reply["status"] == "ok" or reply["status"] in WATCHER_STATUSES


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzer]:
    pool = DaemonPool(tmp_path_factory.mktemp("fuzz-long"))
    try:
        daemon = pool.start(
            """
            [watcher:web]
            cmd = sleep 3600.10
            numprocesses = 2
            graceful_timeout = 1
            backoff_initial = 0.01
            """
        )
        daemon.wait_ready()
        fuzzer = Fuzzer(daemon)
        yield fuzzer
        fuzzer.close()
    finally:
        leaked = pool.close()
    assert not leaked


@pytest.mark.slow
@pytest.mark.timeout(scaled(60, 900))
def test_pipelined_fuzzed_messages_all_get_a_well_formed_reply(fuzzed: Fuzzer) -> None:
    started = time.monotonic()

    @settings(
        max_examples=MESSAGES // BATCH[0],
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(batch=st.lists(messages, min_size=BATCH[0], max_size=BATCH[1]))
    def run(batch: list[list[bytes]]) -> None:
        fuzzed.batch(batch)

    run()
    elapsed = time.monotonic() - started
    daemon = fuzzed.daemon
    assert fuzzed.sent >= MESSAGES * 0.9, fuzzed.sent
    assert daemon.call("numwatchers")["status"] == "ok"
    assert "Traceback" not in daemon.output(), daemon.output()[-3000:]
    report(
        "protocol_fuzz",
        messages=fuzzed.sent,
        seconds=round(elapsed, 1),
        messages_per_second=round(fuzzed.sent / elapsed),
        slowest_batch_ms=round(fuzzed.slowest * 1000, 1),
        daemon_alive=alive(daemon.pid),
    )


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(huge | just_under | payloads, min_size=1, max_size=4))
def test_huge_frames_get_an_answer_too(fuzzed: Fuzzer, batch: list[bytes]) -> None:
    """Up to the limit a request is read; past it (and up to the transport's limit) it is
    refused with an error reply; either way the connection keeps working."""
    fuzzed.batch([[payload] for payload in batch])


def test_a_frame_over_the_transport_limit_drops_only_that_connection(fuzzed: Fuzzer) -> None:
    """Past 4x the request limit ZMQ itself closes the sender's connection (MAXMSGSIZE):
    no reply to that message, the client reconnects, and the daemon answers it again."""
    sock = fuzzed.sock
    sock.send(b"x" * (MAX_REQUEST_BYTES * 4 + 1))
    assert not sock.poll(300)
    sock.send(b'{"id": "again", "command": "numwatchers"}')
    assert sock.poll(int(REPLY_DEADLINE * 1000)), "no reply after the reconnection"
    reply = json.loads(sock.recv_multipart()[-1])
    assert (reply["id"], reply["status"]) == ("again", "ok")


def test_absurd_process_counts_are_refused_at_once(bigtop: DaemonPool) -> None:
    """`incr nb=10**12` used to plan a trillion slots in the daemon's loop (it never answered
    anyone again); every way of asking for more than MAX_NUMPROCESSES is now an error."""
    daemon = bigtop.start("[watcher:web]\ncmd = sleep 3600.11\nnumprocesses = 1\n")
    daemon.wait_ready()
    daemon.wait_running("sleep 3600.11", 1)
    asks: list[tuple[str, dict[str, Any]]] = [
        ("incr", {"name": "web", "nb": 10**12}),
        ("decr", {"name": "web", "nb": -(10**12)}),
        ("incr", {"name": "web", "nb": MAX_NUMPROCESSES, "waiting": True}),
        ("set", {"name": "web", "options": {"numprocesses": 10**9}}),
        ("add", {"name": "more", "cmd": "sleep 3600.11", "options": {"numprocesses": 10**6}}),
    ]
    for command, properties in asks:
        started = time.monotonic()
        reply = daemon.call(command, **properties)
        assert time.monotonic() - started < 2.0
        assert reply["status"] == "error", (command, reply)
        assert str(MAX_NUMPROCESSES) in reply["reason"]
    assert daemon.call("numprocesses", name="web")["numprocesses"] == 1
    assert daemon.call("list")["watchers"] == ["web"]
