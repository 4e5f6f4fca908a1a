"""`bigtop run supervisord.conf`: real processes with supervisorctl's names, the environment
supervisord gives them, and its restart behaviour; supervisord 4.3.0 as an oracle when
installed (/tmp/peers/supervisor)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.daemon import Daemon
from tests.helpers import alive, wait_until

PROBE = """\
import json, os, sys, time
out, mode = sys.argv[1], sys.argv[2]
with open(out + ".starts", "a") as log:
    log.write(f"{os.getpid()}\\n")
starts = len(open(out + ".starts").read().split())
record = {"env": dict(os.environ), "argv": sys.argv[1:], "cwd": os.getcwd(),
          "umask": os.umask(0o22)}
with open(out + ".tmp", "w") as handle:
    json.dump(record, handle)
os.replace(out + ".tmp", out)
print(f"started {os.path.basename(out)}", flush=True)
print(f"to stderr {os.path.basename(out)}", file=sys.stderr, flush=True)
if mode == "sleep":
    time.sleep(3600)
code, _, until = mode.partition("-until-")  # "4-until-3": exit 4 for the first 2 starts
if until and starts >= int(until):
    time.sleep(3600)
sys.exit(int(code))
"""

# Several programs, a group, numprocs, expansions and includes, as teams write them.
CONF = """\
[unix_http_server]
file = {runtime}/supervisor.sock

[supervisord]
logfile = {runtime}/supervisord.log
pidfile = {runtime}/supervisord.pid
childlogdir = {runtime}
nodaemon = true
environment = APP_ENV="staging",SHARED="from supervisord"

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:web]
command = {python} %(here)s/probe.py %(ENV_OUT_DIR)s/%(program_name)s_%(process_num)s sleep
process_name = %(program_name)s_%(process_num)02d
numprocs = 2
directory = %(here)s
environment = WEB_PORT="80%(process_num)02d",SHARED="from web"
stdout_logfile = %(here)s/web-%(process_num)s.log
redirect_stderr = true
stopwaitsecs = 5

[program:api]
command = {python} %(here)s/probe.py %(ENV_OUT_DIR)s/%(program_name)s sleep
umask = 027
stopwaitsecs = 5

[program:worker]
command = {python} %(here)s/probe.py %(ENV_OUT_DIR)s/%(group_name)s_%(program_name)s sleep
environment = QUEUE="default"
stopwaitsecs = 5

[program:clock]
command = {python} %(here)s/probe.py %(ENV_OUT_DIR)s/%(group_name)s_%(program_name)s sleep
stopwaitsecs = 5

[group:jobs]
programs = worker,clock
"""

RESTARTS = """\
[supervisord]

[program:expected]
command = {python} %(here)s/probe.py %(here)s/out/expected 3
autorestart = unexpected
exitcodes = 0,3
startsecs = 0

[program:unexpected]
command = {python} %(here)s/probe.py %(here)s/out/unexpected 4-until-3
autorestart = unexpected
exitcodes = 0,3
startsecs = 0

[program:once]
command = {python} %(here)s/probe.py %(here)s/out/once 5
autorestart = false
startsecs = 0

[program:broken]
command = {python} %(here)s/probe.py %(here)s/out/broken 1
; well above a start on a busy machine: a run that lasts startsecs counts as started
startsecs = 3
startretries = 2
"""


class Runner:
    """`bigtop run FILE` with a runtime directory of its own (its default endpoints)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.runtime = Path(tempfile.mkdtemp(prefix="btm-", dir="/tmp"))
        self.daemons: list[Daemon] = []

    def start(self, config: Path, *extra: str, env: dict[str, str] | None = None) -> Daemon:
        log = self.directory / f"bigtop-{len(self.daemons)}.log"
        sink = log.open("w")
        environ = {**os.environ, "XDG_RUNTIME_DIR": str(self.runtime), **(env or {})}
        process = subprocess.Popen(
            [sys.executable, "-m", "bigtop", "run", str(config), *extra],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env=environ,
            cwd=config.parent,
        )
        daemon = Daemon(process, self.runtime / "bigtop", config, log, sink)
        self.daemons.append(daemon)
        return daemon

    def close(self) -> list[int]:
        leaked = []
        for daemon in self.daemons:
            if daemon.process.poll() is None:
                try:
                    daemon.stop(signal.SIGTERM, timeout=20)
                except subprocess.TimeoutExpired:
                    daemon.process.kill()
                    daemon.process.wait()
            daemon.sink.close()
            for pid in sorted(daemon.seen):
                if alive(pid):
                    leaked.append(pid)
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.runtime, ignore_errors=True)
        return leaked


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    found = Runner(tmp_path)
    yield found
    assert not found.close(), "processes left running"


