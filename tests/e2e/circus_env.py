"""The real Circus 0.19.0 tools, in a throw-away venv cached outside the repo.

bigtop must be drivable by `circusctl` and `circus.client.CircusClient` unchanged, so the
compatibility tests run the real ones. The venv is built once per machine under
`~/.cache/bigtop-tests/circus-0.19.0` (or `$BIGTOP_CIRCUS_VENV`), reused while its python
can import the right circus, and built under a file lock so parallel pytest workers do not
build it twice. A failed build fails the tests with pip's output: never a silent skip.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CIRCUS_VERSION = "0.19.0"
BUILD_TIMEOUT = 600.0


class CircusEnvError(Exception):
    pass


def venv_dir() -> Path:
    explicit = os.environ.get("BIGTOP_CIRCUS_VENV")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "bigtop-tests" / f"circus-{CIRCUS_VERSION}"


def clean_environ(**extra: str) -> dict[str, str]:
    """The environment for Circus's tools: nothing of this project's venv or endpoints."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CIRCUSCTL_ENDPOINT")
        and not key.startswith("BIGTOP_")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


@dataclass(frozen=True)
class CircusEnv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def circusctl(self) -> Path:
        return self.root / "bin" / "circusctl"

    def works(self) -> bool:
        if not self.python.exists() or not self.circusctl.exists():
            return False
        probe = subprocess.run(
            [
                str(self.python),
                "-c",
                f"import circus, circus.client; assert circus.__version__ == {CIRCUS_VERSION!r}",
            ],
            capture_output=True,
            timeout=60,
            env=clean_environ(),
            check=False,
        )
        return probe.returncode == 0

    def ctl(
        self, endpoint: str, *args: str, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """`circusctl --endpoint ENDPOINT ARGS...` (global options may come first in ARGS)."""
        return subprocess.run(
            [str(self.circusctl), "--endpoint", endpoint, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_environ(),
            check=False,
        )

    def script(
        self, code: str, *args: str, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run `code` with the Circus venv's python."""
        return subprocess.run(
            [str(self.python), "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_environ(),
            check=False,
        )

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        """A long-running Circus tool (e.g. `circusctl listen`), line-buffered stdout."""
        return subprocess.Popen(
            [str(self.root / "bin" / argv[0]), *argv[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=clean_environ(),
        )


def _run(argv: list[str], what: str) -> None:
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            env=clean_environ(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CircusEnvError(f"{what} took longer than {BUILD_TIMEOUT:g}s: {argv}") from None
    if result.returncode != 0:
        raise CircusEnvError(
            f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
        )


def ensure_circus_env() -> CircusEnv:
    """The cached Circus venv, built now (under a lock) when missing or broken."""
    root = venv_dir()
    env = CircusEnv(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".circus-{CIRCUS_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if env.works():
                return env
            shutil.rmtree(root, ignore_errors=True)
            base = shutil.which("python3") or sys.executable
            _run([base, "-m", "venv", str(root)], "creating the Circus venv")
            _run(
                [
                    str(env.python),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--quiet",
                    f"circus=={CIRCUS_VERSION}",
                ],
                f"pip install circus=={CIRCUS_VERSION}",
            )
            if not env.works():
                raise CircusEnvError(
                    f"circus=={CIRCUS_VERSION} installed in {root} but its python cannot import it"
                )
            return env
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
