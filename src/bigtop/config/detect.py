"""Which kind of file a config is, recognised by its content: a circus.ini, a
supervisord.conf or a Procfile; and reading any of them into the raw circus.ini structure
that `bigtop.config.load` gives its meaning."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from bigtop.config import procfile
from bigtop.config.ini import RawConfig, read_config

CIRCUS = "circus"
SUPERVISOR = "supervisor"
PROCFILE = "procfile"
_HEADER = re.compile(r"^[ \t]*\[([^]\n]+)\]", re.MULTILINE)
_SUPERVISOR_PREFIXES = ("program:", "group:", "fcgi-program:", "eventlistener:")


def config_format(path: str) -> str:
    """A file named Procfile (or Procfile.dev ...) is a Procfile. Otherwise: any
    [watcher:x] makes a circus.ini (so every circus.ini keeps its meaning); [supervisord] or
    [program:x]-style sections make a supervisord.conf; no sections and `name: command`
    lines make a Procfile. Anything else is read as a circus.ini (whose reader then says
    what is wrong)."""
    base = os.path.basename(path)
    if base == "Procfile" or base.startswith("Procfile."):
        return PROCFILE
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError):
        return CIRCUS
    headers = [h.strip() for h in _HEADER.findall(text)]
    if any(h.startswith("watcher:") for h in headers):
        return CIRCUS
    if any(h == "supervisord" or h.startswith(_SUPERVISOR_PREFIXES) for h in headers):
        return SUPERVISOR
    if not headers and procfile.looks_like_procfile(text):
        return PROCFILE
    return CIRCUS


def read_any(path: str, environ: Mapping[str, str]) -> RawConfig:
    """The raw circus.ini structure of any supported file, with the problems found so far."""
    kind = config_format(path)
    if kind == SUPERVISOR:
        from bigtop.config import supervisor  # (only for a supervisord.conf)

        return supervisor.translate(path, environ)
    if kind == PROCFILE:
        return procfile.translate(path, environ)
    return read_config(path)
