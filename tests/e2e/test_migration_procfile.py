"""`bigtop run Procfile`: one process per type (or as scaled), the .env beside it, PORT as
foreman assigns it, honcho-style output, Ctrl-C stops everything."""

from __future__ import annotations

import json
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_migration_supervisor import Runner
from tests.helpers import wait_until

PROBE = """\
import json, os, signal, sys, time
name = os.environ["PS"]


def stop(signum, frame):
    open(os.path.join(sys.argv[1], name + ".stopped"), "w").close()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
keys = ("PORT", "PS", "DATABASE_URL", "GREETING", "SECRET", "FROM_SHELL")
path = os.path.join(sys.argv[1], name + ".json")
with open(path + ".tmp", "w") as handle:  # whole or absent: the test polls for it
    json.dump({k: os.environ.get(k) for k in keys} | {"cwd": os.getcwd()}, handle)
os.replace(path + ".tmp", path)
print(f"{name} listening on {os.environ['PORT']}", flush=True)
print(f"{name} warning on stderr", file=sys.stderr, flush=True)
time.sleep(3600)
"""

PROCFILE = """\
# web, worker and clock, as on Heroku
web: {python} probe.py out --role web
worker: {python} probe.py out --role worker
clock: echo clock says hi ; exec {python} probe.py out --role clock
"""

DOTENV = """\
# settings for development
DATABASE_URL=postgres://localhost/app
GREETING="hello world"
export SECRET='s3cret'
"""


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    found = Runner(tmp_path)
    yield found
    assert not found.close(), "processes left running"


def project(directory: Path) -> Path:
    (directory / "probe.py").write_text(PROBE)
    (directory / "out").mkdir()
    (directory / ".env").write_text(DOTENV)
    path = directory / "Procfile"
    path.write_text(PROCFILE.format(python=sys.executable))
    return path


def test_runs_a_procfile_with_dotenv_and_scaling(runner: Runner, tmp_path: Path) -> None:
    procfile = project(tmp_path)
    out = tmp_path / "out"
    daemon = runner.start(procfile, "-s", "web=2", env={"FROM_SHELL": "yes", "PORT": ""})
    daemon.wait_ready()
    names = ["clock.1", "web.1", "web.2", "worker.1"]
    wait_until(lambda: all((out / f"{n}.json").exists() for n in names), 15, what="4 processes")
    assert sorted(daemon.call("list")["watchers"]) == names
    seen = {n: json.loads((out / f"{n}.json").read_text()) for n in names}
    assert {n: seen[n]["PORT"] for n in names} == {
        "web.1": "5000",
        "web.2": "5001",
        "worker.1": "5100",
        "clock.1": "5200",
    }
    for name in names:
        assert seen[name]["PS"] == name
        assert seen[name]["cwd"] == str(tmp_path)
        assert seen[name]["DATABASE_URL"] == "postgres://localhost/app"
        assert (seen[name]["GREETING"], seen[name]["SECRET"]) == ("hello world", "s3cret")
        assert seen[name]["FROM_SHELL"] == "yes"

    def printed() -> list[str]:
        return re.findall(r"^\d\d:\d\d:\d\d (\S+) +\| (.*)$", daemon.output(), re.MULTILINE)

    expected = {(n, f"{n} listening on {seen[n]['PORT']}") for n in names}
    expected |= {(n, f"{n} warning on stderr") for n in names}  # stderr is shown too
    expected.add(("clock.1", "clock says hi"))  # the whole line runs in sh, ' ;' and all
    # the 'system' lines count too, so wait for these lines themselves, not for a number
    wait_until(lambda: expected <= set(printed()), 10, what="each process's two lines")
    # the names are padded to one width, as honcho does
    assert re.search(r"^\d\d:\d\d:\d\d web\.1    \| ", daemon.output(), re.MULTILINE)
    assert re.search(r"^\d\d:\d\d:\d\d system   \| bigtop .* started", daemon.output(), re.M)
    assert daemon.stop(signal.SIGINT) == 0  # Ctrl-C
    # every program got SIGTERM itself and stopped gracefully (not killed with sh)
    assert sorted(p.name for p in out.glob("*.stopped")) == [f"{n}.stopped" for n in names]
