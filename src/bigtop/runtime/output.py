"""Capturing children's stdout/stderr: pipes read in large chunks, cut into whole lines,
handed to a sink per watcher stream (`stdout_stream.*` / `stderr_stream.*`).

This is the first cut: the terminal streams and a plain file with size rotation. Time
rotation, logrotate-aware reopening and bounded buffering are built on it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

from bigtop.config.model import StreamConfig

READ_SIZE = 256 * 1024
COLOURS = {"red": 1, "green": 2, "yellow": 3, "blue": 4, "magenta": 5, "cyan": 6, "white": 7}


class Sink(Protocol):
    def write_line(self, name: str, pid: int, stream: str, line: bytes) -> None: ...

    def close(self) -> None: ...


def _prefix(time_format: str | None, name: str, pid: int) -> bytes:
    if not time_format:
        return b""
    return f"{time.strftime(time_format)} [{pid}] | ".encode()


class StdoutSink:
    """Circus's StdoutStream: lines go to the daemon's stdout."""

    def __init__(self, time_format: str | None = None, target: BinaryIO | None = None) -> None:
        self.time_format = time_format
        self.target = target or sys.stdout.buffer

    def write_line(self, name: str, pid: int, stream: str, line: bytes) -> None:
        self.target.write(_prefix(self.time_format, name, pid) + line + b"\n")
        self.target.flush()

    def close(self) -> None:
        pass


class FancySink:
    """Circus's FancyStdoutStream, plus the watcher name so mixed output stays readable."""

    def __init__(
        self,
        color: str | None = None,
        time_format: str = "%Y-%m-%d %H:%M:%S",
        target: BinaryIO | None = None,
    ) -> None:
        number = COLOURS.get((color or "").lower()) or random.randint(1, 7)
        self.start = f"\x1b[0;3{number};40m".encode()
        self.time_format = time_format
        self.target = target or sys.stdout.buffer

    def write_line(self, name: str, pid: int, stream: str, line: bytes) -> None:
        head = f"{time.strftime(self.time_format)} {name}[{pid}] | ".encode()
        self.target.write(self.start + head + line + b"\x1b[0m\n")
        self.target.flush()

    def close(self) -> None:
        pass


class FileSink:
    """Circus's FileStream: append, optional size rotation (f.1 ... f.N)."""

    def __init__(
        self,
        filename: str,
        max_bytes: int = 0,
        backup_count: int = 0,
        time_format: str | None = None,
    ) -> None:
        self.filename = filename
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        self.time_format = time_format
        self.file = open(filename, "ab")

    def write_line(self, name: str, pid: int, stream: str, line: bytes) -> None:
        data = _prefix(self.time_format, name, pid) + line + b"\n"
        if (
            self.max_bytes
            and self.backup_count > 0
            and self.file.tell() + len(data) > self.max_bytes
        ):
            self._rotate()
        self.file.write(data)
        self.file.flush()

    def _rotate(self) -> None:
        """f -> f.1 -> f.2 ... (only with backup_count > 0; otherwise Circus keeps appending)."""
        self.file.close()
        for index in range(self.backup_count - 1, 0, -1):
            source = f"{self.filename}.{index}"
            if os.path.exists(source):
                os.replace(source, f"{self.filename}.{index + 1}")
        os.replace(self.filename, f"{self.filename}.1")
        self.file = open(self.filename, "ab")

    def close(self) -> None:
        self.file.close()


class CallableSink:
    """A custom class with Circus's contract: called with {"data", "pid", "name"}."""

    def __init__(self, target: Callable[[dict[str, Any]], object]) -> None:
        self.target = target

    def write_line(self, name: str, pid: int, stream: str, line: bytes) -> None:
        self.target({"data": line + b"\n", "pid": pid, "name": stream})

    def close(self) -> None:
        close = getattr(self.target, "close", None)
        if callable(close):
            close()


def make_sink(config: StreamConfig) -> Sink:
    options = dict(config.options)
    name = (
        config.class_name.rsplit(".", 1)[-1]
        if config.class_name.startswith("circus.")
        else (config.class_name)
    )
    time_format = options.get("time_format") or None
    if name == "StdoutStream":
        return StdoutSink(time_format)
    if name == "FancyStdoutStream":
        return FancySink(options.get("color"), time_format or "%Y-%m-%d %H:%M:%S")
    if name in ("FileStream", "WatchedFileStream", "TimedRotatingFileStream"):
        filename = options.get("filename")
        if not filename:
            # Circus writes to a temporary file when no filename is given.
            handle, filename = tempfile.mkstemp(prefix="bigtop-", suffix=".log")
            os.close(handle)
        return FileSink(
            filename,
            int(options.get("max_bytes") or 0),
            int(options.get("backup_count") or 0),
            time_format,
        )
    module_name, _, attribute = config.class_name.replace(":", ".").rpartition(".")
    if not module_name:
        raise ValueError(f"unknown stream class {config.class_name!r}")
    cls = getattr(importlib.import_module(module_name), attribute)
    instance = cls(**options)
    opener = getattr(instance, "open", None)
    if callable(opener):
        opener()
    return CallableSink(instance)


class PipeReader:
    """Reads one child pipe without blocking the loop and emits whole lines."""

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
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        self._read_once()

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
        data = self.partial + chunk
        *lines, self.partial = data.split(b"\n")
        for line in lines:
            self.sink.write_line(self.name, self.pid, self.stream, line)
        return True

    def close(self) -> None:
        if self.fd < 0:
            return
        self.loop.remove_reader(self.fd)
        if self.partial:
            self.sink.write_line(self.name, self.pid, self.stream, self.partial)
            self.partial = b""
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1

    def drain(self) -> None:
        """Read what is left (the child is gone) and close."""
        while self.fd >= 0 and self._read_once():
            pass
