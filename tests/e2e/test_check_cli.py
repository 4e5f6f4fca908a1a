"""`bigtop check CONFIG [--strict] [--json]` as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import write_ini

MISSING_USER = "bigtop-no-such-user-4711"
MISSING_DIR = "/nonexistent/bigtop-check-dir"
MISSING_PROGRAM = "/nonexistent/bigtop-check-program"


def check(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `bigtop check` in `tmp_path`, so a relative CONFIG reads as the user typed it."""
    environ = {**os.environ, "BIGTOP_CHECK_PORT": "8123", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bigtop", "check", *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
    )


GOOD = """
[circus]
check_delay = 2
loglevel = DEBUG

[watcher:web]
cmd = /bin/sleep $(circus.env.port)
args = --flag
  --other
numprocesses = 2
priority = 5
stop_signal = quit
graceful_timeout = 3

[watcher:worker]
cmd = /bin/true
respawn = on-failure
autostart = false

[env:web]
PORT = $BIGTOP_CHECK_PORT

[socket:Web]
host = 127.0.0.1
port = 0

[plugin:flapping]
use = circus.plugins.flapping.Flapping
"""


def test_good_file_exits_0_with_a_readable_summary(tmp_path: Path) -> None:
    write_ini(tmp_path, GOOD)
    result = check(tmp_path, "circus.ini")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"{tmp_path / 'circus.ini'}: OK (circus.ini)",
        "",
        "[watcher:web] 2 processes, priority 5, respawn always, stop SIGQUIT then SIGKILL after 3s",
        "    $ /bin/sleep 8123 --flag --other",
        "    PORT=8123",
        "[watcher:worker] 1 process, priority 0, respawn on-failure, stop SIGTERM then SIGKILL "
        "after 30s, not autostarted",
        "    $ /bin/true",
        "[socket:web] {'host': '127.0.0.1', 'port': '0'}",
        "[plugin:flapping] use = circus.plugins.flapping.Flapping",
    ]


def test_summary_shows_user_and_directory(tmp_path: Path) -> None:
    write_ini(
        tmp_path,
        f"[watcher:w]\ncmd = /bin/true\nuid = root\ngid = root\nworking_dir = {tmp_path}\n",
    )
    result = check(tmp_path, "circus.ini")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2:] == [
        "[watcher:w] 1 process, priority 0, respawn always, stop SIGTERM then SIGKILL after 30s, "
        "as root:root",
        "    $ /bin/true",
        f"    in {tmp_path}",
    ]


BAD = """
[watcher:web]
cmd = /bin/sleep 1
numprocesses = -1
stop_signal = SIGFOO
shell = perhaps

[watcher:nocmd]
numprocesses = 1
"""


def test_bad_file_exits_1_and_reports_every_error_on_stderr(tmp_path: Path) -> None:
    write_ini(tmp_path, BAD)
    result = check(tmp_path, "circus.ini")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: circus.ini:3 [watcher:web] numprocesses: expected a non-negative integer (got '-1')",
        "error: circus.ini:4 [watcher:web] stop_signal: expected a signal name or number, like "
        "TERM, SIGQUIT or 15 (got 'SIGFOO')",
        "error: circus.ini:5 [watcher:web] shell: expected a boolean (true/false, yes/no, on/off, "
        "1/0) (got 'perhaps')",
        "error: circus.ini:7 [watcher:nocmd] cmd: missing 'cmd': every watcher needs the command to run",
        "circus.ini: 4 error(s); nothing was started",
    ]


def test_error_names_the_included_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    write_ini(conf, "[watcher:x]\ncmd = /bin/true\n\nnumprocesses = many\n", "x.ini")
    write_ini(tmp_path, "[circus]\ninclude_dir = conf.d\n")
    result = check(tmp_path, "circus.ini")
    assert result.returncode == 1
    assert (
        f"error: {conf / 'x.ini'}:4 [watcher:x] numprocesses: expected a non-negative integer (got 'many')"
        in (result.stderr.splitlines())
    )


def test_warnings_go_to_stderr_and_do_not_fail(tmp_path: Path) -> None:
    write_ini(tmp_path, "[watcher:w]\ncmd = /bin/true\nnumproceses = 2\n")
    result = check(tmp_path, "circus.ini")
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "warning: circus.ini:3 [watcher:w] numproceses: unknown option, kept as a free-form "
        "option; did you mean 'numprocesses'?"
    ]


def test_missing_config_file(tmp_path: Path) -> None:
    result = check(tmp_path, "absent.ini")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: absent.ini: cannot read the configuration file: No such file or directory",
        "absent.ini: 1 error(s); nothing was started",
    ]


