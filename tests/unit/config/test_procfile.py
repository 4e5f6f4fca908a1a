"""Procfile (+ .env) translated into bigtop's model, and the honcho-style output."""

from __future__ import annotations

import io
import time
from pathlib import Path

import msgspec
import pytest

from bigtop.config.detect import config_format, read_any
from bigtop.config.load import check_config, load_config
from bigtop.config.model import Config, StreamConfig, WatcherConfig
from bigtop.config.procfile import (
    PORT_ENV,
    SCALE_ENV,
    looks_like_procfile,
    parse_procfile,
    parse_scale,
    port_for,
    with_exec,
)
from bigtop.config.toini import render_ini
from bigtop.runtime.output import ProcfileFormat, make_sink

PROCFILE = """\
# three process types, as on Heroku
web: python3 -m http.server $PORT
worker: python3 worker.py --queue default
clock: python3 clock.py
"""


def procfile(directory: Path, text: str = PROCFILE, env: str | None = None) -> Path:
    path = directory / "Procfile"
    path.write_text(text)
    if env is not None:
        (directory / ".env").write_text(env)
    return path


def load(path: Path, environ: dict[str, str] | None = None) -> Config:
    return load_config(str(path), {"PATH": "/usr/bin:/bin", **(environ or {})})


def watcher(config: Config, name: str) -> WatcherConfig:
    found = config.watcher(name)
    assert found is not None, [w.name for w in config.watchers]
    return found


def test_recognised_by_name_and_content(tmp_path: Path) -> None:
    assert config_format(str(procfile(tmp_path))) == "procfile"
    other = tmp_path / "services.txt"
    other.write_text(PROCFILE)
    assert config_format(str(other)) == "procfile"
    assert not looks_like_procfile("[circus]\nendpoint: ipc:///x\n")
    assert not looks_like_procfile("# nothing\n")


def test_parse() -> None:
    types, problems = parse_procfile(
        "web: run web\n\n# comment\nbad line\nweb: again\nw-2_x:   spaced  \n", "P"
    )
    assert [(t.name, t.command, t.line) for t in types] == [
        ("web", "run web", 1),
        ("w-2_x", "spaced", 6),
    ]
    assert [(p.severity, p.line) for p in problems] == [("warning", 4), ("error", 5)]
    assert "already defined on line 1" in problems[1].message


def test_one_watcher_per_process_named_as_foreman(tmp_path: Path) -> None:
    config = load(procfile(tmp_path), {SCALE_ENV: "web=2,clock=0"})
    assert [w.name for w in config.watchers] == ["web.1", "web.2", "worker.1"]
    web = watcher(config, "web.1")
    assert web.cmd == "exec python3 -m http.server $PORT"  # the program replaces sh -c
    assert web.shell and web.copy_env  # sh -c, and the environment bigtop was started with
    assert web.working_dir == str(tmp_path)
    assert web.graceful_timeout == 5
    assert web.env == {"PORT": "5000", "PS": "web.1"}


def test_ports_as_foreman_assigns_them(tmp_path: Path) -> None:
    path = procfile(tmp_path)
    ports = {w.name: w.env["PORT"] for w in load(path, {SCALE_ENV: "all=2"}).watchers}
    assert ports == {
        "web.1": "5000",
        "web.2": "5001",
        "worker.1": "5100",
        "worker.2": "5101",
        "clock.1": "5200",
        "clock.2": "5201",
    }
    assert port_for(3000, 2, 4) == 3204
    from_option = load(path, {PORT_ENV: "7000", "PORT": "9000"})
    assert watcher(from_option, "worker.1").env["PORT"] == "7100"
    from_environment = load(path, {"PORT": "9000"})
    assert watcher(from_environment, "web.1").env["PORT"] == "9000"
    (tmp_path / ".env").write_text("PORT=8000\n")
    from_dotenv = load(path, {"PORT": "9000"})
    assert watcher(from_dotenv, "clock.1").env["PORT"] == "8200"


