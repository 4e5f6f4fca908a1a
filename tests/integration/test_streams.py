"""Output streams with real writers: children writing through real pipes into the sinks,
read by PipeReader in the test's loop. Time is injected; nothing sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import logging
import os
import subprocess
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bigtop.config.model import StreamConfig
from bigtop.core.rotation import parse_rotate_when, size_backup_order
from bigtop.runtime.output import (
    MAX_LINE,
    FileSink,
    LogFile,
    PipeReader,
    RawFile,
    Sink,
    TimedFileSink,
    local_offset,
    make_sink,
)
from tests.helpers import PYTHON, async_wait_until

OUTPUT = "bigtop.output"


# ---- real children ------------------------------------------------------------------------------
class Child:
    """A `python -c` child whose stdout (or stderr) is a pipe read by a PipeReader into
    `sink`; it can wait on its stdin for "go" lines so the test can act between phases."""

    def __init__(self, code: str, sink: Sink, *, stream: str = "stdout", name: str = "w") -> None:
        read_end, write_end = os.pipe()
        self.proc = subprocess.Popen(
            [PYTHON, "-c", textwrap.dedent(code)],
            stdin=subprocess.PIPE,
            stdout=write_end if stream == "stdout" else subprocess.DEVNULL,
            stderr=write_end if stream == "stderr" else None,
        )
        os.close(write_end)
        self.pid = self.proc.pid
        self.reader = PipeReader(asyncio.get_running_loop(), read_end, name, self.pid, stream, sink)

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def finish(self) -> int:
        """After EOF: reap the child (it has closed its end, so it is exiting)."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        return self.proc.wait(timeout=10)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self.reader.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., Child]]:
    children: list[Child] = []

    def start(code: str, sink: Sink, **kwargs: Any) -> Child:
        child = Child(code, sink, **kwargs)
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()


async def run_to_end(*children: Child) -> None:
    for child in children:
        await async_wait_until(lambda c=child: c.reader.closed, what=f"EOF from {child.pid}")
        assert child.finish() == 0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def numbered(count: int, tag: str = "line", width: int = 60) -> str:
    """A child that writes `count` numbered lines of varying length as fast as it can."""
    return f"""
        import sys
        write = sys.stdout.buffer.write
        for i in range({count}):
            write(b"{tag} %06d %s\\n" % (i, b"x" * (i % {width})))
    """


def expected_numbered(count: int, tag: str = "line", width: int = 60) -> bytes:
    return b"".join(b"%s %06d %s\n" % (tag.encode(), i, b"x" * (i % width)) for i in range(count))


def phased(*phases: str) -> str:
    """A child that waits for "go" on stdin before each phase, then prints its lines."""
    body = "".join(
        f"sys.stdin.readline()\nsys.stdout.write({text!r})\nsys.stdout.flush()\n" for text in phases
    )
    return "import sys\n" + body


def files_of(path: Path, backup_count: int) -> list[Path]:
    return [Path(p) for p in size_backup_order(str(path), backup_count) if os.path.exists(p)]


# ---- size rotation ------------------------------------------------------------------------------
async def test_size_rotation_keeps_every_line_whole_and_in_order(tmp_path: Path, spawn) -> None:
    log = tmp_path / "out.log"
    sink = make_sink(
        StreamConfig(
            class_name="FileStream",
            options={"filename": str(log), "max_bytes": "16384", "backup_count": "200"},
        )
    )
    child = spawn(numbered(20_000), sink)
    await run_to_end(child)
    sink.close()
    files = files_of(log, 200)
    assert len(files) > 20, "rotation happened while the child was writing"
    assert b"".join(p.read_bytes() for p in files) == expected_numbered(20_000)
    for path in files:
        content = path.read_bytes()
        assert len(content) <= 16384, f"{path.name} grew past max_bytes"
        assert content.endswith(b"\n"), f"{path.name} ends inside a line"