def test_include_loop_is_reported(tmp_path: Path) -> None:
    write_ini(tmp_path, "[circus]\ninclude = b.ini\n[watcher:w]\ncmd = /bin/true\n", "a.ini")
    write_ini(tmp_path, "[circus]\ninclude = a.ini\n", "b.ini")
    result = check(tmp_path, "a.ini")
    assert result.returncode == 1
    a, b = tmp_path / "a.ini", tmp_path / "b.ini"
    assert f"error: {b}:2 [circus] include: include loop: {a} -> {b} -> {a} (got 'a.ini')" in (
        result.stderr.splitlines()
    )


# --- --json -------------------------------------------------------------------------------


def run_json(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = check(tmp_path, "--json", *args)
    return result.returncode, json.loads(result.stdout)


def test_json_shape_and_circus_option_names(tmp_path: Path) -> None:
    write_ini(tmp_path, GOOD)
    code, document = run_json(tmp_path, "circus.ini")
    assert code == 0
    assert list(document) == ["circus", "watchers", "sockets", "plugins", "warnings"]
    assert document["circus"] == {
        "endpoint": None,
        "endpoint_owner": None,
        "curve_secret_key": None,
        "curve_authorized_keys": None,
        "pubsub_endpoint": None,
        "stats_endpoint": None,
        "statsd": False,
        "multicast_endpoint": None,
        "check_delay": 2.0,
        "warmup_delay": 0.0,
        "umask": None,
        "pidfile": None,
        "loglevel": "debug",
        "logoutput": "-",
        "loggerconfig": None,
        "httpd": False,
        "httpd_host": "localhost",
        "httpd_port": 8080,
        "httpd_token": None,
        "debug": False,
        "debug_gc": False,
        "fqdn_prefix": None,
    }
    assert [w["name"] for w in document["watchers"]] == ["web", "worker"]
    assert document["sockets"] == [{"name": "web", "host": "127.0.0.1", "port": "0"}]
    assert document["plugins"] == [{"name": "flapping", "use": "circus.plugins.flapping.Flapping"}]
    assert document["warnings"] == []


def test_json_watcher_entry_after_substitution(tmp_path: Path) -> None:
    write_ini(tmp_path, GOOD)
    _, document = run_json(tmp_path, "circus.ini")
    web = document["watchers"][0]
    assert web == {
        "name": "web",
        "cmd": "/bin/sleep 8123",
        "args": "--flag\n--other",
        "numprocesses": 2,
        "warmup_delay": 0.0,
        "working_dir": None,
        "uid": None,
        "gid": None,
        "shell": False,
        "shell_args": None,
        "executable": None,
        "copy_env": False,
        "copy_path": False,
        "virtualenv": None,
        "virtualenv_py_ver": None,
        "env": {"PORT": "8123"},
        "env_file": None,
        "send_hup": False,
        "stop_signal": 3,
        "stop_children": False,
        "graceful_timeout": 3.0,
        "max_retry": 5,
        "priority": 5,
        "singleton": False,
        "use_sockets": False,
        "on_demand": False,
        "stdin_socket": None,
        "close_child_stdin": True,
        "close_child_stdout": False,
        "close_child_stderr": False,
        "respawn": "always",
        "success_exit_codes": [0],
        "autostart": True,
        "max_age": 0,
        "max_age_variance": 30,
        "umask": None,
        "ready_check": None,
        "ready_timeout": 30.0,
        "health_check": None,
        "health_interval": 10.0,
        "health_threshold": 3,
        "depends_on": [],
        "reload_batch": 1,
        "backoff_initial": 0.5,
        "backoff_max": 30.0,
        "backoff_reset": 1.0,
        "flapping.attempts": 2,
        "flapping.window": 1.0,
        "flapping.retry_in": 7.0,
        "flapping.max_retry": 5,
    }


def test_json_flattens_hooks_rlimits_streams_and_free_form_options(tmp_path: Path) -> None:
    write_ini(
        tmp_path,
        """
        [watcher:w]
        cmd = /bin/true
        hooks.before_start = mypkg.hooks.check, true
        hooks.after_stop = mypkg.hooks.done
        rlimit_nofile = 1024
        rlimit_core =
        stdout_stream.class = FileStream
        stdout_stream.filename = out.log
        team = ops
        flapping.max_retry = 2
        """,
    )
    _, document = run_json(tmp_path, "circus.ini")
    (w,) = document["watchers"]
    extra = {
        key: value for key, value in w.items() if "." in key or key.startswith(("rlimit_", "team"))
    }
    assert extra == {
        "hooks.before_start": "mypkg.hooks.check, true",
        "hooks.after_stop": "mypkg.hooks.done, true",
        "rlimit_nofile": 1024,
        "rlimit_core": None,
        "stdout_stream.class": "FileStream",
        "stdout_stream.filename": "out.log",
        "team": "ops",
        "flapping.attempts": 2,
        "flapping.window": 1.0,
        "flapping.retry_in": 7.0,
        "flapping.max_retry": 2,
    }


def test_json_free_form_circus_options_sit_at_top_level(tmp_path: Path) -> None:
    write_ini(tmp_path, "[circus]\nmy_team = ops\n[watcher:w]\ncmd = /bin/true\n")
    _, document = run_json(tmp_path, "circus.ini")
    assert document["circus"]["my_team"] == "ops"


def test_json_lists_warnings(tmp_path: Path) -> None:
    write_ini(tmp_path, f"[watcher:w]\ncmd = /bin/true\nworking_dir = {MISSING_DIR}\n")
    code, document = run_json(tmp_path, "circus.ini")
    assert code == 0
    assert document["warnings"] == [
        {
            "message": "directory does not exist",
            "file": "circus.ini",
            "section": "watcher:w",
            "option": "working_dir",
            "value": MISSING_DIR,
            "severity": "warning",
        }
    ]


def test_json_with_errors_exits_1_and_lists_them(tmp_path: Path) -> None:
    write_ini(tmp_path, BAD)
    code, document = run_json(tmp_path, "circus.ini")
    assert code == 1
    assert list(document) == ["errors", "warnings"]
    assert document["errors"][0] == {
        "message": "expected a non-negative integer",
        "file": "circus.ini",
        "line": 3,
        "section": "watcher:web",
        "option": "numprocesses",
        "value": "-1",
        "severity": "error",
    }
    assert [e["option"] for e in document["errors"]] == [
        "numprocesses",
        "stop_signal",
        "shell",
        "cmd",
    ]


# --- --strict -----------------------------------------------------------------------------

MACHINE = f"""
[watcher:prog]
cmd = {MISSING_PROGRAM} --serve

[watcher:dir]
cmd = /bin/true
working_dir = {MISSING_DIR}

[watcher:user]
cmd = /bin/true
uid = {MISSING_USER}

[watcher:path]
cmd = bigtop-no-such-command-in-path
"""

MACHINE_PROBLEMS = [
    "circus.ini [watcher:dir] working_dir: directory does not exist (got '/nonexistent/bigtop-check-dir')",
    "circus.ini [watcher:path] cmd: program not found in PATH (/bin:/usr/bin) (got "
    "'bigtop-no-such-command-in-path')",
    f"circus.ini [watcher:prog] cmd: program does not exist (got '{MISSING_PROGRAM}')",
    f"circus.ini [watcher:user] uid: no such user on this machine (got '{MISSING_USER}')",
]


def test_machine_problems_are_warnings_without_strict(tmp_path: Path) -> None:
    write_ini(tmp_path, MACHINE)
    result = check(tmp_path, "circus.ini")
    assert result.returncode == 0
    assert result.stderr.splitlines() == [f"warning: {line}" for line in MACHINE_PROBLEMS]
    assert result.stdout.startswith(f"{tmp_path / 'circus.ini'}: OK")


def test_strict_turns_machine_problems_into_errors(tmp_path: Path) -> None:
    write_ini(tmp_path, MACHINE)
    result = check(tmp_path, "circus.ini", "--strict")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        *(f"error: {line}" for line in MACHINE_PROBLEMS),
        "circus.ini: 4 error(s); nothing was started",
    ]


