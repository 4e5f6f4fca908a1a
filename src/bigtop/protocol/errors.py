"""Circus's error numbers and the one exception command handlers raise."""

from __future__ import annotations

from enum import IntEnum


class Errno(IntEnum):
    NOT_SPECIFIED = 0
    INVALID_JSON = 1
    UNKNOWN_COMMAND = 2
    MESSAGE_ERROR = 3
    OS_ERROR = 4
    COMMAND_ERROR = 5
    BAD_MSG_DATA_ERROR = 6


class CommandError(Exception):
    """A request that cannot be carried out; becomes `{"status": "error", ...}`."""

    def __init__(self, reason: str, errno: Errno = Errno.MESSAGE_ERROR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errno = errno
