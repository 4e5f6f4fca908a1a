"""Capturing children's stdout/stderr: pipes read in large chunks, cut into whole lines,
handed to a sink per watcher stream (`stdout_stream.*` / `stderr_stream.*`).

The pieces, from the child outwards:

- `PipeReader` reads a child's pipe without blocking the loop (256 KiB at a time) and hands
  the sink *blocks*: one or more whole lines, each ending in a newline. Only what follows
  the last newline waits for the next read, so a line is never split and two processes
  sharing a sink never interleave inside a line.
- A formatter turns a block into the bytes to write: unchanged (the child's exact bytes),
  each line prefixed with `"<time> [<pid>] | "` (`time_format`), JSON lines
  (`format = json`), or coloured for the terminal (FancyStdoutStream).
- `LogFile` is the thin I/O: one file opened for appending, written block by block with
  unbuffered writes; it reopens the path when logrotate moved or deleted it, and survives
  write errors (ENOSPC...) by dropping and counting what could not be written, retrying
  on the next write (on a full disk, once the filesystem reports room), and saying so in
  the daemon's log when it starts and when it ends.
- The sinks (`FileSink`, `TimedFileSink`, `StdoutSink`, `FancySink`, `CallableSink`) put
  those together; when a file rotates is decided by the pure `bigtop.core.rotation`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, BinaryIO, Protocol

import msgspec

from bigtop.config.coerce import CoercionError, to_bool, to_int, to_size
from bigtop.config.model import StreamConfig
from bigtop.core.rotation import (
    OffsetAt,
    TimeRule,
    advance,
    backup_suffix,
    bytes_for_current_file,
    next_rollover,
    parse_rotate_when,
    size_backup_renames,
    size_rotation_enabled,
    timed_backups_to_delete,
    utc_offset,
)

log = logging.getLogger("bigtop.output")

READ_SIZE = 256 * 1024
MAX_LINE = 1024 * 1024  # a longer line without a newline is cut here (memory stays bounded)
READS_PER_WAKEUP = 4
DRAIN_READS = 64  # at most 16 MiB read after a process exits (its children may keep writing)
# While a disk is full, a write is only tried when the filesystem reports room for it (a write
# that runs out part-way leaves half a line in the file until it is taken back), and at
# least this often, should a filesystem report its free space wrongly.
FULL_DISK_BLIND_RETRY = 5.0
COLOURS = {"red": 1, "green": 2, "yellow": 3, "blue": 4, "magenta": 5, "cyan": 6, "white": 7}
FANCY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
BUILTIN_CLASSES = (
    "FileStream",
    "WatchedFileStream",
    "TimedRotatingFileStream",
    "StdoutStream",
    "FancyStdoutStream",
    "ProcfileStream",
)

Clock = Callable[[], float]


class Sink(Protocol):
    """Where one stream (stdout or stderr) of a watcher's processes goes."""

    def write_line(self, name: str, pid: int, stream: str, line: bytes) -> None:
        """One line, without its newline."""

    def write_block(self, name: str, pid: int, stream: str, data: bytes) -> None:
        """Whole lines, each ending in a newline."""

    def close(self) -> None: ...


class RawFile(Protocol):
    """What `LogFile` needs of an open file (an unbuffered `FileIO`, or a test's fake)."""

    def write(self, data: memoryview, /) -> int | None: ...

    def fileno(self) -> int: ...

    def close(self) -> None: ...


Opener = Callable[[str], RawFile]


def open_append(path: str) -> RawFile:
    return open(path, "ab", buffering=0)


def local_offset(t: float) -> float:
    """Seconds east of UTC on this machine's clock at epoch time `t`."""
    return float(time.localtime(t).tm_gmtoff)


# ---- formatting -----------------------------------------------------------------------------
class Formatter(Protocol):
    def __call__(self, name: str, pid: int, stream: str, data: bytes, now: float) -> bytes: ...


def _strftime(time_format: str, now: float) -> str:
    return datetime.fromtimestamp(now).strftime(time_format)