async def test_two_processes_sharing_a_sink_never_interleave_within_a_line(
    tmp_path: Path, spawn
) -> None:
    log = tmp_path / "out.log"
    sink = make_sink(
        StreamConfig(
            class_name="circus.stream.FileStream",
            options={
                "filename": str(log),
                "max_bytes": "32K",
                "backup_count": "100",
                "time_format": "%H:%M:%S",
            },
        )
    )
    first = spawn(numbered(8000, "first"), sink)
    second = spawn(numbered(8000, "second"), sink)
    await run_to_end(first, second)
    sink.close()
    seen: dict[int, list[bytes]] = {first.pid: [], second.pid: []}
    for path in files_of(log, 100):
        for line in path.read_bytes().splitlines():
            head, _, text = line.partition(b" | ")
            pid = int(head.split(b"[")[1].rstrip(b"]"))
            seen[pid].append(text + b"\n")
    assert b"".join(seen[first.pid]) == expected_numbered(8000, "first")
    assert b"".join(seen[second.pid]) == expected_numbered(8000, "second")


async def test_backup_count_is_honoured_and_the_newest_lines_kept(tmp_path: Path, spawn) -> None:
    log = tmp_path / "app.log"
    sink = make_sink(
        StreamConfig(
            class_name="FileStream",
            options={"filename": str(log), "max_bytes": "2000", "backup_count": "3"},
        )
    )
    await run_to_end(spawn(numbered(3000), sink))
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "app.log",
        "app.log.1",
        "app.log.2",
        "app.log.3",
    ]
    kept = b"".join(p.read_bytes() for p in files_of(log, 3))
    everything = expected_numbered(3000)
    assert everything.endswith(kept)
    assert everything[: -len(kept)].endswith(b"\n"), "the kept part starts on a line"


async def test_backup_count_zero_never_rotates(tmp_path: Path, spawn) -> None:
    log = tmp_path / "app.log"
    sink = make_sink(
        StreamConfig(class_name="FileStream", options={"filename": str(log), "max_bytes": "100"})
    )
    await run_to_end(spawn(numbered(500), sink))
    sink.close()
    assert [p.name for p in tmp_path.iterdir()] == ["app.log"]
    assert log.read_bytes() == expected_numbered(500)


async def test_a_line_longer_than_max_bytes_gets_a_file_of_its_own(tmp_path: Path, spawn) -> None:
    log = tmp_path / "app.log"
    sink = make_sink(
        StreamConfig(
            class_name="FileStream",
            options={"filename": str(log), "max_bytes": "100", "backup_count": "5"},
        )
    )
    code = 'import sys; sys.stdout.write("short\\n" + "L" * 5000 + "\\nafter\\n")'
    await run_to_end(spawn(code, sink))
    sink.close()
    assert [p.read_bytes() for p in files_of(log, 5)] == [
        b"short\n",
        b"L" * 5000 + b"\n",
        b"after\n",
    ]


def test_size_is_reread_after_copytruncate(tmp_path: Path) -> None:
    """logrotate's copytruncate empties the file in place; rotation must notice."""
    log = tmp_path / "app.log"
    sink = make_sink(
        StreamConfig(
            class_name="FileStream",
            options={"filename": str(log), "max_bytes": "100", "backup_count": "3"},
        )
    )
    sink.write_line("w", 1, "stdout", b"a" * 79)
    os.truncate(log, 0)
    sink.write_line("w", 1, "stdout", b"b" * 49)
    sink.close()
    assert [p.name for p in tmp_path.iterdir()] == ["app.log"]
    assert log.read_bytes() == b"b" * 49 + b"\n"


