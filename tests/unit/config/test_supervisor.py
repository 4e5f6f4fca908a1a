"""supervisord.conf read with Supervisor's rules and translated into bigtop's model."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import msgspec
import pytest

from bigtop.config.detect import config_format, read_any
from bigtop.config.load import check_config, load_config
from bigtop.config.model import Config, WatcherConfig
from bigtop.config.supervisor import byte_size, give_up_window, key_value_pairs
from bigtop.config.toini import render_ini
from bigtop.errors import ConfigError, ConfigProblem

ENV = {"HOME": "/home/app", "PATH": "/usr/bin:/bin", "DEPLOY": "blue"}


def write(directory: Path, text: str, name: str = "supervisord.conf") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def load(directory: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    return load_config(str(write(directory, text)), environ or ENV)


def problems(directory: Path, text: str) -> list[ConfigProblem]:
    return check_config(str(write(directory, text)), ENV)[1]


def warnings(directory: Path, text: str) -> list[str]:
    return [str(p) for p in problems(directory, text) if p.severity == "warning"]


def errors(directory: Path, text: str) -> list[str]:
    return [str(p) for p in problems(directory, text) if p.severity == "error"]


def watcher(config: Config, name: str) -> WatcherConfig:
    found = config.watcher(name)
    assert found is not None, [w.name for w in config.watchers]
    return found


REAL_WORLD = """
    ; a supervisord.conf as found in the wild
    [unix_http_server]
    file=/tmp/supervisor.sock   ; the path to the socket file

    [supervisord]
    logfile=/tmp/supervisord.log ; main log file
    logfile_maxbytes=50MB
    loglevel=warn
    pidfile=/tmp/supervisord.pid
    nodaemon=true
    environment=APP_ENV="production",SHARED="from supervisord"

    [rpcinterface:supervisor]
    supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

    [supervisorctl]
    serverurl=unix:///tmp/supervisor.sock

    [program:web]
    command=/usr/bin/python3 -m http.server 80%(process_num)02d
    process_name=%(program_name)s_%(process_num)02d
    numprocs=3
    directory=%(here)s
    environment=PORT="80%(process_num)02d",SHARED="from web"
    priority=10
    stopsignal=QUIT
    stopwaitsecs=20
    stdout_logfile=%(here)s/logs/%(program_name)s-%(process_num)s.log
    stdout_logfile_maxbytes=1MB
    stdout_logfile_backups=3
    redirect_stderr=true

    [program:celery]
    command=/usr/bin/python3 -c "print('celery')" --hostname=%(host_node_name)s
    autorestart=unexpected
    exitcodes=0,2
    startsecs=10
    startretries=5
    stopasgroup=true
    user=nobody
    umask=027
    stderr_logfile=NONE

    [program:beat]
    command=/usr/bin/python3 -c "print('beat')" %(ENV_DEPLOY)s
    autorestart=false
    autostart=false

    [group:workers]
    programs=celery,beat
    priority=50
"""


# ---- reading ----------------------------------------------------------------------------------
def test_recognised_by_content(tmp_path: Path) -> None:
    assert config_format(str(write(tmp_path, REAL_WORLD))) == "supervisor"
    assert config_format(str(write(tmp_path, "[program:x]\ncommand=/bin/true\n", "a.conf"))) == (
        "supervisor"
    )
    circus = "[watcher:a]\ncmd = /bin/true\n[program:b]\ncommand = /bin/true\n"
    assert config_format(str(write(tmp_path, circus, "c.ini"))) == "circus"
    assert config_format(str(write(tmp_path, "[circus]\n", "d.ini"))) == "circus"


def test_parser_rules_last_value_wins_and_comments(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [supervisord]
        [program:a]
        COMMAND = /bin/sleep 1 # the comment goes
        command = /bin/sleep 2 ; so does this one
        stopwaitsecs = 3;not a comment here, so not a number
        stopwaitsecs = 4
        environment = A="x#y;z"
        [program:a]
        autostart = false
        """,
    )
    a = watcher(config, "a")
    assert a.cmd == "/bin/sleep 2"  # the later value wins, option names are lower-cased
    assert a.graceful_timeout == 4
    assert a.autostart is False  # a section given twice is merged
    assert a.env["A"] == "x#y;z"


