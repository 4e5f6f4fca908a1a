"""Restart policy: whether a dead process is replaced, how long its slot waits, and when a
watcher is flapping. Pure functions and small records; time is always passed in."""

from __future__ import annotations

import signal
from collections import deque
from dataclasses import dataclass, field

from bigtop.config.model import BackoffConfig, FlappingConfig


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended: an exit code, or the signal that killed it."""

    code: int | None = None
    signal: int | None = None

    def describe(self) -> str:
        if self.signal is not None:
            return f"killed by {_signal_name(self.signal)}"
        return f"exited with code {self.code}"


def _signal_name(number: int) -> str:
    """SIGKILL (9) rather than a bare number: what an operator reads in history and logs."""
    try:
        return f"{signal.Signals(number).name} ({number})"
    except ValueError:
        return f"signal {number}"


def should_respawn(mode: str, status: ExitStatus, success_codes: tuple[int, ...]) -> bool:
    if mode == "never":
        return False
    if mode == "on-failure":
        return status.signal is not None or status.code not in success_codes
    return True


def next_delay(failures: int, backoff: BackoffConfig) -> float:
    """Delay before the next spawn of a slot after `failures` quick deaths in a row.

    The first death is replaced at once; after that the wait doubles from `initial` up to
    `max`. A process that stayed up `reset` seconds resets the count (see `failures_after`).
    """
    if failures <= 1:
        return 0.0
    # Cap the exponent: an int 2**n past ~1024 no longer converts to float (OverflowError
    # after a few hours of a broken command); a float product past range is just inf.
    return float(min(backoff.initial * 2.0 ** min(failures - 2, 1000), backoff.max))


def failures_after(previous: int, uptime: float, backoff: BackoffConfig) -> int:
    return 1 if uptime >= backoff.reset else previous + 1


@dataclass
class FlappingTracker:
    """Circus's Flapping plugin as built-in policy: `attempts` deaths within `window`
    seconds stop the watcher; it is started again after `retry_in`, at most `max_retry`
    times (-1: forever), then left stopped."""

    config: FlappingConfig
    deaths: deque[float] = field(default_factory=deque)
    retries: int = 0

    def record_death(self, now: float) -> bool:
        """Note a death; True when the watcher is now flapping."""
        self.deaths.append(now)
        while self.deaths and now - self.deaths[0] > self.config.window:
            self.deaths.popleft()
        return len(self.deaths) >= self.config.attempts

    def retry_at(self, now: float) -> float | None:
        """When to start again after flapping, or None to give up for good."""
        self.deaths.clear()
        if self.config.max_retry != -1 and self.retries >= self.config.max_retry:
            return None
        self.retries += 1
        return now + self.config.retry_in

    def stable(self) -> None:
        self.retries = 0