def test_a_rotation_that_fails_keeps_every_line_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "app.log"
    (tmp_path / "app.log.1").mkdir()  # f -> f.1 cannot happen
    (tmp_path / "app.log.1" / "keep").touch()
    sink = make_sink(
        StreamConfig(
            class_name="FileStream",
            options={"filename": str(log), "max_bytes": "10", "backup_count": "1"},
        )
    )
    with caplog.at_level(logging.WARNING, logger=OUTPUT):
        for i in range(5):
            sink.write_line("w", 1, "stdout", b"line %d" % i)
    sink.close()
    assert log.read_bytes() == b"".join(b"line %d\n" % i for i in range(5))
    messages = [r.getMessage() for r in caplog.records if r.name == OUTPUT]
    assert len(messages) == 1
    assert messages[0].startswith(f"cannot rotate {log}: ")
    assert messages[0].endswith("; writing on to the same file")


# ---- time rotation ------------------------------------------------------------------------------
async def test_time_rotation_with_an_injected_clock(tmp_path: Path, spawn) -> None:
    log = tmp_path / "app.log"
    clock = FakeClock(datetime(2024, 2, 5, 10, 0, 0, tzinfo=UTC).timestamp())
    sink = make_sink(
        StreamConfig(
            class_name="TimedRotatingFileStream",
            options={
                "filename": str(log),
                "rotate_when": "m",  # lower case works
                "utc": "true",
                "backup_count": "3",
            },
        ),
        clock=clock,
    )
    texts = ["".join(f"phase {n} line {i}\n" for i in range(3)) for n in range(5)]
    child = spawn(phased(*texts), sink)
    for number, text in enumerate(texts):
        child.go()
        await async_wait_until(
            lambda t=text: log.read_text() == t, what=f"phase {number} in the current file"
        )
        clock.now += 60
    await run_to_end(child)
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "app.log",
        "app.log.202402051001",  # the 10:00 file went beyond backup_count = 3
        "app.log.202402051002",
        "app.log.202402051003",
    ]
    for minute, text in zip((1, 2, 3), texts[1:4], strict=True):
        assert (tmp_path / f"app.log.20240205100{minute}").read_text() == text
    assert log.read_text() == texts[4]


