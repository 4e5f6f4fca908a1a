"""The daemon's pidfile: written 0644 as "<pid>\\n", refused when it names a live process."""

from __future__ import annotations

import contextlib
import os

from bigtop.errors import PidfileError


class Pidfile:
    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.pid: int | None = None

    def check(self) -> bool:
        """Raise if the file names a live process; True when it names a dead one."""
        old = self.read()
        if old is None or old == os.getpid():
            return False
        if _alive(old):
            raise PidfileError(
                f"pidfile {self.path} names process {old}, which is running: is another "
                "bigtop already running with this config? Stop it first, or use another "
                "pidfile."
            )
        return True

    def create(self, pid: int) -> bool:
        """Write the file; True when a stale one (dead process) was replaced."""
        stale = self.check()
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{pid}\n")
        except OSError as exc:
            raise PidfileError(f"cannot write pidfile {self.path}: {exc.strerror}") from None
        self.pid = pid
        return stale

    def read(self) -> int | None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return int(handle.read().strip() or "0") or None
        except (OSError, ValueError):
            return None

    def unlink(self) -> None:
        if self.pid is not None and self.read() == self.pid:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
