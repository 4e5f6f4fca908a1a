"""The loader: every [circus], [watcher:NAME], [env] option of circus-0.19.md section 5,
bigtop's additions, substitution, and errors that name file, section, option and value."""

from __future__ import annotations

import resource
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from bigtop.config.load import check_config, load_config
from bigtop.config.model import (
    ArbiterConfig,
    BackoffConfig,
    Config,
    FlappingConfig,
    HookConfig,
    PluginConfig,
    SocketConfig,
    StreamConfig,
    WatcherConfig,
)
from bigtop.errors import ConfigError, ConfigProblem
from tests.helpers import write_ini

ENVIRON = {"HOME": "/home/tester", "USER": "tester", "PATH": "/usr/bin:/bin"}


def load(tmp_path: Path, text: str, environ: Mapping[str, str] = ENVIRON) -> Config:
    return load_config(str(write_ini(tmp_path, text)), environ=dict(environ))


def problems(
    tmp_path: Path, text: str, environ: Mapping[str, str] = ENVIRON
) -> tuple[Config | None, list[ConfigProblem]]:
    return check_config(str(write_ini(tmp_path, text)), environ=dict(environ))


def errors_of(tmp_path: Path, text: str) -> list[ConfigProblem]:
    config, found = problems(tmp_path, text)
    assert config is None
    return [p for p in found if p.severity == "error"]


def warnings_of(tmp_path: Path, text: str) -> list[ConfigProblem]:
    config, found = problems(tmp_path, text)
    assert config is not None, [str(p) for p in found]
    return [p for p in found if p.severity == "warning"]


def watcher(tmp_path: Path, options: str, environ: Mapping[str, str] = ENVIRON) -> WatcherConfig:
    config = load(tmp_path, "[watcher:w]\ncmd = sleep 1\n" + options, environ)
    (only,) = config.watchers
    return only


def path_of(tmp_path: Path) -> str:
    return str(tmp_path / "circus.ini")


# --- [circus] -----------------------------------------------------------------------------


def test_circus_defaults_without_a_circus_section(tmp_path: Path) -> None:
    config = load(tmp_path, "[watcher:w]\ncmd = sleep 1\n")
    assert config.circus == ArbiterConfig()
    circus = config.circus
    assert circus.endpoint is None  # bigtop: a per-user ipc socket
    assert circus.pubsub_endpoint is None
    assert circus.stats_endpoint is None
    assert circus.multicast_endpoint is None  # bigtop: discovery off unless configured
    assert circus.endpoint_owner is None
    assert circus.statsd is False
    assert circus.check_delay == 5.0
    assert circus.warmup_delay == 0.0
    assert circus.umask is None
    assert circus.pidfile is None
    assert circus.loglevel == "info"
    assert circus.logoutput == "-"
    assert circus.loggerconfig is None
    assert circus.httpd is False
    assert circus.httpd_host == "localhost"
    assert circus.httpd_port == 8080
    assert circus.debug is False
    assert circus.debug_gc is False
    assert circus.fqdn_prefix is None
    assert circus.options == {}


def test_empty_circus_section_gives_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "[circus]\n").circus == ArbiterConfig()


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ("endpoint = ipc:///tmp/b.sock", "endpoint", "ipc:///tmp/b.sock"),
        ("endpoint = tcp://127.0.0.1:5555", "endpoint", "tcp://127.0.0.1:5555"),
        ("endpoint_owner = nobody", "endpoint_owner", "nobody"),
        ("pubsub_endpoint = tcp://127.0.0.1:5556", "pubsub_endpoint", "tcp://127.0.0.1:5556"),
        ("stats_endpoint = tcp://127.0.0.1:5557", "stats_endpoint", "tcp://127.0.0.1:5557"),
        ("statsd = true", "statsd", True),
        ("statsd = no", "statsd", False),
        (
            "multicast_endpoint = udp://237.219.251.97:12027",
            "multicast_endpoint",
            "udp://237.219.251.97:12027",
        ),
        ("multicast_endpoint =", "multicast_endpoint", None),
        ("check_delay = 0.5", "check_delay", 0.5),
        ("check_delay = 0", "check_delay", 0.0),
        ("check_delay = -1", "check_delay", -1.0),
        ("warmup_delay = 2", "warmup_delay", 2.0),
        ("umask = 002", "umask", 0o002),
        ("umask = 027", "umask", 0o027),
        ("pidfile = /run/bigtop.pid", "pidfile", "/run/bigtop.pid"),
        ("loglevel = DEBUG", "loglevel", "debug"),
        ("loglevel = warning", "loglevel", "warning"),
        ("loglevel = Critical", "loglevel", "critical"),
        ("logoutput = /var/log/bigtop.log", "logoutput", "/var/log/bigtop.log"),
        ("logoutput = syslog:///dev/log?daemon", "logoutput", "syslog:///dev/log?daemon"),
        ("loggerconfig = logging.ini", "loggerconfig", "logging.ini"),
        ("httpd = on", "httpd", True),
        ("httpd_host = 127.0.0.1", "httpd_host", "127.0.0.1"),
        ("httpd_port = 9000", "httpd_port", 9000),
        ("debug = yes", "debug", True),
        ("debug_gc = 1", "debug_gc", True),
        ("fqdn_prefix = web", "fqdn_prefix", "web"),
    ],
)
def test_circus_option(tmp_path: Path, line: str, field: str, expected: Any) -> None:
    config = load(tmp_path, f"[circus]\n{line}\n")
    assert getattr(config.circus, field) == expected


def test_stats_endpoint_turns_statsd_on(tmp_path: Path) -> None:
    config = load(tmp_path, "[circus]\nstats_endpoint = ipc:///tmp/stats.sock\n")
    assert config.circus.statsd is True