def test_strict_json_lists_machine_problems_as_errors(tmp_path: Path) -> None:
    write_ini(tmp_path, f"[watcher:w]\ncmd = /bin/true\nuid = {MISSING_USER}\n")
    code, document = run_json(tmp_path, "circus.ini", "--strict")
    assert code == 1
    assert document == {
        "errors": [
            {
                "message": "no such user on this machine",
                "file": "circus.ini",
                "section": "watcher:w",
                "option": "uid",
                "value": MISSING_USER,
                "severity": "error",
            }
        ],
        "warnings": [],
    }


def test_strict_passes_a_config_that_fits_this_machine(tmp_path: Path) -> None:
    write_ini(tmp_path, f"[watcher:w]\ncmd = sleep 1\nuid = root\nworking_dir = {tmp_path}\n")
    result = check(tmp_path, "circus.ini", "--strict")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_non_executable_program_is_flagged(tmp_path: Path) -> None:
    script = tmp_path / "app.sh"
    script.write_text("#!/bin/sh\n")
    write_ini(tmp_path, f"[watcher:w]\ncmd = {script}\n")
    result = check(tmp_path, "circus.ini", "--strict")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"error: circus.ini [watcher:w] cmd: program is not executable (chmod +x?) (got '{script}')"
    )


def test_help_describes_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bigtop", "check", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "--strict" in result.stdout
    assert "--json" in result.stdout