def test_continuation_lines(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [program:a]
        command = /bin/echo one
            two
        environment = A="1",
            B="2"
        """,
    )
    a = watcher(config, "a")
    assert a.cmd.split() == ["/bin/echo", "one", "two"]
    assert (a.env["A"], a.env["B"]) == ("1", "2")


def test_key_value_pairs() -> None:
    assert key_value_pairs("A=\"x, y\",B=2, C='z'") == {"A": "x, y", "B": "2", "C": "z"}
    assert key_value_pairs("") == {}
    for bad in ('A="x', "A", "A B=1"):
        with pytest.raises(ValueError):
            key_value_pairs(bad)


def test_byte_size() -> None:
    assert byte_size("50MB") == 50 * 1024**2
    assert byte_size("1kb") == 1024
    assert byte_size("0") == 0
    with pytest.raises(ValueError):
        byte_size("50 megs")


# ---- names and expansions --------------------------------------------------------------------
def test_process_names_are_supervisorctls(tmp_path: Path) -> None:
    config = load(tmp_path, REAL_WORLD)
    assert [w.name for w in config.watchers] == [
        "web:web_00",
        "web:web_01",
        "web:web_02",
        "workers:beat",
        "workers:celery",
    ]
    assert all(w.numprocesses == 1 for w in config.watchers)
    single = load(tmp_path, "[supervisord]\n[program:api]\ncommand=/bin/true\n")
    assert [w.name for w in single.watchers] == ["api"]


def test_expansions(tmp_path: Path) -> None:
    config = load(tmp_path, REAL_WORLD)
    web = watcher(config, "web:web_01")
    assert web.cmd == "exec /usr/bin/python3 -m http.server 8001 2>&1"
    assert web.working_dir == str(tmp_path)
    assert web.env["PORT"] == "8001"
    assert web.stdout_stream is not None
    assert web.stdout_stream.options["filename"] == f"{tmp_path}/logs/web-1.log"
    celery = watcher(config, "workers:celery")
    assert celery.cmd.endswith(f"--hostname={socket.gethostname()}")
    assert watcher(config, "workers:beat").cmd.endswith(" blue")  # %(ENV_DEPLOY)s


def test_numprocs_start_and_percent_escape(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [program:q]
        command = /bin/date +%%s %(process_num)d/%(numprocs)d
        process_name = q%(process_num)d
        numprocs = 2
        numprocs_start = 5
        """,
    )
    assert [w.name for w in config.watchers] == ["q:q5", "q:q6"]
    assert watcher(config, "q:q6").cmd == "/bin/date +%s 6/2"


