"""Hooks in Circus's order with its false-return semantics; priority order; reload."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import PYTHON, alive, async_wait_until

SLEEP = f"{PYTHON} -c 'import time; time.sleep(3600)'"
HOOK_NAMES = [
    "before_start",
    "before_spawn",
    "after_spawn",
    "after_start",
    "before_stop",
    "before_signal",
    "after_signal",
    "before_reap",
    "after_reap",
    "after_stop",
]


@pytest.fixture
def hooks_module(tmp_path: Path):
    """A module of hooks that log their calls; RESULTS[name] sets what each returns."""
    name = f"hooks_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            CALLS = []
            RESULTS = {}

            def make(hook):
                def run(watcher, arbiter, hook_name, **extra):
                    CALLS.append((hook_name, sorted(extra)))
                    if RESULTS.get(hook_name) == "raise":
                        raise RuntimeError("boom")
                    return RESULTS.get(hook_name, True)
                return run
            """
        )
        + "\n".join(f"{hook} = make({hook!r})" for hook in HOOK_NAMES)
    )
    sys.path.insert(0, str(tmp_path))
    module = __import__(name)
    yield name, module
    sys.path.remove(str(tmp_path))
    sys.modules.pop(name, None)


def _hooks(module_name: str, names=HOOK_NAMES) -> str:
    return "\n".join(f"hooks.{hook} = {module_name}.{hook}" for hook in names)


async def test_hooks_run_in_circus_order_with_their_arguments(daemon, hooks_module) -> None:
    name, module = hooks_module
    d = await daemon(
        f"""
        [watcher:hooked]
        cmd = {SLEEP} hooked
        {_hooks(name)}
        """
    )
    await d.wait_pids("hooked", 1)
    await async_wait_until(lambda: len(module.CALLS) >= 4, what="start hooks")
    await d.watcher("hooked").stop()
    assert module.CALLS == [
        ("before_start", []),
        ("before_spawn", []),
        ("after_spawn", ["pid"]),
        ("after_start", []),
        ("before_stop", []),
        ("before_signal", ["pid", "signum"]),
        ("after_signal", ["pid", "signum"]),
        ("before_reap", ["process_pid", "time"]),
        ("after_reap", ["exit_code", "process_pid", "process_status", "time"]),
        ("after_stop", []),
    ]
    assert d.topics(".hook_success").count("watcher.hooked.hook_success") == 10


async def test_before_start_false_keeps_the_watcher_stopped(daemon, hooks_module) -> None:
    name, module = hooks_module
    module.RESULTS["before_start"] = False
    d = await daemon(
        f"""
        [watcher:hooked]
        cmd = {SLEEP} refused
        {_hooks(name)}
        """
    )
    await async_wait_until(lambda: module.CALLS, what="the hook")
    assert d.watcher("hooked").status == "stopped"
    assert d.topics(".spawn") == []


async def test_before_spawn_false_skips_that_spawn_only(daemon, hooks_module) -> None:
    """bigtop difference: the watcher is not stopped; the spawn is retried with backoff."""
    name, module = hooks_module
    module.RESULTS["before_spawn"] = False
    d = await daemon(
        f"""
        [watcher:hooked]
        cmd = {SLEEP} skipped
        backoff_initial = 0.05
        backoff_max = 0.05
        {_hooks(name, ["before_spawn"])}
        """
    )
    await async_wait_until(
        lambda: [c[0] for c in module.CALLS].count("before_spawn") >= 3, what="retries"
    )
    assert d.watcher("hooked").status == "active"
    module.RESULTS["before_spawn"] = True
    await d.wait_pids("hooked", 1)


async def test_after_spawn_false_kills_the_process_and_stops_the_watcher(
    daemon, hooks_module
) -> None:
    name, module = hooks_module
    module.RESULTS["after_spawn"] = False
    d = await daemon(
        f"""
        [watcher:hooked]
        cmd = {SLEEP} after-spawn
        {_hooks(name, ["after_spawn"])}
        """
    )
    await async_wait_until(lambda: d.watcher("hooked").status == "stopped", what="stopped")
    assert d.seen_pids and not any(alive(p) for p in d.seen_pids)