def raw_format(name: str, pid: int, stream: str, data: bytes, now: float) -> bytes:
    """The child's bytes, unchanged."""
    return data


class PrefixFormat:
    """Circus's `time_format`: every line starts with `"<time> [<pid>] | "`."""

    def __init__(self, time_format: str) -> None:
        _strftime(time_format, 0.0)  # a bad format fails when the stream is opened
        self.time_format = time_format

    def __call__(self, name: str, pid: int, stream: str, data: bytes, now: float) -> bytes:
        prefix = f"{_strftime(self.time_format, now)} [{pid}] | ".encode()
        return prefix + data[:-1].replace(b"\n", b"\n" + prefix) + b"\n"


class JsonFormat:
    """bigtop's JSON lines: {"time", "watcher", "pid", "stream", "line"} per line."""

    def __init__(self) -> None:
        self.encoder = msgspec.json.Encoder()

    def __call__(self, name: str, pid: int, stream: str, data: bytes, now: float) -> bytes:
        out = bytearray()
        for line in data[:-1].split(b"\n"):
            record = {
                "time": now,
                "watcher": name,
                "pid": pid,
                "stream": stream,
                "line": line.decode("utf-8", "replace"),
            }
            self.encoder.encode_into(record, out, -1)
            out += b"\n"
        return bytes(out)


class FancyFormat:
    """FancyStdoutStream: `ESC[0;3<n>;40m` + `"<time> <name>[<pid>] | "` + line + `ESC[0m`."""

    def __init__(self, color: str | None, time_format: str = FANCY_TIME_FORMAT) -> None:
        number = COLOURS.get((color or "").strip().lower()) or random.randint(1, 7)
        _strftime(time_format, 0.0)
        self.start = f"\x1b[0;3{number};40m".encode()
        self.time_format = time_format

    def __call__(self, name: str, pid: int, stream: str, data: bytes, now: float) -> bytes:
        head = self.start + f"{_strftime(self.time_format, now)} {name}[{pid}] | ".encode()
        end = b"\x1b[0m\n"
        return head + data[:-1].replace(b"\n", end + head) + end


class ProcfileFormat:
    """ProcfileStream (a Procfile run): honcho's and foreman's `HH:MM:SS web.1   | line`, the
    name padded to `width`; the prefix coloured per process type when `colour` is given."""

    def __init__(self, width: int, colour: str | None) -> None:
        number = COLOURS.get((colour or "").strip().lower())
        self.width = width
        self.start, self.end = (f"\x1b[3{number}m".encode(), b"\x1b[0m") if number else (b"", b"")

    def __call__(self, name: str, pid: int, stream: str, data: bytes, now: float) -> bytes:
        head = self.start + f"{_strftime('%H:%M:%S', now)} {name:<{self.width}} |".encode()
        head += self.end + b" "
        return head + data[:-1].replace(b"\n", b"\n" + head) + b"\n"


def make_formatter(time_format: str | None, json: bool) -> Formatter:
    if json:
        return JsonFormat()
    if time_format:
        return PrefixFormat(time_format)
    return raw_format