def test_here_is_the_directory_of_the_file_that_sets_the_value(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    write(tmp_path / "conf.d", "[program:inc]\ncommand = %(here)s/run\n", "inc.conf")
    config = load(tmp_path, "[supervisord]\n[include]\nfiles = conf.d/*.conf\n")
    assert watcher(config, "inc").cmd == f"{tmp_path}/conf.d/run"


def test_expansion_errors_name_the_place(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        """
        [program:a]
        command = /bin/run %(nope)s
        [program:b]
        command = /bin/run 100%
        [program:c]
        command = /bin/run
        startsecs = %(process_num)s
        """,
    )
    assert any(":2 [program:a] command: %(nope)s cannot be expanded" in e for e in found)
    assert any(":4 [program:b] command: badly formatted" in e and "%%" in e for e in found)
    assert any("[program:c] startsecs: %(process_num)s cannot be expanded" in e for e in found)


def test_numprocs_needs_process_num_in_the_name(tmp_path: Path) -> None:
    found = errors(tmp_path, "[program:w]\ncommand = /bin/true\nnumprocs = 2\n")
    assert any("needs %(process_num)s in process_name" in e for e in found)
    bad_name = errors(tmp_path, "[program:w]\ncommand=/bin/true\nprocess_name = a b\n")
    assert any("contains ' '" in e for e in bad_name)


def test_duplicate_process_names_are_an_error(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        "[program:a]\ncommand=/bin/true\nprocess_name=x\n"
        "[program:b]\ncommand=/bin/true\nprocess_name=x\n"
        "[group:g]\nprograms=a,b\n",
    )
    assert any("two processes would be named 'g:x'" in e for e in found)


# ---- environment ------------------------------------------------------------------------------
def test_environment_layers_as_supervisord(tmp_path: Path) -> None:
    config = load(tmp_path, REAL_WORLD)
    web = watcher(config, "web:web_02")
    assert web.copy_env is True  # children inherit bigtop's environment, as supervisord's
    assert web.env["SUPERVISOR_ENABLED"] == "1"
    assert web.env["SUPERVISOR_PROCESS_NAME"] == "web_02"
    assert web.env["SUPERVISOR_GROUP_NAME"] == "web"
    assert web.env["APP_ENV"] == "production"
    assert web.env["SHARED"] == "from web"  # the program's value wins
    celery = watcher(config, "workers:celery")
    assert celery.env["SUPERVISOR_GROUP_NAME"] == "workers"
    assert celery.env["SUPERVISOR_PROCESS_NAME"] == "celery"
    assert celery.env["SHARED"] == "from supervisord"


def test_program_environment_feeds_env_expansions(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [supervisord]
        environment = ROOT="/srv"
        [program:a]
        environment = NAME="a%(process_num)s"
        command = /bin/run %(ENV_ROOT)s %(ENV_NAME)s
        """,
    )
    assert watcher(config, "a").cmd == "/bin/run /srv a0"


def test_dollar_in_environment_is_reported(tmp_path: Path) -> None:
    found = warnings(tmp_path, '[program:a]\ncommand=/bin/true\nenvironment=P="/opt:$PATH"\n')
    assert any("P=/opt:$PATH: supervisord passes $NAME through" in w for w in found)


# ---- restarting and stopping --------------------------------------------------------------
def test_autorestart_and_exitcodes(tmp_path: Path) -> None:
    config = load(tmp_path, REAL_WORLD)
    celery = watcher(config, "workers:celery")
    assert (celery.respawn, celery.success_exit_codes) == ("on-failure", (0, 2))
    assert watcher(config, "workers:beat").respawn == "never"
    assert watcher(config, "workers:beat").autostart is False
    always = load(tmp_path, "[program:a]\ncommand=/bin/true\nautorestart=true\n")
    assert watcher(always, "a").respawn == "always"
    default = load(tmp_path, "[program:a]\ncommand=/bin/true\n")
    assert (watcher(default, "a").respawn, watcher(default, "a").success_exit_codes) == (
        "on-failure",
        (0,),
    )
    assert any("true, false or unexpected" in e for e in errors(
        tmp_path, "[program:a]\ncommand=/bin/true\nautorestart=sometimes\n"
    ))  # fmt: skip


def test_startsecs_and_startretries(tmp_path: Path) -> None:
    celery = watcher(load(tmp_path, REAL_WORLD), "workers:celery")
    assert celery.backoff.reset == 10  # a process up startsecs has started
    assert (celery.backoff.initial, celery.backoff.max) == (1, 5)
    assert celery.flapping is not None
    assert celery.flapping.attempts == 6  # startretries + 1 failed starts
    assert celery.flapping.max_retry == 0  # then FATAL: never retried by itself
    assert celery.flapping.window == give_up_window(10, 6, celery.backoff)
    instant = load(tmp_path, "[program:a]\ncommand=/bin/true\nstartsecs=0\n")
    assert watcher(instant, "a").flapping is None  # supervisord never gives up then
    assert watcher(instant, "a").backoff.reset == 0


def test_give_up_window_holds_quick_failures_only() -> None:
    from bigtop.config.model import BackoffConfig

    backoff = BackoffConfig(initial=1, max=3, reset=1)
    # 4 starts dying before 1 s: restarted at once, then after 1 s and 2 s
    assert give_up_window(1, 4, backoff) == 3 * 1 + (0 + 1 + 2) + 1


def test_stopping(tmp_path: Path) -> None:
    config = load(tmp_path, REAL_WORLD)
    web = watcher(config, "web:web_00")
    assert (web.stop_signal, web.graceful_timeout) == (3, 20)  # QUIT
    celery = watcher(config, "workers:celery")
    assert celery.stop_signal == 15 and celery.graceful_timeout == 10
    assert celery.stop_children is True  # stopasgroup
    assert any("stopasgroup" in w and "no equivalent" in w for w in warnings(tmp_path, REAL_WORLD))
    found = errors(tmp_path, "[program:a]\ncommand=/bin/t\nstopasgroup=true\nkillasgroup=false\n")
    assert any("stopasgroup = true needs killasgroup = true" in e for e in found)


def test_priority_user_umask(tmp_path: Path) -> None:
    config = load(tmp_path, REAL_WORLD)
    # supervisord starts lower priorities first, bigtop higher ones: the sign flips; a
    # program of a group takes the group's priority
    assert watcher(config, "web:web_00").priority == -10
    assert watcher(config, "workers:celery").priority == -50
    celery = watcher(config, "workers:celery")
    assert (celery.uid, celery.umask) == ("nobody", 0o027)


# ---- output -----------------------------------------------------------------------------------
def test_log_files(tmp_path: Path) -> None:
    config = load(tmp_path, REAL_WORLD)
    web = watcher(config, "web:web_00")
    assert web.stdout_stream is not None
    assert web.stdout_stream.class_name == "FileStream"
    assert web.stdout_stream.options["max_bytes"] == str(1024**2)
    assert web.stdout_stream.options["backup_count"] == "3"
    assert web.shell and web.stderr_stream is None  # redirect_stderr: 2>&1 into stdout
    celery = watcher(config, "workers:celery")
    assert celery.close_child_stderr is True  # NONE
    assert celery.stdout_stream is None  # AUTO: bigtop's own stdout
    defaults = load(tmp_path, "[program:a]\ncommand=/bin/true\nstdout_logfile=/var/log/a.log\n")
    stream = watcher(defaults, "a").stdout_stream
    assert stream is not None
    assert stream.options["max_bytes"] == str(50 * 1024**2)  # supervisord's defaults
    assert stream.options["backup_count"] == "10"
    devices = load(
        tmp_path,
        "[program:a]\ncommand=/bin/true\nstdout_logfile=/dev/stdout\nstderr_logfile=/dev/stdout\n",
    )
    a = watcher(devices, "a")
    assert a.stdout_stream is None  # bigtop's own stdout already
    assert a.stderr_stream is not None and a.stderr_stream.options["max_bytes"] == "0"


def test_auto_logs_reported_once(tmp_path: Path) -> None:
    text = "[program:a]\ncommand=/bin/true\n[program:b]\ncommand=/bin/true\n"
    found = [w for w in warnings(tmp_path, text) if "AUTO" in w]
    assert len(found) == 1 and "for a, b:" in found[0]


# ---- what has no equivalent -----------------------------------------------------------------
def test_unmapped_options_reported_once_each(tmp_path: Path) -> None:
    text = """
        [supervisord]
        minfds = 4096
        [program:a]
        command = /bin/true
        stdout_events_enabled = true
        serverurl = AUTO
        [program:b]
        command = /bin/true
        stdout_events_enabled = true
        """
    found = warnings(tmp_path, text)
    events = [w for w in found if "stdout_events_enabled" in w]
    assert len(events) == 1 and "(also in [program:b])" in events[0]
    assert any("[supervisord] minfds: no equivalent in bigtop" in w for w in found)
    assert any("[program:a] serverurl: no equivalent" in w for w in found)


def test_sections_without_equivalent_and_typos(tmp_path: Path) -> None:
    found = warnings(tmp_path, REAL_WORLD + "[eventlistener:x]\ncommand=/bin/true\n")
    for section in ("unix_http_server", "rpcinterface:supervisor", "supervisorctl"):
        assert any(f"[{section}]: not supported, ignored" in w for w in found), section
    assert any("[eventlistener:x]: not supported" in w for w in found)
    typo = warnings(tmp_path, "[program:a]\ncommand=/bin/true\nautorestrat=true\n")
    assert any("autorestrat: unknown option" in w and "'autorestart'" in w for w in typo)


def test_group_errors(tmp_path: Path) -> None:
    found = errors(tmp_path, "[program:a]\ncommand=/bin/true\n[group:g]\nprograms=a,zz\n")
    assert any("[group:g] programs: names unknown program 'zz'" in e for e in found)
    missing = errors(tmp_path, "[program:a]\npriority=1\n")
    assert any("[program:a] command: missing 'command'" in e for e in missing)
    with pytest.raises(ConfigError):
        load(tmp_path, "[program:a]\npriority=high\ncommand=/bin/true\n")


# ---- includes ---------------------------------------------------------------------------------
def test_include_relative_to_the_file_later_values_win(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    write(tmp_path / "conf.d", "[program:a]\nstopwaitsecs = 7\n", "a.conf")
    write(tmp_path / "conf.d", "[program:b]\ncommand = /bin/b\n[include]\nfiles=x\n", "b.conf")
    path = write(
        tmp_path,
        """
        [supervisord]
        [include]
        files = conf.d/*.conf missing/*.conf
        [program:a]
        command = /bin/a
        stopwaitsecs = 1
        """,
    )
    config, found = check_config(str(path), ENV)
    assert config is not None, found
    assert watcher(config, "a").graceful_timeout == 7  # the included file came later
    assert watcher(config, "b").cmd == "/bin/b"
    assert len(config.files) == 3
    text = [str(p) for p in found]
    assert any("no file matches 'missing/*.conf'" in t for t in text)
    assert any("b.conf:3 [include]: an [include] inside an included file" in t for t in text)


def test_circus_section_passes_through(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        f"""
        [supervisord]
        loglevel = blather
        [circus]
        endpoint = ipc://{tmp_path}/c.sock
        [program:a]
        command = /bin/true
        """,
    )
    assert config.circus.endpoint == f"ipc://{tmp_path}/c.sock"
    assert config.circus.loglevel == "debug"


# ---- the equivalent circus.ini ----------------------------------------------------------------
def _comparable(config: Config) -> dict[str, object]:
    data = msgspec.to_builtins(config)
    for key in ("path", "files", "warnings"):
        data.pop(key)
    for item in data["watchers"]:
        item.pop("source")
    return data


def test_to_ini_loads_to_the_same_config(tmp_path: Path) -> None:
    path = write(tmp_path, REAL_WORLD)
    direct = load_config(str(path), ENV)
    text, cannot = render_ini(read_any(str(path), ENV), "generated")
    assert cannot == []
    ini = tmp_path / "circus.ini"
    ini.write_text(text)
    assert config_format(str(ini)) == "circus"
    assert _comparable(load_config(str(ini), ENV)) == _comparable(direct)


def test_to_ini_reports_what_it_cannot_write(tmp_path: Path) -> None:
    path = write(tmp_path, '[program:a]\ncommand=/bin/true\nenvironment=A="%(ENV_X)s"\n')
    _, cannot = render_ini(read_any(str(path), {"X": "x ;y"}))
    assert any("' ;' starts a comment" in str(p) for p in cannot)