async def test_a_raising_hook_counts_as_false_unless_ignored(daemon, hooks_module) -> None:
    name, module = hooks_module
    module.RESULTS["before_start"] = "raise"
    module.RESULTS["before_stop"] = "raise"  # ignored by default: the stop goes on
    d = await daemon(
        f"""
        [watcher:strict]
        cmd = {SLEEP} strict
        hooks.before_start = {name}.before_start

        [watcher:lenient]
        cmd = {SLEEP} lenient
        hooks.before_start = {name}.before_start, true
        hooks.before_stop = {name}.before_stop
        """
    )
    await d.wait_pids("lenient", 1)
    assert d.watcher("strict").status == "stopped"
    failures = [m for t, m in d.events if t.endswith(".hook_failure")]
    assert failures[0]["name"] == "before_start" and failures[0]["error"] == "boom"
    await d.watcher("lenient").stop()
    assert d.watcher("lenient").status == "stopped"


async def test_priority_order_on_start_and_stop(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:low]
        cmd = {SLEEP} low
        priority = 1

        [watcher:high]
        cmd = {SLEEP} high
        priority = 10

        [watcher:middle]
        cmd = {SLEEP} middle
        priority = 5
        """
    )
    for name in ("low", "high", "middle"):
        await d.wait_pids(name, 1)
    spawns = [t.split(".")[1] for t in d.topics(".spawn")]
    assert spawns == ["high", "middle", "low"]
    await d.quit()
    stops = [t.split(".")[1] for t, m in d.events if t.endswith(".stop")]
    # each watcher publishes stop once it is stopped (as Circus does), lowest priority first
    assert stops == ["low", "middle", "high"]


async def test_sighup_reloads_every_watcher_with_new_processes(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:web]
        cmd = {SLEEP} reload
        numprocesses = 2
        graceful_timeout = 2
        """
    )
    old = set(await d.wait_pids("web", 2))
    os.kill(os.getpid(), signal.SIGHUP)
    await async_wait_until(
        lambda: (p := set(d.pids("web"))) and len(p) == 2 and not p & old, what="new processes"
    )
    await async_wait_until(lambda: not any(alive(p) for p in old), what="old ones gone")
    assert "watcher.web.reload" in d.topics(".reload")


async def test_send_hup_reload_signals_processes_instead(daemon, tmp_path: Path) -> None:
    out = tmp_path / "hups"
    d = await daemon(
        f"""
        [watcher:hup]
        cmd = {PYTHON} -c 'import signal, time; signal.signal(signal.SIGHUP, lambda *a: open("{out}", "a").write("hup\\n")); open("{out}", "a").write("up\\n"); time.sleep(3600)'
        send_hup = true
        """
    )
    [pid] = await d.wait_pids("hup", 1)
    await async_wait_until(lambda: out.exists() and "up" in out.read_text(), what="handler")
    d.watcher("hup").reload()
    await async_wait_until(lambda: "hup" in out.read_text(), what="the SIGHUP")
    assert d.pids("hup") == [pid]


def test_events_are_json_serialisable_shapes() -> None:
    json.dumps({"process_pid": 1, "time": 1.0})


async def test_the_retry_after_flapping_asks_before_start_too(daemon, hooks_module) -> None:
    name, module = hooks_module
    d = await daemon(
        f"""
        [watcher:flaky]
        cmd = {PYTHON} -c 'raise SystemExit(1)'
        flapping.attempts = 2
        flapping.window = 10
        flapping.retry_in = 0.2
        backoff_initial = 0.01
        backoff_max = 0.01
        {_hooks(name, ["before_start"])}
        """
    )
    await async_wait_until(lambda: d.watcher("flaky").core.retry_at is not None, what="flapping")
    module.RESULTS["before_start"] = False  # the retry is refused like a start would be
    starts = len(module.CALLS)
    await async_wait_until(lambda: len(module.CALLS) > starts, what="the retry's before_start")
    await async_wait_until(lambda: d.watcher("flaky").status == "stopped", what="stopped")
    assert d.watcher("flaky").core.retry_at is None
    spawned, since = len(d.topics(".spawn")), d.arbiter.loop.time()
    # longer than retry_in: nothing is retried after that
    await async_wait_until(lambda: d.arbiter.loop.time() - since > 0.5, timeout=3)
    assert len(d.topics(".spawn")) == spawned and d.watcher("flaky").status == "stopped"