# ---- write errors ---------------------------------------------------------------------------
class Outage:
    """Write failures of one target: logged once when they start and once when writing works
    again, with what was lost in between; the totals stay readable for stats and tests."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.error: BaseException | None = None
        self.lost_bytes = 0  # in the current outage
        self.lost_lines = 0
        self.total_lost_bytes = 0  # since the sink was opened
        self.total_lost_lines = 0

    @property
    def failing(self) -> bool:
        return self.error is not None

    def failed(self, error: BaseException, data: bytes) -> None:
        if self.error is None:
            self.error = error
            log.warning(
                "cannot write to %s: %s; its output is dropped until writing works again",
                self.what,
                _describe(error),
            )
        lines = data.count(b"\n")
        self.lost_bytes += len(data)
        self.lost_lines += lines
        self.total_lost_bytes += len(data)
        self.total_lost_lines += lines

    def succeeded(self) -> None:
        if self.error is None:
            return
        log.warning(
            "writing to %s resumed; lost %d bytes (%d lines) while %s",
            self.what,
            self.lost_bytes,
            self.lost_lines,
            _while(self.error),
        )
        self.error = None
        self.lost_bytes = self.lost_lines = 0


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{type(error).__name__}: {error}"


def _while(error: BaseException) -> str:
    code = getattr(error, "errno", None)
    if code == errno.ENOSPC:
        return "the disk was full"
    if code == errno.EDQUOT:
        return "the disk quota was exceeded"
    return f"writing failed ({_describe(error)})"


# ---- files ----------------------------------------------------------------------------------
class LogFile:
    """One file written block by block, reopened when it was moved away, never raising
    on a write: what cannot be written is counted in `outage`, and the next write retries
    (reopening the path)."""

    def __init__(self, path: str, opener: Opener = open_append, *, watch: bool = True) -> None:
        self.path = path
        self.opener = opener
        self.watch = watch
        self.handle: RawFile | None = None
        self.size = 0
        self.identity: tuple[int, int] | None = None
        self.outage = Outage(path)
        self.last_attempt = 0.0  # time.monotonic() of the last write tried during an outage
        try:
            self.open()
        except OSError as exc:
            # An unwritable directory or a full disk costs only this stream: the process
            # runs, this is reported now, and `prepare` tries the path again before each batch.
            self.outage.failed(exc, b"")

    def open(self) -> None:
        handle = self.opener(self.path)
        try:
            stat = os.fstat(handle.fileno())
        except OSError:
            handle.close()
            raise
        self.handle, self.size, self.identity = handle, stat.st_size, (stat.st_dev, stat.st_ino)

    def close(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()

    def moved(self) -> bool:
        """True when the path no longer names the open file (moved, deleted, replaced).
        While it still does, the size is refreshed (copytruncate, other writers)."""
        if self.handle is None:
            return False
        try:
            stat = os.stat(self.path)
        except OSError:
            return True
        if (stat.st_dev, stat.st_ino) != self.identity:
            return True
        self.size = stat.st_size
        return False

    def prepare(self) -> None:
        """Before a batch: follow logrotate, reopen after a failure (errors are left to
        `write`, which counts what it could not write)."""
        if self.watch and self.moved():
            log.info("%s was moved or deleted; reopening it", self.path)
            self.close()
        if self.handle is None:
            with contextlib.suppress(OSError):
                self.open()

    def write(self, data: bytes) -> bool:
        if not data:
            return True
        if self.outage.failing and not self._worth_trying(len(data)):
            assert self.outage.error is not None
            self.outage.failed(self.outage.error, data)
            return False
        try:
            if self.handle is None:
                self.open()
            assert self.handle is not None
            self._write_all(self.handle, data)
        except OSError as exc:
            self.close()
            self.outage.failed(exc, data)
            self.last_attempt = time.monotonic()
            return False
        self.size += len(data)
        self.outage.succeeded()
        return True

    def _worth_trying(self, size: int) -> bool:
        """During an outage: False while the disk is known to be full and still reports
        no room for `size` bytes, so that no half-written line ever shows in the file."""
        if getattr(self.outage.error, "errno", None) != errno.ENOSPC:
            return True
        now = time.monotonic()
        if now - self.last_attempt >= FULL_DISK_BLIND_RETRY or self._room_for(size):
            self.last_attempt = now
            return True
        return False

    def _room_for(self, size: int) -> bool:
        try:
            fs = os.statvfs(os.path.dirname(self.path) or ".")
        except OSError:
            return True  # let the write tell
        if fs.f_blocks == 0:
            return True  # a filesystem that reports no sizes at all
        free = fs.f_bfree if os.geteuid() == 0 else fs.f_bavail
        return free * fs.f_frsize >= size + fs.f_frsize  # a block spare for the partial one

    @staticmethod
    def _write_all(handle: RawFile, data: bytes) -> None:
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                written = handle.write(view[done:])
                if not written:
                    raise OSError(errno.EIO, "the file accepted no bytes")
                done += written
        except OSError:
            if done:  # take back the part of the block that made it: whole lines only
                with contextlib.suppress(OSError):
                    fd = handle.fileno()
                    os.ftruncate(fd, max(0, os.fstat(fd).st_size - done))
            raise


def _temp_log() -> str:
    """Circus writes to a temporary file when no filename is given."""
    import tempfile

    handle, filename = tempfile.mkstemp(prefix="bigtop-", suffix=".log")
    os.close(handle)
    return filename


class FileSink:
    """FileStream (and WatchedFileStream, which never rotates): append, optional size
    rotation f -> f.1 ... f.N before a line that would take the file past `max_bytes`.
    Every file sink reopens its path when logrotate moved or deleted it."""

    def __init__(
        self,
        filename: str | None = None,
        max_bytes: int = 0,
        backup_count: int = 0,
        time_format: str | None = None,
        *,
        json: bool = False,
        clock: Clock = time.time,
        opener: Opener = open_append,
        watch: bool = True,
    ) -> None:
        self.filename = filename or _temp_log()
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        self.format = make_formatter(time_format, json)
        self.clock = clock
        self.file = LogFile(self.filename, opener, watch=watch)
        self.rotation_failing = False  # log a failing rename once, not on every block

    @property
    def outage(self) -> Outage:
        return self.file.outage

    def write_line(self, name: str, pid: int, stream: str, line: bytes) -> None:
        self.write_block(name, pid, stream, line + b"\n")

    def write_block(self, name: str, pid: int, stream: str, data: bytes) -> None:
        data = self.format(name, pid, stream, data, self.clock())
        self.file.prepare()
        if not size_rotation_enabled(self.max_bytes, self.backup_count):
            self.file.write(data)
            return
        while data:
            count = bytes_for_current_file(self.file.size, data, self.max_bytes)
            if count == 0 and not self._rotate():
                count = len(data)  # cannot rotate: keep appending rather than drop lines
            if count:
                self.file.write(data[:count])
                data = data[count:]

    def _rotate(self) -> bool:
        self.file.close()
        try:
            for source, target in size_backup_renames(self.filename, self.backup_count):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(source, target)
        except OSError as exc:
            if not self.rotation_failing:
                log.error("cannot rotate %s: %s; writing on to the same file", self.filename, exc)
            self.rotation_failing = True
            self.file.prepare()
            return False
        if self.rotation_failing:
            log.warning("rotating %s works again", self.filename)
        self.rotation_failing = False
        log.debug("rotated %s", self.filename)
        self.file.size = 0
        self.file.prepare()
        return True

    def close(self) -> None:
        self.file.close()


class TimedFileSink:
    """TimedRotatingFileStream: rotate by time (schedule from `bigtop.core.rotation`), the
    backup named with Circus's suffixes, backups beyond `backup_count` deleted."""

    def __init__(
        self,
        filename: str | None,
        rule: TimeRule,
        backup_count: int = 0,
        time_format: str | None = None,
        *,
        utc: bool = False,
        json: bool = False,
        clock: Clock = time.time,
        offset_at: OffsetAt | None = None,
        opener: Opener = open_append,
        watch: bool = True,
    ) -> None:
        self.filename = filename or _temp_log()
        self.rule = rule
        self.backup_count = backup_count
        self.format = make_formatter(time_format, json)
        self.clock = clock
        self.offset_at: OffsetAt = offset_at or (utc_offset if utc else local_offset)
        try:  # as Circus: an existing file's period started when it was last written
            start = os.stat(self.filename).st_mtime
        except OSError:
            start = clock()
        self.file = LogFile(self.filename, opener, watch=watch)
        self.rollover_at = next_rollover(rule, start, self.offset_at)

    @property
    def outage(self) -> Outage:
        return self.file.outage

    def write_line(self, name: str, pid: int, stream: str, line: bytes) -> None:
        self.write_block(name, pid, stream, line + b"\n")

    def write_block(self, name: str, pid: int, stream: str, data: bytes) -> None:
        now = self.clock()
        if now >= self.rollover_at:
            self._rotate(now)
        self.file.prepare()
        self.file.write(self.format(name, pid, stream, data, now))

    def backup_name(self) -> str:
        """Where the current file goes at the next rollover."""
        return f"{self.filename}.{backup_suffix(self.rule, self.rollover_at, self.offset_at)}"

    def _rotate(self, now: float) -> None:
        target = self.backup_name()
        self.file.close()
        try:
            self._move_to(target)
            self._delete_old_backups()
        except OSError as exc:
            log.error("cannot rotate %s: %s", self.filename, exc)
        self.file.size = 0
        self.rollover_at = advance(self.rule, self.rollover_at, now, self.offset_at)
        self.file.prepare()

    def _move_to(self, target: str) -> None:
        try:
            if os.stat(self.filename).st_size == 0:
                return  # nothing to keep: no empty backups
        except FileNotFoundError:
            return
        if not os.path.exists(target):
            os.replace(self.filename, target)
            log.debug("rotated %s -> %s", self.filename, target)
            return
        # The backup exists already (a clock set back, a restart): never overwrite lines.
        with open(self.filename, "rb") as source, open(target, "ab") as sink:
            shutil.copyfileobj(source, sink)
        os.unlink(self.filename)

    def _delete_old_backups(self) -> None:
        directory, basename = os.path.split(os.path.abspath(self.filename))
        for name in timed_backups_to_delete(
            os.listdir(directory), basename, self.rule, self.backup_count
        ):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))

    def close(self) -> None:
        self.file.close()


