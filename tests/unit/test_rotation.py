"""Rotation decisions, pure: the time schedule (injected clock and time zone), the names of
backups, which backups go, and where a block of lines is cut for size rotation."""

from __future__ import annotations

import logging.handlers
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bigtop.core.rotation import (
    DAY,
    TimeRule,
    advance,
    backup_suffix,
    bytes_for_current_file,
    next_rollover,
    parse_rotate_when,
    size_backup_order,
    size_backup_renames,
    size_rotation_enabled,
    timed_backups_to_delete,
    utc_offset,
)


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def fixed(hours: float) -> Callable[[float], float]:
    """An offset function for a zone `hours` east of UTC, with no daylight saving."""
    return lambda _t: hours * 3600


MONDAY_NOON = utc(2024, 2, 5, 12)  # 2024-02-05 was a Monday


# ---- parse_rotate_when -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("S", TimeRule("S")),
        ("s", TimeRule("S")),
        ("m", TimeRule("M")),
        ("H", TimeRule("H")),
        ("d", TimeRule("D")),
        ("MIDNIGHT", TimeRule("MIDNIGHT")),
        ("midnight", TimeRule("MIDNIGHT")),  # Circus raises here although its docs allow it
        (" Midnight ", TimeRule("MIDNIGHT")),
        ("W0", TimeRule("W", weekday=0)),
        ("w6", TimeRule("W", weekday=6)),
    ],
)
def test_rotate_when_is_case_insensitive(text: str, rule: TimeRule) -> None:
    assert parse_rotate_when(text) == rule


@pytest.mark.parametrize("text", ["", "X", "W", "W7", "W-1", "W01", "SS", "midnight2", "Ｓ"])
def test_bad_rotate_when_says_what_is_allowed(text: str) -> None:
    with pytest.raises(
        ValueError, match=r"rotate_when must be one of S, M, H, D, MIDNIGHT or W0-W6"
    ):
        parse_rotate_when(text)


@pytest.mark.parametrize("interval", [0, -1])
def test_rotate_interval_must_be_positive(interval: int) -> None:
    with pytest.raises(ValueError, match="rotate_interval must be a positive integer"):
        parse_rotate_when("H", interval)


@pytest.mark.parametrize(
    ("text", "interval", "seconds", "suffix"),
    [
        ("S", 1, 1, "%Y%m%d%H%M%S"),
        ("S", 30, 30, "%Y%m%d%H%M%S"),
        ("M", 5, 300, "%Y%m%d%H%M"),
        ("H", 2, 7200, "%Y%m%d%H"),
        ("D", 1, DAY, "%Y%m%d"),
        ("MIDNIGHT", 3, 3 * DAY, "%Y%m%d"),
        ("W4", 2, 14 * DAY, "%Y%m%d"),
    ],
)
def test_rule_periods_and_circus_suffixes(
    text: str, interval: int, seconds: int, suffix: str
) -> None:
    rule = parse_rotate_when(text, interval)
    assert (rule.seconds, rule.suffix) == (seconds, suffix)


# ---- next_rollover ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("when", "interval", "start", "expected"),
    [
        ("S", 1, 1000.5, 1001.5),
        ("S", 5, 1000.0, 1005.0),
        ("M", 1, MONDAY_NOON, MONDAY_NOON + 60),
        ("H", 3, MONDAY_NOON, MONDAY_NOON + 3 * 3600),
        ("D", 1, MONDAY_NOON + 0.25, MONDAY_NOON + DAY + 0.25),  # D counts from the start
        ("MIDNIGHT", 1, MONDAY_NOON, utc(2024, 2, 6)),
        ("MIDNIGHT", 1, utc(2024, 2, 5), utc(2024, 2, 6)),  # exactly midnight: the next one
        ("MIDNIGHT", 1, utc(2024, 2, 5, 23, 59, 59), utc(2024, 2, 6)),
        ("MIDNIGHT", 2, MONDAY_NOON, utc(2024, 2, 7)),  # bigtop honours rotate_interval
        ("W0", 1, MONDAY_NOON, utc(2024, 2, 6)),  # the midnight that ends Monday
        ("W0", 1, utc(2024, 2, 6, 12), utc(2024, 2, 13)),
        ("W0", 1, utc(2024, 2, 11, 23), utc(2024, 2, 13)),  # from Sunday
        ("W3", 1, MONDAY_NOON, utc(2024, 2, 9)),
        ("W3", 1, utc(2024, 2, 8, 1), utc(2024, 2, 9)),  # on Thursday itself
        ("W3", 1, utc(2024, 2, 9, 1), utc(2024, 2, 16)),
        ("W6", 2, MONDAY_NOON, utc(2024, 2, 19)),
    ],
)
def test_next_rollover_in_utc(when: str, interval: int, start: float, expected: float) -> None:
    assert next_rollover(parse_rotate_when(when, interval), start) == expected


