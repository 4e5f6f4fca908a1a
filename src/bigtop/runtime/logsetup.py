"""The daemon's own log: stdout, a file that survives external rotation, or syslog."""

from __future__ import annotations

import logging
import os
import sys

# logging.config, logging.handlers and urllib are imported where used: only some daemons
# need them, and together they cost every daemon half a megabyte of memory.

FORMAT = "%(asctime)s bigtop[%(process)d] [%(levelname)s] %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"


def setup_logging(level: str, output: str, logger_config: str | None = None) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    if logger_config and logger_config != "default":
        _from_file(logger_config)
        return
    handler = make_handler(output)
    handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    root.addHandler(handler)
    root.setLevel(level.upper())


def make_handler(output: str) -> logging.Handler:
    if output in ("-", "stdout", ""):
        return logging.StreamHandler(sys.stdout)
    if output == "stderr":
        return logging.StreamHandler(sys.stderr)
    if output.startswith("syslog://"):
        return _syslog(output)
    from logging.handlers import WatchedFileHandler

    return WatchedFileHandler(os.path.abspath(output))


def _syslog(url: str) -> logging.Handler:
    """syslog://host[:port]?facility (UDP) or syslog:///dev/log?facility."""
    from logging.handlers import SysLogHandler
    from urllib.parse import urlparse

    parsed = urlparse(url)
    facility_name = parsed.query or "user"
    facility = SysLogHandler.facility_names.get(facility_name.lower())
    if facility is None:
        raise ValueError(f"unknown syslog facility {facility_name!r} in {url}")
    if parsed.hostname:
        address: str | tuple[str, int] = (parsed.hostname, parsed.port or 514)
    else:
        address = parsed.path or "/dev/log"
    handler = SysLogHandler(address=address, facility=facility)
    handler.ident = "bigtop: "
    return handler


def _from_file(path: str) -> None:
    from logging import config

    if path.endswith(".json"):
        import json

        with open(path, encoding="utf-8") as handle:
            config.dictConfig(json.load(handle))
    elif path.endswith((".yaml", ".yml")):
        raise ValueError("YAML logger configs need PyYAML; use .ini or .json instead")
    else:
        config.fileConfig(path, disable_existing_loggers=False)