def test_stats_endpoint_turns_statsd_on_even_over_statsd_false(tmp_path: Path) -> None:
    text = "[circus]\nstatsd = false\nstats_endpoint = ipc:///tmp/stats.sock\n"
    config, found = problems(tmp_path, text)
    assert config is not None
    assert config.circus.statsd is True
    assert found == [
        ConfigProblem(
            "stats_endpoint is set, so statsd is switched on (as in Circus)",
            file=path_of(tmp_path),
            line=2,
            section="circus",
            option="statsd",
            value="false",
            severity="warning",
        )
    ]


def test_statsd_alone_keeps_the_default_stats_endpoint(tmp_path: Path) -> None:
    circus = load(tmp_path, "[circus]\nstatsd = true\n").circus
    assert (circus.statsd, circus.stats_endpoint) == (True, None)


def test_documented_but_unread_circus_keys_are_accepted_silently(tmp_path: Path) -> None:
    text = (
        "[circus]\nstream_backend = thread\nstatsd_close_outputs = true\n"
        "httpd_close_outputs = true\n"
    )
    config, found = problems(tmp_path, text)
    assert config is not None
    assert config.circus == ArbiterConfig()
    assert found == []


def test_unknown_circus_keys_are_kept_as_free_form_options(tmp_path: Path) -> None:
    config, found = problems(tmp_path, "[circus]\nmy_team = ops\n")
    assert config is not None
    assert config.circus.options == {"my_team": "ops"}
    assert found == []


def test_circus_typo_warns_with_a_suggestion(tmp_path: Path) -> None:
    assert warnings_of(tmp_path, "[circus]\ncheck_dealy = 1\n") == [
        ConfigProblem(
            "unknown option, kept as a free-form option; did you mean 'check_delay'?",
            file=path_of(tmp_path),
            line=2,
            section="circus",
            option="check_dealy",
            severity="warning",
        )
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("check_delay = soon", "expected a number of seconds, like 5 or 0.5"),
        ("warmup_delay = -1", "expected a number >= 0"),
        ("statsd = maybe", "expected a boolean (true/false, yes/no, on/off, 1/0)"),
        ("umask = 9", "expected an octal mode like 022 or 0o027"),
        ("loglevel = loud", "expected one of critical, error, warning, info, debug"),
        ("httpd_port = -1", "expected a non-negative integer"),
        ("debug = 2", "expected a boolean (true/false, yes/no, on/off, 1/0)"),
    ],
)
def test_bad_circus_values(tmp_path: Path, line: str, expected: str) -> None:
    option, _, value = (part.strip() for part in line.partition("="))
    assert errors_of(tmp_path, f"[circus]\n{line}\n") == [
        ConfigProblem(
            expected,
            file=path_of(tmp_path),
            line=2,
            section="circus",
            option=option,
            value=value,
        )
    ]


# --- [watcher:NAME] defaults --------------------------------------------------------------


def test_watcher_defaults(tmp_path: Path) -> None:
    w = watcher(tmp_path, "")
    assert w == WatcherConfig(name="w", cmd="sleep 1", source=path_of(tmp_path))
    assert w.args == ""
    assert w.numprocesses == 1
    assert w.warmup_delay == 0.0
    assert w.working_dir is None
    assert (w.uid, w.gid) == (None, None)
    assert w.shell is False
    assert w.shell_args is None
    assert w.executable is None
    assert (w.copy_env, w.copy_path) == (False, False)
    assert (w.virtualenv, w.virtualenv_py_ver) == (None, None)
    assert w.env == {}
    assert w.env_file is None
    assert w.send_hup is False
    assert w.stop_signal == 15
    assert w.stop_children is False
    assert w.graceful_timeout == 30.0
    assert w.max_retry == 5
    assert w.priority == 0
    assert w.singleton is False
    assert w.use_sockets is False
    assert w.on_demand is False
    assert w.stdin_socket is None
    assert w.close_child_stdin is True
    assert (w.close_child_stdout, w.close_child_stderr) == (False, False)
    assert w.respawn == "always"
    assert w.success_exit_codes == (0,)
    assert w.backoff == BackoffConfig(initial=0.5, max=30.0, reset=1.0)
    assert w.flapping is None
    assert w.autostart is True
    assert (w.max_age, w.max_age_variance) == (0, 30)
    assert w.umask is None
    assert (w.rlimits, w.hooks, w.options) == ({}, {}, {})
    assert (w.stdout_stream, w.stderr_stream) == (None, None)


def test_watcher_name_keeps_its_case_and_text_after_first_colon(tmp_path: Path) -> None:
    config = load(tmp_path, "[watcher:Web:Front]\ncmd = x\n")
    assert [w.name for w in config.watchers] == ["Web:Front"]
    assert config.watcher("web:front") is config.watchers[0]
    assert config.watcher("nope") is None


