"""Turn INI strings into typed values, with Circus's spellings.

Each coercion raises `CoercionError` carrying what was expected, so the loader can say
"[watcher:web] numprocesses: expected a non-negative integer (got '-1')".
"""

from __future__ import annotations

import re
import signal

TRUE_WORDS = frozenset({"1", "yes", "true", "on"})
FALSE_WORDS = frozenset({"0", "no", "false", "off"})
RESPAWN_MODES = ("always", "on-failure", "never")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


class CoercionError(ValueError):
    """`expected` says, in words, what the value should have been."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def to_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CoercionError("a boolean (true/false, yes/no, on/off, 1/0)")


def to_int(text: str, minimum: int | None = None) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise CoercionError(_int_words(minimum)) from None
    if minimum is not None and value < minimum:
        raise CoercionError(_int_words(minimum))
    if abs(value) >= 2**63:  # no option means anything past 64 bits; floats overflow on some
        raise CoercionError(f"{_int_words(minimum)} below 2**63")
    return value


def _int_words(minimum: int | None) -> str:
    if minimum == 0:
        return "a non-negative integer"
    if minimum == 1:
        return "a positive integer"
    if minimum is not None:
        return f"an integer >= {minimum}"
    return "an integer"


def to_float(text: str, minimum: float | None = 0.0) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise CoercionError("a number of seconds, like 5 or 0.5") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise CoercionError("a finite number of seconds")
    if minimum is not None and value < minimum:
        raise CoercionError(f"a number >= {minimum:g}")
    return value


def to_signal(text: str) -> int:
    """`QUIT`, `sigquit`, `SIGTERM`, `3`, `SIGRTMIN+1`: Circus accepts all of these."""
    word = text.strip().upper()
    if word.isdigit():
        number = int(word)
        if 0 < number < signal.NSIG:
            return number
        raise CoercionError(f"a signal number between 1 and {signal.NSIG - 1}")
    if not word.startswith("SIG"):
        word = "SIG" + word
    rt = re.fullmatch(r"SIGRT(MIN|MAX)([+-]\d+)?", word)
    if rt:
        base = signal.SIGRTMIN if rt.group(1) == "MIN" else signal.SIGRTMAX
        number = int(base) + int(rt.group(2) or 0)
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return number
        raise CoercionError("a real-time signal within SIGRTMIN..SIGRTMAX")
    member = getattr(signal.Signals, word, None)
    if isinstance(member, signal.Signals):
        return int(member)
    raise CoercionError("a signal name or number, like TERM, SIGQUIT or 15")


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return f"SIGRTMIN+{number - signal.SIGRTMIN}"
        return str(number)


def to_octal(text: str) -> int:
    try:
        value = int(text.strip(), 8)
    except ValueError:
        raise CoercionError("an octal mode like 022 or 0o027") from None
    if not 0 <= value <= 0o777:
        raise CoercionError("an octal mode between 000 and 777")
    return value


def to_respawn(text: str) -> str:
    """bigtop's three modes; Circus's booleans keep working (true = always, false = never)."""
    word = text.strip().lower().replace("_", "-")
    if word in RESPAWN_MODES:
        return word
    if word in TRUE_WORDS:
        return "always"
    if word in FALSE_WORDS:
        return "never"
    raise CoercionError("always, on-failure or never (or a boolean)")


def to_exit_codes(text: str) -> tuple[int, ...]:
    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    try:
        codes = tuple(int(p) for p in parts)
    except ValueError:
        raise CoercionError("exit codes between 0 and 255, separated by commas") from None
    if not codes or any(not 0 <= c <= 255 for c in codes):
        raise CoercionError("exit codes between 0 and 255, separated by commas")
    return codes


def to_size(text: str) -> int:
    """Bytes, with an optional unit: 500, 10K, 250M, 1G (powers of 1024)."""
    match = _SIZE.match(text)
    if not match:
        raise CoercionError("a size like 1048576, 10K, 250M or 1G")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def to_rlimit(text: str) -> int | None:
    """An integer, or empty for 'unlimited' as in Circus (and -1, RLIM_INFINITY's value)."""
    if not text.strip():
        return None
    if text.strip().lower() in ("unlimited", "infinity", "-1"):
        return None
    return to_int(text, minimum=0)


def to_name_list(text: str) -> tuple[str, ...]:
    return tuple(p for p in re.split(r"[\s,]+", text.strip()) if p)