# ---- terminals ------------------------------------------------------------------------------
class StdoutSink:
    """StdoutStream: lines go to the daemon's stdout (raw, prefixed or JSON)."""

    def __init__(
        self,
        time_format: str | None = None,
        target: BinaryIO | None = None,
        *,
        json: bool = False,
        clock: Clock = time.time,
        formatter: Formatter | None = None,
    ) -> None:
        self.format = formatter or make_formatter(time_format, json)
        self.target = target or sys.stdout.buffer
        self.clock = clock
        self.outage = Outage("the daemon's stdout")

    def write_line(self, name: str, pid: int, stream: str, line: bytes) -> None:
        self.write_block(name, pid, stream, line + b"\n")

    def write_block(self, name: str, pid: int, stream: str, data: bytes) -> None:
        data = self.format(name, pid, stream, data, self.clock())
        try:
            self.target.write(data)
            self.target.flush()
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed
            self.outage.failed(exc, data)
            return
        self.outage.succeeded()

    def close(self) -> None:
        pass


class FancySink(StdoutSink):
    """FancyStdoutStream, plus the watcher name so mixed output stays readable."""

    def __init__(
        self,
        color: str | None = None,
        time_format: str = FANCY_TIME_FORMAT,
        target: BinaryIO | None = None,
        *,
        json: bool = False,
        clock: Clock = time.time,
    ) -> None:
        formatter = JsonFormat() if json else FancyFormat(color, time_format)
        super().__init__(target=target, clock=clock, formatter=formatter)


