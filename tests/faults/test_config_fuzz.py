"""Config fuzzing: mutated INI files never crash `bigtop check` or `bigtop run`.

A valid file using most options is mutated by Hypothesis (lines deleted, duplicated,
swapped, cut, or re-indented; values and option names replaced by troublesome ones; section
headers, random text and bytes that are not UTF-8 inserted). `bigtop check` (in this
process, 500 files) either accepts the file or exits 1 with `error:` lines that each
name the file; it never shows a traceback. `bigtop run` (a real process, 10 files) either
starts, answers, and stops cleanly on SIGTERM, or exits 1 with such errors; never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigtop.cli.main import build_parser
from tests.e2e.daemon import endpoints_section, exchange
from tests.faults.observe import report, scaled
from tests.helpers import alive, children_of

CHECKED = scaled(500, 5_000)  # files given to `bigtop check`
RUN = scaled(10, 100)  # files given to `bigtop run`

BASE = """\
[env]
COMMON = shared

[socket:web]
host = 127.0.0.1
port = 0
backlog = 16

[watcher:web]
cmd = sleep 3600.{tag} $(circus.wid)
numprocesses = 2
use_sockets = true
priority = 20
graceful_timeout = 1
stop_signal = TERM
respawn = on-failure
success_exit_codes = 0, 3
backoff_initial = 0.1
backoff_max = 1
flapping.attempts = 3
flapping.window = 2
max_age = 0
warmup_delay = 0
rlimit_nofile = 1024
stdout_stream.class = FileStream
stdout_stream.filename = {logs}/web.log
stdout_stream.max_bytes = 1MB
stdout_stream.backup_count = 2
stderr_stream.class = StdoutStream
stderr_stream.time_format = %H:%M:%S

[env:web]
GREETING = hello $COMMON