@pytest.mark.parametrize(
    ("lines", "field", "expected"),
    [
        ("cmd = python -m http.server", "cmd", "python -m http.server"),
        ("cmd = python\n  -m http.server", "cmd", "python\n-m http.server"),
        ("args = --port 80", "args", "--port 80"),
        ("numprocesses = 3", "numprocesses", 3),
        ("warmup_delay = 2", "warmup_delay", 2.0),
        ("warmup_delay = 0.25", "warmup_delay", 0.25),
        ("working_dir = /srv/app", "working_dir", "/srv/app"),
        ("uid = www-data", "uid", "www-data"),
        ("uid = 33", "uid", "33"),
        ("gid = www-data", "gid", "www-data"),
        ("shell = true", "shell", True),
        ("shell = true\nshell_args = -e", "shell_args", "-e"),
        ("executable = /usr/bin/python3", "executable", "/usr/bin/python3"),
        ("copy_env = yes", "copy_env", True),
        ("copy_env = true\ncopy_path = true", "copy_path", True),
        ("copy_env = true\nvirtualenv = /srv/venv", "virtualenv", "/srv/venv"),
        ("virtualenv_py_ver = 3.11", "virtualenv_py_ver", "3.11"),
        ("env_file = app.env", "env_file", "app.env"),
        ("send_hup = on", "send_hup", True),
        ("stop_signal = quit", "stop_signal", 3),
        ("stop_signal = INT", "stop_signal", 2),
        ("stop_signal = SIGKILL", "stop_signal", 9),
        ("stop_signal = 3", "stop_signal", 3),
        ("stop_children = true", "stop_children", True),
        ("graceful_timeout = 2.5", "graceful_timeout", 2.5),
        ("max_retry = -1", "max_retry", -1),
        ("max_retry = 0", "max_retry", 0),
        ("priority = 10", "priority", 10),
        ("priority = -3", "priority", -3),
        ("singleton = true", "singleton", True),
        ("singleton = true\nnumprocesses = 1", "numprocesses", 1),
        ("use_sockets = true", "use_sockets", True),
        ("on_demand = true", "on_demand", True),
        ("stdin_socket = web", "stdin_socket", "web"),
        ("close_child_stdin = false", "close_child_stdin", False),
        ("close_child_stdout = true", "close_child_stdout", True),
        ("close_child_stderr = true", "close_child_stderr", True),
        ("respawn = false", "respawn", "never"),
        ("respawn = true", "respawn", "always"),
        ("respawn = on-failure", "respawn", "on-failure"),
        ("respawn = never", "respawn", "never"),
        ("success_exit_codes = 0, 3", "success_exit_codes", (0, 3)),
        ("autostart = false", "autostart", False),
        ("max_age = 3600", "max_age", 3600),
        ("max_age_variance = 5", "max_age_variance", 5),
        ("umask = 027", "umask", 0o027),
    ],
)
def test_watcher_option(tmp_path: Path, lines: str, field: str, expected: Any) -> None:
    text = f"[watcher:w]\n{lines}\n"
    if not lines.startswith("cmd"):
        text += "cmd = sleep 1\n"
    text += "[socket:web]\nport = 0\n"  # for stdin_socket = web
    (w,) = load(tmp_path, text).watchers
    assert getattr(w, field) == expected


def test_stop_signal_rtmin_plus_one(tmp_path: Path) -> None:
    assert watcher(tmp_path, "stop_signal = SIGRTMIN+1\n").stop_signal == signal.SIGRTMIN + 1


def test_numprocesses_zero_is_allowed_with_a_warning(tmp_path: Path) -> None:
    config, found = problems(tmp_path, "[watcher:w]\ncmd = x\nnumprocesses = 0\n")
    assert config is not None
    assert config.watchers[0].numprocesses == 0
    assert found == [
        ConfigProblem(
            "numprocesses = 0: this watcher starts no process until incremented",
            file=path_of(tmp_path),
            line=3,
            section="watcher:w",
            option="numprocesses",
            severity="warning",
        )
    ]


def test_singleton_with_numprocesses_zero_is_silent(tmp_path: Path) -> None:
    assert warnings_of(tmp_path, "[watcher:w]\ncmd = x\nsingleton = 1\nnumprocesses = 0\n") == []


def test_shell_args_without_shell_warns(tmp_path: Path) -> None:
    assert [
        p.message for p in warnings_of(tmp_path, "[watcher:w]\ncmd = x\nshell_args = -e\n")
    ] == ["shell_args is ignored unless shell = true"]


def test_semicolon_comment_truncating_cmd_warns(tmp_path: Path) -> None:
    config, found = problems(tmp_path, "[watcher:w]\ncmd = sleep 1 ; sleep 60\n")
    assert config is not None
    assert config.watchers[0].cmd == "sleep 1"
    assert found == [
        ConfigProblem(
            "the text after ' ;' was dropped: Circus reads ' ;' as the start of a comment. "
            "Use shell = true and put the command in a script, or remove the space before ';'",
            file=path_of(tmp_path),
            line=2,
            section="watcher:w",
            option="cmd",
            severity="warning",
        )
    ]


def test_semicolon_comment_after_colon_separator_warns_too(tmp_path: Path) -> None:
    found = warnings_of(tmp_path, "[watcher:w]\ncmd: sleep 1 ; sleep 60\n")
    assert [(p.line, p.option) for p in found] == [(2, "cmd")]


def test_semicolon_without_space_keeps_the_command_silently(tmp_path: Path) -> None:
    config, found = problems(tmp_path, "[watcher:w]\ncmd = sh -c 'a;b'\n")
    assert config is not None
    assert config.watchers[0].cmd == "sh -c 'a;b'"
    assert found == []


# --- bigtop additions ---------------------------------------------------------------------


def test_backoff_options(tmp_path: Path) -> None:
    w = watcher(tmp_path, "backoff_initial = 0.1\nbackoff_max = 5\nbackoff_reset = 20\n")
    assert w.backoff == BackoffConfig(initial=0.1, max=5.0, reset=20.0)


def test_backoff_max_below_initial_is_an_error(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "[watcher:w]\ncmd = x\nbackoff_initial = 2\nbackoff_max = 1\n") == [
        ConfigProblem(
            "backoff_max (1) must not be smaller than backoff_initial (2)",
            file=path_of(tmp_path),
            line=4,
            section="watcher:w",
            option="backoff_max",
        )
    ]


def test_backoff_initial_must_be_positive(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "[watcher:w]\ncmd = x\nbackoff_initial = 0\n") == [
        ConfigProblem(
            "expected a number of seconds greater than 0",
            file=path_of(tmp_path),
            line=3,
            section="watcher:w",
            option="backoff_initial",
            value="0",
        )
    ]


def test_bad_success_exit_codes(tmp_path: Path) -> None:
    (problem,) = errors_of(tmp_path, "[watcher:w]\ncmd = x\nsuccess_exit_codes = 0, 300\n")
    assert problem.message == "expected exit codes between 0 and 255, separated by commas"
    assert (problem.option, problem.value) == ("success_exit_codes", "0, 300")