def prepare(directory: Path, conf: str, **values: str) -> Path:
    (directory / "probe.py").write_text(PROBE)
    (directory / "out").mkdir(exist_ok=True)
    path = directory / "supervisord.conf"
    path.write_text(textwrap.dedent(conf).format(python=sys.executable, **values))
    return path


def record(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def wait_records(directory: Path, names: list[str], timeout: float = 15.0) -> None:
    wait_until(
        lambda: all((directory / n).exists() for n in names),
        timeout,
        what=f"records of {names} in {directory}",
    )


def starts(path: Path) -> int:
    try:
        return len(Path(f"{path}.starts").read_text().split())
    except FileNotFoundError:
        return 0


RECORDS = ["web_0", "web_1", "api", "jobs_worker", "jobs_clock"]
NAMES = ["api", "jobs:clock", "jobs:worker", "web:web_00", "web:web_01"]


def test_runs_a_real_world_supervisord_conf(runner: Runner, tmp_path: Path) -> None:
    config = prepare(tmp_path, CONF, runtime=str(runner.runtime))
    out = tmp_path / "out"
    daemon = runner.start(config, env={"OUT_DIR": str(out)})
    daemon.wait_ready()
    wait_records(out, RECORDS)
    listed = daemon.call("list")
    assert sorted(listed["watchers"]) == NAMES
    for name in NAMES:
        status = daemon.call("status", name=name)
        assert status["status"] == "active", (name, status)
    web = record(out / "web_1")
    assert web["argv"] == [str(out / "web_1"), "sleep"]
    assert web["cwd"] == str(tmp_path)
    env = web["env"]
    assert env["SUPERVISOR_ENABLED"] == "1"
    assert env["SUPERVISOR_PROCESS_NAME"] == "web_01"
    assert env["SUPERVISOR_GROUP_NAME"] == "web"
    assert (env["WEB_PORT"], env["SHARED"], env["APP_ENV"]) == ("8001", "from web", "staging")
    assert env["OUT_DIR"] == str(out)  # bigtop's own environment is inherited
    worker = record(out / "jobs_worker")["env"]
    assert (worker["SUPERVISOR_GROUP_NAME"], worker["SUPERVISOR_PROCESS_NAME"]) == (
        "jobs",
        "worker",
    )
    assert (worker["QUEUE"], worker["SHARED"]) == ("default", "from supervisord")
    assert record(out / "api")["umask"] == 0o027
    # stdout_logfile per process, stderr redirected into it, in order
    log = tmp_path / "web-1.log"
    wait_until(lambda: "to stderr web_1" in (log.read_text() if log.exists() else ""))
    assert log.read_text().splitlines() == ["started web_1", "to stderr web_1"]
    assert daemon.stop() == 0
    assert "not supported, ignored" in daemon.output()  # [unix_http_server] and co.


def test_restart_behaviour(runner: Runner, tmp_path: Path) -> None:
    config = prepare(tmp_path, RESTARTS)
    out = tmp_path / "out"
    daemon = runner.start(config)
    daemon.wait_ready()

    def stopped(name: str) -> bool:
        return bool(daemon.call("status", name=name).get("status") == "stopped")

    # exit 3 is in exitcodes: expected, not restarted; exit 5 with autorestart = false
    wait_until(lambda: stopped("expected") and stopped("once"), 15, what="expected exits")
    assert (starts(out / "expected"), starts(out / "once")) == (1, 1)
    # exit 4 is unexpected: restarted (twice here, then the probe stays up)
    wait_until(lambda: starts(out / "unexpected") == 3, 15, what="two restarts")
    assert daemon.call("status", name="unexpected")["status"] == "active"
    # dies before startsecs every time: startretries = 2 retries, then given up (FATAL)
    wait_until(lambda: stopped("broken"), 15, what="giving up on 'broken'")
    assert starts(out / "broken") == 3
    assert "giving up" in daemon.output()
    assert daemon.stop() == 0


def test_check_reports_and_converts(tmp_path: Path) -> None:
    config = prepare(tmp_path, CONF, runtime="/tmp")
    env = {**os.environ, "OUT_DIR": str(tmp_path / "out")}
    checked = subprocess.run(
        [sys.executable, "-m", "bigtop", "check", str(config)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert checked.returncode == 0, checked.stderr
    assert "[watcher:web:web_01]" in checked.stdout
    assert "[supervisord] childlogdir: no equivalent in bigtop" in checked.stderr
    converted = subprocess.run(
        [sys.executable, "-m", "bigtop", "check", "--to-ini", str(config)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert converted.returncode == 0, converted.stderr
    ini = tmp_path / "converted.ini"
    ini.write_text(converted.stdout)
    again = subprocess.run(
        [sys.executable, "-m", "bigtop", "check", "--json", str(ini)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert again.returncode == 0, again.stderr
    assert sorted(w["name"] for w in json.loads(again.stdout)["watchers"]) == NAMES


SUPERVISORD = Path("/tmp/peers/supervisor/bin/supervisord")


@pytest.mark.slow
@pytest.mark.skipif(not SUPERVISORD.exists(), reason="supervisord 4.3.0 is not installed")
def test_same_processes_as_supervisord(runner: Runner, tmp_path: Path) -> None:
    """The oracle: each process's argv, directory, umask and Supervisor-set environment."""
    config = prepare(tmp_path, CONF, runtime=str(runner.runtime))
    theirs, ours = tmp_path / "supervisord-out", tmp_path / "bigtop-out"
    theirs.mkdir()
    ours.mkdir()
    env = {**os.environ, "OUT_DIR": str(theirs)}
    supervisord = subprocess.Popen(
        [str(SUPERVISORD), "-n", "-c", str(config)],
        env=env,
        cwd=tmp_path,  # as bigtop is started: the programs without a directory inherit it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_records(theirs, RECORDS, timeout=20)
    finally:
        supervisord.send_signal(signal.SIGTERM)
        supervisord.wait(20)
    daemon = runner.start(config, env={"OUT_DIR": str(ours)})
    daemon.wait_ready()
    wait_records(ours, RECORDS)
    assert daemon.stop() == 0
    for name in RECORDS:
        a, b = record(theirs / name), record(ours / name)
        assert a["argv"][1:] == b["argv"][1:] and a["cwd"] == b["cwd"], name
        assert a["umask"] == b["umask"], name
        # what each daemon added to the environment it was started with (bigtop serves no
        # XML-RPC, so it sets no SUPERVISOR_SERVER_URL)
        added_a = {k: v for k, v in a["env"].items() if k not in env}
        added_b = {k: v for k, v in b["env"].items() if k not in env and k != "XDG_RUNTIME_DIR"}
        added_a.pop("SUPERVISOR_SERVER_URL")
        assert added_a == added_b, name


@pytest.mark.slow
@pytest.mark.skipif(not SUPERVISORD.exists(), reason="supervisord 4.3.0 is not installed")
def test_same_restarts_as_supervisord(runner: Runner, tmp_path: Path) -> None:
    """The oracle for restarts: how many times each program was started, and its end state."""
    control = (
        f"[unix_http_server]\nfile = {runner.runtime}/s.sock\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        f"[supervisorctl]\nserverurl = unix://{runner.runtime}/s.sock\n"
    )
    config = prepare(tmp_path, RESTARTS + control)
    config.write_text(
        config.read_text().replace(
            "[supervisord]\n",
            f"[supervisord]\nlogfile = {runner.runtime}/s.log\npidfile = {runner.runtime}/s.pid\n",
        )
    )
    out = tmp_path / "out"
    supervisord = subprocess.Popen(
        [str(SUPERVISORD), "-n", "-c", str(config)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ctl = [str(SUPERVISORD.parent / "supervisorctl"), "-c", str(config), "status"]
    final = {"expected": "EXITED", "once": "EXITED", "unexpected": "RUNNING", "broken": "FATAL"}

    def settled() -> bool:
        text = subprocess.run(ctl, capture_output=True, text=True).stdout
        states = dict(line.split()[:2] for line in text.splitlines() if len(line.split()) > 1)
        return states == final

    try:
        wait_until(lambda: starts(out / "broken") == 3, 30, what="supervisord's 3rd start")
        wait_until(settled, 30, interval=0.1, what="supervisord's programs settled")
    finally:
        supervisord.send_signal(signal.SIGTERM)
        supervisord.wait(20)
    theirs = {name: starts(out / name) for name in final}
    for name in final:
        Path(f"{out / name}.starts").unlink()
    daemon = runner.start(config)
    daemon.wait_ready()

    def state(name: str) -> str:
        return str(daemon.call("status", name=name).get("status"))

    ours_final = {"expected": "stopped", "once": "stopped", "unexpected": "active"}
    wait_until(
        lambda: (
            all(state(n) == s for n, s in ours_final.items())
            and starts(out / "unexpected") == theirs["unexpected"]
            and state("broken") == "stopped"
        ),
        30,
        what="bigtop's programs settled",
    )
    assert {name: starts(out / name) for name in final} == theirs
    assert daemon.stop() == 0
