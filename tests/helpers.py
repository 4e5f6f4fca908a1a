"""Shared test helpers: wait for conditions, never for time."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
PYTHON = sys.executable


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = ""
) -> T:
    """Poll `predicate` until it returns something truthy; fail saying what we waited for."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or predicate}; last saw {last!r}"
            )
        time.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.005, what: str = ""
) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or predicate}; last saw {last!r}"
            )
        await asyncio.sleep(interval)


def argv_of(pid: int, timeout: float = 5.0) -> list[bytes]:
    """`pid`'s command line, split; [] once it is gone or a zombie. A process fresh from
    Popen (vfork) can still be inside execve, its new argv not set up: /proc then reads an
    empty command line for a moment, so an empty one is read again until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                raw = handle.read()
        except OSError:
            return []
        if raw or not alive(pid) or time.monotonic() > deadline:
            return raw.split(b"\0")[:-1] if raw.endswith(b"\0") else raw.split(b"\0")
        time.sleep(0.002)


async def wait_for(awaitable: Awaitable[T], timeout: float = 10.0) -> T:
    return await asyncio.wait_for(awaitable, timeout)


def write_ini(directory: Path, text: str, name: str = "circus.ini") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                found.extend(int(p) for p in handle.read().split())
    except FileNotFoundError:
        return []
    return found


def sleeper(tag: str) -> str:
    """A unique long-running command (findable by its arguments)."""
    return f"{PYTHON} -c 'import time; time.sleep(3600)' {tag}"