def test_bad_respawn_mode(tmp_path: Path) -> None:
    (problem,) = errors_of(tmp_path, "[watcher:w]\ncmd = x\nrespawn = sometimes\n")
    assert problem == ConfigProblem(
        "expected always, on-failure or never (or a boolean)",
        file=path_of(tmp_path),
        line=3,
        section="watcher:w",
        option="respawn",
        value="sometimes",
    )


def test_flapping_keys_make_a_flapping_config_and_stay_free_form(tmp_path: Path) -> None:
    w = watcher(
        tmp_path,
        "flapping.attempts = 3\nflapping.window = 2\nflapping.retry_in = 1.5\n"
        "flapping.max_retry = -1\n",
    )
    assert w.flapping == FlappingConfig(attempts=3, window=2.0, retry_in=1.5, max_retry=-1)
    assert w.options == {
        "flapping.attempts": "3",
        "flapping.window": "2",
        "flapping.retry_in": "1.5",
        "flapping.max_retry": "-1",
    }


def test_one_flapping_key_fills_the_others_with_defaults(tmp_path: Path) -> None:
    w = watcher(tmp_path, "flapping.max_retry = 2\n")
    assert w.flapping == FlappingConfig(attempts=2, window=1.0, retry_in=7.0, max_retry=2)


def test_bad_flapping_value(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "[watcher:w]\ncmd = x\nflapping.attempts = 0\n") == [
        ConfigProblem(
            "expected a positive integer",
            file=path_of(tmp_path),
            line=3,
            section="watcher:w",
            option="flapping.attempts",
            value="0",
        )
    ]


FLAPPING_PLUGIN = "[plugin:flapping]\nuse = circus.plugins.flapping.Flapping\n"


def test_flapping_plugin_gives_every_watcher_the_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, FLAPPING_PLUGIN + "[watcher:a]\ncmd = x\n[watcher:b]\ncmd = y\n")
    assert [w.flapping for w in config.watchers] == [FlappingConfig(), FlappingConfig()]
    assert FlappingConfig() == FlappingConfig(attempts=2, window=1.0, retry_in=7.0, max_retry=5)
    assert config.plugins == (
        PluginConfig(name="flapping", use="circus.plugins.flapping.Flapping"),
    )


def test_flapping_plugin_options_are_defaults_that_watchers_override(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        FLAPPING_PLUGIN
        + "attempts = 4\nwindow = 3\nretry_in = 10\nmax_retry = 1\n"
        + "[watcher:a]\ncmd = x\nflapping.max_retry = 7\n[watcher:b]\ncmd = y\n",
    )
    a, b = config.watchers
    assert a.flapping == FlappingConfig(attempts=4, window=3.0, retry_in=10.0, max_retry=7)
    assert b.flapping == FlappingConfig(attempts=4, window=3.0, retry_in=10.0, max_retry=1)
    assert config.plugins[0].options == {
        "attempts": "4",
        "window": "3",
        "retry_in": "10",
        "max_retry": "1",
    }


def test_inactive_flapping_plugin_gives_no_flapping(tmp_path: Path) -> None:
    config = load(tmp_path, FLAPPING_PLUGIN + "active = false\n[watcher:a]\ncmd = x\n")
    assert config.watchers[0].flapping is None


def test_bad_active_flag_on_the_flapping_plugin_is_an_error(tmp_path: Path) -> None:
    assert errors_of(tmp_path, FLAPPING_PLUGIN + "active = maybe\n[watcher:a]\ncmd = x\n") == [
        ConfigProblem(
            "expected a boolean (true/false, yes/no, on/off, 1/0)",
            file=path_of(tmp_path),
            line=3,
            section="plugin:flapping",
            option="active",
            value="maybe",
        )
    ]


def test_plugins_are_sorted_by_name_and_keep_their_options(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "[plugin:zeta]\nuse = mypkg.Z\nport = 1\n[plugin:alpha]\nuse = mypkg.A\n"
        "[watcher:w]\ncmd = x\n",
    )
    assert config.plugins == (
        PluginConfig(name="alpha", use="mypkg.A"),
        PluginConfig(name="zeta", use="mypkg.Z", options={"port": "1"}),
    )


def test_plugin_without_use_is_an_error(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "[plugin:p]\nport = 1\n") == [
        ConfigProblem(
            "missing 'use': name the plugin class, e.g. use = circus.plugins.flapping.Flapping",
            file=path_of(tmp_path),
            line=1,
            section="plugin:p",
            option="use",
        )
    ]


# --- hooks, rlimits, streams, free-form ---------------------------------------------------


def test_hooks_with_default_ignore_set_and_flags(tmp_path: Path) -> None:
    w = watcher(
        tmp_path,
        "hooks.before_start = mypkg.hooks.check\n"
        "hooks.after_stop = mypkg.hooks.cleanup\n"
        "hooks.before_spawn = mypkg.hooks.prepare, true\n"
        "hooks.before_signal = mypkg.hooks.sig, false\n"
        "hooks.after_reap = mypkg.hooks:reaped\n",
    )
    assert w.hooks == {
        "before_start": HookConfig(
            name="before_start", target="mypkg.hooks.check", ignore_errors=False
        ),
        "after_stop": HookConfig(
            name="after_stop", target="mypkg.hooks.cleanup", ignore_errors=True
        ),
        "before_spawn": HookConfig(
            name="before_spawn", target="mypkg.hooks.prepare", ignore_errors=True
        ),
        "before_signal": HookConfig(
            name="before_signal", target="mypkg.hooks.sig", ignore_errors=False
        ),
        "after_reap": HookConfig(
            name="after_reap", target="mypkg.hooks:reaped", ignore_errors=False
        ),
    }
    assert w.options == {}


