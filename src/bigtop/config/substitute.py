"""`$(circus.KEY)` and `((circus.KEY))` substitution, and `$VAR` in [env] values.

Keys are case-insensitive; unknown keys are left as written, as Circus does, so a value
can pass through config-time substitution and still be completed at spawn time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_CIRCUS_KEY = re.compile(r"\$\(circus\.([\w.-]+)\)|\(\(circus\.([\w.-]+)\)\)", re.IGNORECASE)
_SHELL_VAR = re.compile(r"\$([A-Z][A-Z0-9_]*)")


def lowered(mapping: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in mapping.items()}


def env_keys(env: Mapping[str, str]) -> dict[str, str]:
    """`circus.env.X` keys for an environment, ready for `substitute`."""
    return {f"env.{key.lower()}": value for key, value in env.items()}


def substitute(text: str, keys: Mapping[str, str]) -> str:
    """Replace known `circus.` keys (given lower-cased, without the prefix); keep others."""
    if "circus." not in text.lower():
        return text

    def replace(match: re.Match[str]) -> str:
        key = (match.group(1) or match.group(2)).lower()
        return keys.get(key, match.group(0))

    return _CIRCUS_KEY.sub(replace, text)


def expand_shell_vars(text: str, environ: Mapping[str, str]) -> str:
    """Circus expands upper-case `$NAME` in [env] values from the daemon's environment."""
    if "$" not in text:
        return text
    return _SHELL_VAR.sub(lambda m: environ.get(m.group(1), ""), text)