# ---- custom classes -------------------------------------------------------------------------
class CallableSink:
    """A custom class with Circus's contract: the instance is called with
    {"data": bytes, "pid": pid, "name": "stdout"|"stderr"}; `close()` if it has one.
    Its errors are logged (once per run of failures), never raised into the daemon."""

    def __init__(self, target: Callable[[dict[str, Any]], object]) -> None:
        self.target = target
        self.outage = Outage(f"stream {type(target).__module__}.{type(target).__qualname__}")

    def write_line(self, name: str, pid: int, stream: str, line: bytes) -> None:
        self.write_block(name, pid, stream, line + b"\n")

    def write_block(self, name: str, pid: int, stream: str, data: bytes) -> None:
        try:
            self.target({"data": data, "pid": pid, "name": stream})
        except Exception as exc:
            if not self.outage.failing:
                log.error("%s raised", self.outage.what, exc_info=exc)
            self.outage.failed(exc, data)
            return
        self.outage.succeeded()

    def close(self) -> None:
        close = getattr(self.target, "close", None)
        if callable(close):
            close()


# ---- configuration --------------------------------------------------------------------------
def _builtin_name(class_name: str) -> str | None:
    """`FileStream`, `circus.stream.FileStream`, `circus.stream.file_stream.FileStream`..."""
    if "." not in class_name and ":" not in class_name:
        return class_name
    if class_name.startswith("circus."):
        last = class_name.replace(":", ".").rsplit(".", 1)[-1]
        return last if last in BUILTIN_CLASSES else None
    return None