[watcher:worker]
cmd = sleep
args = 3600.{tag}
numprocesses = 1
depends_on = web
singleton = true
autostart = true
copy_env = false
working_dir = {logs}
stdout_stream.class = TimedRotatingFileStream
stdout_stream.filename = {logs}/worker.log
stdout_stream.rotate_when = H
stdout_stream.format = json
"""

NASTY_VALUES = [
    "", " ", "-1", "0", "1", "1.5", "1e309", "nan", "inf", "-inf", "99999999999999999999", "9" * 400,
    "10001", "true", "false", "maybe", "ALWAYS", "on-failure", "never", "TERM", "SIGRTMAX+9",
    "1KB", "1TB", "%(here)s", "%(nosuch)s", "$(circus.nosuch)", "$(circus.env.COMMON)",
    "((circus.wid))", "$HOME", "${", "\\", "\"", "''", "é", "ß字", "\u200b", "a;b", "a ; b",
    "web", "worker", "nosuch", "web, worker", "127.0.0.1", "::1", "/", "/nonexistent/x",
    "FileStream", "nosuch.Module", "os.path:join", "H", "W7", "MIDNIGHT", "json", "x" * 300,
]  # fmt: skip
OPTION_NAMES = [
    "cmd", "args", "numprocesses", "priority", "singleton", "respawn", "graceful_timeout",
    "stop_signal", "backoff_initial", "backoff_max", "backoff_reset", "flapping.attempts",
    "max_age", "depends_on", "use_sockets", "rlimit_nofile", "rlimit_bogus", "uid", "gid",
    "env", "env_file", "hooks.before_start", "stdout_stream.class", "stdout_stream.max_bytes",
    "stderr_stream.filename", "ready_check", "health_check", "host", "port", "family",
    "path", "so_reuseport", "include", "nosuch_option", "", "=",
]  # fmt: skip
SECTIONS = [
    "[watcher:extra]", "[watcher:web]", "[socket:x]", "[env:w*]", "[plugin:p]", "[nosuch]",
    "[DEFAULT]", "[watcher:]", "[", "[]", "[watcher:a b]", "[socket:web]",
]  # fmt: skip

# Values that could make `run` do something harmful are left out of what it gets: no random
# text as a value (cmd stays one of the file's own), no [circus] section (the endpoints stay
# private), no include of other files.
safe_values = st.sampled_from(NASTY_VALUES)
any_values = safe_values | st.text(max_size=30)


def mutation(values: st.SearchStrategy[str], wild: bool) -> st.SearchStrategy[tuple]:
    kinds = [
        st.tuples(st.just("delete"), st.integers(0, 10_000)),
        st.tuples(st.just("duplicate"), st.integers(0, 10_000)),
        st.tuples(st.just("swap"), st.integers(0, 10_000), st.integers(0, 10_000)),
        st.tuples(st.just("value"), st.integers(0, 10_000), values),
        st.tuples(st.just("name"), st.integers(0, 10_000), st.sampled_from(OPTION_NAMES)),
        st.tuples(st.just("section"), st.integers(0, 10_000), st.sampled_from(SECTIONS)),
        st.tuples(st.just("indent"), st.integers(0, 10_000)),
        st.tuples(st.just("no_equals"), st.integers(0, 10_000)),
        st.tuples(st.just("bytes"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("cut"), st.integers(0, 100_000)),
    ]
    if wild:
        kinds += [
            st.tuples(st.just("line"), st.integers(0, 10_000), st.text(max_size=40)),
            st.tuples(st.just("section"), st.integers(0, 10_000), st.just("[circus]")),
        ]
    return st.one_of(kinds)


def mutate(text: str, mutations: list[tuple]) -> bytes:
    lines = text.split("\n")
    raw: bytes | None = None
    for kind, where, *rest in mutations:
        index = where % max(1, len(lines))
        if kind == "delete" and lines:
            del lines[index]
        elif kind == "duplicate" and lines:
            lines.insert(index, lines[index])
        elif kind == "swap" and lines:
            other = rest[0] % len(lines)
            lines[index], lines[other] = lines[other], lines[index]
        elif kind == "value" and "=" in lines[index]:
            name = lines[index].split("=", 1)[0].strip()
            if name != "cmd" or rest[0] in ("", " "):
                lines[index] = f"{name} = {rest[0]}"
        elif kind == "name" and "=" in lines[index]:
            lines[index] = f"{rest[0]} = {lines[index].split('=', 1)[1].strip()}"
        elif kind in ("section", "line"):
            lines.insert(index, rest[0])
        elif kind == "indent" and lines:
            lines[index] = "  " + lines[index]
        elif kind == "no_equals" and lines:
            lines[index] = lines[index].replace("=", " ", 1)
        elif kind == "cut":
            joined = "\n".join(lines)
            lines = joined[: where % (len(joined) + 1)].split("\n")
        elif kind == "bytes":
            raw = rest[0]
    data = "\n".join(lines).encode("utf-8", "surrogateescape")
    if raw is not None:
        cut = where % (len(data) + 1)
        data = data[:cut] + raw + data[cut:]
    return data


def check_output_is_clear(path: Path, code: int, out: str, err: str) -> None:
    text = out + err
    assert "Traceback" not in text, text
    assert code in (0, 1), (code, text)
    if code == 1:
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert errors, err
        for line in errors:
            # each names where: the file (with line, section, option when known)
            assert str(path) in line or path.name in line, line


PARSER = build_parser()  # what `bigtop` builds at every start (23 ms): once here


def run_check(path: Path) -> tuple[int, str, str]:
    """`bigtop check PATH` in this process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        args = PARSER.parse_args(["check", str(path)])
        code = int(args.handler(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def workdir() -> Path:
    with tempfile.TemporaryDirectory(prefix="bt-cfz-") as directory:
        yield Path(directory)


@pytest.mark.timeout(scaled(60, 900))
@settings(
    max_examples=CHECKED,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutations=st.lists(mutation(any_values, wild=True), min_size=1, max_size=4))
def test_check_never_crashes_on_a_mutated_file(workdir: Path, mutations: list[tuple]) -> None:
    base = BASE.format(tag=10, logs=workdir)
    path = workdir / "circus.ini"
    path.write_bytes(mutate(base, mutations))
    check_output_is_clear(path, *run_check(path))


def test_the_unmutated_file_is_valid(workdir: Path) -> None:
    path = workdir / "valid.ini"
    path.write_text(BASE.format(tag=10, logs=workdir))
    code, _, err = run_check(path)
    assert code == 0, err


STARTED, REFUSED = "started", "refused"


def run_briefly(path: Path, sockets: Path, timeout: float = 15.0) -> str:
    """`bigtop run PATH`: started (it answered, then stopped cleanly on SIGTERM) or refused
    (exit 1 with clear errors); whatever it spawned is gone afterwards."""
    log = path.with_suffix(".log")
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "bigtop", "run", str(path)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=path.parent,
        )
    seen: set[int] = set()
    outcome = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            seen.update(children_of(process.pid))
            if process.poll() is not None:
                outcome = REFUSED
                break
            if (sockets / "control.sock").exists():
                replies = exchange(f"ipc://{sockets}/control.sock", [b'{"command": "status"}'])
                if replies and replies[0]["status"] == "ok":
                    outcome = STARTED
                    break
            time.sleep(0.02)  # polling the process and its socket, with a deadline
        assert outcome is not None, f"neither started nor refused in {timeout}s"
        if outcome == STARTED:
            seen.update(children_of(process.pid))
            process.send_signal(signal.SIGTERM)
            assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in seen:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    output = log.read_text(errors="replace")
    assert "Traceback" not in output, output
    if outcome == REFUSED:
        assert process.returncode == 1, output
        assert "error:" in output or "[ERROR]" in output, output
    assert not [pid for pid in seen if alive(pid)], "left running"
    return outcome


@pytest.mark.slow
@pytest.mark.timeout(scaled(60, 1800))
def test_run_starts_or_refuses_clearly(workdir: Path) -> None:
    outcomes: list[str] = []

    @settings(
        max_examples=RUN,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(mutations=st.lists(mutation(safe_values, wild=False), min_size=1, max_size=3))
    def run(mutations: list[tuple]) -> None:
        sockets = Path(tempfile.mkdtemp(prefix="btr-", dir="/tmp"))
        logs = workdir / f"run-{len(outcomes)}"
        logs.mkdir()
        text = endpoints_section(sockets) + BASE.format(tag=11, logs=logs)
        path = logs / "circus.ini"
        header = endpoints_section(sockets).encode()
        path.write_bytes(header + mutate(text[len(header) :], mutations))
        outcomes.append(run_briefly(path, sockets))

    run()
    report(
        "config_fuzz_run",
        files=len(outcomes),
        started=outcomes.count(STARTED),
        refused=outcomes.count(REFUSED),
    )
