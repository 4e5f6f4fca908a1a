"""The control endpoint with real clients: commands, errors, concurrency, events."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

import pytest
import zmq
import zmq.asyncio

from bigtop.control.client import AsyncClient, CallError
from tests.helpers import PYTHON, alive, argv_of, async_wait_until

SLEEP = f"{PYTHON} -c 'import time; time.sleep(3600)'"
IGNORE_TERM = (
    f"{PYTHON} -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "time.sleep(3600)'"
)
TWO_WATCHERS = f"""
    [watcher:web]
    cmd = {SLEEP} web
    numprocesses = 2
    graceful_timeout = 2

    [watcher:worker]
    cmd = {SLEEP} worker
    """


async def _client(d: Any, timeout: float = 10.0) -> AsyncClient:
    return AsyncClient(d.arbiter.endpoints.control, timeout=timeout)


async def test_status_list_and_counts(daemon) -> None:
    d = await daemon(TWO_WATCHERS)
    await d.wait_pids("web", 2)
    await d.wait_pids("worker", 1)
    async with await _client(d) as client:
        statuses = await client.call("status")
        assert statuses["statuses"] == {"web": "active", "worker": "active"}
        assert statuses["status"] == "ok" and isinstance(statuses["time"], float)
        assert (await client.call("status", name="WEB"))["status"] == "active"
        assert (await client.call("list"))["watchers"] == ["web", "worker"]
        assert sorted((await client.call("list", name="web"))["pids"]) == sorted(d.pids("web"))
        assert (await client.call("numwatchers"))["numwatchers"] == 2
        assert (await client.call("numprocesses"))["numprocesses"] == 3
        reply = await client.call("numprocesses", name="web")
        assert (reply["numprocesses"], reply["watcher_name"]) == (2, "web")


async def test_incr_decr_with_and_without_waiting(daemon) -> None:
    d = await daemon(TWO_WATCHERS)
    await d.wait_pids("web", 2)
    async with await _client(d) as client:
        reply = await client.call("incr", name="web", nb=2, waiting=True)
        assert reply["numprocesses"] == 4
        assert len(d.pids("web")) == 4
        reply = await client.call("decr", name="web")
        assert "numprocesses" not in reply  # Circus: no result without waiting
        await d.wait_pids("web", 3)
        reply = await client.call("decr", name="web", nb=10, waiting=True)
        assert reply["numprocesses"] == 0


async def test_stop_start_restart_reload_report_pids(daemon) -> None:
    d = await daemon(TWO_WATCHERS)
    old = set(await d.wait_pids("web", 2))
    async with await _client(d) as client:
        reply = await client.call("restart", name="web", waiting=True)
        assert sorted(reply["info"]["stopped"]) == sorted(old)
        assert len(reply["info"]["started"]) == 2 and not set(reply["info"]["started"]) & old
        reply = await client.call("stop", name="web", waiting=True)
        assert reply["info"] is None
        assert d.watcher("web").status == "stopped"
        reply = await client.call("start", name="web", waiting=True)
        assert len(reply["info"]["started"]) == 2 and reply["info"]["kept"] == []
        before = set(d.pids("web"))
        reply = await client.call("reload", name="web", waiting=True)
        assert sorted(reply["info"]["stopped"]) == sorted(before)
        assert len(reply["info"]["started"]) == 2
        assert not any(alive(p) for p in before)


async def test_set_get_and_options(daemon) -> None:
    d = await daemon(TWO_WATCHERS)
    await d.wait_pids("web", 2)
    async with await _client(d) as client:
        await client.call("set", name="web", options={"numprocesses": 3}, waiting=True)
        assert len(d.pids("web")) == 3
        await client.call("set", name="web", options={"graceful_timeout": 1.5})
        reply = await client.call("get", name="web", keys=["numprocesses", "graceful_timeout"])
        assert reply["options"] == {"numprocesses": 3, "graceful_timeout": 1.5}
        options = (await client.call("options", name="web"))["options"]
        assert options["stop_signal"] == signal.SIGTERM
        assert options["cmd"].endswith("web") and "__name__" not in options
        with pytest.raises(CallError) as error:
            await client.call("set", name="web", options={"numprocesses": "3"})
        assert (error.value.errno, error.value.reason) == (3, "'numprocesses' isn't an integer")
        with pytest.raises(CallError) as error:
            await client.call("get", name="web", keys=["nosuch"])
        assert error.value.reason == "'nosuch' option not found"
    assert d.topics(".updated") == ["watcher.web.updated"] * 2


async def test_set_cmd_reloads_processes_gracefully(daemon) -> None:
    d = await daemon(TWO_WATCHERS)
    old = set(await d.wait_pids("worker", 1))
    async with await _client(d) as client:
        await client.call("set", name="worker", options={"args": "changed"}, waiting=True)
    [new] = d.pids("worker")
    assert new not in old
    assert argv_of(new)[-1] == b"changed"


async def test_add_and_rm(daemon) -> None:
    d = await daemon(TWO_WATCHERS)
    async with await _client(d) as client:
        reply = await client.call(
            "add", name="extra", cmd=f"{SLEEP} extra", start=True, waiting=True,
            options={"numprocesses": 2, "graceful_timeout": 1},
        )  # fmt: skip
        assert len(reply["started"]) == 2 and reply["kept"] == []
        assert (await client.call("list"))["watchers"] == ["extra", "web", "worker"]
        with pytest.raises(CallError) as error:
            await client.call("add", name="EXTRA", cmd="true")
        assert error.value.reason == "'EXTRA' already exist"
        pids = d.pids("extra")
        await client.call("rm", name="extra", waiting=True)
        assert "extra" not in (await client.call("list"))["watchers"]
        assert not any(alive(p) for p in pids)
    assert "watcher.extra.add" in d.topics() and "watcher.extra.remove" in d.topics()


async def test_rm_nostop_leaves_the_processes_running_unmanaged(daemon, caplog) -> None:
    d = await daemon(TWO_WATCHERS)
    first, second = await d.wait_pids("web", 2)
    async with await _client(d) as client:
        await client.call("rm", name="web", nostop=True, waiting=True)
        assert (await client.call("list"))["watchers"] == ["worker"]
    assert alive(first) and alive(second)
    spawns = len(d.topics("watcher.web.spawn"))
    os.kill(first, signal.SIGKILL)  # reaped, and not replaced: its watcher is gone
    await async_wait_until(lambda: "watcher.web.reap" in d.topics(), what="the reap")
    assert len(d.topics("watcher.web.spawn")) == spawns and alive(second)
    await d.quit()  # the daemon's stop still stops what runs on
    assert not alive(second)
    assert not [r for r in caplog.records if "still running" in r.getMessage()]


async def test_signal_and_kill(daemon, tmp_path) -> None:
    out = tmp_path / "usr1"
    d = await daemon(
        f"""
        [watcher:sig]
        cmd = {PYTHON} -c 'import signal, time; signal.signal(signal.SIGUSR1, lambda *a: open("{out}", "a").write("usr1\\n")); time.sleep(3600)'
        """
    )
    [pid] = await d.wait_pids("sig", 1)
    await async_wait_until(lambda: _catches(pid, signal.SIGUSR1), what="handler")
    async with await _client(d) as client:
        await client.call("signal", name="sig", signum="USR1")
        await async_wait_until(lambda: out.exists(), what="SIGUSR1 delivered")
        with pytest.raises(CallError):
            await client.call("signal", name="sig", signum="SIGFOO")
        await client.call("kill", name="sig", pid=pid, waiting=True)
    [new] = await d.wait_pids("sig", 1)
    assert new != pid and not alive(pid)


def _catches(pid: int, signum: int) -> bool:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    return False


async def test_stats_and_dstats_have_circus_fields(daemon) -> None:
    d = await daemon(TWO_WATCHERS)
    pids = await d.wait_pids("web", 2)
    async with await _client(d) as client:
        reply = await client.call("stats", name="web")
        assert reply["name"] == "web" and sorted(reply["info"]) == sorted(str(p) for p in pids)
        info = reply["info"][str(pids[0])]
        assert set(info) >= {
            "pid", "mem_info1", "mem_info2", "cpu", "mem", "ctime", "username", "nice",
            "create_time", "age", "cmdline", "children", "started", "wid",
        }  # fmt: skip
        assert info["pid"] == pids[0] and info["username"] == "root"
        reply = await client.call("stats", name="web", process=pids[0])
        assert reply["process"] == pids[0] and reply["info"]["pid"] == pids[0]
        everything = await client.call("stats")
        assert set(everything["infos"]) == {"web", "worker"}
        own = (await client.call("dstats"))["info"]
        assert own["pid"] == os.getpid()


async def test_stats_name_a_process_caught_inside_execve_by_its_program(
    daemon, monkeypatch
) -> None:
    # Popen (vfork) returns while the child is still in execve; for a moment /proc has no
    # argv for it. The program name bigtop started it with stands in for it then.
    from bigtop.runtime.procinfo import NA, ProcessInfo

    d = await daemon(TWO_WATCHERS)
    [pid, _] = await d.wait_pids("web", 2)
    monkeypatch.setattr(ProcessInfo, "_cmdline", staticmethod(lambda pid: NA))
    async with await _client(d) as client:
        info = (await client.call("stats", name="web", process=pid))["info"]
    assert info["cmdline"] == os.path.basename(PYTHON)


async def test_reloadconfig_dry_run_then_apply(daemon, tmp_path) -> None:
    d = await daemon(TWO_WATCHERS)
    await d.wait_pids("web", 2)
    worker_pids = set(await d.wait_pids("worker", 1))
    config = tmp_path / "circus.ini"
    text = config.read_text().replace("numprocesses = 2", "numprocesses = 3")
    text += f"\n[watcher:fresh]\ncmd = {SLEEP} fresh\n"
    config.write_text(text)
    async with await _client(d) as client:
        plan = (await client.call("reloadconfig", dry_run=True))["plan"]
        assert [(s["action"], s["watcher"]) for s in plan] == [
            ("add", "fresh"),
            ("resize", "web"),
        ]
        assert d.watcher("web").numprocesses == 2, "a dry run changes nothing"
        await client.call("reloadconfig", waiting=True)
    await d.wait_pids("web", 3)
    await d.wait_pids("fresh", 1)
    assert set(d.pids("worker")) == worker_pids, "an unchanged watcher is left alone"


async def test_bad_requests_get_error_replies_and_the_daemon_goes_on(daemon) -> None:
    d = await daemon(TWO_WATCHERS)
    context = zmq.asyncio.Context.instance()
    dealer = context.socket(zmq.DEALER)
    dealer.connect(d.arbiter.endpoints.control)

    async def ask(payload: bytes) -> dict[str, Any]:
        await dealer.send(payload)
        assert await dealer.poll(5000), f"no reply to {payload[:40]!r}"
        return json.loads(await dealer.recv())

    try:
        reply = await ask(b"not json")
        assert (reply["errno"], reply["reason"], reply["id"], reply["tb"]) == (
            1, "json invalid", None, None,
        )  # fmt: skip
        reply = await ask(b'{"id": "2", "command": "nosuch"}')
        assert (reply["errno"], reply["reason"], reply["id"]) == (
            2, "unknown command: 'nosuch'", "2",
        )  # fmt: skip
        reply = await ask(b'{"id": "3", "properties": {}}')
        assert reply["status"] == "error" and reply["id"] == "3"
        reply = await ask(b"")
        assert reply["status"] == "error"
        reply = await ask(b'{"id": "4", "command": "status", "properties": {"name": 5}}')
        assert reply["status"] == "error" and reply["errno"] == 3
        reply = await ask(b"[1, 2]")
        assert reply["errno"] == 1
        reply = await ask(b"x" * (2 * 1024 * 1024))
        assert reply["status"] == "error" and "too large" in reply["reason"]
        await dealer.send(b'{"id": "5", "command": "list", "msg_type": "cast"}')
        reply = await ask(b'{"id": "6", "command": "list"}')
        assert reply["id"] == "6", "a cast gets no reply"
    finally:
        dealer.close(linger=0)
    req = context.socket(zmq.REQ)
    req.connect(d.arbiter.endpoints.control)
    try:
        await req.send(b'{"id": "r", "command": "numwatchers"}')
        assert await req.poll(5000)
        assert json.loads(await req.recv())["numwatchers"] == 2
    finally:
        req.close(linger=0)


async def test_a_slow_stop_does_not_delay_other_watchers(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:slow]
        cmd = {IGNORE_TERM}
        graceful_timeout = 10

        [watcher:fast]
        cmd = {SLEEP} fast
        """
    )
    [slow_pid] = await d.wait_pids("slow", 1)
    await d.wait_pids("fast", 1)
    await async_wait_until(lambda: _ignores_term(slow_pid), what="TERM ignored")
    async with await _client(d, timeout=5) as client:
        await client.call("stop", name="slow")  # answered at once, the stop goes on
        await async_wait_until(lambda: d.watcher("slow").status == "stopping", what="stopping")
        started = time.monotonic()
        assert (await client.call("status", name="fast"))["status"] == "active"
        reply = await client.call("incr", name="fast", waiting=True)
        assert reply["numprocesses"] == 2
        await client.call("stop", name="fast", waiting=True)
        assert time.monotonic() - started < 3
        assert (await client.call("status", name="slow"))["status"] == "stopping"
    os.kill(slow_pid, signal.SIGKILL)


