"""`bigtop run` the way DaemonPool starts it, with two more choices: the endpoints directory
(a restarted daemon must use the same one to find what its predecessor left) and a command
that runs before the interpreter (to start it with fewer privileges)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from tests.e2e.daemon import Daemon, DaemonPool, endpoints_section


def start(
    pool: DaemonPool,
    ini: str,
    *,
    sockets: Path | None = None,
    python_args: tuple[str, ...] = (),
) -> Daemon:
    """Start `bigtop run` (with `python_args` before `-m bigtop`); the pool stops it."""
    sockets = sockets or Path(tempfile.mkdtemp(prefix="btc-", dir="/tmp"))
    index = len(pool.started)
    config = pool.directory / f"circus-{index}.ini"
    config.write_text(endpoints_section(sockets) + textwrap.dedent(ini).lstrip())
    log = pool.directory / f"daemon-{index}.log"
    sink = log.open("w")
    process = subprocess.Popen(
        [sys.executable, *python_args, "-m", "bigtop", "run", str(config)],
        stdout=sink,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=pool.directory,
    )
    daemon = Daemon(process, sockets, config, log, sink)
    pool.started.append(daemon)
    return daemon