class _Options:
    def __init__(self, class_name: str, options: dict[str, str]) -> None:
        self.class_name = class_name
        self.options = options

    def _convert(self, key: str, convert: Callable[[str], Any], default: Any) -> Any:
        text = self.options.get(key, "")
        if not text.strip():
            return default
        try:
            return convert(text)
        except CoercionError as exc:
            raise ValueError(
                f"{self.class_name} option {key}: expected {exc.expected} (got {text!r})"
            ) from None

    def text(self, key: str) -> str | None:
        return self.options.get(key) or None

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        return int(self._convert(key, lambda text: to_int(text, minimum), default))

    def size(self, key: str) -> int:
        return int(self._convert(key, to_size, 0))

    def boolean(self, key: str, default: bool = False) -> bool:
        return bool(self._convert(key, to_bool, default))

    def json(self) -> bool:
        word = self.options.get("format", "").strip().lower()
        if word in ("", "text", "plain"):
            return False
        if word == "json":
            return True
        raise ValueError(f"{self.class_name} option format: expected text or json (got {word!r})")


def make_sink(
    config: StreamConfig,
    *,
    clock: Clock = time.time,
    offset_at: OffsetAt | None = None,
    opener: Opener = open_append,
    target: BinaryIO | None = None,
) -> Sink:
    """Build a watcher stream's sink; the keyword arguments are seams for tests.

    Raises ValueError (bad option, unknown class), ImportError/AttributeError (a custom class
    that cannot be found), OSError (a file that cannot be opened) or whatever a custom
    class's constructor or `open()` raises.
    """
    name = _builtin_name(config.class_name)
    if name is None:
        return _custom_sink(config)
    options = _Options(name, dict(config.options))
    time_format = options.text("time_format")
    filename = options.text("filename")
    if name == "StdoutStream":
        return StdoutSink(time_format, target, json=options.json(), clock=clock)
    if name == "FancyStdoutStream":
        return FancySink(
            options.text("color"),
            time_format or FANCY_TIME_FORMAT,
            target,
            json=options.json(),
            clock=clock,
        )
    if name == "ProcfileStream":
        out = target or sys.stdout.buffer
        colour = options.text("color") if _is_terminal(out) else None
        formatter = ProcfileFormat(options.integer("width", 0), colour)
        return StdoutSink(target=out, clock=clock, formatter=formatter)
    if name in ("FileStream", "WatchedFileStream"):
        rotating = name == "FileStream"
        return FileSink(
            filename,
            options.size("max_bytes") if rotating else 0,
            options.integer("backup_count", 0) if rotating else 0,
            time_format,
            json=options.json(),
            clock=clock,
            opener=opener,
        )
    if name == "TimedRotatingFileStream":
        when = options.text("rotate_when")
        if when is None:
            raise ValueError(
                "TimedRotatingFileStream needs rotate_when "
                "(S, M, H, D, MIDNIGHT or W0-W6, W0 is Monday)"
            )
        rule = parse_rotate_when(when, options.integer("rotate_interval", 1, minimum=1))
        return TimedFileSink(
            filename,
            rule,
            options.integer("backup_count", 0),
            time_format,
            utc=options.boolean("utc"),
            json=options.json(),
            clock=clock,
            offset_at=offset_at,
            opener=opener,
        )
    known = ", ".join(BUILTIN_CLASSES)
    raise ValueError(
        f"unknown stream class {config.class_name!r}: use one of {known}, "
        "or a class by its dotted path (package.module.Class)"
    )


