"""`bigtop top`'s terminal side: raw keys, the refresh loop, commands (the view is topview)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from typing import Any


class Top:
    def __init__(self, endpoint: str, curve: Any, interval: float, timeout: float) -> None:
        from bigtop.cli.topview import Snapshot, ViewState

        self.endpoint = endpoint
        self.curve = curve
        self.interval = interval
        self.timeout = timeout
        self.snapshot = Snapshot()
        self.state = ViewState()
        self.wake = asyncio.Event()

    async def run(self) -> int:
        import termios
        import tty

        from rich.console import Console
        from rich.live import Live

        from bigtop.control.client import AsyncClient

        loop = asyncio.get_running_loop()
        stdin = sys.stdin.fileno()
        saved = termios.tcgetattr(stdin)
        keys: asyncio.Queue[str] = asyncio.Queue()
        console = Console()
        client = AsyncClient(self.endpoint, timeout=self.timeout, curve=self.curve)
        try:
            tty.setcbreak(stdin)
            loop.add_reader(stdin, self._read_keys, stdin, keys)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, keys.put_nowait, "q")
            loop.add_signal_handler(signal.SIGWINCH, self.wake.set)
            with Live(console=console, screen=True, auto_refresh=False) as live:
                poller = asyncio.create_task(self._poll(client))
                try:
                    await self._interact(live, console, keys, client)
                finally:
                    poller.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await poller
        finally:
            loop.remove_reader(stdin)
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGWINCH):
                loop.remove_signal_handler(signum)
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
            client.close()
        return 0

    @staticmethod
    def _read_keys(stdin: int, keys: asyncio.Queue[str]) -> None:
        from bigtop.cli.topview import split_keys

        try:
            data = os.read(stdin, 1024)
        except OSError:
            data = b""
        if not data:
            keys.put_nowait("q")  # the terminal went away
            return
        for key in split_keys(data.decode("utf-8", "replace")):
            keys.put_nowait(key)

    async def _interact(
        self, live: Any, console: Any, keys: asyncio.Queue[str], client: Any
    ) -> None:
        from bigtop.cli.topview import on_key, render

        while not self.state.quit:
            # the terminal's real size: LINES/COLUMNS in the environment go stale on a resize
            with contextlib.suppress(OSError):
                console.size = os.get_terminal_size(sys.stdout.fileno())
            live.update(
                render(self.snapshot, self.state, console.width, console.height), refresh=True
            )
            key_wait = asyncio.ensure_future(keys.get())
            wake_wait = asyncio.ensure_future(self.wake.wait())
            done, _ = await asyncio.wait({key_wait, wake_wait}, return_when="FIRST_COMPLETED")
            for waiter in (key_wait, wake_wait):
                if waiter not in done:
                    waiter.cancel()
            self.wake.clear()
            if key_wait in done:
                self.state, command = on_key(self.state, key_wait.result(), self.snapshot)
                if command is not None:
                    await self._send(client, command)

    async def _send(self, client: Any, command: Any) -> None:
        from dataclasses import replace

        from bigtop.control.client import CallError, CallTimeout

        try:
            await client.call(command.name, **command.properties)
            message = f"{command.name} {command.properties.get('name')}: ok"
        except CallError as exc:
            message = f"{command.name}: {exc.reason}"
        except CallTimeout:
            message = f"{command.name}: no answer from {self.endpoint}"
        self.state = replace(self.state, message=message)
        await self._refresh(client)

    async def _poll(self, client: Any) -> None:
        while True:
            await self._refresh(client)
            await asyncio.sleep(self.interval)

    async def _refresh(self, client: Any) -> None:
        from dataclasses import replace

        from bigtop.cli.topview import Snapshot
        from bigtop.control.client import CallError, CallTimeout

        try:
            status = await client.call("status", processes=True)
            stats = await client.call("stats")
            sockets = await client.call("listsockets")
            self.snapshot = Snapshot.from_replies(status, stats, sockets, time.time())
        except (CallTimeout, CallError) as exc:
            reason = exc.reason if isinstance(exc, CallError) else "no answer"
            self.snapshot = replace(
                self.snapshot, error=f"{self.endpoint}: {reason}; is bigtop running? (retrying)"
            )
        self.wake.set()