def test_dotenv_beside_the_procfile(tmp_path: Path) -> None:
    path = procfile(tmp_path, env='# settings\nexport DATABASE_URL="postgres://db/app"\noops\n')
    config, problems = check_config(str(path), {})
    assert config is not None
    assert watcher(config, "worker.1").env_file == str(tmp_path / ".env")
    assert config.files == (str(path), str(tmp_path / ".env"))
    assert [(p.line, p.severity) for p in problems if p.file == str(tmp_path / ".env")] == [
        (3, "warning")
    ]
    (tmp_path / "bare").mkdir()
    assert load(procfile(tmp_path / "bare")).watchers[0].env_file is None


def test_scale_errors(tmp_path: Path) -> None:
    assert parse_scale("web=3, worker=2") == {"web": 3, "worker": 2}
    with pytest.raises(ValueError, match="TYPE=COUNT"):
        parse_scale("web:3")
    _, problems = check_config(str(procfile(tmp_path)), {SCALE_ENV: "api=2"})
    assert any("names 'api', which is not a process type" in p.message for p in problems)
    _, problems = check_config(str(procfile(tmp_path)), {PORT_ENV: "http"})
    assert any("expected a port number" in p.message for p in problems)


def test_exec_only_in_front_of_simple_commands() -> None:
    assert with_exec("gunicorn -b :$PORT app 2>&1") == "exec gunicorn -b :$PORT app 2>&1"
    assert with_exec('echo "a; b"') == 'exec echo "a; b"'
    for kept in ("a ; b", "a&&b", "a | b", "run $(date)", "FOO=1 run", "cd x", "exec run"):
        assert with_exec(kept) == kept


def test_semicolons_stay_in_the_command(tmp_path: Path) -> None:
    path = procfile(tmp_path, "release: ./migrate ; ./seed\n")
    config, problems = check_config(str(path), {})
    assert config is not None
    assert watcher(config, "release.1").cmd == "./migrate ; ./seed"
    assert not [p for p in problems if "dropped" in p.message]
    _, cannot = render_ini(read_any(str(path), {}))
    assert any("' ;' starts a comment" in str(p) for p in cannot)


def test_to_ini_loads_to_the_same_config(tmp_path: Path) -> None:
    path = procfile(tmp_path, env="A=1\n")
    environ = {SCALE_ENV: "worker=3"}
    text, cannot = render_ini(read_any(str(path), environ))
    assert cannot == []
    ini = tmp_path / "circus.ini"
    ini.write_text(text)

    def comparable(config: Config) -> object:
        data = msgspec.to_builtins(config)
        for item in data["watchers"]:
            item.pop("source")
        return data["watchers"], data["circus"]

    assert comparable(load(ini, environ)) == comparable(load(path, environ))


# ---- output -----------------------------------------------------------------------------------
def test_format_is_honchos() -> None:
    now = time.mktime((2026, 1, 2, 13, 4, 5, 0, 0, -1))
    plain = ProcfileFormat(8, None)
    assert plain("web.1", 42, "stdout", b"hello\nworld\n", now) == (
        b"13:04:05 web.1    | hello\n13:04:05 web.1    | world\n"
    )
    coloured = ProcfileFormat(5, "cyan")
    assert coloured("web.1", 42, "stdout", b"x\n", now) == b"\x1b[36m13:04:05 web.1 |\x1b[0m x\n"


class Terminal(io.BytesIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal() -> None:
    config = StreamConfig(class_name="ProcfileStream", options={"width": "6", "color": "red"})
    for target, coloured in ((io.BytesIO(), False), (Terminal(), True)):
        sink = make_sink(config, target=target, clock=lambda: 0.0)
        sink.write_block("web.1", 1, "stdout", b"line\n")
        assert (b"\x1b[31m" in target.getvalue()) is coloured
        assert target.getvalue().endswith(
            b"web.1  |" + (b"\x1b[0m" if coloured else b"") + b" line\n"
        )
