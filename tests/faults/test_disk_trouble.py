"""Disk trouble: a full disk (a small tmpfs) or an unwritable log directory affects only the
stream that writes there. It is reported in the daemon's log when it starts and when it
ends, the other watchers' output keeps flowing, the daemon keeps answering, and the stream
recovers by itself once it can write again, with whole lines only.

An unwritable directory needs a daemon that permissions apply to: it runs as root without
CAP_DAC_OVERRIDE (dropped from its bounding set before it starts)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.daemon import Daemon, DaemonPool
from tests.faults import launch
from tests.faults.observe import report
from tests.helpers import PYTHON, wait_until

WRITER = """\
import sys, time
tag = sys.argv[1]
for number in range(1_000_000):
    print(f"{tag} {number:06d}", flush=True)
    time.sleep(0.002)
"""
# Started as root without the capability that lets root write anywhere.
WITHOUT_DAC_OVERRIDE = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH\n"
    "    assert libc.prctl(24, capability, 0, 0, 0) == 0  # PR_CAPBSET_DROP\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
)


@pytest.fixture
def small_tmpfs() -> Iterator[Path]:
    """A 256 KiB tmpfs (root can mount one here), unmounted afterwards (ask for it before
    the daemon, so that the daemon is stopped first)."""
    directory = Path(tempfile.mkdtemp(prefix="bt-full-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        directory.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)
        directory.rmdir()


def fill(directory: Path) -> Path:
    """Take every free byte of the filesystem; the file that holds them."""
    filler = directory / "filler"
    failure: OSError | None = None
    with open(filler, "ab", buffering=0) as handle:
        try:
            while handle.write(b"\0" * 4096):
                pass
        except OSError as exc:
            failure = exc
    assert failure is not None and failure.errno == errno.ENOSPC
    return filler


def two_writers(tmp_path: Path, trouble: Path, fine: Path) -> str:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    return f"""
        [watcher:trouble]
        cmd = {PYTHON} {script} trouble
        stdout_stream.class = FileStream
        stdout_stream.filename = {trouble}

        [watcher:fine]
        cmd = {PYTHON} {script} fine
        stdout_stream.class = FileStream
        stdout_stream.filename = {fine}
        """


def start_unprivileged(pool: DaemonPool, ini: str) -> Daemon:
    """A daemon stripped of CAP_DAC_OVERRIDE: directory permissions apply to it."""
    return launch.start(pool, ini, python_args=("-c", WITHOUT_DAC_OVERRIDE))


def numbers(path: Path, tag: str) -> list[int]:
    """The numbers the writer printed, from a file that must hold whole lines only."""
    if not path.exists():
        return []
    found = []
    text = path.read_text()
    # A write that crosses a page boundary can be seen half done for a moment (the file's
    # size grows page by page): only a fragment at the very end is that, and it is skipped.
    lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
    for line in lines:
        assert re.fullmatch(rf"{tag} \d{{6}}", line), f"not a whole line: {line!r}"
        found.append(int(line.split()[1]))
    return found


def grows(path: Path, tag: str, beyond: int) -> bool:
    return len(numbers(path, tag)) > beyond


def assert_fine_kept_flowing(daemon: Daemon, fine: Path, during: int) -> None:
    got = numbers(fine, "fine")
    assert got == list(range(len(got))), "the other stream lost or reordered lines"
    assert len(got) > during
    assert daemon.call("status")["statuses"] == {"fine": "active", "trouble": "active"}


def test_a_full_disk_costs_only_that_stream_and_it_recovers(
    small_tmpfs: Path, bigtop: DaemonPool, tmp_path: Path
) -> None:
    # (small_tmpfs comes first: the daemon stops before the filesystem is unmounted)
    trouble, fine = small_tmpfs / "trouble.log", tmp_path / "fine.log"
    daemon = bigtop.start(two_writers(tmp_path, trouble, fine))
    daemon.wait_ready()
    wait_until(lambda: grows(trouble, "trouble", 10) and grows(fine, "fine", 10), 15)
    filler = fill(small_tmpfs)
    full = f"cannot write to {trouble}: No space left on device"
    wait_until(lambda: full in daemon.output(), 15, what="the full disk reported")
    written_before = len(numbers(trouble, "trouble"))
    fine_at_outage = len(numbers(fine, "fine"))
    wait_until(lambda: grows(fine, "fine", fine_at_outage + 200), 15, what="fine to go on")
    assert len(numbers(trouble, "trouble")) == written_before  # nothing got through
    filler.unlink()
    wait_until(lambda: "resumed" in daemon.output(), 15, what="the recovery reported")
    wait_until(lambda: grows(trouble, "trouble", written_before + 50), 15)
    assert_fine_kept_flowing(daemon, fine, fine_at_outage + 200)
    resumed = re.search(
        r"writing to \S+ resumed; lost (\d+) bytes \((\d+) lines\)", daemon.output()
    )
    assert resumed is not None and "while the disk was full" in daemon.output()
    got = numbers(trouble, "trouble")
    assert got == sorted(got), "lines out of order"
    assert daemon.output().count(full) == 1, "reported once, not per write"
    report("full_disk", lost_lines=int(resumed.group(2)), lost_bytes=int(resumed.group(1)))


def test_an_unwritable_log_directory_mid_run(bigtop: DaemonPool, tmp_path: Path) -> None:
    """logrotate moved the file away and the directory does not let the daemon make a new
    one: that stream is dropped (and says so) until the directory is writable again."""
    locked = tmp_path / "locked"
    locked.mkdir()
    trouble, fine = locked / "trouble.log", tmp_path / "fine.log"
    daemon = start_unprivileged(bigtop, two_writers(tmp_path, trouble, fine))
    daemon.wait_ready()
    wait_until(lambda: grows(trouble, "trouble", 10) and grows(fine, "fine", 10), 15)
    try:
        locked.chmod(0o500)
        trouble.rename(locked / "trouble.log.1")
        denied = f"cannot write to {trouble}: Permission denied"
        wait_until(lambda: denied in daemon.output(), 15, what="the failure reported")
        fine_at_outage = len(numbers(fine, "fine"))
        wait_until(lambda: grows(fine, "fine", fine_at_outage + 200), 15)
        assert not trouble.exists()
    finally:
        locked.chmod(0o700)
    wait_until(lambda: grows(trouble, "trouble", 10), 15, what="the stream to come back")
    assert "resumed" in daemon.output()
    assert_fine_kept_flowing(daemon, fine, fine_at_outage + 200)
    rotated = numbers(locked / "trouble.log.1", "trouble")
    assert numbers(trouble, "trouble")[0] > rotated[-1]


def test_an_unwritable_log_directory_at_start(bigtop: DaemonPool, tmp_path: Path) -> None:
    """The watcher starts anyway; only its output waits for the directory."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    trouble, fine = locked / "trouble.log", tmp_path / "fine.log"
    try:
        daemon = start_unprivileged(bigtop, two_writers(tmp_path, trouble, fine))
        daemon.wait_ready()
        denied = f"cannot write to {trouble}: Permission denied"
        wait_until(lambda: denied in daemon.output(), 15, what="the failure reported")
        wait_until(lambda: grows(fine, "fine", 200), 15)
        assert daemon.call("status")["statuses"] == {"fine": "active", "trouble": "active"}
        assert not trouble.exists()
    finally:
        locked.chmod(0o700)
    wait_until(lambda: grows(trouble, "trouble", 10), 15, what="the stream to come back")
    assert "resumed" in daemon.output()
    assert_fine_kept_flowing(daemon, fine, 200)


@pytest.fixture(autouse=True)
def _writable_again(tmp_path: Path) -> Iterator[None]:
    """pytest must be able to remove what a test locked, whatever happened."""
    yield
    with contextlib.suppress(OSError):
        for directory in tmp_path.rglob("*"):
            if directory.is_dir():
                directory.chmod(0o700)
    shutil.rmtree(tmp_path / "locked", ignore_errors=True)
    os.sync()