@pytest.mark.parametrize(
    ("hook", "ignored"),
    [
        ("before_start", False),
        ("after_start", False),
        ("before_spawn", False),
        ("after_spawn", False),
        ("before_stop", True),
        ("after_stop", True),
        ("before_signal", True),
        ("after_signal", True),
        ("before_reap", False),
        ("after_reap", False),
        ("extended_stats", True),
    ],
)
def test_every_hook_name_and_its_default_ignore_errors(
    tmp_path: Path, hook: str, ignored: bool
) -> None:
    w = watcher(tmp_path, f"hooks.{hook} = pkg.fn\n")
    assert w.hooks[hook] == HookConfig(name=hook, target="pkg.fn", ignore_errors=ignored)


def test_unknown_hook_is_a_warning_and_ignored_as_in_circus(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[watcher:w]\ncmd = x\nhooks.before_lunch = pkg.fn\n")
    config, problems = check_config(str(path), environ={})
    assert config is not None and config.watchers[0].hooks == {}
    (problem,) = problems
    assert problem.severity == "warning"
    assert problem.message.startswith("unknown hook, never called (Circus accepts and ignores it)")
    assert (problem.file, problem.line, problem.section, problem.option) == (
        path_of(tmp_path),
        3,
        "watcher:w",
        "hooks.before_lunch",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nodots", "expected a dotted path to a callable, like mypkg.hooks.check[, true]"),
        (", true", "expected a dotted path to a callable, like mypkg.hooks.check[, true]"),
        (
            "pkg.fn, perhaps",
            "the flag after the comma: expected a boolean (true/false, yes/no, on/off, 1/0)",
        ),
    ],
)
def test_bad_hook_values(tmp_path: Path, value: str, message: str) -> None:
    assert errors_of(tmp_path, f"[watcher:w]\ncmd = x\nhooks.before_start = {value}\n") == [
        ConfigProblem(
            message,
            file=path_of(tmp_path),
            line=3,
            section="watcher:w",
            option="hooks.before_start",
            value=value,
        )
    ]


def test_rlimits(tmp_path: Path) -> None:
    w = watcher(tmp_path, "rlimit_nofile = 1024\nrlimit_CORE = 0\nrlimit_nproc =\nrlimit_as = -1\n")
    assert w.rlimits == {"NOFILE": 1024, "CORE": 0, "NPROC": None, "AS": None}
    assert w.options == {}


def test_every_resource_limit_name_is_accepted(tmp_path: Path) -> None:
    names = sorted(n[len("RLIMIT_") :] for n in dir(resource) if n.startswith("RLIMIT_"))
    w = watcher(tmp_path, "".join(f"rlimit_{n.lower()} = 7\n" for n in names))
    assert w.rlimits == dict.fromkeys(names, 7)


def test_unknown_rlimit_is_an_error(tmp_path: Path) -> None:
    (problem,) = errors_of(tmp_path, "[watcher:w]\ncmd = x\nrlimit_bananas = 3\n")
    assert problem.message.startswith(
        "unknown resource limit; expected rlimit_ followed by one of "
    )
    assert "nofile" in problem.message
    assert (problem.line, problem.section, problem.option) == (3, "watcher:w", "rlimit_bananas")


def test_bad_rlimit_value(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "[watcher:w]\ncmd = x\nrlimit_nofile = lots\n") == [
        ConfigProblem(
            "expected a non-negative integer, or empty for unlimited",
            file=path_of(tmp_path),
            line=3,
            section="watcher:w",
            option="rlimit_nofile",
            value="lots",
        )
    ]


def test_stream_options(tmp_path: Path) -> None:
    w = watcher(
        tmp_path,
        "stdout_stream.class = FileStream\nstdout_stream.filename = /var/log/w.log\n"
        "stdout_stream.max_bytes = 1024\nstderr_stream.class = StdoutStream\n",
    )
    assert w.stdout_stream == StreamConfig(
        class_name="FileStream", options={"filename": "/var/log/w.log", "max_bytes": "1024"}
    )
    assert w.stderr_stream == StreamConfig(class_name="StdoutStream")
    assert w.options == {}


def test_stream_without_class_is_a_file_stream(tmp_path: Path) -> None:
    w = watcher(tmp_path, "stderr_stream.filename = err.log\n")
    assert w.stderr_stream == StreamConfig(class_name="FileStream", options={"filename": "err.log"})
    assert w.stdout_stream is None


def test_free_form_options_are_kept_without_warning(tmp_path: Path) -> None:
    config, found = problems(
        tmp_path, "[watcher:w]\ncmd = x\ncheck_flapping = false\nmy.plugin.key = 5\nTeam = ops\n"
    )
    assert config is not None
    assert config.watchers[0].options == {
        "check_flapping": "false",
        "my.plugin.key": "5",
        "Team": "ops",
    }
    assert found == []


def test_typo_warns_did_you_mean_and_is_kept(tmp_path: Path) -> None:
    config, found = problems(tmp_path, "[watcher:w]\ncmd = x\nnumprocess = 3\n")
    assert config is not None
    assert config.watchers[0].numprocesses == 1
    assert config.watchers[0].options == {"numprocess": "3"}
    assert found == [
        ConfigProblem(
            "unknown option, kept as a free-form option; did you mean 'numprocesses'?",
            file=path_of(tmp_path),
            line=3,
            section="watcher:w",
            option="numprocess",
            severity="warning",
        )
    ]


def test_env_option_in_a_watcher_section_is_ignored_with_a_warning(tmp_path: Path) -> None:
    config, found = problems(tmp_path, "[watcher:web]\ncmd = x\nenv = A=1\n")
    assert config is not None
    assert config.watchers[0].env == {}
    assert [p.message for p in found] == [
        "'env' in a watcher section is ignored (as in Circus); put the variables in an "
        "[env:web] section"
    ]


def test_default_section_leaks_into_watchers_but_not_as_dunder_name(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "[DEFAULT]\nnumprocesses = 2\n[watcher:a]\ncmd = x\n[watcher:b]\ncmd = y\nnumprocesses = 5\n",
    )
    assert [(w.name, w.numprocesses) for w in config.watchers] == [("a", 2), ("b", 5)]
    assert all("__name__" not in w.options for w in config.watchers)


