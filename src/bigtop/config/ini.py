"""Read circus.ini files with Circus 0.19's parser rules, following includes.

The rules (circus-0.19.md section 5.1) differ from `configparser` in ways users rely on:
option names keep their case, the *first* duplicate of an option wins, a section seen again
is merged (so the main file wins over its includes), ``;`` starts an inline comment only
after white space, ``rem`` lines are comments, and a value of exactly ``""`` is empty.
So the reader is our own, and it keeps where every value came from (file and line) so
errors can point at it. It reads files and nothing else; meaning is given in `load.py`.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field

from bigtop.errors import ConfigProblem

_SECTION = re.compile(r"\[(?P<header>[^]]+)\]")
_OPTION = re.compile(r"(?P<option>[^:=\s][^:=]*)\s*(?P<sep>[:=])\s*(?P<value>.*)$")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass
class RawOption:
    value: str
    file: str
    line: int


@dataclass
class RawSection:
    name: str
    file: str
    line: int
    options: dict[str, RawOption] = field(default_factory=dict)


@dataclass
class RawConfig:
    """Sections in the order first seen, each option as first seen, plus what went wrong."""

    main_file: str
    sections: dict[str, RawSection] = field(default_factory=dict)
    defaults: dict[str, RawOption] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    problems: list[ConfigProblem] = field(default_factory=list)

    def section_options(self, name: str) -> dict[str, RawOption]:
        """The options of a section with [DEFAULT] values underneath, as configparser does."""
        merged = dict(self.defaults)
        merged.update(self.sections[name].options)
        return merged


def strip_inline_comment(value: str) -> str:
    """Circus's rule: the first ``;`` is a comment only when white space precedes it."""
    pos = value.find(";")
    if pos > 0 and value[pos - 1].isspace():
        value = value[:pos]
    value = value.strip()
    return "" if value == '""' else value


def _is_comment(line: str) -> bool:
    stripped = line.strip()
    if not stripped or stripped[0] in "#;":
        return True
    first = stripped.split(None, 1)[0]
    return first.lower() == "rem" and line[0] in "rR"


def parse_text(text: str, filename: str, into: RawConfig) -> None:
    """Parse one file's text and merge it into `into` (earlier values win)."""
    section: RawSection | None = None
    defaults_active = False
    last_option: RawOption | None = None
    skipping_duplicate = False
    # Only '\n' ends a line (files are read with universal newlines), as with Circus's
    # readline(): str.splitlines() would also split on \x0c, \x1c-\x1e, \x85, \u2028...
    for number, line in enumerate(text.split("\n"), start=1):
        if _is_comment(line):
            continue
        if line[0].isspace() and (last_option is not None or skipping_duplicate):
            # A continuation line: Circus joins these with newlines (shlex reads them as spaces).
            if last_option is not None:
                last_option.value = f"{last_option.value}\n{line.strip()}"
            continue
        skipping_duplicate = False
        header = _SECTION.match(line)
        if header:
            name = header.group("header").strip()
            last_option = None
            if name == "DEFAULT":
                section, defaults_active = None, True
            else:
                defaults_active = False
                section = into.sections.setdefault(name, RawSection(name, filename, number))
            continue
        match = _OPTION.match(line)
        if match is None:
            into.problems.append(
                ConfigProblem(
                    "cannot parse this line: expected 'name = value', a [section] header "
                    "or a comment",
                    file=filename,
                    line=number,
                    value=line.strip(),
                )
            )
            last_option = None
            continue
        if section is None and not defaults_active:
            into.problems.append(
                ConfigProblem(
                    "option outside of any section: add a [section] header above it",
                    file=filename,
                    line=number,
                    value=line.strip(),
                )
            )
            last_option = None
            continue
        target = into.defaults if defaults_active else section.options  # type: ignore[union-attr]
        name = match.group("option").rstrip()
        value = strip_inline_comment(match.group("value"))
        if name in target:
            last_option = None  # first occurrence wins (Circus); its continuations are dropped
            skipping_duplicate = True
            continue
        last_option = RawOption(value, filename, number)
        target[name] = last_option


