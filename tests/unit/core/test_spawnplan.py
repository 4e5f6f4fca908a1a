"""Spawn plans: argv, environment and directory from a watcher's config, without I/O."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bigtop.config.model import WatcherConfig
from bigtop.core.spawnplan import (
    SHELL,
    PlanError,
    SpawnContext,
    SpawnPlan,
    build_plan,
    child_environment,
    parse_env_file,
)

ENVIRON = {"HOME": "/root", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
CONTEXT = SpawnContext(environ=ENVIRON, cwd="/srv")


def plan(wid: int = 1, context: SpawnContext = CONTEXT, **options: object) -> SpawnPlan:
    options.setdefault("name", "web")
    config = WatcherConfig(**options)  # type: ignore[arg-type]
    return build_plan(config, wid, context)


# ---- argv -------------------------------------------------------------------------------------
def test_cmd_and_args_are_split_and_joined() -> None:
    result = plan(cmd="python -m http.server", args="--bind 127.0.0.1 8000")
    assert result.argv == ["python", "-m", "http.server", "--bind", "127.0.0.1", "8000"]


def test_quoting_is_posix_shlex() -> None:
    result = plan(cmd="""echo "a b" 'c d' e\\ f""", args="'--x=1 2' \"\"")
    assert result.argv == ["echo", "a b", "c d", "e f", "--x=1 2", ""]


def test_cmd_only() -> None:
    assert plan(cmd="sleep 3600").argv == ["sleep", "3600"]


def test_empty_cmd_is_an_error() -> None:
    with pytest.raises(PlanError, match=r"^cmd is empty after substitution$"):
        plan(cmd="   ")


def test_empty_cmd_with_args_uses_args() -> None:
    assert plan(cmd="", args="sleep 1").argv == ["sleep", "1"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"cmd": 'echo "unbalanced'},
            "cannot split cmd into words: No closing quotation in 'echo \"unbalanced'",
        ),
        (
            {"cmd": "echo", "args": "it's"},
            'cannot split args into words: No closing quotation in "it\'s"',
        ),
        (
            {"cmd": "echo", "args": "trailing\\"},
            "cannot split args into words: No escaped character in 'trailing\\\\'",
        ),
        (
            {"cmd": "true", "shell": True, "shell_args": "'x"},
            'cannot split shell_args into words: No closing quotation in "\'x"',
        ),
    ],
)
def test_unbalanced_quotes_raise_plan_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(PlanError) as info:
        plan(**options)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_executable_keeps_argv0_as_display_name() -> None:
    result = plan(cmd="my-worker --fast", executable="/usr/bin/python3")
    assert result.executable == "/usr/bin/python3"
    assert result.argv == ["my-worker", "--fast"]


def test_no_executable_by_default() -> None:
    assert plan(cmd="true").executable is None


# ---- shell mode ---------------------------------------------------------------------------------
def test_shell_passes_the_command_as_written() -> None:
    cmd = 'echo "$FOO" | tr a-z A-Z && exit 3; ls > /dev/null'
    result = plan(cmd=cmd, shell=True)
    assert result.argv == [SHELL, "-c", cmd]
    assert SHELL == "/bin/sh"


def test_shell_appends_args_to_the_script() -> None:
    result = plan(cmd="echo $1", args="'a b' c", shell=True)
    assert result.argv == ["/bin/sh", "-c", "echo $1 'a b' c"]


def test_shell_args_follow_the_script() -> None:
    result = plan(cmd='echo "$0 $1"', shell=True, shell_args="name 'first arg'")
    assert result.argv == ["/bin/sh", "-c", 'echo "$0 $1"', "name", "first arg"]


def test_shell_mode_does_not_split_unbalanced_quotes() -> None:
    # the shell reports it; bigtop passes the string through untouched
    assert plan(cmd="echo 'oops", shell=True).argv == ["/bin/sh", "-c", "echo 'oops"]


def test_shell_args_ignored_without_shell() -> None:
    assert plan(cmd="echo hi", shell_args="x y").argv == ["echo", "hi"]


# ---- environment ----------------------------------------------------------------------------------
def test_without_copy_env_only_the_configured_env() -> None:
    result = plan(cmd="true", env={"A": "1", "B": "two"})
    assert result.env == {"A": "1", "B": "two"}


def test_without_copy_env_and_no_env_the_environment_is_empty() -> None:
    assert plan(cmd="true").env == {}


def test_copy_env_starts_from_the_daemon_environment() -> None:
    result = plan(cmd="true", copy_env=True, env={"A": "1", "HOME": "/home/web"})
    assert result.env == {"HOME": "/home/web", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "A": "1"}


def test_env_file_sits_between_daemon_env_and_configured_env() -> None:
    context = SpawnContext(
        environ=ENVIRON, cwd="/srv", env_file={"LANG": "fr_FR", "A": "file", "F": "f"}
    )
    result = plan(cmd="true", copy_env=True, env={"A": "config"}, context=context)
    assert result.env == {
        "HOME": "/root",
        "PATH": "/usr/bin:/bin",
        "LANG": "fr_FR",
        "A": "config",
        "F": "f",
    }
    result = plan(cmd="true", env={"A": "config"}, context=context)
    assert result.env == {"LANG": "fr_FR", "A": "config", "F": "f"}


def test_child_environment_does_not_mutate_inputs() -> None:
    environ = dict(ENVIRON)
    config = WatcherConfig(name="w", cmd="true", copy_env=True, env={"X": "1"})
    env = child_environment(config, SpawnContext(environ=environ, cwd="/"))
    env["MUTATED"] = "yes"
    assert environ == ENVIRON
    assert config.env == {"X": "1"}


def test_copy_path_sets_pythonpath_from_the_daemon_sys_path() -> None:
    context = SpawnContext(environ=ENVIRON, cwd="/srv", python_path=("/app", "/usr/lib/py"))
    result = plan(cmd="true", copy_env=True, copy_path=True, context=context)
    assert result.env["PYTHONPATH"] == "/app:/usr/lib/py"


def test_copy_path_without_paths_leaves_pythonpath_alone() -> None:
    result = plan(cmd="true", copy_env=True, copy_path=True, env={"PYTHONPATH": "/mine"})
    assert result.env["PYTHONPATH"] == "/mine"


def test_virtualenv_prepends_bin_and_site_packages() -> None:
    context = SpawnContext(
        environ=ENVIRON,
        cwd="/srv",
        virtualenv_paths=("/venv/lib/python3.11/site-packages", "/venv/src/pkg"),
    )
    result = plan(
        cmd="gunicorn app",
        copy_env=True,
        virtualenv="/venv/",
        env={"PYTHONPATH": "/extra"},
        context=context,
    )
    assert result.env["PATH"] == "/venv/bin:/usr/bin:/bin"
    assert result.env["PYTHONPATH"] == "/venv/lib/python3.11/site-packages:/venv/src/pkg:/extra"


def test_virtualenv_without_path_or_site_packages() -> None:
    result = plan(cmd="true", virtualenv="/venv")
    assert result.env == {"PATH": "/venv/bin"}


def test_virtualenv_and_copy_path_together() -> None:
    context = SpawnContext(
        environ=ENVIRON,
        cwd="/srv",
        python_path=("/daemon",),
        virtualenv_paths=("/venv/lib/python3.11/site-packages",),
    )
    result = plan(cmd="true", copy_env=True, copy_path=True, virtualenv="/venv", context=context)
    assert result.env["PYTHONPATH"] == "/venv/lib/python3.11/site-packages:/daemon"


# ---- spawn-time substitution -------------------------------------------------------------------
def test_wid_substitution_in_cmd_and_args() -> None:
    result = plan(
        wid=3,
        cmd="worker --id $(circus.wid) --alt ((circus.wid))",
        args="--log /var/log/w$(CIRCUS.WID).log",
    )
    assert result.argv == ["worker", "--id", "3", "--alt", "3", "--log", "/var/log/w3.log"]
    assert result.wid == 3


def test_legacy_dollar_wid_in_cmd() -> None:
    assert plan(wid=2, cmd="worker $WID").argv == ["worker", "2"]


def test_env_substitution_uses_the_child_environment() -> None:
    result = plan(
        cmd="serve --home $(circus.env.HOME) --port $(circus.env.port)",
        env={"PORT": "8080"},
        copy_env=True,
    )
    assert result.argv == ["serve", "--home", "/root", "--port", "8080"]


def test_env_substitution_without_copy_env_does_not_see_the_daemon_env() -> None:
    result = plan(cmd="serve $(circus.env.HOME)")
    assert result.argv == ["serve", "$(circus.env.HOME)"]


def test_socket_substitution_and_fd_passing() -> None:
    context = SpawnContext(environ={}, cwd="/srv", sockets={"Web": 10, "api": 7})
    result = plan(
        cmd="chaussette --fd $(circus.sockets.web) --other $(circus.sockets.API)",
        args="$(circus.sockets.missing)",
        use_sockets=True,
        context=context,
    )
    assert result.argv == ["chaussette", "--fd", "10", "--other", "7", "$(circus.sockets.missing)"]
    assert result.pass_fds == (7, 10)
    assert result.stdin_fd is None


def test_stdin_socket() -> None:
    context = SpawnContext(environ={}, cwd="/srv", sockets={"web": 10})
    result = plan(cmd="cat", use_sockets=True, stdin_socket="WEB", context=context)
    assert result.stdin_fd == 10
    assert result.pass_fds == (10,)


def test_no_sockets_no_fds() -> None:
    result = plan(cmd="cat", use_sockets=True)
    assert result.pass_fds == ()
    assert result.stdin_fd is None


def test_substitution_in_shell_mode_keeps_the_rest() -> None:
    result = plan(wid=4, cmd="echo $(circus.wid) $HOME | cat", shell=True)
    assert result.argv == ["/bin/sh", "-c", "echo 4 $HOME | cat"]


def test_watcher_attribute_and_option_substitution() -> None:
    result = plan(
        cmd="run $(circus.name) $(circus.numprocesses) $(circus.working_dir) $(circus.custom)",
        numprocesses=4,
        options={"Custom": "value"},
    )
    assert result.argv == ["run", "web", "4", "/srv", "value"]


def test_unknown_keys_stay_as_written() -> None:
    result = plan(cmd="echo $(circus.nope) ((circus.also.nope)) $(other.thing)")
    assert result.argv == ["echo", "$(circus.nope)", "((circus.also.nope))", "$(other.thing)"]


def test_substituted_value_with_spaces_is_split() -> None:
    # substitution happens before splitting, as in Circus
    result = plan(cmd="echo $(circus.env.words)", env={"WORDS": "a b"})
    assert result.argv == ["echo", "a", "b"]


# ---- the rest of the plan ----------------------------------------------------------------------------
def test_plan_fields_from_config() -> None:
    result = plan(
        wid=2,
        cmd="true",
        working_dir="/var/app",
        uid="nobody",
        gid="nogroup",
        umask=0o022,
        rlimits={"nofile": 1024, "core": None},
        close_child_stdin=False,
        close_child_stdout=True,
        close_child_stderr=True,
    )
    assert result == SpawnPlan(
        watcher="web",
        wid=2,
        argv=["true"],
        env={},
        cwd="/var/app",
        executable=None,
        uid="nobody",
        gid="nogroup",
        umask=0o022,
        rlimits={"nofile": 1024, "core": None},
        pass_fds=(),
        stdin_fd=None,
        close_stdin=False,
        close_stdout=True,
        close_stderr=True,
    )


def test_defaults() -> None:
    result = plan(cmd="true")
    assert result.cwd == "/srv"
    assert (result.uid, result.gid, result.umask) == (None, None, None)
    assert (result.close_stdin, result.close_stdout, result.close_stderr) == (True, False, False)
    assert result.rlimits == {}


@given(words=st.lists(st.text(alphabet="abc xyz'\"\\$-_=./", min_size=1), min_size=1, max_size=5))
def test_quoted_words_round_trip(words: list[str]) -> None:
    cmd = " ".join(shlex.quote(w) for w in words)
    assert plan(cmd=cmd).argv == words


# ---- env_file ----------------------------------------------------------------------------------------
def test_parse_env_file() -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            "PLAIN=value",
            "  SPACED = padded  ",
            "export EXPORTED=yes",
            'DOUBLE="quoted value"',
            "SINGLE='single # not a comment'",
            "EMPTY=",
            "EQUALS=a=b=c",
            "MISMATCH=\"half'",
            'LONE="',
            "no equals sign here",
            "=no key",
            "   # indented comment",
            "URL=http://x/?a=1#frag",
        ]
    )
    assert parse_env_file(text) == {
        "PLAIN": "value",
        "SPACED": "padded",
        "EXPORTED": "yes",
        "DOUBLE": "quoted value",
        "SINGLE": "single # not a comment",
        "EMPTY": "",
        "EQUALS": "a=b=c",
        "MISMATCH": "\"half'",
        "LONE": '"',
        "URL": "http://x/?a=1#frag",
    }


def test_parse_env_file_last_wins_and_crlf() -> None:
    assert parse_env_file("A=1\r\nA=2\r\nB='x'\r\n") == {"A": "2", "B": "x"}


def test_parse_env_file_empty() -> None:
    assert parse_env_file("") == {}
    assert parse_env_file("\n\n# only comments\n") == {}
