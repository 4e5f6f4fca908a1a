"""Write the raw circus.ini structure back as a circus.ini (`bigtop check --to-ini`).

The text read back by `bigtop.config.ini` gives the same `RawConfig`, hence the same model,
except where circus.ini has no way to write a value; each such value is reported.
"""

from __future__ import annotations

from bigtop.config.ini import RawConfig, RawOption
from bigtop.errors import ConfigProblem

_SECTION_ORDER = ("circus", "socket:", "plugin:", "env", "watcher:", "env:")


def _order(name: str) -> tuple[int, str]:
    """[circus], sockets, plugins, [env] first; each watcher followed by its [env:NAME]."""
    if name.startswith("watcher:"):
        return (4, name.split(":", 1)[1] + "\0")
    if name.startswith("env:"):
        return (4, name.split(":", 1)[1] + "\1")
    for index, prefix in enumerate(_SECTION_ORDER):
        if name == prefix or (prefix.endswith(":") and name.startswith(prefix)):
            return (index, name)
    return (len(_SECTION_ORDER), name)


def render_ini(raw: RawConfig, header: str = "") -> tuple[str, list[ConfigProblem]]:
    """circus.ini text for `raw`, and a warning for each value it cannot hold exactly."""
    lines = [f"; {line}" if line else ";" for line in header.splitlines()]
    problems: list[ConfigProblem] = []
    for name in sorted(raw.sections, key=_order):
        section = raw.sections[name]
        if lines:
            lines.append("")
        if "]" in name:
            problems.append(
                _cannot(
                    f"section [{name}]: ']' cannot be written in a header",
                    section.file,
                    section.line,
                    name,
                )
            )
        lines.append(f"[{name}]")
        for key, option in section.options.items():
            lines.extend(_option_lines(key, option, name, problems))
    return "\n".join(lines) + "\n", problems


def _option_lines(
    key: str, option: RawOption, section: str, problems: list[ConfigProblem]
) -> list[str]:
    parts = option.value.split("\n")
    for part in parts:
        pos = part.find(";")
        if pos > 0 and part[pos - 1].isspace():
            problems.append(
                _cannot(
                    f"{key}: ' ;' starts a comment in circus.ini, the rest would be dropped",
                    option.file,
                    option.line,
                    section,
                )
            )
    if option.value == '""':
        problems.append(
            _cannot(
                f'{key}: a value of "" reads as empty in circus.ini',
                option.file,
                option.line,
                section,
            )
        )
    if any(p.strip()[:1] in ("#", ";") for p in parts[1:] if p.strip()):
        problems.append(
            _cannot(
                f"{key}: a continuation line starting with # or ; reads as a comment",
                option.file,
                option.line,
                section,
            )
        )
    first = f"{key} = {parts[0]}".rstrip()
    return [first, *(f"    {p}" for p in parts[1:] if p.strip())]


def _cannot(message: str, file: str, line: int, section: str) -> ConfigProblem:
    return ConfigProblem(
        f"cannot be written exactly in circus.ini: {message}",
        file=file,
        line=line or None,
        section=section,
        severity="warning",
    )
