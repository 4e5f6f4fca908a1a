"""bigtop: a process and socket manager for Unix, compatible with Circus 0.19.

The public API is `Client` and `AsyncClient` (a control endpoint's clients), with
`CallError` and `CallTimeout`. They are imported on first use, so `import bigtop` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["AsyncClient", "CallError", "CallTimeout", "Client", "__version__"]

if TYPE_CHECKING:
    from bigtop.control.client import AsyncClient, CallError, CallTimeout, Client


def __getattr__(name: str) -> Any:
    if name in ("AsyncClient", "CallError", "CallTimeout", "Client"):
        from bigtop.control import client

        return getattr(client, name)
    raise AttributeError(f"module 'bigtop' has no attribute {name!r}")