def read_config(path: str) -> RawConfig:
    """Read `path` and every file it includes, recursively; problems are collected, not raised."""
    config = RawConfig(main_file=path)
    try:
        text = _read_file(path)
    except OSError as exc:
        config.problems.append(
            ConfigProblem(f"cannot read the configuration file: {exc.strerror}", file=path)
        )
        return config
    except UnicodeDecodeError as exc:
        config.problems.append(ConfigProblem(f"not valid UTF-8 text ({exc.reason})", file=path))
        return config
    _read_recursively(path, text, config, stack=[os.path.realpath(path)])
    return config


def _read_file(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _read_recursively(path: str, text: str, config: RawConfig, stack: list[str]) -> None:
    own = RawConfig(main_file=path)
    parse_text(text, path, own)
    _merge(own, config)
    config.files.append(path)
    for include, key, option, from_glob in _includes_of(own, path, config):
        real = os.path.realpath(include)
        if real in stack:
            if from_glob:
                continue  # a glob or include_dir that matches a file being read: Circus merges it
            chain = " -> ".join([*stack[stack.index(real) :], real])
            config.problems.append(
                ConfigProblem(
                    f"include loop: {chain}",
                    file=path,
                    line=option.line,
                    section="circus",
                    option=key,
                    value=option.value,
                )
            )
            continue
        if any(os.path.realpath(f) == real for f in config.files):
            continue  # already read through another include
        try:
            included = _read_file(include)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else f"not valid UTF-8 ({exc.reason})"
            config.problems.append(
                ConfigProblem(
                    f"cannot read included file {include}: {reason}",
                    file=path,
                    line=option.line,
                    section="circus",
                    option=key,
                    value=option.value,
                )
            )
            continue
        _read_recursively(include, included, config, [*stack, real])


def _merge(source: RawConfig, into: RawConfig) -> None:
    into.problems.extend(source.problems)
    for key, option in source.defaults.items():
        into.defaults.setdefault(key, option)
    for name, section in source.sections.items():
        existing = into.sections.setdefault(name, RawSection(name, section.file, section.line))
        for key, option in section.options.items():
            existing.options.setdefault(key, option)


def _includes_of(
    own: RawConfig, path: str, config: RawConfig
) -> list[tuple[str, str, RawOption, bool]]:
    """Files named by this file's own [circus] include / include_dir, in order, each with
    the option naming it and whether it came from a pattern (a glob or a directory)."""
    circus = own.sections.get("circus")
    if circus is None:
        return []
    base = os.path.dirname(os.path.abspath(path))
    found: list[tuple[str, str, RawOption, bool]] = []
    include = circus.options.get("include")
    for pattern in include.value.split() if include is not None else []:
        full = os.path.join(base, pattern)
        is_glob = bool(_GLOB_CHARS.search(pattern))
        matches = sorted(glob.glob(full))
        if not matches:
            if is_glob or not os.path.lexists(full):
                config.problems.append(
                    ConfigProblem(
                        f"include {pattern!r} matches no file ({full})",
                        file=path,
                        line=circus.options["include"].line,
                        section="circus",
                        option="include",
                        severity="warning",
                    )
                )
                continue
            matches = [full]
        found.extend((match, "include", circus.options["include"], is_glob) for match in matches)
    include_dir = circus.options.get("include_dir")
    for directory in include_dir.value.split() if include_dir is not None else []:
        full = os.path.join(base, directory)
        if not os.path.isdir(full):
            config.problems.append(
                ConfigProblem(
                    f"include_dir {directory!r} is not a directory ({full})",
                    file=path,
                    line=circus.options["include_dir"].line,
                    section="circus",
                    option="include_dir",
                    severity="warning",
                )
            )
            continue
        found.extend(
            (match, "include_dir", circus.options["include_dir"], True)
            for match in sorted(glob.glob(os.path.join(full, "*.ini")))
        )
    return found
