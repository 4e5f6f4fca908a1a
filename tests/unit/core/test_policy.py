"""Restart policy: respawn modes, per-slot backoff, flapping detection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bigtop.config.model import BackoffConfig, FlappingConfig
from bigtop.core.policy import (
    ExitStatus,
    FlappingTracker,
    failures_after,
    next_delay,
    should_respawn,
)

BACKOFF = BackoffConfig(initial=0.5, max=30.0, reset=10.0)


# ---- ExitStatus ---------------------------------------------------------------------------
def test_exit_status_describe() -> None:
    assert ExitStatus(code=0).describe() == "exited with code 0"
    assert ExitStatus(code=3).describe() == "exited with code 3"
    assert ExitStatus(signal=9).describe() == "killed by SIGKILL (9)"
    assert ExitStatus(code=1, signal=15).describe() == "killed by SIGTERM (15)"


def test_exit_status_is_frozen_and_comparable() -> None:
    assert ExitStatus(code=2) == ExitStatus(code=2)
    assert ExitStatus(code=2) != ExitStatus(signal=2)
    with pytest.raises(AttributeError):
        ExitStatus(code=2).code = 3  # type: ignore[misc]


# ---- should_respawn -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "status", "codes", "expected"),
    [
        ("always", ExitStatus(code=0), (0,), True),
        ("always", ExitStatus(code=1), (0,), True),
        ("always", ExitStatus(signal=9), (0,), True),
        ("never", ExitStatus(code=0), (0,), False),
        ("never", ExitStatus(code=1), (0,), False),
        ("never", ExitStatus(signal=9), (0,), False),
        ("on-failure", ExitStatus(code=0), (0,), False),
        ("on-failure", ExitStatus(code=1), (0,), True),
        ("on-failure", ExitStatus(code=2), (0, 2), False),
        ("on-failure", ExitStatus(code=0), (2,), True),
        ("on-failure", ExitStatus(code=3), (), True),
        ("on-failure", ExitStatus(signal=15), (0,), True),
        ("on-failure", ExitStatus(signal=15), (0, 15), True),
        ("on-failure", ExitStatus(signal=9), (0, -9, 9), True),
    ],
)
def test_should_respawn(
    mode: str, status: ExitStatus, codes: tuple[int, ...], expected: bool
) -> None:
    assert should_respawn(mode, status, codes) is expected


# ---- next_delay / failures_after ------------------------------------------------------------
def test_first_failure_is_immediate_then_doubling_capped() -> None:
    delays = [next_delay(n, BACKOFF) for n in range(0, 12)]
    assert delays == [0.0, 0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    assert all(isinstance(d, float) for d in delays)


def test_next_delay_with_integer_config_returns_floats() -> None:
    backoff = BackoffConfig(initial=1, max=5, reset=10)
    assert [next_delay(n, backoff) for n in range(1, 6)] == [0.0, 1.0, 2.0, 4.0, 5.0]
    assert type(next_delay(3, backoff)) is float


def test_next_delay_when_initial_exceeds_max() -> None:
    backoff = BackoffConfig(initial=10.0, max=3.0, reset=1.0)
    assert [next_delay(n, backoff) for n in (1, 2, 3)] == [0.0, 3.0, 3.0]


def test_next_delay_zero_initial_never_waits() -> None:
    backoff = BackoffConfig(initial=0.0, max=30.0, reset=1.0)
    assert [next_delay(n, backoff) for n in (1, 2, 10, 5000)] == [0.0, 0.0, 0.0, 0.0]


def test_next_delay_after_thousands_of_failures_stays_at_max() -> None:
    # A slot with a broken command keeps failing for hours: the delay must stay at `max`
    # (2 ** n grows past what a float holds after ~1024 failures).
    assert next_delay(1026, BACKOFF) == 30.0
    assert next_delay(10**6, BACKOFF) == 30.0


@given(
    failures=st.integers(min_value=0, max_value=100_000),
    initial=st.floats(min_value=0.0, max_value=1e3, allow_nan=False),
    maximum=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
)
def test_next_delay_bounded_and_monotonic(failures: int, initial: float, maximum: float) -> None:
    backoff = BackoffConfig(initial=initial, max=maximum, reset=1.0)
    delay = next_delay(failures, backoff)
    assert 0.0 <= delay <= max(maximum, 0.0)
    assert next_delay(failures + 1, backoff) >= delay
    if failures <= 1:
        assert delay == 0.0


def test_failures_after() -> None:
    assert failures_after(0, 0.1, BACKOFF) == 1
    assert failures_after(1, 0.1, BACKOFF) == 2
    assert failures_after(7, 9.999, BACKOFF) == 8
    # stayed up `reset` seconds (or more): counted as the first failure of a new series
    assert failures_after(7, 10.0, BACKOFF) == 1
    assert failures_after(7, 3600.0, BACKOFF) == 1
    assert failures_after(0, 10.0, BACKOFF) == 1


def test_quick_deaths_sequence() -> None:
    failures = 0
    delays = []
    for _ in range(10):
        failures = failures_after(failures, 0.2, BACKOFF)
        delays.append(next_delay(failures, BACKOFF))
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    failures = failures_after(failures, 10.0, BACKOFF)
    assert next_delay(failures, BACKOFF) == 0.0


# ---- FlappingTracker --------------------------------------------------------------------------
def test_flapping_needs_attempts_within_window() -> None:
    tracker = FlappingTracker(FlappingConfig(attempts=3, window=10.0, retry_in=5.0, max_retry=2))
    assert tracker.record_death(0.0) is False
    assert tracker.record_death(4.0) is False
    assert tracker.record_death(10.0) is True  # 3 deaths within 10 s (inclusive)
    assert list(tracker.deaths) == [0.0, 4.0, 10.0]


def test_flapping_old_deaths_leave_the_window() -> None:
    tracker = FlappingTracker(FlappingConfig(attempts=3, window=10.0, retry_in=5.0, max_retry=2))
    assert tracker.record_death(0.0) is False
    assert tracker.record_death(4.0) is False
    assert tracker.record_death(10.5) is False  # 0.0 is out of the window
    assert list(tracker.deaths) == [4.0, 10.5]
    assert tracker.record_death(14.0) is True


def test_flapping_retry_then_give_up() -> None:
    tracker = FlappingTracker(FlappingConfig(attempts=1, window=1.0, retry_in=7.0, max_retry=2))
    assert tracker.record_death(100.0) is True
    assert tracker.retry_at(100.0) == 107.0
    assert tracker.retries == 1
    assert list(tracker.deaths) == []
    assert tracker.record_death(108.0) is True
    assert tracker.retry_at(108.0) == 115.0
    assert tracker.retries == 2
    assert tracker.record_death(116.0) is True
    assert tracker.retry_at(116.0) is None
    assert tracker.retries == 2


def test_flapping_zero_max_retry_gives_up_at_once() -> None:
    tracker = FlappingTracker(FlappingConfig(attempts=1, window=1.0, retry_in=7.0, max_retry=0))
    assert tracker.record_death(0.0) is True
    assert tracker.retry_at(0.0) is None


def test_flapping_max_retry_minus_one_retries_forever() -> None:
    tracker = FlappingTracker(FlappingConfig(attempts=1, window=1.0, retry_in=2.0, max_retry=-1))
    for n in range(500):
        assert tracker.record_death(float(n)) is True
        assert tracker.retry_at(float(n)) == n + 2.0
    assert tracker.retries == 500


def test_flapping_stable_resets_retries() -> None:
    tracker = FlappingTracker(FlappingConfig(attempts=1, window=1.0, retry_in=7.0, max_retry=1))
    tracker.record_death(0.0)
    assert tracker.retry_at(0.0) == 7.0
    tracker.record_death(8.0)
    assert tracker.retry_at(8.0) is None
    tracker.stable()
    assert tracker.retries == 0
    tracker.record_death(20.0)
    assert tracker.retry_at(20.0) == 27.0


def test_flapping_defaults_are_circus_ones() -> None:
    config = FlappingConfig()
    assert (config.attempts, config.window, config.retry_in, config.max_retry) == (
        2,
        1.0,
        7.0,
        5,
    )
    tracker = FlappingTracker(config)
    assert tracker.record_death(0.0) is False
    assert tracker.record_death(1.0) is True