def test_midnight_is_local_midnight_with_the_offset_passed_in() -> None:
    rule = parse_rotate_when("midnight")
    # 23:30 UTC is 01:30 the next day at UTC+2; its midnight is 22:00 UTC that day.
    assert next_rollover(rule, utc(2024, 2, 5, 23, 30), fixed(2)) == utc(2024, 2, 6, 22)
    # At UTC-5, 03:00 UTC is still the previous evening; midnight is 05:00 UTC.
    assert next_rollover(rule, utc(2024, 2, 5, 3), fixed(-5)) == utc(2024, 2, 5, 5)


def test_midnight_after_a_daylight_saving_change() -> None:
    """Europe-like spring forward at 2024-03-31 01:00 UTC (+1h -> +2h): the midnight that
    follows is at 22:00 UTC, not 23:00."""
    switch = utc(2024, 3, 31, 1)

    def offset_at(t: float) -> float:
        return 7200.0 if t >= switch else 3600.0

    rule = parse_rotate_when("MIDNIGHT")
    assert next_rollover(rule, utc(2024, 3, 30, 12), offset_at) == utc(2024, 3, 30, 23)
    assert next_rollover(rule, utc(2024, 3, 30, 23), offset_at) == utc(2024, 3, 31, 22)
    assert backup_suffix(rule, utc(2024, 3, 31, 22), offset_at) == "20240331"


@pytest.fixture(scope="module")
def stdlib_handlers() -> Iterator[dict[str, logging.handlers.TimedRotatingFileHandler]]:
    """Python's TimedRotatingFileHandler, as the oracle for where midnights and weekdays fall."""
    with tempfile.TemporaryDirectory() as directory:
        handlers = {
            when: logging.handlers.TimedRotatingFileHandler(
                os.path.join(directory, f"{when}.log"), when=when, utc=True, delay=True
            )
            for when in ["MIDNIGHT", *(f"W{day}" for day in range(7))]
        }
        yield handlers
        for handler in handlers.values():
            handler.close()


@given(
    when=st.sampled_from(["MIDNIGHT", *(f"W{day}" for day in range(7))]),
    start=st.integers(min_value=0, max_value=4_000_000_000),
)
def test_calendar_rollovers_agree_with_the_stdlib(
    stdlib_handlers: dict[str, logging.handlers.TimedRotatingFileHandler], when: str, start: int
) -> None:
    expected = stdlib_handlers[when].computeRollover(start)
    assert next_rollover(parse_rotate_when(when), start) == expected


RULES = st.builds(
    parse_rotate_when,
    st.sampled_from(["S", "M", "H", "D", "MIDNIGHT", *(f"W{day}" for day in range(7))]),
    st.integers(min_value=1, max_value=30),
)
OFFSETS = st.integers(min_value=-12 * 4, max_value=14 * 4).map(lambda q: q * 900.0)
TIMES = st.floats(min_value=0, max_value=4e9, allow_nan=False)


@given(rule=RULES, start=TIMES, offset=OFFSETS)
def test_next_rollover_is_later_and_on_the_right_boundary(
    rule: TimeRule, start: float, offset: float
) -> None:
    result = next_rollover(rule, start, lambda _t: offset)
    assert result > start
    assert result - start <= rule.seconds + 1e-6
    if rule.calendar:
        wall = result + offset
        assert wall % DAY == 0, "a local midnight"
        if rule.weekday is not None:
            ended = datetime(1970, 1, 1) + timedelta(seconds=wall - DAY)
            assert ended.weekday() == rule.weekday, "the midnight that ends that weekday"


