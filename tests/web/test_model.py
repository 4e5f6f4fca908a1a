"""The dashboard's pure parts: figures from replies, history from events, outboxes, auth rules."""

from __future__ import annotations

import json
import signal

import pytest

from bigtop.web.auth import Sessions, bearer_token, origin_allowed, same_secret
from bigtop.web.hub import Outbox
from bigtop.web.model import (
    LOG_BATCH_LINES,
    LOG_LINE_CHARS,
    EventHistory,
    Series,
    exit_reason,
    log_message,
    parse_size,
    parse_topic,
    procs_message,
    snapshot,
    split_label,
    tcp_activity,
    tick_message,
)

STATUS = {
    "statuses": {"web": "active", "idle": "stopped"},
    "processes": {"web": {"101": "ready", "102": "starting"}, "idle": {}},
}
STATS = {
    "infos": {
        "web": {
            "102": {"pid": 102, "cpu": 1.5, "mem_info1": "2.00M", "age": 3.0, "wid": 2},
            "101": {
                "pid": 101,
                "cpu": 10.0,
                "mem_info1": "10.00M",
                "age": 60.04,
                "wid": 1,
                "restarts": 2,
                "children": [{"pid": 103, "cpu": 5.0, "mem_info1": "1.00M"}],
            },
        },
        "idle": {},
    }
}


def test_sizes_from_circus_strings() -> None:
    assert parse_size("512B") == 512
    assert parse_size("9.91M") == int(9.91 * 1024 * 1024)
    assert parse_size("1.00G") == 1 << 30
    assert parse_size(4096) == 4096
    for unreadable in ("N/A", "", "12Q", "x.yM", None, True):
        assert parse_size(unreadable) is None


def test_snapshot_sums_processes_and_their_children() -> None:
    shot = snapshot(STATUS, STATS, now=1000.0)
    assert [w.name for w in shot.watchers] == ["idle", "web"]
    web = shot.watcher("web")
    assert web is not None
    assert [p.pid for p in web.processes] == [101, 102]  # in wid order
    first = web.processes[0]
    assert (first.state, first.wid, first.cpu, first.restarts) == ("ready", 1, 15.0, 2)
    assert first.mem == 11 << 20
    assert web.cpu == 16.5 and web.mem == 13 << 20 and web.restarts == 2
    idle = shot.watcher("idle")
    assert idle is not None and idle.cpu == 0 and idle.mem == 0 and idle.state == "stopped"


def test_unreadable_processes_show_as_unknown_not_zero() -> None:
    stats = {"infos": {"web": {"7": "No such process (stopped?)", "8": {"cpu": "N/A"}}}}
    shot = snapshot({"statuses": {"web": "active"}}, stats, now=1.0)
    web = shot.watcher("web")
    assert web is not None
    assert [(p.pid, p.cpu, p.mem) for p in web.processes] == [(7, None, None), (8, None, None)]
    assert web.cpu is None and web.mem is None
    assert web.processes[0].state == "unknown"


def test_a_circus_daemon_without_process_states_still_works() -> None:
    shot = snapshot({"statuses": {"web": "active"}}, STATS, now=5.0)
    web = shot.watcher("web")
    assert web is not None and {p.state for p in web.processes} == {"running"}


def test_messages_are_json_ready() -> None:
    shot = snapshot(STATUS, STATS, now=1000.0)
    tick = tick_message("d0", shot)
    assert tick["watchers"][1] == {
        "name": "web",
        "state": "active",
        "n": 2,
        "cpu": 16.5,
        "mem": 13 << 20,
        "restarts": 2,
    }
    web = shot.watcher("web")
    assert web is not None
    procs = procs_message("d0", web, 1000.0)
    assert procs["processes"][0]["age"] == 60.0
    json.dumps([tick, procs])


def test_series_keep_a_fixed_number_of_points() -> None:
    series = Series(capacity=3)
    for second in range(5):
        series.append(float(second), second * 1.5, second * 100)
    assert series.columns() == [[2.0, 3.0, 4.0], [3.0, 4.5, 6.0], [200, 300, 400]]
    assert len(series) == 3


def test_log_batches_are_cut_to_size() -> None:
    lines = [[1.0, "web", 5, "stdout", f"line {n}"] for n in range(LOG_BATCH_LINES + 10)]
    lines.append([2.0, "web", 5, "stderr", "x" * (LOG_LINE_CHARS + 10)])
    lines.append(["garbage"])
    message = log_message("d0", "web", lines, dropped=3)
    assert len(message["lines"]) == LOG_BATCH_LINES
    assert message["lines"][-1][4] == "x" * LOG_LINE_CHARS
    assert message["dropped"] == 3 + 12
    assert "dropped" not in log_message("d0", "web", lines[:2], 0)


@pytest.mark.parametrize(
    ("topic", "parsed"),
    [
        ("watcher.web.reap", ("web", "reap")),
        ("watcher.my.dotted.name.spawn", ("my.dotted.name", "spawn")),
        ("watcher.web", None),
        ("stat.web", None),
        ("watcher..reap", None),
    ],
)
def test_topics(topic: str, parsed: tuple[str, str] | None) -> None:
    assert parse_topic(topic) == parsed