def test_no_dunder_name_in_options_or_env(tmp_path: Path) -> None:
    config = load(tmp_path, "[env]\nA = 1\n[env:w]\nB = 2\n[watcher:w]\ncmd = x\nfoo = bar\n")
    (w,) = config.watchers
    assert w.env == {"A": "1", "B": "2"}
    assert w.options == {"foo": "bar"}


def test_empty_watcher_section_is_skipped_with_a_warning(tmp_path: Path) -> None:
    config, found = problems(tmp_path, "[watcher:empty]\n[watcher:real]\ncmd = x\n")
    assert config is not None
    assert [w.name for w in config.watchers] == ["real"]
    assert found == [
        ConfigProblem(
            "empty section, ignored",
            file=path_of(tmp_path),
            line=1,
            section="watcher:empty",
            severity="warning",
        )
    ]


def test_unknown_section_warns(tmp_path: Path) -> None:
    assert warnings_of(tmp_path, "[watcher:w]\ncmd = x\n[program:x]\ncommand = y\n") == [
        ConfigProblem(
            "unknown section, ignored; bigtop reads [circus], [watcher:NAME], [socket:NAME], "
            "[plugin:NAME], [env] and [env:PATTERNS]",
            file=path_of(tmp_path),
            line=3,
            section="program:x",
            severity="warning",
        )
    ]


def test_watchers_are_sorted_by_name(tmp_path: Path) -> None:
    config = load(tmp_path, "[watcher:c]\ncmd = 3\n[watcher:a]\ncmd = 1\n[watcher:b]\ncmd = 2\n")
    assert [w.name for w in config.watchers] == ["a", "b", "c"]


def test_watcher_source_is_the_file_that_defines_it(tmp_path: Path) -> None:
    write_ini(tmp_path, "[watcher:inc]\ncmd = x\n", "inc.ini")
    config = load(tmp_path, "[circus]\ninclude = inc.ini\n[watcher:main]\ncmd = y\n")
    assert {w.name: w.source for w in config.watchers} == {
        "inc": str(tmp_path / "inc.ini"),
        "main": path_of(tmp_path),
    }
    assert config.files == (path_of(tmp_path), str(tmp_path / "inc.ini"))
    assert config.path == path_of(tmp_path)


# --- sockets ------------------------------------------------------------------------------


def test_socket_names_are_lower_cased_and_sorted(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "[socket:Web]\nhost = 127.0.0.1\nport = 0\n[socket:API]\npath = /tmp/api.sock\n",
    )
    assert config.sockets == (
        SocketConfig(name="api", options={"path": "/tmp/api.sock"}),
        SocketConfig(name="web", options={"host": "127.0.0.1", "port": "0"}),
    )


def test_sockets_differing_only_by_case_are_an_error(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "[socket:web]\nport = 1\n[socket:WEB]\nport = 2\n") == [
        ConfigProblem(
            "socket 'web' is defined twice (socket names are case-insensitive)",
            file=path_of(tmp_path),
            section="socket:WEB",
        )
    ]


# --- [env] --------------------------------------------------------------------------------


def test_env_section_applies_to_every_watcher(tmp_path: Path) -> None:
    config = load(tmp_path, "[env]\nA = 1\n[watcher:x]\ncmd = x\n[watcher:y]\ncmd = y\n")
    assert [w.env for w in config.watchers] == [{"A": "1"}, {"A": "1"}]


def test_env_names_keep_their_case(tmp_path: Path) -> None:
    w = load(tmp_path, "[env]\nmixedCase = 1\nUPPER = 2\n[watcher:w]\ncmd = x\n").watchers[0]
    assert w.env == {"mixedCase": "1", "UPPER": "2"}


def test_env_expands_upper_case_vars_from_the_process_environment(tmp_path: Path) -> None:
    w = load(
        tmp_path,
        "[env]\nPATH = /opt/bin:$PATH\nWHO = $USER@$HOME\nLOWER = $home\nBRACES = ${HOME}\n"
        "UNSET = [$NOT_SET_ANYWHERE]\n[watcher:w]\ncmd = x\n",
    ).watchers[0]
    assert w.env == {
        "PATH": "/opt/bin:/usr/bin:/bin",
        "WHO": "tester@/home/tester",
        "LOWER": "$home",
        "BRACES": "${HOME}",
        "UNSET": "[]",
    }


def test_env_vars_do_not_see_other_env_entries(tmp_path: Path) -> None:
    w = load(tmp_path, "[env]\nA = 1\nB = x$A\n[watcher:w]\ncmd = x\n", environ={}).watchers[0]
    assert w.env == {"A": "1", "B": "x"}


def test_global_env_gets_circus_env_substitution(tmp_path: Path) -> None:
    w = load(tmp_path, "[env]\nDATA = $(circus.env.home)/data\n[watcher:w]\ncmd = x\n").watchers[0]
    assert w.env == {"DATA": "/home/tester/data"}


def test_env_pattern_sections_match_watcher_names(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "[env:web*, api]\nROLE = front\n"
        "[watcher:web1]\ncmd = x\n[watcher:webby]\ncmd = x\n[watcher:api]\ncmd = x\n"
        "[watcher:worker]\ncmd = x\n[watcher:apiary]\ncmd = x\n",
    )
    assert {w.name: w.env for w in config.watchers} == {
        "api": {"ROLE": "front"},
        "apiary": {},
        "web1": {"ROLE": "front"},
        "webby": {"ROLE": "front"},
        "worker": {},
    }


def test_env_patterns_are_case_sensitive(tmp_path: Path) -> None:
    config = load(tmp_path, "[env:Web]\nA = 1\n[env:WEB*]\nB = 2\n[watcher:web]\ncmd = x\n")
    assert config.watchers[0].env == {}