def _ignores_term(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


async def test_fifty_clients_for_ten_seconds_get_no_error(daemon) -> None:
    d = await daemon(TWO_WATCHERS)
    await d.wait_pids("web", 2)
    deadline = time.monotonic() + 10
    counts: list[int] = []

    async def client_loop(index: int) -> None:
        done = 0
        async with await _client(d, timeout=10) as client:
            while time.monotonic() < deadline:
                match (index + done) % 5:
                    case 0:
                        await client.call("status")
                    case 1:
                        await client.call("incr", name="worker", waiting=True)
                    case 2:
                        await client.call("decr", name="worker", waiting=True)
                    case 3:
                        await client.call("stats", name="web")
                    case _:
                        await client.call("list", name="web")
                done += 1
        counts.append(done)

    await asyncio.gather(*(client_loop(i) for i in range(50)))
    assert len(counts) == 50 and min(counts) > 0
    async with await _client(d) as client:
        assert (await client.call("status"))["statuses"] == {"web": "active", "worker": "active"}


async def test_events_reach_a_subscriber(daemon) -> None:
    d = await daemon(TWO_WATCHERS)
    await d.wait_pids("worker", 1)
    context = zmq.asyncio.Context.instance()
    sub = context.socket(zmq.SUB)
    sub.connect(d.arbiter.endpoints.pubsub)
    sub.setsockopt(zmq.SUBSCRIBE, b"watcher.worker.")
    received: list[tuple[str, dict[str, Any]]] = []
    try:
        async with await _client(d) as client:
            # A SUB socket misses what is published before it is connected: wait until an
            # event of ours (an `updated`) comes through, then start for real.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                await client.call("set", name="worker", options={"graceful_timeout": 2})
                if await sub.poll(50):
                    await sub.recv_multipart()
                    break
            while await sub.poll(100):
                await sub.recv_multipart()
            await client.call("incr", name="worker", waiting=True)
            await client.call("stop", name="worker", waiting=True)
        deadline = time.monotonic() + 5
        while (
            time.monotonic() < deadline
            and [t for t, _ in received].count("watcher.worker.stop") < 1
        ):
            if await sub.poll(500):
                topic, body = await sub.recv_multipart()
                received.append((topic.decode(), json.loads(body)))
    finally:
        sub.close(linger=0)
    received = [(t, m) for t, m in received if t != "watcher.worker.updated"]  # late strays
    topics = [t for t, _ in received]
    assert topics[0] == "watcher.worker.spawn"
    assert set(received[0][1]) == {"process_pid", "time"}
    assert topics.count("watcher.worker.kill") == 2 and topics.count("watcher.worker.reap") == 2
    reap = next(m for t, m in received if t.endswith(".reap"))
    assert set(reap) == {"process_pid", "time", "exit_code"} and reap["exit_code"] == -15
    assert topics.count("watcher.worker.stop") == 1 and topics[-1] == "watcher.worker.stop"


async def test_status_can_include_process_states(daemon) -> None:
    d = await daemon(TWO_WATCHERS)
    pids = await d.wait_pids("web", 2)
    async with await _client(d) as client:
        reply = await client.call("status", processes=True)
        assert reply["processes"]["web"] == {str(p): "ready" for p in sorted(pids)}
        assert "processes" not in await client.call("status"), "Circus's reply by default"


def test_status_table_on_a_terminal() -> None:
    import argparse

    from bigtop.cli.ctl import render_status

    reply = {
        "statuses": {"web": "active", "db": "stopped"},
        "processes": {"web": {"1": "ready", "2": "starting", "3": "ready"}, "db": {}},
    }
    text = render_status(reply, argparse.Namespace(tty=True))
    lines = [
        line.replace("\x1b[32m", "").replace("\x1b[31m", "").replace("\x1b[0m", "")
        for line in text.splitlines()
    ]
    assert lines == [
        "WATCHER  STATUS    PROCESSES",
        "db       stopped   -",
        "web      active    2 ready, 1 starting",
    ]


async def test_reloadconfig_rolls_out_a_changed_command_and_keeps_live_changes_live(
    daemon, tmp_path
) -> None:
    d = await daemon(TWO_WATCHERS)
    web = set(await d.wait_pids("web", 2))
    worker = set(await d.wait_pids("worker", 1))
    config = tmp_path / "circus.ini"
    text = config.read_text().replace(f"cmd = {SLEEP} web", f"cmd = {SLEEP} web2")
    text = text.replace("graceful_timeout = 2", "graceful_timeout = 3")
    text = text.replace(f"cmd = {SLEEP} worker", f"cmd = {SLEEP} worker\ngraceful_timeout = 7")
    config.write_text(text)
    async with await _client(d) as client:
        plan = (await client.call("reloadconfig", dry_run=True))["plan"]
        assert [(s["action"], s["watcher"]) for s in plan] == [
            ("reload", "web"),
            ("update", "worker"),
        ]
        await client.call("reloadconfig", waiting=True)
        new_web = set(d.pids("web"))
        assert len(new_web) == 2 and not new_web & web  # replaced, by a reload
        assert set(d.pids("worker")) == worker  # untouched
        assert d.watcher("worker").config.graceful_timeout == 7.0
        assert "web2" in (await client.call("get", name="web", keys=["cmd"]))["options"]["cmd"]
    assert d.topics("web.reload") and not d.topics("web.stop")  # no stop: no downtime


async def test_calls_made_at_once_on_one_client_each_get_their_own_reply(daemon) -> None:
    # The dashboard shares one client between its pages, its metrics and its event feed;
    # a caller must never read (and drop) the reply another caller is waiting for.
    d = await daemon(TWO_WATCHERS)
    await d.wait_pids("web", 2)
    async with await _client(d, timeout=5.0) as client:
        # answered once the process runs, so after the quick calls sent behind it
        slow = client.call("incr", name="worker", waiting=True)
        calls = [client.call("numprocesses", name="web") for _ in range(20)]
        calls += [client.call("status") for _ in range(10)]
        [incr, *replies] = await asyncio.gather(slow, *calls)
    assert incr["numprocesses"] == 2
    assert [r.get("numprocesses") for r in replies[:20]] == [2] * 20
    assert all(r["statuses"] == {"web": "active", "worker": "active"} for r in replies[20:])


async def test_a_stop_is_not_undone_by_commands_still_under_way(daemon, caplog) -> None:
    # Starts and reloads still queued when the daemon's stop began used to start processes
    # again behind it: the stop then found them running, killed them late, or left them.
    d = await daemon(TWO_WATCHERS)
    await d.wait_pids("web", 2)
    async with await _client(d) as client:
        for command in ["reload", "stop", "start", "reload", "start"] * 4:
            await client.cast(command)
        d.arbiter.request("quit")
    await d.quit()
    assert not [r for r in caplog.records if "still running" in r.getMessage()]


async def test_a_stopping_daemon_refuses_to_start_anything(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} web

        [watcher:slow]
        cmd = {IGNORE_TERM}
        graceful_timeout = 30
        """
    )
    await d.wait_pids("web", 1)
    [slow] = await d.wait_pids("slow", 1)
    await async_wait_until(lambda: _ignores_term(slow), what="the handler installed")
    d.arbiter.request("quit")
    await async_wait_until(lambda: d.arbiter.stopping, what="the stop under way")
    async with await _client(d) as client:  # 'slow' holds the stop up to its SIGKILL
        for command, properties in [
            ("start", {"name": "web"}),
            ("reload", {}),
            ("incr", {"name": "web"}),
        ]:
            with pytest.raises(CallError) as refused:
                await client.call(command, **properties)
            assert (
                refused.value.reason == f"{command}: bigtop is stopping; send it again once it runs"
            )
        # reads still work ('web' may not be reaped yet)
        assert (await client.call("status"))["statuses"]["web"] in ("stopping", "stopped")
    d.watcher("slow").kill_now()
    await d.quit()
