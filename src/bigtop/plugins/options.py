"""A plugin's options, read from its `[plugin:NAME]` section with clear errors. Pure.

Every value arrives as the string written in the INI file (Circus passes them the same way).
Each accessor converts one option and, when the text does not fit, raises `PluginConfigError`
naming the section, the option, the value and what was expected:

    [plugin:mem] max_mem = '2 GB please': expected a percentage like 90, or a size like 250M
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bigtop.config import coerce
from bigtop.errors import BigtopError


class PluginConfigError(BigtopError):
    """A plugin cannot run with the options it was given (fix the config, restarting won't)."""


@dataclass(frozen=True)
class Threshold:
    """A memory limit: a percentage of RAM (a plain number) or a size in bytes (with a unit)."""

    value: float
    percent: bool

    def exceeded_by(self, percent: float | None, rss: int | None) -> bool:
        figure = percent if self.percent else rss
        return figure is not None and figure > self.value

    def undercut_by(self, percent: float | None, rss: int | None) -> bool:
        figure = percent if self.percent else rss
        return figure is not None and figure < self.value


class Options:
    """Typed access to a plugin's options."""

    def __init__(self, section: str, values: Mapping[str, str]) -> None:
        self.section = section
        self.values = dict(values)

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def raw(self, key: str) -> str | None:
        return self.values.get(key)

    def invalid(self, key: str, expected: str) -> PluginConfigError:
        return PluginConfigError(
            f"[{self.section}] {key} = {self.values.get(key)!r}: expected {expected}"
        )

    def missing(self, key: str, what: str) -> PluginConfigError:
        return PluginConfigError(f"[{self.section}] missing {key!r}: {what}")

    def text(self, key: str, default: str) -> str:
        value = self.values.get(key)
        return default if value is None or not value.strip() else value.strip()

    def optional_text(self, key: str) -> str | None:
        value = self.values.get(key)
        return value.strip() if value is not None and value.strip() else None

    def number(self, key: str, default: float, minimum: float | None = 0.0) -> float:
        value = self.optional_number(key, minimum)
        return default if value is None else value

    def positive(self, key: str, default: float) -> float:
        value = self.number(key, default)
        if value <= 0:
            raise self.invalid(key, "a number > 0")
        return value

    def optional_number(self, key: str, minimum: float | None = 0.0) -> float | None:
        text = self.optional_text(key)
        if text is None:
            return None
        try:
            return coerce.to_float(text, minimum=minimum)
        except coerce.CoercionError as exc:
            raise self.invalid(key, exc.expected.replace(" of seconds", "")) from None

    def integer(self, key: str, default: int, minimum: int | None = None) -> int:
        text = self.optional_text(key)
        if text is None:
            return default
        try:
            return coerce.to_int(text, minimum=minimum)
        except coerce.CoercionError as exc:
            raise self.invalid(key, exc.expected) from None

    def boolean(self, key: str, default: bool) -> bool:
        text = self.optional_text(key)
        if text is None:
            return default
        try:
            return coerce.to_bool(text)
        except coerce.CoercionError as exc:
            raise self.invalid(key, exc.expected) from None

    def signal(self, key: str, default: int | None) -> int | None:
        text = self.optional_text(key)
        if text is None:
            return default
        try:
            return coerce.to_signal(text)
        except coerce.CoercionError as exc:
            raise self.invalid(key, exc.expected) from None

    def regex(self, key: str, default: str) -> re.Pattern[str]:
        text = self.values.get(key)
        try:
            return re.compile(default if text is None else text)
        except re.error as exc:
            raise self.invalid(key, f"a regular expression ({exc})") from None

    def threshold(self, key: str, default: float | None) -> Threshold | None:
        """`90` is 90 % of RAM (as in Circus); `250M`, `1G`, `500000B` are sizes."""
        text = self.optional_text(key)
        if text is None:
            return None if default is None else Threshold(default, percent=True)
        try:
            return Threshold(coerce.to_float(text, minimum=0.0), percent=True)
        except coerce.CoercionError:
            pass
        try:
            return Threshold(float(coerce.to_size(text)), percent=False)
        except coerce.CoercionError:
            raise self.invalid(key, "a percentage like 90, or a size like 250M or 1G") from None


def parse_circus_config(text: str | None) -> dict[str, str]:
    """Circus's `--config` argument: `key:value` pairs joined by `:::`."""
    options: dict[str, str] = {}
    if not text:
        return options
    for item in text.split(":::"):
        key, sep, value = item.partition(":")
        if sep:
            options[key.strip()] = value.strip()
    return options
