"""bigtop's exception tree.

    BigtopError
    ├── ConfigError            one or more problems in a configuration (all reported at once)
    ├── SpawnError             a process could not be started (missing binary, bad user, ...)
    └── PidfileError           the pidfile names a live process or cannot be written

Every message says what was wrong, what was received and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass


class BigtopError(Exception):
    """Base of every error bigtop raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem found in a configuration, located as precisely as we can."""

    message: str
    file: str | None = None
    line: int | None = None
    section: str | None = None
    option: str | None = None
    value: str | None = None
    severity: str = "error"  # "error" or "warning"

    def location(self) -> str:
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.section:
            where = f"{where} [{self.section}]" if where else f"[{self.section}]"
        if self.option:
            where = f"{where} {self.option}" if where else self.option
        return where

    def __str__(self) -> str:
        where = self.location()
        got = f" (got {self.value!r})" if self.value is not None else ""
        return f"{where}: {self.message}{got}" if where else f"{self.message}{got}"


class ConfigError(BigtopError):
    """A configuration has errors; `problems` lists every one of them."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} error(s) in the configuration:\n{lines}")


class SpawnError(BigtopError):
    """A process could not be started."""

    def __init__(self, watcher: str, argv: list[str], reason: str) -> None:
        self.watcher = watcher
        self.argv = argv
        self.reason = reason
        super().__init__(f"watcher {watcher!r}: cannot start {argv[0] if argv else '?'}: {reason}")


class PidfileError(BigtopError):
    """The pidfile is held by a live process or cannot be written."""