@given(rule=RULES, start=TIMES, later=st.floats(min_value=0, max_value=1e7), offset=OFFSETS)
def test_advance_is_later_than_now_and_keeps_the_grid(
    rule: TimeRule, start: float, later: float, offset: float
) -> None:
    offset_at = fixed(offset / 3600)
    rollover_at = next_rollover(rule, start, offset_at)
    now = rollover_at + later
    result = advance(rule, rollover_at, now, offset_at)
    assert now < result <= now + rule.seconds + 1e-6
    if not rule.calendar:
        periods = (result - rollover_at) / rule.seconds
        assert abs(periods - round(periods)) < 1e-6
    else:
        assert (result + offset) % DAY == 0


@pytest.mark.parametrize(
    ("when", "rollover_at", "now", "expected"),
    [
        ("S", 100.0, 100.0, 101.0),
        ("S", 100.0, 103.5, 104.0),  # idle for a while: the next slot of the same grid
        ("H", 3600.0, 3600.0 * 5 + 1, 3600.0 * 6),
        ("MIDNIGHT", utc(2024, 2, 6), utc(2024, 2, 8, 13), utc(2024, 2, 9)),
    ],
)
def test_advance_table(when: str, rollover_at: float, now: float, expected: float) -> None:
    assert advance(parse_rotate_when(when), rollover_at, now) == expected


# ---- backup names -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("when", "interval", "rollover_at", "offset", "suffix"),
    [
        ("S", 1, utc(2024, 2, 5, 15, 4, 6), 0, "20240205150405"),
        ("M", 1, utc(2024, 2, 5, 15, 4, 6), 0, "202402051503"),
        ("H", 1, utc(2024, 2, 5, 15), 0, "2024020514"),
        ("H", 2, utc(2024, 2, 5, 15), 0, "2024020513"),
        ("H", 1, utc(2024, 2, 5, 15), 2, "2024020516"),  # local time, UTC+2
        ("D", 1, utc(2024, 2, 6, 12), 0, "20240205"),
        ("MIDNIGHT", 1, utc(2024, 2, 6), 0, "20240205"),
        ("MIDNIGHT", 1, utc(2024, 2, 5, 22), 2, "20240205"),  # local midnight at UTC+2
        ("W0", 1, utc(2024, 2, 6), 0, "20240130"),  # the week that began on that Tuesday
    ],
)
def test_backup_suffix_is_the_start_of_the_period(
    when: str, interval: int, rollover_at: float, offset: float, suffix: str
) -> None:
    rule = parse_rotate_when(when, interval)
    assert backup_suffix(rule, rollover_at, fixed(offset)) == suffix


def test_utc_offset_is_zero() -> None:
    assert utc_offset(123456.0) == 0.0


@pytest.mark.parametrize(
    ("when", "names", "keep", "delete"),
    [
        (
            "D",
            ["app.log", "app.log.20240103", "app.log.20240101", "app.log.20240102"],
            2,
            ["app.log.20240101"],
        ),
        ("D", ["app.log.20240101", "app.log.20240102"], 2, []),
        ("D", ["app.log.20240101", "app.log.20240102"], 0, []),  # 0 keeps every backup
        (
            "D",  # other logs, numbered backups and other suffix lengths are not ours
            [
                "app.log.1",
                "app.log.2024010112",
                "other.log.20240101",
                "app.log.2024011x",
                "app.log.20240105",
                "app.log.20240104",
            ],
            1,
            ["app.log.20240104"],
        ),
        (
            "H",
            ["app.log.2024010100", "app.log.2024010123", "app.log.2024010201", "app.log.20240101"],
            1,
            ["app.log.2024010100", "app.log.2024010123"],
        ),
        (
            "S",
            [f"app.log.202401010000{s:02d}" for s in range(5)],
            3,
            [
                "app.log.20240101000000",
                "app.log.20240101000001",
            ],
        ),
    ],
)
def test_timed_backups_beyond_backup_count_are_deleted_oldest_first(
    when: str, names: list[str], keep: int, delete: list[str]
) -> None:
    assert timed_backups_to_delete(names, "app.log", parse_rotate_when(when), keep) == delete