def test_history_from_events_tells_crashes_from_requested_stops() -> None:
    history = EventHistory(length=3)
    assert history.feed("watcher.web.spawn", {"process_pid": 1, "time": 1.0}) is None
    assert history.feed("watcher.web.reap", {"process_pid": 1, "exit_code": 3, "time": 2.0})
    history.feed("watcher.web.kill", {"process_pid": 2, "time": 3.0})
    history.feed("watcher.web.reap", {"process_pid": 2, "exit_code": -15, "time": 3.5})
    history.feed("watcher.web.reap", {"process_pid": 3, "exit_code": -9, "time": 4.0})
    crash, stopped, killed = history.history("web")
    assert crash == {
        "time": 2.0,
        "pid": 1,
        "exit_code": 3,
        "signal": None,
        "reason": "exited with code 3",
    }
    assert stopped["reason"] == "stopped by bigtop (killed by SIGTERM)"
    assert (killed["signal"], killed["exit_code"]) == (signal.SIGKILL, None)
    assert killed["reason"] == "killed by SIGKILL"
    history.feed("watcher.web.reap", {"process_pid": 4, "exit_code": 0, "time": 5.0})
    assert [e["pid"] for e in history.history("web")] == [2, 3, 4]  # bounded
    assert history.feed("watcher.web.reap", {"exit_code": 0}) is None
    assert exit_reason(None, False) == "ended"
    assert exit_reason(-200, False) == "killed by signal 200"


def test_socket_activity_from_proc_net_tcp() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000002 00:00000000 00000000\n"
        "   1: 0100007F:1F90 0100007F:D1A2 01 00000000:00000000 00:00000000 00000000\n"
        "   2: 0100007F:1F90 0100007F:D1A4 01 00000000:00000000 00:00000000 00000000\n"
        "   3: 0100007F:0050 0100007F:D1A6 01 00000000:00000000 00:00000000 00000000\n"
        "   garbage\n"
    )
    assert tcp_activity(table, 8080) == {"connections": 2, "waiting": 2}
    assert tcp_activity(table, 9) == {"connections": 0, "waiting": 0}


def test_endpoint_labels() -> None:
    assert split_label("prod=tcp://10.0.0.5:5555") == ("prod", "tcp://10.0.0.5:5555")
    assert split_label("ipc:///run/a=b/control.sock") == (None, "ipc:///run/a=b/control.sock")
    assert split_label("tcp://127.0.0.1:5555") == (None, "tcp://127.0.0.1:5555")


def test_an_outbox_refuses_what_passes_its_budget() -> None:
    box = Outbox(limit=10)
    assert box.offer("12345") and box.offer("6789")
    assert not box.offer("ab")  # 11 bytes: refused whole
    assert box.size == 9 and len(box) == 2
    assert box.take() == "12345" and box.offer("ab")
    assert [box.take(), box.take(), box.take()] == ["6789", "ab", None]
    assert box.size == 0


def test_origins() -> None:
    assert origin_allowed("http://127.0.0.1:8080", "http", "127.0.0.1:8080", ())
    assert origin_allowed("HTTP://LOCALHOST:8080/", "http", "localhost:8080", ())
    assert not origin_allowed("http://evil.example", "http", "127.0.0.1:8080", ())
    assert not origin_allowed("https://127.0.0.1:8080", "http", "127.0.0.1:8080", ())
    assert not origin_allowed(None, "http", "127.0.0.1:8080", ())
    assert not origin_allowed("null", "http", "127.0.0.1:8080", ())
    assert origin_allowed("https://ops.example.com", "http", "x:1", ["https://ops.example.com/"])


def test_tokens_and_bearer_headers() -> None:
    assert same_secret("abc", "abc")
    assert not same_secret("abd", "abc") and not same_secret("", "abc")
    assert not same_secret(None, "abc")
    assert bearer_token("Bearer xyz") == "xyz"
    assert bearer_token("bearer  xyz ") == "xyz"
    assert bearer_token("Basic xyz") is None
    assert bearer_token("Bearer") is None
    assert bearer_token(None) is None


def test_sessions_expire_and_are_bounded() -> None:
    sessions = Sessions(ttl=10.0, limit=2)
    first = sessions.create(now=0.0)
    assert sessions.get(first.ident, now=5.0) is first
    assert sessions.get(first.ident, now=11.0) is None
    assert len(sessions) == 0
    a, b, c = (sessions.create(now=20.0) for _ in range(3))
    assert sessions.get(a.ident, 21.0) is None  # the oldest went first
    assert sessions.get(b.ident, 21.0) is b and sessions.get(c.ident, 21.0) is c
    assert a.csrf != b.csrf and len(b.csrf) >= 32
    assert sessions.get(None, 21.0) is None and sessions.get("nope", 21.0) is None


@pytest.mark.parametrize(
    ("host", "token_set", "refused"),
    [
        ("127.0.0.1", False, False),
        ("localhost", False, False),
        ("::1", False, False),
        ("0.0.0.0", False, True),
        ("", False, True),
        ("10.1.2.3", False, True),
        ("10.1.2.3", True, False),
    ],
)
def test_beyond_loopback_the_token_must_be_chosen(
    host: str, token_set: bool, refused: bool
) -> None:
    from bigtop.web.app import exposure_error

    error = exposure_error(host, token_set, "--token")
    assert bool(error) is refused
    if error:
        assert "--token" in error and "TLS" in error
