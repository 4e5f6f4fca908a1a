"""Watcher options that change how processes are started and stopped."""

from __future__ import annotations

import time
from pathlib import Path

from tests.helpers import PYTHON, alive, argv_of, async_wait_until

SLEEP = f"{PYTHON} -c 'import time; time.sleep(3600)'"


async def test_shell_true_runs_the_command_string_through_sh(daemon, tmp_path: Path) -> None:
    out = tmp_path / "out"
    await daemon(
        f"""
        [watcher:piped]
        cmd = echo "$GREETING world" | tr a-z A-Z > {out}; exec sleep 3600.31
        shell = true

        [env:piped]
        GREETING = hello
        """
    )
    await async_wait_until(lambda: out.exists() and out.read_text(), what="the pipeline")
    assert out.read_text() == "HELLO WORLD\n"


async def test_executable_sets_the_program_and_argv0_is_a_display_name(daemon, tmp_path) -> None:
    out = tmp_path / "argv0"
    d = await daemon(
        f"""
        [watcher:named]
        cmd = my-display-name -c 'import sys, time; open("{out}", "w").write(sys.argv[0] if sys.argv[0] else "-c"); time.sleep(3600)'
        executable = {PYTHON}
        """
    )
    [pid] = await d.wait_pids("named", 1)
    assert argv_of(pid)[0] == b"my-display-name"


async def test_stdout_and_stderr_streams_capture_whole_lines(daemon, tmp_path: Path) -> None:
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    await daemon(
        f"""
        [watcher:talker]
        cmd = {PYTHON} -c 'import sys, time; sys.stdout.write("one\\ntw"); sys.stdout.flush(); time.sleep(0.05); print("o"); print("oops", file=sys.stderr); sys.stdout.flush(); time.sleep(3600)'
        stdout_stream.class = FileStream
        stdout_stream.filename = {out}
        stderr_stream.filename = {err}
        """
    )
    await async_wait_until(lambda: out.exists() and out.read_text() == "one\ntwo\n", what="lines")
    await async_wait_until(lambda: err.read_text() == "oops\n", what="stderr")


async def test_close_child_stdout_sends_output_to_dev_null(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:quiet]
        cmd = {SLEEP} quiet
        close_child_stdout = true
        close_child_stderr = true
        """
    )
    [pid] = await d.wait_pids("quiet", 1)
    import os

    assert os.readlink(f"/proc/{pid}/fd/1") == "/dev/null"
    assert os.readlink(f"/proc/{pid}/fd/2") == "/dev/null"
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null", "close_child_stdin defaults to true"


async def test_stop_children_signals_direct_children_too(daemon, tmp_path: Path) -> None:
    marker = tmp_path / "child-got-term"
    script = (
        f"{PYTHON} -c 'import subprocess, sys, time, signal; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f'subprocess.Popen([sys.executable, "-c", "import signal, time, sys; '
        f'signal.signal(signal.SIGTERM, lambda *a: (open(\\"{marker}\\", \\"w\\"), sys.exit(0))); '
        "time.sleep(3600)\"]); time.sleep(3600)'"
    )
    d = await daemon(
        f"""
        [watcher:family]
        cmd = {script}
        stop_children = true
        graceful_timeout = 1
        """
    )
    [pid] = await d.wait_pids("family", 1)
    from bigtop.runtime.proctree import direct_children

    await async_wait_until(lambda: direct_children(pid), what="the child")
    await async_wait_until(lambda: _sig_handled(direct_children(pid)[0]), what="its handler")
    await d.watcher("family").stop()
    assert marker.exists(), "the direct child received the stop signal"


def _sig_handled(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << 14))
    return False


async def test_watcher_warmup_delay_spaces_spawns(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:slow]
        cmd = {SLEEP} warm
        numprocesses = 3
        warmup_delay = 0.3
        """
    )
    started = time.monotonic()
    await d.wait_pids("slow", 3)
    assert time.monotonic() - started >= 0.55


async def test_autostart_false_watcher_is_not_started(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:manual]
        cmd = {SLEEP} manual
        autostart = false

        [watcher:auto]
        cmd = {SLEEP} auto
        """
    )
    await d.wait_pids("auto", 1)
    assert d.watcher("manual").status == "stopped"
    assert d.watcher("manual").start()
    await d.wait_pids("manual", 1)


async def test_respawn_never_leaves_the_slot_empty(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:once]
        cmd = {PYTHON} -c 'import sys; sys.exit(5)'
        numprocesses = 2
        respawn = never
        """
    )
    await async_wait_until(lambda: d.watcher("once").status == "stopped", what="both ended")
    assert len(d.topics(".spawn")) == 2
    assert all(not alive(p) for p in d.seen_pids)


async def test_flapping_options_stop_the_watcher_and_retry(daemon) -> None:
    d = await daemon(
        f"""
        [watcher:flappy]
        cmd = {PYTHON} -c 'raise SystemExit(1)'
        flapping.attempts = 3
        flapping.window = 5
        flapping.retry_in = 0.3
        flapping.max_retry = 1
        backoff_initial = 0.01
        backoff_max = 0.01
        """
    )
    watcher = d.watcher("flappy")
    await async_wait_until(lambda: len(d.topics(".spawn")) >= 6, what="a retry round")
    await async_wait_until(lambda: watcher.status == "stopped", what="giving up")
    assert len(d.topics(".spawn")) == 6  # 3 deaths, retry once, 3 more deaths, give up


async def test_a_slow_sink_slows_the_child_not_the_daemon(daemon, tmp_path: Path) -> None:
    """A disk that takes 0.2 s per write: the loop stays responsive, the child is held back by
    its full pipe, and the daemon does not buffer the flood in memory."""
    import asyncio
    import sys

    import psutil

    (tmp_path / "slowsink.py").write_text(
        "import time\n"
        "class Slow:\n"
        "    def __init__(self, **options):\n"
        "        self.calls = 0\n"
        "    def __call__(self, data):\n"
        "        time.sleep(0.2)\n"
    )
    sys.path.insert(0, str(tmp_path))
    progress = tmp_path / "written"
    (tmp_path / "flood.py").write_text(
        "import sys\n"
        "chunk = b'x' * 65535 + b'\\n'\n"
        "for i in range(2000):\n"
        "    sys.stdout.buffer.write(chunk)\n"
        "    sys.stdout.flush()\n"
        f"    open({str(progress)!r}, 'w').write(str(i))\n"
    )
    flood = f"{PYTHON} {tmp_path / 'flood.py'}"
    try:
        d = await daemon(
            f"""
            [watcher:flood]
            cmd = {flood}
            stdout_stream.class = slowsink.Slow
            """
        )
        await async_wait_until(lambda: progress.exists(), what="the flood to start")
        rss_before = psutil.Process().memory_info().rss
        # the loop answers timers on time while the sink crawls
        for _ in range(10):
            started = time.monotonic()
            await asyncio.sleep(0.02)
            assert time.monotonic() - started < 0.5, "the daemon's loop was blocked"
        await asyncio.sleep(1.0)
        written_mb = int(progress.read_text() or 0) * 64 / 1024
        assert written_mb < 20, f"the child was not slowed down ({written_mb:.0f} MiB written)"
        growth = (psutil.Process().memory_info().rss - rss_before) / 2**20
        assert growth < 20, f"the daemon buffered the flood ({growth:.0f} MiB)"
        assert d.watcher("flood").status == "active"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("slowsink", None)
