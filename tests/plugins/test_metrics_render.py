"""The exposition text from hand-built snapshots and replies, read back with
prometheus_client's parser; restart counting from event sequences."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bigtop.core.policy import ExitStatus
from bigtop.metrics import (
    RestartCounter,
    Snapshot,
    WatcherFigures,
    cpu_seconds,
    human_bytes,
    render,
    snapshot_from,
)

STATUS = {"statuses": {"web": "active", 'odd "name"\\x': "stopped"}}
STATS = {
    "infos": {
        "web": {
            "101": {
                "pid": 101, "wid": 1, "state": "ready", "cpu": 12.5, "mem": 0.4,
                "mem_info1": "9.91M", "ctime": "1:02.50", "age": 42.0,
            },
            "102": {
                "pid": 102, "wid": 2, "state": "starting", "cpu": "N/A", "mem": "N/A",
                "mem_info1": "N/A", "ctime": "N/A", "age": "N/A",
            },
            "103": "No such process (stopped?)",
        },
        'odd "name"\\x': {},
    }
}  # fmt: skip
DSTATS = {"info": {"pid": 7, "cpu": 0.5, "mem": 0.1, "mem_info1": "30.00M", "age": 100.0,
                   "ctime": "0:03.00"}}  # fmt: skip


def families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_figures_as_the_daemon_writes_them() -> None:
    assert human_bytes("9.91M") == int(9.91 * 1024**2)
    assert human_bytes("512B") == 512
    assert human_bytes("1.50G") == int(1.5 * 1024**3)
    assert human_bytes("N/A") is None
    assert human_bytes(None) is None
    assert human_bytes(4096) == 4096
    assert cpu_seconds("1:02.50") == 62.5
    assert cpu_seconds("N/A") is None


def test_a_snapshot_reads_replies_and_skips_what_is_unreadable() -> None:
    snapshot = snapshot_from(STATUS, STATS, DSTATS, {("web", "exited with code 1"): 2})
    web = next(w for w in snapshot.watchers if w.name == "web")
    assert [p.pid for p in web.processes] == [101, 102]  # 103 vanished
    first, second = web.processes
    assert (first.rss_bytes, first.cpu_seconds, first.uptime) == (int(9.91 * 1024**2), 62.5, 42.0)
    assert (second.cpu_percent, second.rss_bytes, second.uptime) == (None, None, None)
    assert snapshot.daemon is not None and snapshot.daemon.pid == 7


def test_rendered_text_parses_and_says_what_the_replies_say() -> None:
    text = render(snapshot_from(STATUS, STATS, DSTATS, {("web", "exited with code 1"): 2}))
    found = families(text)
    web_101 = (("pid", "101"), ("watcher", "web"), ("wid", "1"))
    assert found["bigtop_process_memory_rss_bytes"] == {web_101: int(9.91 * 1024**2)}
    assert found["bigtop_process_cpu_seconds_total"] == {web_101: 62.5}
    assert found["bigtop_process_ready"][web_101] == 1
    assert found["bigtop_process_ready"][(("pid", "102"), ("watcher", "web"), ("wid", "2"))] == 0
    assert found["bigtop_watcher_ready_processes"][(("watcher", "web"),)] == 1
    assert found["bigtop_watcher_processes"][(("watcher", "web"),)] == 2
    assert found["bigtop_watcher_cpu_percent"][(("watcher", "web"),)] == 12.5
    odd = (("state", "stopped"), ("watcher", 'odd "name"\\x'))
    assert found["bigtop_watcher_state"][odd] == 1  # quotes and backslashes escaped
    restarts = (("reason", "exited with code 1"), ("watcher", "web"))
    assert found["bigtop_watcher_restarts_total"] == {restarts: 2}
    assert found["bigtop_daemon_memory_rss_bytes"] == {(): 30 * 1024**2}
    assert found["bigtop_processes"] == {(): 2}
    assert text.endswith("\n")


def test_an_empty_daemon_renders_valid_text() -> None:
    found = families(render(Snapshot(watchers=(WatcherFigures("idle", "stopped"),))))
    assert found["bigtop_watchers"] == {(): 1}
    assert found["bigtop_watcher_memory_rss_bytes"] == {(("watcher", "idle"),): 0}


def event(counter: RestartCounter, topic: str, **payload: object) -> None:
    counter.feed(topic, dict(payload))


def test_restarts_count_what_ended_unasked() -> None:
    counter = RestartCounter()
    event(counter, "watcher.web.spawn", process_pid=1)
    event(counter, "watcher.web.reap", process_pid=1, exit_code=3)  # crashed
    event(counter, "watcher.web.reap", process_pid=2, exit_code=-9)  # killed by someone else
    event(counter, "watcher.web.kill", process_pid=3)  # stop, reload, decr, kill: asked
    event(counter, "watcher.web.reap", process_pid=3, exit_code=-15)
    event(counter, "watcher.web.unhealthy", process_pid=4)  # health check failed
    event(counter, "watcher.web.kill", process_pid=4)
    event(counter, "watcher.web.reap", process_pid=4, exit_code=-15)
    event(counter, "watcher.api.v2.reap", process_pid=5, exit_code=1)  # a dotted name
    event(counter, "watcher.web.reap", exit_code=1)  # no pid: ignored
    event(counter, "stat.web", process_pid=6)  # not an event topic
    assert counter.counts == {
        ("web", "exited with code 3"): 1,
        ("web", ExitStatus(signal=9).describe()): 1,  # the daemon's own words
        ("web", "unhealthy"): 1,
        ("api.v2", "exited with code 1"): 1,
    }


def test_pids_asked_to_stop_are_forgotten_past_a_bound() -> None:
    counter = RestartCounter()
    counter.MAX_TRACKED = 3
    for pid in range(10):
        event(counter, "watcher.web.kill", process_pid=pid)
    assert list(counter._asked) == [7, 8, 9]