def _is_terminal(target: BinaryIO) -> bool:
    try:
        return target.isatty()
    except (OSError, ValueError):
        return False


def _custom_sink(config: StreamConfig) -> Sink:
    module_name, _, attribute = config.class_name.replace(":", ".").rpartition(".")
    cls = getattr(importlib.import_module(module_name), attribute)
    instance = cls(**config.options)
    if not callable(instance):
        raise TypeError(f"stream class {config.class_name!r} makes objects that are not callable")
    opener = getattr(instance, "open", None)
    if callable(opener):
        opener()
    return CallableSink(instance)


# ---- pipes ----------------------------------------------------------------------------------
class PipeReader:
    """Reads one child pipe without blocking the loop and hands the sink whole lines.

    The child's bytes reach the sink unchanged (UTF-8 cut between two reads, or bytes that
    are not text at all); a newline is added only to a last line the child did not end, and
    to a line longer than `MAX_LINE`, which is cut there.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        name: str,
        pid: int,
        stream: str,
        sink: Sink,
    ) -> None:
        self.loop, self.fd, self.name, self.pid, self.stream, self.sink = (
            loop,
            fd,
            name,
            pid,
            stream,
            sink,
        )
        self.partial = b""
        self.bytes_read = 0
        self._sink_failing = False
        self._paused = False
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable)

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def _readable(self) -> None:
        # A few reads per wakeup while the pipe keeps data ready: fewer loop round trips
        # under a flood, and still a bounded turn so other pipes and commands are served.
        for _ in range(READS_PER_WAKEUP):
            if not self._read_once():
                break
            if self._backed_up():
                break

    def _backed_up(self) -> bool:
        """The sink's queue is full: stop reading until it drains. The child's pipe then
        fills and its writes block: it is slowed down, the daemon's memory is not spent."""
        full = getattr(self.sink, "full", None)
        if full is None or not full() or self.fd < 0:
            return False
        self._paused = True
        self.loop.remove_reader(self.fd)
        self.sink.when_drained(self._resume)  # type: ignore[attr-defined]
        return True

    def _resume(self) -> None:
        if self._paused and self.fd >= 0:
            self._paused = False
            self.loop.add_reader(self.fd, self._readable)

    def _read_once(self) -> bool:
        """Read one chunk; False when nothing more can be read right now."""
        try:
            chunk = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self.close()
            return False
        self.bytes_read += len(chunk)
        self._feed(chunk)
        return True

    def _feed(self, chunk: bytes) -> None:
        end = chunk.rfind(b"\n")
        if end < 0:
            self.partial += chunk
            while len(self.partial) >= MAX_LINE:
                block, self.partial = self.partial[:MAX_LINE] + b"\n", self.partial[MAX_LINE:]
                self._emit(block)
            return
        block = chunk[: end + 1]
        if self.partial:
            block = self.partial + block
        self.partial = chunk[end + 1 :]
        self._emit(block)

    def _emit(self, block: bytes) -> None:
        try:
            self.sink.write_block(self.name, self.pid, self.stream, block)
        except Exception:  # the sinks guard themselves; this is the last line of defence
            if not self._sink_failing:
                log.exception(
                    "watcher %r: writing the %s of %d failed", self.name, self.stream, self.pid
                )
            self._sink_failing = True
        else:
            self._sink_failing = False

    def close(self) -> None:
        if self.fd < 0:
            return
        self.loop.remove_reader(self.fd)
        if self.partial:
            block, self.partial = self.partial + b"\n", b""
            self._emit(block)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1

    def drain(self) -> None:
        """Read what is left (the child is gone); bounded, because the child's own
        children may hold the pipe open and keep writing. The caller closes."""
        for _ in range(DRAIN_READS):
            if self.fd < 0 or not self._read_once():
                break
