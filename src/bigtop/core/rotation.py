"""Log rotation decisions: when a file rotates, what its backups are called, which backups
go, and where a block of lines is cut so that no line is split across two files.

Pure: the time is passed in (epoch seconds), and so is the local time zone, as a function
`offset_at(t)` giving the seconds east of UTC in effect at `t` (the runtime passes one built
on `time.localtime`; tests pass fixed or stepping offsets). The runtime does the renames.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

OffsetAt = Callable[[float], float]

DAY = 86_400
WEEK = 7 * DAY
_EPOCH = datetime(1970, 1, 1)
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday is 0)

# rotate_when -> (seconds per interval, strftime suffix of the rotated files)
_KINDS: dict[str, tuple[int, str]] = {
    "S": (1, "%Y%m%d%H%M%S"),
    "M": (60, "%Y%m%d%H%M"),
    "H": (3_600, "%Y%m%d%H"),
    "D": (DAY, "%Y%m%d"),
    "MIDNIGHT": (DAY, "%Y%m%d"),
    "W": (WEEK, "%Y%m%d"),
}
_SUFFIX_DIGITS = {"%Y%m%d%H%M%S": 14, "%Y%m%d%H%M": 12, "%Y%m%d%H": 10, "%Y%m%d": 8}
WHEN_WORDS = "S, M, H, D, MIDNIGHT or W0-W6 (W0 is Monday)"


def utc_offset(_t: float) -> float:
    """The offset function for `utc = true`."""
    return 0.0


@dataclass(frozen=True)
class TimeRule:
    """A parsed `rotate_when` / `rotate_interval` pair.

    S, M, H and D rotate every `interval` units counted from the file's start; MIDNIGHT
    rotates at local midnight and W0-W6 at the midnight that ends that weekday (as Python's
    TimedRotatingFileHandler), then every `interval` days or weeks.
    """

    when: str  # S, M, H, D, MIDNIGHT or W
    interval: int = 1
    weekday: int | None = None  # for W: 0 is Monday

    @property
    def seconds(self) -> int:
        return _KINDS[self.when][0] * self.interval

    @property
    def suffix(self) -> str:
        return _KINDS[self.when][1]

    @property
    def calendar(self) -> bool:
        """True when rollovers fall on local midnights rather than every N seconds."""
        return self.when in ("MIDNIGHT", "W")

    def is_backup_suffix(self, text: str) -> bool:
        return len(text) == _SUFFIX_DIGITS[self.suffix] and text.isascii() and text.isdigit()


def parse_rotate_when(when: str, interval: int = 1) -> TimeRule:
    """`rotate_when` is case-insensitive (Circus documents that, though its code is not)."""
    word = when.strip().upper()
    if interval < 1:
        raise ValueError(f"rotate_interval must be a positive integer (got {interval})")
    if word in _KINDS and word != "W":
        return TimeRule(word, interval)
    if len(word) == 2 and word[0] == "W" and word[1] in "0123456":
        return TimeRule("W", interval, int(word[1]))
    raise ValueError(f"rotate_when must be one of {WHEN_WORDS} (got {when!r})")


def _wall(t: float, offset_at: OffsetAt) -> float:
    """Epoch seconds -> seconds since 1970-01-01 00:00 on the local wall clock."""
    return t + offset_at(t)


def _epoch(wall: float, offset_at: OffsetAt) -> float:
    """Local wall-clock seconds -> epoch seconds (the offset is looked up where it applies)."""
    guess = wall - offset_at(wall)
    return wall - offset_at(guess)


def next_rollover(rule: TimeRule, start: float, offset_at: OffsetAt = utc_offset) -> float:
    """The first rollover of a file whose period starts at `start`; always after `start`."""
    if not rule.calendar:
        return start + rule.seconds
    wall = _wall(start, offset_at)
    day = math.floor(wall / DAY)
    days = 1  # MIDNIGHT: the end of today
    if rule.when == "W":
        assert rule.weekday is not None
        # The midnight that ends the next day `weekday` (today counts while it lasts).
        days += (rule.weekday - (day + _EPOCH_WEEKDAY)) % 7
        days += 7 * (rule.interval - 1)
    else:
        days += rule.interval - 1
    result = _epoch((day + days) * DAY, offset_at)
    while result <= start:  # only with pathological offsets; keep the promise
        result += DAY
    return result


def advance(
    rule: TimeRule, rollover_at: float, now: float, offset_at: OffsetAt = utc_offset
) -> float:
    """After rotating at `now` (>= `rollover_at`), the next rollover, always after `now`.

    S/M/H/D keep their grid (rollover_at + k * interval), so that each period keeps a
    distinct suffix even when nothing was written for a while.
    """
    if rule.calendar:
        return next_rollover(rule, now, offset_at)
    periods = math.floor((now - rollover_at) / rule.seconds) + 1
    result = rollover_at + periods * rule.seconds
    while result <= now:
        result += rule.seconds
    return result


def _format_wall(fmt: str, wall: float) -> str:
    return (_EPOCH + timedelta(seconds=math.floor(wall))).strftime(fmt)


def period_start(rule: TimeRule, rollover_at: float, offset_at: OffsetAt = utc_offset) -> float:
    """Local wall-clock seconds at which the period ending at `rollover_at` began."""
    if not rule.calendar:
        return _wall(rollover_at - rule.seconds, offset_at)
    end = round(_wall(rollover_at, offset_at) / DAY) * DAY  # a local midnight
    return float(end - rule.seconds)


def backup_suffix(rule: TimeRule, rollover_at: float, offset_at: OffsetAt = utc_offset) -> str:
    """The suffix (Circus's formats) of the file closed by the rollover at `rollover_at`:
    the start of the period it covered, on the local (or UTC) clock."""
    return _format_wall(rule.suffix, period_start(rule, rollover_at, offset_at))


def timed_backups_to_delete(
    names: Iterable[str], basename: str, rule: TimeRule, backup_count: int
) -> list[str]:
    """Of the names in the log's directory, the oldest backups beyond `backup_count`
    (0 keeps them all). Backups are `basename.<suffix>`; the suffix sorts by time."""
    if backup_count <= 0:
        return []
    prefix = basename + "."
    backups = sorted(
        name
        for name in names
        if name.startswith(prefix) and rule.is_backup_suffix(name[len(prefix) :])
    )
    return backups[: max(0, len(backups) - backup_count)]


# ---- size rotation ---------------------------------------------------------------------------
def size_rotation_enabled(max_bytes: int, backup_count: int) -> bool:
    """Circus: max_bytes 0 never rotates; backup_count 0 keeps appending to the one file."""
    return max_bytes > 0 and backup_count > 0


def bytes_for_current_file(size: int, data: bytes, max_bytes: int) -> int:
    """How many leading bytes of `data` (whole lines, each ending in a newline) go into a
    file that already holds `size` bytes, without it growing past `max_bytes`.

    0 means "rotate first". An empty file always takes at least one whole line, however
    long: a line is never split, so a line longer than `max_bytes` gets a file of its own.
    """
    if size + len(data) <= max_bytes:
        return len(data)
    room = max_bytes - size
    if room > 0:
        cut = data.rfind(b"\n", 0, room)
        if cut >= 0:
            return cut + 1
    if size == 0:
        first = data.find(b"\n")
        return first + 1 if first >= 0 else len(data)
    return 0


def size_backup_renames(filename: str, backup_count: int) -> list[tuple[str, str]]:
    """The renames of one size rotation, in order: f.(N-1) -> f.N ... f.1 -> f.2, f -> f.1.
    The old f.N is replaced, so at most `backup_count` backups exist."""
    renames = [(f"{filename}.{i}", f"{filename}.{i + 1}") for i in range(backup_count - 1, 0, -1)]
    renames.append((filename, f"{filename}.1"))
    return renames


def size_backup_order(filename: str, backup_count: int) -> list[str]:
    """Every file of a size-rotated log, oldest first (the current file last)."""
    return [f"{filename}.{i}" for i in range(backup_count, 0, -1)] + [filename]