# ---- size rotation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("max_bytes", "backup_count", "enabled"),
    [(0, 0, False), (0, 5, False), (100, 0, False), (100, 1, True), (1, 9, True)],
)
def test_size_rotation_needs_max_bytes_and_backups(
    max_bytes: int, backup_count: int, enabled: bool
) -> None:
    assert size_rotation_enabled(max_bytes, backup_count) is enabled


@pytest.mark.parametrize(
    ("size", "data", "max_bytes", "count"),
    [
        (0, b"abc\n", 10, 4),
        (6, b"abc\n", 10, 4),  # exactly reaches max_bytes: fits
        (7, b"abc\n", 10, 0),  # would cross it: rotate first
        (0, b"aaaa\nbbbb\ncccc\n", 10, 10),  # the lines that fit
        (3, b"aaaa\nbbbb\ncccc\n", 10, 5),
        (6, b"aaaa\nbbbb\n", 10, 0),
        (0, b"a line longer than the limit\nx\n", 10, 29),  # alone in an empty file
        (5, b"a line longer than the limit\n", 10, 0),
        (0, b"no newline", 4, 10),
    ],
)
def test_bytes_for_current_file_table(size: int, data: bytes, max_bytes: int, count: int) -> None:
    assert bytes_for_current_file(size, data, max_bytes) == count


LINES = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=30)


@given(size=st.integers(0, 200), lines=LINES, max_bytes=st.integers(1, 200))
def test_bytes_for_current_file_takes_the_most_whole_lines_that_fit(
    size: int, lines: list[bytes], max_bytes: int
) -> None:
    data = b"".join(lines)
    count = bytes_for_current_file(size, data, max_bytes)
    boundaries = [0]
    for line in lines:
        boundaries.append(boundaries[-1] + len(line))
    assert count in boundaries, "a cut between two lines"
    if size == 0 and data:
        assert count > 0, "an empty file always takes a line"
    if count > len(lines[0] if lines else b""):
        assert size + count <= max_bytes, "more than one line only within the limit"
    fitting = [b for b in boundaries if size + b <= max_bytes]
    if fitting:
        assert count >= max(fitting), "as many as fit"


@given(lines=LINES, max_bytes=st.integers(1, 120), backup_count=st.integers(1, 50))
def test_simulated_size_rotation_loses_and_splits_nothing(
    lines: list[bytes], max_bytes: int, backup_count: int
) -> None:
    """Drive the decisions the way FileSink does, over an in-memory 'directory'."""
    files: dict[str, bytes] = {"f": b""}
    for line in lines:  # one block per line, then again as one block
        data = line
        while data:
            count = bytes_for_current_file(len(files["f"]), data, max_bytes)
            if count == 0:
                for source, target in size_backup_renames("f", backup_count):
                    if source in files:
                        files[target] = files.pop(source)
                files["f"] = b""
                continue
            files["f"] += data[:count]
            data = data[count:]
    kept = [files[name] for name in size_backup_order("f", backup_count) if name in files]
    everything = b"".join(lines)
    assert everything.endswith(b"".join(kept)), "the newest lines, in order, none lost"
    for content in kept:
        assert not content or content.endswith(b"\n"), "no line split across files"
        assert len(content) <= max_bytes or content.count(b"\n") == 1
    if len(files) <= backup_count:  # nothing rotated out yet: everything is there
        assert b"".join(kept) == everything
    assert set(files) <= {"f", *(f"f.{i}" for i in range(1, backup_count + 1))}


def test_size_backup_renames_shift_every_backup() -> None:
    assert size_backup_renames("/l/app.log", 3) == [
        ("/l/app.log.2", "/l/app.log.3"),
        ("/l/app.log.1", "/l/app.log.2"),
        ("/l/app.log", "/l/app.log.1"),
    ]
    assert size_backup_renames("a", 1) == [("a", "a.1")]
    assert size_backup_order("a", 2) == ["a.2", "a.1", "a"]
