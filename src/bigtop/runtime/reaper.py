"""The reaper: the one place that waits for children.

Theory of operation. Every child is registered right after `Popen()` returns, before the
loop can run anything else: its pidfd is opened and watched with `loop.add_reader`. When
the pidfd turns readable the child is a zombie; its pid cannot be reused yet, so this is the
moment to SIGKILL whatever is left of its process group (`before_reap`). Then
`waitid(P_PIDFD, WEXITED | WNOHANG)` reaps it, the `Popen` gets its returncode (so CPython's
own cleanup never reaps behind our back), and `on_exit` is called.

Signals are sent through the pidfd, so a recycled pid can never be hit. `sweep()` polls
every registered pidfd, as a safety net against a lost readiness notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from bigtop.core.policy import ExitStatus

log = logging.getLogger("bigtop.reaper")

ExitCallback = Callable[[int, ExitStatus], None]


@dataclass
class _Child:
    popen: subprocess.Popen[bytes]
    pidfd: int
    on_exit: ExitCallback
    before_reap: Callable[[int], None] | None


class Reaper:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._children: dict[int, _Child] = {}

    def __len__(self) -> int:
        return len(self._children)

    def pids(self) -> list[int]:
        return list(self._children)

    def watch(
        self,
        popen: subprocess.Popen[bytes],
        on_exit: ExitCallback,
        before_reap: Callable[[int], None] | None = None,
    ) -> None:
        pidfd = os.pidfd_open(popen.pid)
        self._children[popen.pid] = _Child(popen, pidfd, on_exit, before_reap)
        self._loop.add_reader(pidfd, self._ready, popen.pid)

    async def run(self, argv: list[str], env: dict[str, str]) -> int:
        """Run a short helper command (a probe) to its end; its exit status.

        It goes through this reaper like every other child, so the orphan reaper never
        takes its exit status away from us."""
        popen = subprocess.Popen(  # noqa: ASYNC220 - returns at once (vfork)
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        done: asyncio.Future[ExitStatus] = self._loop.create_future()

        def finished(pid: int, status: ExitStatus) -> None:
            if not done.done():
                done.set_result(status)

        self.watch(popen, finished)
        try:
            status = await done
        except asyncio.CancelledError:
            self.send_signal(popen.pid, signal.SIGKILL)
            raise
        return -status.signal if status.signal is not None else (status.code or 0)

    def send_signal(self, pid: int, signum: int) -> bool:
        """Signal a registered child through its pidfd; False if it is already gone."""
        child = self._children.get(pid)
        if child is None:
            return False
        try:
            signal.pidfd_send_signal(child.pidfd, signum)
        except ProcessLookupError:
            return False
        return True

    def sweep(self) -> None:
        for pid in list(self._children):
            self._ready(pid)

    def reap_orphans(self) -> list[int]:
        """Reap every exited child, ours or adopted (we are a subreaper or PID 1).

        Peeks with WNOWAIT so a registered child still takes its own path (and its exit
        status reaches its watcher); anything else is an orphan we adopted: reap it.
        """
        reaped = []
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                break
            if info is None or info.si_pid == 0:
                break
            pid = info.si_pid
            if pid in self._children:
                self._ready(pid)
                if pid in self._children:  # could not be reaped through its pidfd
                    break
                continue
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            reaped.append(pid)
        return reaped

    def _ready(self, pid: int) -> None:
        child = self._children.get(pid)
        if child is None:
            return
        if child.before_reap is not None:
            # Still a zombie here only if it has exited; probe without reaping first.
            try:
                peek = os.waitid(os.P_PIDFD, child.pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                peek = None
            if peek is None:
                return
            try:
                child.before_reap(pid)
            except Exception:
                log.exception("before-reap step failed for pid %d", pid)
        try:
            result = os.waitid(os.P_PIDFD, child.pidfd, os.WEXITED | os.WNOHANG)
        except ChildProcessError:
            result = None
            status = ExitStatus(code=None)
        else:
            if result is None:
                return  # spurious wake-up: still running
            status = _status(result)
        self._forget(pid, child)
        child.popen.returncode = -status.signal if status.signal is not None else (status.code or 0)
        child.on_exit(pid, status)

    def _forget(self, pid: int, child: _Child) -> None:
        del self._children[pid]
        self._loop.remove_reader(child.pidfd)
        os.close(child.pidfd)

    def close(self) -> None:
        for pid, child in list(self._children.items()):
            with contextlib.suppress(Exception):
                self._forget(pid, child)


def _status(result: os.waitid_result) -> ExitStatus:
    if result.si_code == os.CLD_EXITED:
        return ExitStatus(code=result.si_status)
    return ExitStatus(signal=result.si_status)
