"""Coercion of INI strings into typed values, with Circus's spellings and clear refusals."""

from __future__ import annotations

import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bigtop.config import coerce
from bigtop.config.coerce import CoercionError

BOOL_EXPECTED = "a boolean (true/false, yes/no, on/off, 1/0)"

# --- booleans -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["1", "yes", "YES", "Yes", "true", "True", "TRUE", "on", "On", "  true  "]
)
def test_true_words(text: str) -> None:
    assert coerce.to_bool(text) is True


@pytest.mark.parametrize("text", ["0", "no", "NO", "false", "False", "FALSE", "off", "OFF"])
def test_false_words(text: str) -> None:
    assert coerce.to_bool(text) is False


@pytest.mark.parametrize("text", ["", "y", "n", "2", "enabled", "truee", "-1", "none"])
def test_other_words_are_not_booleans(text: str) -> None:
    with pytest.raises(CoercionError) as caught:
        coerce.to_bool(text)
    assert caught.value.expected == BOOL_EXPECTED
    assert str(caught.value) == BOOL_EXPECTED


@given(
    st.sampled_from(sorted(coerce.TRUE_WORDS | coerce.FALSE_WORDS)),
    st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_booleans_are_case_insensitive(word: str, upper: list[bool]) -> None:
    mixed = "".join(c.upper() if u else c for c, u in zip(word, upper * 2, strict=False))
    assert coerce.to_bool(mixed) is (word in coerce.TRUE_WORDS)


# --- integers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minimum", "expected"),
    [("0", 0, 0), (" 42 ", 0, 42), ("-1", -1, -1), ("-7", None, -7), ("1", 1, 1)],
)
def test_integers(text: str, minimum: int | None, expected: int) -> None:
    assert coerce.to_int(text, minimum=minimum) == expected


@pytest.mark.parametrize(
    ("text", "minimum", "expected"),
    [
        ("-1", 0, "a non-negative integer"),
        ("0", 1, "a positive integer"),
        ("-2", -1, "an integer >= -1"),
        ("1.5", None, "an integer"),
        ("three", 0, "a non-negative integer"),
        ("", 0, "a non-negative integer"),
    ],
)
def test_bad_integers_say_what_was_expected(text: str, minimum: int | None, expected: str) -> None:
    with pytest.raises(CoercionError) as caught:
        coerce.to_int(text, minimum=minimum)
    assert caught.value.expected == expected


@given(st.integers(min_value=0, max_value=10**12))
def test_int_round_trip(number: int) -> None:
    assert coerce.to_int(str(number), minimum=0) == number


# --- floats -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"), [("5", 5.0), ("0.5", 0.5), (" 30 ", 30.0), ("1e1", 10.0)]
)
def test_floats(text: str, expected: float) -> None:
    assert coerce.to_float(text) == expected


def test_float_without_minimum_accepts_negative() -> None:
    assert coerce.to_float("-1", minimum=None) == -1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("soon", "a number of seconds, like 5 or 0.5"),
        ("", "a number of seconds, like 5 or 0.5"),
        ("nan", "a finite number of seconds"),
        ("inf", "a finite number of seconds"),
        ("-0.5", "a number >= 0"),
    ],
)
def test_bad_floats(text: str, expected: str) -> None:
    with pytest.raises(CoercionError) as caught:
        coerce.to_float(text)
    assert caught.value.expected == expected


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_float_round_trip(number: float) -> None:
    assert coerce.to_float(repr(number)) == number


# --- signals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("quit", signal.SIGQUIT),
        ("QUIT", signal.SIGQUIT),
        ("INT", signal.SIGINT),
        ("SIGTERM", signal.SIGTERM),
        ("sigterm", signal.SIGTERM),
        ("SigHup", signal.SIGHUP),
        ("3", 3),
        (" 9 ", 9),
        ("SIGRTMIN", signal.SIGRTMIN),
        ("SIGRTMIN+1", signal.SIGRTMIN + 1),
        ("rtmin+2", signal.SIGRTMIN + 2),
        ("SIGRTMAX-1", signal.SIGRTMAX - 1),
        ("SIGRTMAX", signal.SIGRTMAX),
    ],
)
def test_signal_spellings(text: str, expected: int) -> None:
    assert coerce.to_signal(text) == int(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SIGFOO", "a signal name or number, like TERM, SIGQUIT or 15"),
        ("", "a signal name or number, like TERM, SIGQUIT or 15"),
        ("-1", "a signal name or number, like TERM, SIGQUIT or 15"),
        ("0", f"a signal number between 1 and {signal.NSIG - 1}"),
        (str(signal.NSIG), f"a signal number between 1 and {signal.NSIG - 1}"),
        ("SIGRTMIN-1", "a real-time signal within SIGRTMIN..SIGRTMAX"),
        ("SIGRTMAX+1", "a real-time signal within SIGRTMIN..SIGRTMAX"),
    ],
)
def test_bad_signals(text: str, expected: str) -> None:
    with pytest.raises(CoercionError) as caught:
        coerce.to_signal(text)
    assert caught.value.expected == expected