def test_env_pattern_sections_apply_in_file_order(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "[env]\nLEVEL = global\nKEEP = g\n"
        "[env:w*]\nLEVEL = first\nFIRST = 1\n"
        "[env:w]\nLEVEL = second\n"
        "[watcher:w]\ncmd = x\n[watcher:other]\ncmd = y\n",
    )
    assert {w.name: w.env for w in config.watchers} == {
        "other": {"LEVEL": "global", "KEEP": "g"},
        "w": {"LEVEL": "second", "KEEP": "g", "FIRST": "1"},
    }


def test_env_pattern_values_expand_shell_vars(tmp_path: Path) -> None:
    w = load(tmp_path, "[env:w]\nP = $HOME/bin\n[watcher:w]\ncmd = x\n").watchers[0]
    assert w.env == {"P": "/home/tester/bin"}


# --- $(circus.env.X) substitution ---------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    ["$(circus.env.PORT)", "$(circus.env.port)", "$(CIRCUS.ENV.Port)", "((circus.env.port))"],
)
def test_circus_env_substitution_spellings(tmp_path: Path, spelling: str) -> None:
    w = watcher(tmp_path, f"args = --port {spelling}\n", environ={"PORT": "8080"})
    assert w.args == "--port 8080"


def test_substitution_most_specific_wins(tmp_path: Path) -> None:
    text = (
        "[env]\nLEVEL = global\n[env:special]\nLEVEL = watcher\n"
        "[watcher:special]\ncmd = echo $(circus.env.level)\n"
        "[watcher:plain]\ncmd = echo $(circus.env.level)\n"
    )
    config = load(tmp_path, text, environ={"LEVEL": "process"})
    assert {w.name: w.cmd for w in config.watchers} == {
        "plain": "echo global",
        "special": "echo watcher",
    }


def test_substitution_falls_back_to_the_process_environment(tmp_path: Path) -> None:
    w = watcher(tmp_path, "working_dir = $(circus.env.home)/app\n")
    assert w.working_dir == "/home/tester/app"


def test_substitution_in_numeric_options(tmp_path: Path) -> None:
    w = watcher(tmp_path, "numprocesses = $(circus.env.WORKERS)\n", environ={"WORKERS": "4"})
    assert w.numprocesses == 4


def test_substitution_in_circus_sockets_and_plugins(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "[env]\nRUN = /run/app\n"
        "[circus]\npidfile = $(circus.env.run)/bigtop.pid\nendpoint = ipc://$(circus.env.HOME)/c.sock\n"
        "[socket:web]\npath = $(circus.env.run)/web.sock\n"
        "[plugin:p]\nuse = pkg.P\ndir = ((circus.env.run))\n",
    )
    assert config.circus.pidfile == "/run/app/bigtop.pid"
    assert config.circus.endpoint == "ipc:///home/tester/c.sock"
    assert config.sockets[0].options == {"path": "/run/app/web.sock"}
    assert config.plugins[0].options == {"dir": "/run/app"}


def test_unknown_keys_are_left_for_spawn_time(tmp_path: Path) -> None:
    w = watcher(
        tmp_path,
        "args = $(circus.wid) ((circus.wid)) $(circus.sockets.web) $(circus.env.NOT_SET) $HOME\n"
        "[socket:web]\nport = 0\n",
    )
    assert (
        w.args == "$(circus.wid) ((circus.wid)) $(circus.sockets.web) $(circus.env.NOT_SET) $HOME"
    )


def test_a_command_naming_an_undefined_socket_is_an_error(tmp_path: Path) -> None:
    (problem,) = errors_of(tmp_path, "[watcher:w]\ncmd = app --fd $(circus.sockets.nosuch)\n")
    assert (problem.section, problem.option) == ("watcher:w", "cmd")
    assert problem.message.startswith("refers to socket 'nosuch', but no [socket:nosuch] section")


def test_a_depends_on_cycle_is_an_error_naming_it(tmp_path: Path) -> None:
    text = "".join(
        f"[watcher:{name}]\ncmd = sleep 1\ndepends_on = {dep}\n"
        for name, dep in (("a", "b"), ("b", "c"), ("c", "a"))
    )
    (problem,) = errors_of(tmp_path, text)
    assert problem.message.startswith("depends_on forms a cycle: a -> b -> c -> a")


def test_depends_on_an_unknown_watcher_is_an_error(tmp_path: Path) -> None:
    (problem,) = errors_of(tmp_path, "[watcher:a]\ncmd = sleep 1\ndepends_on = ghost\n")
    assert problem.message == "depends on 'ghost', which is not a watcher of this config"


def test_substitution_uses_only_the_given_environ(tmp_path: Path) -> None:
    w = watcher(tmp_path, "args = $(circus.env.home)\n", environ={})
    assert w.args == "$(circus.env.home)"


# --- errors -------------------------------------------------------------------------------


def test_negative_numprocesses(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "[watcher:web]\ncmd = x\nnumprocesses = -1\n") == [
        ConfigProblem(
            "expected a non-negative integer",
            file=path_of(tmp_path),
            line=3,
            section="watcher:web",
            option="numprocesses",
            value="-1",
        )
    ]


def test_bad_stop_signal(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "[watcher:web]\ncmd = x\nstop_signal = SIGFOO\n") == [
        ConfigProblem(
            "expected a signal name or number, like TERM, SIGQUIT or 15",
            file=path_of(tmp_path),
            line=3,
            section="watcher:web",
            option="stop_signal",
            value="SIGFOO",
        )
    ]