async def test_midnight_rotation_in_a_zone_passed_in(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    clock = FakeClock(datetime(2024, 2, 5, 21, 0, tzinfo=UTC).timestamp())  # 23:00 at UTC+2
    sink = make_sink(
        StreamConfig(
            class_name="TimedRotatingFileStream",
            options={"filename": str(log), "rotate_when": "MIDNIGHT", "utc": "no"},
        ),
        clock=clock,
        offset_at=lambda _t: 7200.0,
    )
    sink.write_line("w", 1, "stdout", b"monday evening")
    clock.now += 1800  # 23:30 local
    sink.write_line("w", 1, "stdout", b"still monday")
    clock.now += 1800  # 00:00 local, Tuesday
    sink.write_line("w", 1, "stdout", b"tuesday")
    clock.now += 2 * 86400  # idle for two days: one rotation, named after its period
    sink.write_line("w", 1, "stdout", b"thursday")
    sink.close()
    assert (tmp_path / "app.log.20240205").read_text() == "monday evening\nstill monday\n"
    assert (tmp_path / "app.log.20240206").read_text() == "tuesday\n"
    assert log.read_text() == "thursday\n"


async def test_time_rotation_never_overwrites_an_existing_backup(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    clock = FakeClock(datetime(2024, 2, 5, 10, tzinfo=UTC).timestamp())
    sink = TimedFileSink(str(log), parse_rotate_when("H"), utc=True, clock=clock)
    (tmp_path / "app.log.2024020510").write_text("from an earlier run\n")
    sink.write_line("w", 1, "stdout", b"new")
    clock.now += 3600
    sink.write_line("w", 1, "stdout", b"next hour")
    sink.close()
    assert (tmp_path / "app.log.2024020510").read_text() == "from an earlier run\nnew\n"
    assert log.read_text() == "next hour\n"


@pytest.mark.parametrize(
    ("utc", "is_utc"), [("true", True), ("False", False), ("0", False), ("YES", True), ("", False)]
)
def test_utc_is_a_real_boolean(tmp_path: Path, utc: str, is_utc: bool) -> None:
    sink = make_sink(
        StreamConfig(
            class_name="TimedRotatingFileStream",
            options={"filename": str(tmp_path / "l"), "rotate_when": "H", "utc": utc},
        )
    )
    assert isinstance(sink, TimedFileSink)
    assert (sink.offset_at is local_offset) is not is_utc
    sink.close()


# ---- logrotate ----------------------------------------------------------------------------------
@pytest.mark.parametrize("class_name", ["WatchedFileStream", "FileStream"])
async def test_a_file_moved_or_deleted_by_logrotate_is_reopened(
    tmp_path: Path, spawn, class_name: str
) -> None:
    log = tmp_path / "app.log"
    sink = make_sink(StreamConfig(class_name=class_name, options={"filename": str(log)}))
    child = spawn(phased("before the move\n", "after the move\n", "after the delete\n"), sink)
    child.go()
    await async_wait_until(lambda: log.read_text() == "before the move\n", what="phase 0")
    log.rename(tmp_path / "app.log.1")  # what logrotate does
    child.go()
    await async_wait_until(
        lambda: log.exists() and log.read_text() == "after the move\n", what="reopened"
    )
    log.unlink()
    child.go()
    await async_wait_until(
        lambda: log.exists() and log.read_text() == "after the delete\n", what="recreated"
    )
    await run_to_end(child)
    sink.close()
    assert (tmp_path / "app.log.1").read_text() == "before the move\n"


# ---- exact bytes, prefixes and JSON lines -------------------------------------------------------
async def test_files_hold_exactly_the_bytes_the_child_wrote(tmp_path: Path, spawn) -> None:
    log = tmp_path / "app.log"
    sink = make_sink(StreamConfig(class_name="FileStream", options={"filename": str(log)}))
    first, second = b"caf\xc3", b"\xa9 \xff\xfe not utf-8\r\n\x00tail without newline"
    code = f"""
        import os, sys
        os.write(1, {first!r})
        sys.stdin.readline()
        os.write(1, {second!r})
    """
    child = spawn(code, sink)
    await async_wait_until(lambda: child.reader.bytes_read == len(first), what="the first half")
    child.go()  # the multibyte character is now cut across two reads
    await run_to_end(child)
    sink.close()
    assert log.read_bytes() == first + second + b"\n", "only the last newline is added"


async def test_a_line_longer_than_max_line_is_cut_to_bound_memory(tmp_path: Path, spawn) -> None:
    log = tmp_path / "app.log"
    sink = make_sink(StreamConfig(class_name="FileStream", options={"filename": str(log)}))
    size = MAX_LINE + MAX_LINE // 2
    code = f"import sys; sys.stdout.buffer.write(b'x' * {size} + b'\\n')"
    await run_to_end(spawn(code, sink))
    sink.close()
    lines = log.read_bytes().split(b"\n")
    assert [len(line) for line in lines] == [MAX_LINE, size - MAX_LINE, 0]


async def test_time_format_prefixes_every_line_with_time_and_pid(tmp_path: Path, spawn) -> None:
    log = tmp_path / "app.log"
    clock = FakeClock(1_700_000_000.25)
    sink = make_sink(
        StreamConfig(
            class_name="FileStream",
            options={"filename": str(log), "time_format": "%Y-%m-%d %H:%M:%S.%f"},
        ),
        clock=clock,
    )
    child = spawn("print('one'); print(); print('three')", sink)
    await run_to_end(child)
    sink.close()
    stamp = datetime.fromtimestamp(clock.now).strftime("%Y-%m-%d %H:%M:%S.%f")
    prefix = f"{stamp} [{child.pid}] | "
    assert log.read_text() == f"{prefix}one\n{prefix}\n{prefix}three\n"


async def test_json_lines_parse_and_carry_watcher_pid_stream_and_text(
    tmp_path: Path, spawn
) -> None:
    log = tmp_path / "app.jsonl"
    clock = FakeClock(1_700_000_000.5)
    sink = make_sink(
        StreamConfig(
            class_name="TimedRotatingFileStream",
            options={"filename": str(log), "format": "JSON", "rotate_when": "D", "utc": "1"},
        ),
        clock=clock,
    )
    texts = ["plain", '"quoted" \\ tab\there', "unicode é ✓", "", "bad \ufffd\ufffd bytes"]
    payload = 'plain\n"quoted" \\ tab\there\nunicode é ✓\n\n'.encode() + b"bad \xff\xfe bytes\n"
    child = spawn(f"import os; os.write(2, {payload!r})", sink, stream="stderr", name="api")
    await run_to_end(child)
    sink.close()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records == [
        {
            "time": 1_700_000_000.5,
            "watcher": "api",
            "pid": child.pid,
            "stream": "stderr",
            "line": text,
        }
        for text in texts
    ]


def test_stdout_stream_json_and_prefix() -> None:
    out = io.BytesIO()
    sink = make_sink(
        StreamConfig(class_name="StdoutStream", options={"format": "json"}),
        clock=FakeClock(12.0),
        target=out,
    )
    sink.write_block("web", 42, "stdout", b"a\nb\n")
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        {"time": 12.0, "watcher": "web", "pid": 42, "stream": "stdout", "line": "a"},
        {"time": 12.0, "watcher": "web", "pid": 42, "stream": "stdout", "line": "b"},
    ]
    out = io.BytesIO()
    sink = make_sink(
        StreamConfig(class_name="StdoutStream", options={"time_format": "%Y"}),
        clock=FakeClock(datetime(2024, 6, 1, 12).timestamp()),
        target=out,
    )
    sink.write_line("web", 42, "stdout", b"hello")
    assert out.getvalue() == b"2024 [42] | hello\n"


@pytest.mark.parametrize(
    ("color", "code"),
    [
        ("red", 1),
        ("green", 2),
        ("yellow", 3),
        ("blue", 4),
        ("magenta", 5),
        ("cyan", 6),
        ("White", 7),
    ],
)
async def test_fancy_stdout_colours_time_name_and_pid(spawn, color: str, code: int) -> None:
    out = io.BytesIO()
    clock = FakeClock(datetime(2024, 6, 1, 12, 30, 15).timestamp())
    sink = make_sink(
        StreamConfig(class_name="FancyStdoutStream", options={"color": color}),
        clock=clock,
        target=out,
    )
    child = spawn("print('hello'); print('world')", sink, name="web")
    await run_to_end(child)
    head = f"\x1b[0;3{code};40m2024-06-01 12:30:15 web[{child.pid}] | "
    assert out.getvalue().decode() == f"{head}hello\x1b[0m\n{head}world\x1b[0m\n"


def test_fancy_without_a_known_colour_picks_one_and_honours_time_format() -> None:
    out = io.BytesIO()
    sink = make_sink(
        StreamConfig(class_name="FancyStdoutStream", options={"time_format": "%H:%M"}),
        clock=FakeClock(datetime(2024, 6, 1, 7, 5).timestamp()),
        target=out,
    )
    sink.write_line("db", 7, "stderr", b"x")
    text = out.getvalue().decode()
    assert text.startswith("\x1b[0;3") and text[5] in "1234567"
    assert text.endswith(";40m07:05 db[7] | x\x1b[0m\n")


# ---- custom classes -----------------------------------------------------------------------------
class Recorder:
    """A custom stream with Circus's contract (found by its dotted path)."""

    instances: ClassVar[list[Recorder]] = []

    def __init__(self, **options: str) -> None:
        self.options = options
        self.calls: list[dict[str, Any]] = []
        self.events: list[str] = []
        Recorder.instances.append(self)

    def open(self) -> None:
        self.events.append("open")

    def __call__(self, data: dict[str, Any]) -> None:
        self.calls.append(data)

    def close(self) -> None:
        self.events.append("close")


class Broken:
    def __init__(self, **options: str) -> None:
        self.failures = int(options["failures"])

    def __call__(self, data: dict[str, Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("this stream is broken")


async def test_custom_class_receives_circus_shaped_calls(spawn) -> None:
    Recorder.instances.clear()
    sink = make_sink(
        StreamConfig(class_name=f"{__name__}.Recorder", options={"refresh_time": "0.3", "tag": "x"})
    )
    [recorder] = Recorder.instances
    assert recorder.options == {"refresh_time": "0.3", "tag": "x"}, "kwargs as strings"
    assert recorder.events == ["open"]
    child = spawn(numbered(300), sink)
    await run_to_end(child)
    sink.close()
    assert recorder.events == ["open", "close"]
    assert {(call["pid"], call["name"]) for call in recorder.calls} == {(child.pid, "stdout")}
    assert all(set(call) == {"data", "pid", "name"} for call in recorder.calls)
    assert all(isinstance(call["data"], bytes) for call in recorder.calls)
    assert b"".join(call["data"] for call in recorder.calls) == expected_numbered(300)


def test_a_failing_custom_stream_is_logged_once_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = make_sink(StreamConfig(class_name=f"{__name__}:Broken", options={"failures": "3"}))
    with caplog.at_level(logging.WARNING, logger=OUTPUT):
        for word in (b"a", b"b", b"c", b"d"):
            sink.write_line("w", 1, "stdout", word)
    records = [r for r in caplog.records if r.name == OUTPUT]
    assert [r.levelno for r in records] == [logging.ERROR, logging.WARNING, logging.WARNING]
    assert records[0].exc_info is not None, "the traceback of the first failure"
    assert (
        records[2]
        .getMessage()
        .endswith(
            "resumed; lost 6 bytes (3 lines) while writing failed (RuntimeError: this stream is broken)"
        )
    )


class Exploding:
    def write_line(self, name: str, pid: int, stream: str, line: bytes) -> None:
        raise AssertionError("unused")

    def write_block(self, name: str, pid: int, stream: str, data: bytes) -> None:
        self.blocks = getattr(self, "blocks", 0) + 1
        raise RuntimeError("a bug in a sink")

    def close(self) -> None:
        pass


async def test_a_sink_that_raises_does_not_stop_the_reader(
    spawn, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Exploding()
    with caplog.at_level(logging.ERROR, logger=OUTPUT):
        child = spawn(phased("a\n", "b\n"), sink)
        child.go()
        await async_wait_until(lambda: getattr(sink, "blocks", 0) == 1, what="first block")
        child.go()
        await run_to_end(child)
    assert sink.blocks == 2
    assert len([r for r in caplog.records if r.name == OUTPUT]) == 1, "logged once"


# ---- full disk ----------------------------------------------------------------------------------
class Disk:
    """Shared state of the fake files: while `full`, writes fail with ENOSPC (after taking
    `partial` bytes, as a real write that runs out of space part-way does)."""

    def __init__(self) -> None:
        self.full = False
        self.partial = 0
        self.failed_writes = 0


class FlakyFile:
    def __init__(self, path: str, disk: Disk) -> None:
        self.file: RawFile = open(path, "ab", buffering=0)
        self.disk = disk

    def write(self, data: memoryview, /) -> int | None:
        if self.disk.full:
            if self.disk.partial:
                taken, self.disk.partial = self.disk.partial, 0
                return self.file.write(data[:taken])
            self.disk.failed_writes += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.file.write(data)

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.file.close()


async def test_enospc_drops_counts_logs_and_resumes(
    tmp_path: Path, spawn, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "app.log"
    disk = Disk()
    sink = make_sink(
        StreamConfig(
            class_name="FileStream",
            options={"filename": str(log), "max_bytes": "1M", "backup_count": "2"},
        ),
        opener=lambda path: FlakyFile(path, disk),
    )
    assert isinstance(sink, FileSink)
    lost = "".join(f"lost {i}\n" for i in range(50))
    child = spawn(phased("kept 1\n", "lost 0\n", lost[7:], "kept 2\n", "kept 3\n"), sink)
    with caplog.at_level(logging.INFO, logger=OUTPUT):
        child.go()
        await async_wait_until(lambda: log.read_text() == "kept 1\n", what="phase 0")
        disk.full, disk.partial = True, 4  # the next write gets 4 bytes in, then ENOSPC
        child.go()
        await async_wait_until(lambda: sink.outage.lost_lines == 1, what="the first lost line")
        child.go()
        await async_wait_until(
            lambda: sink.outage.lost_lines == 50, what="the full-disk lines counted as lost"
        )
        assert log.read_text() == "kept 1\n", "the part-written line was taken back"
        disk.full = False
        child.go()
        child.go()
        await run_to_end(child)
    sink.close()
    assert log.read_text() == "kept 1\nkept 2\nkept 3\n"
    assert disk.failed_writes >= 2, "it retried on each later write"
    messages = [r.getMessage() for r in caplog.records if r.name == OUTPUT]
    assert messages == [
        f"cannot write to {log}: No space left on device; "
        "its output is dropped until writing works again",
        f"writing to {log} resumed; lost {len(lost)} bytes (50 lines) while the disk was full",
    ]
    assert (sink.outage.total_lost_bytes, sink.outage.failing) == (len(lost), False)


@pytest.fixture
def small_tmpfs() -> Iterator[Path]:
    """A 64 KiB tmpfs, where this machine lets us mount one (root in most CI containers)."""
    directory = Path(tempfile.mkdtemp(prefix="bigtop-tmpfs-"))
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        directory.rmdir()
        pytest.skip(f"cannot run mount to make a small filesystem: {exc}")
    if result.returncode != 0:
        directory.rmdir()
        pytest.skip(
            f"cannot mount a 64 KiB tmpfs here ({result.stderr.strip() or result.returncode}); "
            "the injected ENOSPC test covers the logic"
        )
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=False, timeout=10)
        with contextlib.suppress(OSError):
            directory.rmdir()


def fill(path: Path) -> None:
    """Write until the filesystem is full."""
    with open(path, "wb", buffering=0) as handle:
        block = b"\0" * 4096
        with contextlib.suppress(OSError):
            while True:
                handle.write(block)
    with open(path, "ab", buffering=0) as handle, contextlib.suppress(OSError):
        while handle.write(b"\0"):
            pass


async def test_a_real_full_filesystem_loses_no_line_after_space_returns(
    small_tmpfs: Path, spawn, caplog: pytest.LogCaptureFixture
) -> None:
    log = small_tmpfs / "app.log"
    sink = make_sink(StreamConfig(class_name="WatchedFileStream", options={"filename": str(log)}))
    assert isinstance(sink, FileSink)
    during = "".join(f"while full {i:04d}\n" for i in range(300))
    after = "".join(f"after {i:04d}\n" for i in range(300))
    child = spawn(phased("before\n", during, after), sink)
    with caplog.at_level(logging.WARNING, logger=OUTPUT):
        child.go()
        await async_wait_until(lambda: log.read_text() == "before\n", what="phase 0")
        fill(small_tmpfs / "filler")
        child.go()
        await async_wait_until(lambda: sink.outage.failing, what="the write to fail")
        await async_wait_until(
            lambda: child.reader.bytes_read == len("before\n") + len(during), what="phase 1 read"
        )
        (small_tmpfs / "filler").unlink()
        child.go()
        await run_to_end(child)
    sink.close()
    content = log.read_text()
    assert content.startswith("before\n") and content.endswith(after)
    assert all(line.startswith(("before", "while full", "after")) for line in content.splitlines())
    assert content.count("\n") == len(content.splitlines()), "whole lines only"
    lines = len(content.splitlines())
    assert sink.outage.total_lost_lines == 1 + 300 + 300 - lines
    messages = [r.getMessage() for r in caplog.records if r.name == OUTPUT]
    assert len(messages) == 2
    assert messages[0] == (
        f"cannot write to {log}: No space left on device; "
        "its output is dropped until writing works again"
    )
    assert messages[1].endswith("lines) while the disk was full")


class CountingFile:
    """A real appending file that counts the writes that reach it."""

    writes = 0

    def __init__(self, path: str) -> None:
        self.file: RawFile = open(path, "ab", buffering=0)

    def write(self, data: memoryview, /) -> int | None:
        CountingFile.writes += 1
        return self.file.write(data)

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.file.close()


def test_a_full_disk_is_not_written_to_until_it_reports_room(small_tmpfs: Path) -> None:
    """Every write into a full disk can leave part of a line in the file for a moment (the
    slack of the file's last block takes it) until it is taken back; a reader tailing the
    file would see it. So while the filesystem reports no room, nothing is tried."""
    path = small_tmpfs / "app.log"
    target = LogFile(str(path), CountingFile)
    assert target.write(b"before\n")
    fill(small_tmpfs / "filler")
    line = b"a line that does not fit in the slack of the last block, surely not\n" * 64
    assert not target.write(line) and target.outage.failing
    tried = CountingFile.writes
    for _ in range(100):
        assert not target.write(line)
    assert CountingFile.writes == tried, "a full disk was written to again"
    assert path.read_bytes() == b"before\n"
    assert target.outage.lost_lines == 101 * 64
    (small_tmpfs / "filler").unlink()
    assert target.write(b"after\n") and not target.outage.failing
    assert path.read_bytes() == b"before\nafter\n"
    target.close()


def test_stdout_write_errors_are_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Full(io.BytesIO):
        fail = True

        def write(self, data: Any, /) -> int:
            if self.fail:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    out = Full()
    sink = make_sink(StreamConfig(class_name="StdoutStream"), target=out)
    with caplog.at_level(logging.WARNING, logger=OUTPUT):
        sink.write_line("w", 1, "stdout", b"lost")
        sink.write_line("w", 1, "stdout", b"lost too")
        out.fail = False
        sink.write_line("w", 1, "stdout", b"kept")
    assert out.getvalue() == b"kept\n"
    assert [r.getMessage() for r in caplog.records][-1] == (
        "writing to the daemon's stdout resumed; lost 14 bytes (2 lines) while the disk was full"
    )


# ---- configuration errors -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("class_name", "options", "message"),
    [
        ("FileStream", {"max_bytes": "lots"}, "FileStream option max_bytes: expected a size"),
        ("FileStream", {"backup_count": "-1"}, "backup_count: expected a non-negative integer"),
        ("FileStream", {"format": "xml"}, "format: expected text or json (got 'xml')"),
        ("TimedRotatingFileStream", {}, "TimedRotatingFileStream needs rotate_when"),
        ("TimedRotatingFileStream", {"rotate_when": "W7"}, "rotate_when must be one of"),
        (
            "TimedRotatingFileStream",
            {"rotate_when": "H", "rotate_interval": "0"},
            "rotate_interval: expected a positive integer",
        ),
        (
            "TimedRotatingFileStream",
            {"rotate_when": "H", "utc": "maybe"},
            "utc: expected a boolean",
        ),
        ("QueueStreamz", {}, "unknown stream class 'QueueStreamz'"),
    ],
)
def test_bad_stream_options_say_what_is_wrong(
    tmp_path: Path, class_name: str, options: dict[str, str], message: str
) -> None:
    options = {"filename": str(tmp_path / "x.log"), **options}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_sink(StreamConfig(class_name=class_name, options=options))


def test_a_file_stream_without_filename_writes_to_a_temp_file() -> None:
    sink = make_sink(StreamConfig(class_name="FileStream"))
    assert isinstance(sink, FileSink)
    try:
        sink.write_line("w", 1, "stdout", b"somewhere")
        assert Path(sink.filename).read_bytes() == b"somewhere\n"
    finally:
        sink.close()
        os.unlink(sink.filename)