@pytest.mark.parametrize(
    ("number", "name"),
    [(15, "SIGTERM"), (3, "SIGQUIT"), (int(signal.SIGRTMIN) + 1, "SIGRTMIN+1")],
)
def test_signal_name(number: int, name: str) -> None:
    assert coerce.signal_name(number) == name


@given(st.integers(min_value=1, max_value=signal.NSIG - 1))
def test_signal_name_round_trips(number: int) -> None:
    assert coerce.to_signal(coerce.signal_name(number)) == number


@given(st.sampled_from(sorted(s.name for s in signal.Signals)))
def test_every_signal_name_with_or_without_sig_prefix(name: str) -> None:
    expected = int(signal.Signals[name])
    assert coerce.to_signal(name) == expected
    assert coerce.to_signal(name.removeprefix("SIG").lower()) == expected


# --- umask --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("002", 0o002), ("022", 0o022), ("0o027", 0o027), ("777", 0o777), ("0", 0)],
)
def test_octal_umask(text: str, expected: int) -> None:
    assert coerce.to_octal(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8", "an octal mode like 022 or 0o027"),
        ("rwx", "an octal mode like 022 or 0o027"),
        ("1000", "an octal mode between 000 and 777"),
        ("-1", "an octal mode between 000 and 777"),
    ],
)
def test_bad_umask(text: str, expected: str) -> None:
    with pytest.raises(CoercionError) as caught:
        coerce.to_octal(text)
    assert caught.value.expected == expected


@given(st.integers(min_value=0, max_value=0o777))
def test_octal_round_trip(mode: int) -> None:
    assert coerce.to_octal(f"{mode:03o}") == mode
    assert coerce.to_octal(oct(mode)) == mode


# --- respawn ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("always", "always"),
        ("ALWAYS", "always"),
        ("on-failure", "on-failure"),
        ("on_failure", "on-failure"),
        ("never", "never"),
        ("true", "always"),
        ("yes", "always"),
        ("1", "always"),
        ("on", "always"),
        ("false", "never"),
        ("off", "never"),
        ("0", "never"),
    ],
)
def test_respawn_modes_and_circus_booleans(text: str, expected: str) -> None:
    assert coerce.to_respawn(text) == expected


def test_bad_respawn() -> None:
    with pytest.raises(CoercionError) as caught:
        coerce.to_respawn("sometimes")
    assert caught.value.expected == "always, on-failure or never (or a boolean)"


# --- exit codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", (0,)), ("0, 2", (0, 2)), ("0 3 255", (0, 3, 255)), ("1,,2", (1, 2))],
)
def test_exit_codes(text: str, expected: tuple[int, ...]) -> None:
    assert coerce.to_exit_codes(text) == expected


@pytest.mark.parametrize("text", ["", "256", "-1", "zero", "0, x"])
def test_bad_exit_codes(text: str) -> None:
    with pytest.raises(CoercionError) as caught:
        coerce.to_exit_codes(text)
    assert caught.value.expected == "exit codes between 0 and 255, separated by commas"


@given(st.lists(st.integers(min_value=0, max_value=255), min_size=1, max_size=8))
def test_exit_codes_round_trip(codes: list[int]) -> None:
    assert coerce.to_exit_codes(", ".join(map(str, codes))) == tuple(codes)


# --- sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500", 500),
        ("10K", 10 * 1024),
        ("10k", 10 * 1024),
        ("250M", 250 * 1024**2),
        ("250MB", 250 * 1024**2),
        ("1G", 1024**3),
        ("1GiB", 1024**3),
        ("2T", 2 * 1024**4),
        ("1.5K", 1536),
        (" 7 k ", 7 * 1024),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert coerce.to_size(text) == expected


@pytest.mark.parametrize("text", ["", "big", "-1K", "10X", "K"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(CoercionError) as caught:
        coerce.to_size(text)
    assert caught.value.expected == "a size like 1048576, 10K, 250M or 1G"


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "K", "M", "G"]))
def test_size_round_trip(number: int, unit: str) -> None:
    factor = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[unit]
    assert coerce.to_size(f"{number}{unit}") == number * factor


# --- rlimits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1024", 1024), ("0", 0), ("", None), ("  ", None), ("unlimited", None), ("-1", None)],
)
def test_rlimits(text: str, expected: int | None) -> None:
    assert coerce.to_rlimit(text) == expected


@pytest.mark.parametrize("text", ["-2", "many", "1.5"])
def test_bad_rlimits(text: str) -> None:
    with pytest.raises(CoercionError) as caught:
        coerce.to_rlimit(text)
    assert caught.value.expected == "a non-negative integer"


# --- name lists ---------------------------------------------------------------------------


def test_name_list() -> None:
    assert coerce.to_name_list(" db, cache  web\n") == ("db", "cache", "web")
    assert coerce.to_name_list("") == ()