@pytest.mark.parametrize("cmd_line", ["", "cmd =\n", 'cmd = ""\n'])
def test_missing_cmd(tmp_path: Path, cmd_line: str) -> None:
    assert errors_of(tmp_path, f"[circus]\n\n[watcher:web]\nnumprocesses = 2\n{cmd_line}") == [
        ConfigProblem(
            "missing 'cmd': every watcher needs the command to run",
            file=path_of(tmp_path),
            line=3,
            section="watcher:web",
            option="cmd",
        )
    ]


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("shell", "maybe", "expected a boolean (true/false, yes/no, on/off, 1/0)"),
        ("copy_env", "2", "expected a boolean (true/false, yes/no, on/off, 1/0)"),
        ("autostart", "enabled", "expected a boolean (true/false, yes/no, on/off, 1/0)"),
        ("numprocesses", "two", "expected a non-negative integer"),
        ("warmup_delay", "-1", "expected a number >= 0"),
        ("graceful_timeout", "long", "expected a number of seconds, like 5 or 0.5"),
        ("max_retry", "-2", "expected an integer >= -1"),
        ("priority", "high", "expected an integer"),
        ("max_age", "-5", "expected a non-negative integer"),
        ("max_age_variance", "x", "expected a non-negative integer"),
        ("umask", "999", "expected an octal mode like 022 or 0o027"),
    ],
)
def test_bad_watcher_values(tmp_path: Path, option: str, value: str, expected: str) -> None:
    assert errors_of(tmp_path, f"[watcher:w]\ncmd = x\n{option} = {value}\n") == [
        ConfigProblem(
            expected,
            file=path_of(tmp_path),
            line=3,
            section="watcher:w",
            option=option,
            value=value,
        )
    ]


def test_singleton_with_several_processes(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "[watcher:w]\ncmd = x\nsingleton = true\nnumprocesses = 3\n") == [
        ConfigProblem(
            "a singleton watcher runs at most one process; set numprocesses to 0 or 1",
            file=path_of(tmp_path),
            line=4,
            section="watcher:w",
            option="numprocesses",
            value="3",
        )
    ]


@pytest.mark.parametrize("option", ["copy_path = true", "virtualenv = /srv/venv"])
def test_copy_path_and_virtualenv_need_copy_env(tmp_path: Path, option: str) -> None:
    name, _, value = (part.strip() for part in option.partition("="))
    assert errors_of(tmp_path, f"[watcher:w]\ncmd = x\n{option}\n") == [
        ConfigProblem(
            f"{name} requires copy_env = true",
            file=path_of(tmp_path),
            line=3,
            section="watcher:w",
            option=name,
            value=value,
        )
    ]


def test_watcher_names_differing_by_case(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "[watcher:web]\ncmd = x\n[watcher:WEB]\ncmd = y\n") == [
        ConfigProblem(
            "watchers 'web' and 'WEB' differ only by case; watcher names are "
            "case-insensitive, rename one of them",
            file=path_of(tmp_path),
            line=3,
            section="watcher:WEB",
        )
    ]


def test_include_loop_error_through_the_loader(tmp_path: Path) -> None:
    main = path_of(tmp_path)
    write_ini(tmp_path, "[circus]\ninclude = circus.ini\n", "other.ini")
    write_ini(tmp_path, "[circus]\ninclude = other.ini\n[watcher:w]\ncmd = x\n")
    with pytest.raises(ConfigError) as caught:
        load_config(main, environ={})
    assert caught.value.problems == [
        ConfigProblem(
            f"include loop: {main} -> {tmp_path / 'other.ini'} -> {main}",
            file=str(tmp_path / "other.ini"),
            line=2,
            section="circus",
            option="include",
            value="circus.ini",
        )
    ]


def test_unreadable_include_error_through_the_loader(tmp_path: Path) -> None:
    (tmp_path / "x.ini").mkdir()
    write_ini(tmp_path, "[circus]\ninclude = x.ini\n[watcher:w]\ncmd = x\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path_of(tmp_path), environ={})
    assert [str(p) for p in caught.value.problems] == [
        f"{path_of(tmp_path)}:2 [circus] include: cannot read included file "
        f"{tmp_path / 'x.ini'}: Is a directory (got 'x.ini')"
    ]


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path / "absent.ini"), environ={})
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'absent.ini'}: cannot read the configuration file: No such file or directory"
    ]


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "[circus]\ncheck_delay = soon\n"
        "[watcher:a]\ncmd = x\nnumprocesses = -1\nstop_signal = SIGFOO\nshell = maybe\n"
        "[watcher:b]\nnumprocesses = 1\n"
        "[watcher:c]\ncmd = y\nsingleton = 1\nnumprocesses = 3\ncopy_path = 1\n"
        "this line is nonsense\n"
    )
    path = str(write_ini(tmp_path, text))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert sorted((p.line, p.section or "", p.option or "") for p in caught.value.problems) == [
        (2, "circus", "check_delay"),
        (5, "watcher:a", "numprocesses"),
        (6, "watcher:a", "stop_signal"),
        (7, "watcher:a", "shell"),
        (8, "watcher:b", "cmd"),
        (13, "watcher:c", "numprocesses"),
        (14, "watcher:c", "copy_path"),
        (15, "", ""),
    ]
    message = str(caught.value)
    assert message.startswith("8 error(s) in the configuration:\n  - ")
    assert (
        f"  - {path}:5 [watcher:a] numprocesses: expected a non-negative integer (got '-1')"
        in message
    )


def test_check_config_returns_warnings_with_the_model(tmp_path: Path) -> None:
    config, found = problems(tmp_path, "[watcher:w]\ncmd = x\nnumproceses = 2\n")
    assert config is not None
    assert config.warnings == (
        f"{path_of(tmp_path)}:3 [watcher:w] numproceses: unknown option, kept as a free-form "
        "option; did you mean 'numprocesses'?",
    )
    assert [p.severity for p in found] == ["warning"]


def test_load_config_defaults_to_the_real_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIGTOP_TEST_MARKER", "from-os")
    config = load_config(
        str(write_ini(tmp_path, "[watcher:w]\ncmd = echo $(circus.env.bigtop_test_marker)\n"))
    )
    assert config.watchers[0].cmd == "echo from-os"
