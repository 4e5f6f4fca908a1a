"""The real Circus 0.19.0 tools drive a real bigtop daemon, unchanged.

`circusctl` (every command it can send, plain and `--json` output, exit codes),
`circus.client.CircusClient`, `circusctl listen` for events, and raw DEALER/REQ sockets for
malformed input. Effects are checked independently of the control API, through /proc.
Expected outputs are Circus's own (captured from circusd 0.19.0), except where bigtop.md §4
lists a deliberate difference.
"""

from __future__ import annotations

import ast
import json
import os
import pwd
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.e2e.circus_env import CIRCUS_VERSION, CircusEnv, CircusEnvError, ensure_circus_env
from tests.e2e.daemon import Daemon, DaemonPool, endpoints_section, exchange
from tests.helpers import PYTHON, alive, wait_until

# The first test of a session may build the Circus venv (pip, ~10-60 s) inside its setup.
pytestmark = pytest.mark.timeout(180)

USER = pwd.getpwuid(os.getuid()).pw_name
NICE = os.nice(0)
INFO_FIELDS = {
    "pid",
    "mem_info1",
    "mem_info2",
    "cpu",
    "mem",
    "ctime",
    "username",
    "nice",
    "create_time",
    "age",
    "cmdline",
    "children",
    "started",
    "wid",
}
DSTATS_FIELDS = INFO_FIELDS - {"started", "wid"}
BIGTOP_EXTRA_FIELDS = {"state", "restarts"}
OPTIONS_KEYS = {
    "numprocesses",
    "warmup_delay",
    "working_dir",
    "uid",
    "gid",
    "send_hup",
    "stop_signal",
    "stop_children",
    "shell",
    "shell_args",
    "env",
    "max_retry",
    "cmd",
    "args",
    "respawn",
    "graceful_timeout",
    "executable",
    "use_sockets",
    "priority",
    "copy_env",
    "singleton",
    "stdout_stream_conf",
    "on_demand",
    "stderr_stream_conf",
    "max_age",
    "max_age_variance",
    "close_child_stdin",
    "close_child_stdout",
    "close_child_stderr",
}
SIZE = r"\d+(\.\d\d)?[BKMGTPEZY]"
# circusctl's stats line: "<pid>: <pid>  <cmdline> <username> <nice> <mem1> <mem2> <cpu> <mem> <ctime>"
INFO_LINE = (
    r"(?P<pid>\d+)  (?P<cmdline>\S+) (?P<user>\S+) (?P<nice>-?\d+) "
    rf"{SIZE} {SIZE} \d+(\.\d+)? \d+(\.\d+)? \d+:\d\d\.\d{{1,2}}"
)
STATS_LINE = r"(?P<key>\d+): " + INFO_LINE


# ---- fixtures -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def circus() -> CircusEnv:
    try:
        return ensure_circus_env()
    except CircusEnvError as exc:
        problem = str(exc)
    pytest.fail(
        f"cannot set up circus=={CIRCUS_VERSION} for the compatibility tests: {problem}",
        pytrace=False,
    )


@pytest.fixture
def bigtop(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    pool = DaemonPool(tmp_path)

    def start(ini: str, *extra: str) -> Daemon:
        daemon = pool.start(ini, *extra)
        daemon.wait_ready()
        return daemon

    yield start
    leaked = pool.close()
    assert not leaked, f"processes left running after the daemon stopped: {leaked}"


class Ctl:
    """The real circusctl against one daemon."""

    def __init__(self, circus: CircusEnv, daemon: Daemon) -> None:
        self.circus = circus
        self.daemon = daemon

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.circus.ctl(self.daemon.control, *args)

    def _describe(self, args: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> str:
        return (
            f"circusctl {' '.join(args)} -> exit {result.returncode}\n"
            f"stdout: {result.stdout!r}\nstderr: {result.stderr!r}"
        )

    def ok(self, *args: str) -> str:
        """Exit 0, nothing on stderr; stdout without print()'s final newline."""
        result = self(*args)
        assert result.returncode == 0 and result.stderr == "", self._describe(args, result)
        assert result.stdout.endswith("\n"), self._describe(args, result)
        return result.stdout[:-1]

    def json(self, *args: str) -> dict[str, Any]:
        """`--json` output: the raw reply (exit 0 even for an error reply, as circusctl does)."""
        reply: dict[str, Any] = json.loads(self.ok("--json", *args))
        assert re.fullmatch(r"[0-9a-f]{32}", reply["id"]), reply
        assert isinstance(reply["time"], float) and abs(reply["time"] - time.time()) < 60, reply
        return reply

    def error(self, *args: str) -> str:
        """A command error: exit 3, nothing on stdout; stderr without its final newline."""
        result = self(*args)
        assert result.returncode == 3 and result.stdout == "", self._describe(args, result)
        assert result.stderr.endswith("\n"), self._describe(args, result)
        return result.stderr[:-1]


def ok_reply(reply: dict[str, Any], *fields: str) -> dict[str, Any]:
    """An ok reply with exactly Circus's fields (status, time, id and `fields`)."""
    assert reply["status"] == "ok", reply
    assert set(reply) == {"status", "time", "id", *fields}, reply
    return reply


def error_reply(reply: dict[str, Any], errno: int, reason: str | None = None) -> None:
    assert set(reply) == {"status", "reason", "tb", "time", "errno", "id"}, reply
    assert reply["status"] == "error" and reply["errno"] == errno and reply["tb"] is None, reply
    assert isinstance(reply["time"], float), reply
    if reason is not None:
        assert reply["reason"] == reason, reply


def sleeper(tag: str) -> str:
    return f"sleep {tag}"


def check_info(info: dict[str, Any], pid: int, cmdline: str, numprocesses: int) -> None:
    """One process's `stats` info, as Circus's get_info + watcher.process_info give it."""
    # every field Circus has; bigtop adds its own (the process `state`), which clients ignore
    assert set(info) - BIGTOP_EXTRA_FIELDS == INFO_FIELDS, info
    assert info["pid"] == pid
    assert re.fullmatch(SIZE, info["mem_info1"]) and re.fullmatch(SIZE, info["mem_info2"]), info
    assert isinstance(info["cpu"], float) and isinstance(info["mem"], float), info
    assert re.fullmatch(r"\d+:\d\d\.\d{1,2}", info["ctime"]), info
    assert info["username"] == USER and info["nice"] == NICE, info
    assert info["cmdline"] == cmdline and info["children"] == [], info
    assert isinstance(info["create_time"], float) and isinstance(info["age"], float), info
    assert 0 <= info["age"] < 120, info
    assert isinstance(info["started"], float) and abs(info["started"] - time.time()) < 120, info
    assert isinstance(info["wid"], int) and 1 <= info["wid"] <= 2 * numprocesses, info


def parse_lines(text: str) -> dict[str, str]:
    """`key: value` lines (get, options, globaloptions)."""
    return dict(
        line.split(": ", 1) if ": " in line else line.split(":", 1) for line in text.split("\n")
    )


# ---- read-only commands -------------------------------------------------------------------
def test_circusctl_reads_state(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:sleeper]
        cmd = {sleeper("3600.101")}
        numprocesses = 2
        graceful_timeout = 2

        [watcher:Web]
        cmd = {sleeper("3600.102")}

        [watcher:idle]
        cmd = {sleeper("3600.103")}
        autostart = false
        """
    )
    ctl = Ctl(circus, daemon)
    pids = daemon.wait_running("3600.101", 2)
    [web] = daemon.wait_running("3600.102", 1)

    # list: lower-cased, sorted, comma-joined; with a name: that watcher's pids.
    assert ctl.ok("list") == "idle,sleeper,web"
    assert sorted(int(p) for p in ctl.ok("list", "sleeper").split(",")) == pids
    assert ctl.ok("list", "WEB") == str(web)
    assert ctl.ok("list", "idle") == ""
    assert ok_reply(ctl.json("list"), "watchers")["watchers"] == ["idle", "sleeper", "web"]
    assert sorted(ok_reply(ctl.json("list", "sleeper"), "pids")["pids"]) == pids

    # status: `name: status` lines sorted (original case); the reply's own status key reused.
    assert ctl.ok("status") == "Web: active\nidle: stopped\nsleeper: active"
    assert ctl.ok("status", "web") == "active"
    assert ctl.ok("status", "idle") == "stopped"
    assert ok_reply(ctl.json("status"), "statuses")["statuses"] == {
        "Web": "active",
        "idle": "stopped",
        "sleeper": "active",
    }
    single = ctl.json("status", "sleeper")
    assert set(single) == {"status", "time", "id"} and single["status"] == "active", single
    assert ctl.error("status", "nosuch") == "error"  # circusctl's quirk: just "error"
    error_reply(ctl.json("status", "nosuch"), 3, "program nosuch not found")

    # counts
    assert ctl.ok("numwatchers") == "3"
    assert ok_reply(ctl.json("numwatchers"), "numwatchers")["numwatchers"] == 3
    assert ctl.ok("numprocesses") == "3"
    assert ctl.ok("numprocesses", "sleeper") == "2"
    counted = ok_reply(ctl.json("numprocesses", "sleeper"), "numprocesses", "watcher_name")
    assert counted["numprocesses"] == 2 and counted["watcher_name"] == "sleeper"
    assert ok_reply(ctl.json("numprocesses"), "numprocesses")["numprocesses"] == 3

    # get: `key: value` in the order asked, None rendered empty; raw values in --json.
    assert ctl.ok("get", "sleeper", "numprocesses", "graceful_timeout", "env") == (
        "numprocesses: 2\ngraceful_timeout: 2.0\nenv: "
    )
    got = ok_reply(ctl.json("get", "sleeper", "numprocesses", "env", "graceful_timeout"), "options")
    assert got["options"] == {"numprocesses": 2, "env": None, "graceful_timeout": 2.0}
    assert ctl.error("get", "sleeper", "nosuch") == "error: 'nosuch' option not found"

    # options: every Circus option of the watcher (bigtop leaks no `__name__`, §4)
    shown = parse_lines(ctl.ok("options", "sleeper"))
    assert set(shown) >= OPTIONS_KEYS, OPTIONS_KEYS - set(shown)
    assert shown["numprocesses"] == "2" and shown["graceful_timeout"] == "2.0"
    assert shown["stop_signal"] == "15" and shown["cmd"] == "sleep 3600.101"
    assert shown["singleton"] == "False" and shown["respawn"] == "True"
    options = ok_reply(ctl.json("options", "sleeper"), "options")["options"]
    assert set(options) >= OPTIONS_KEYS and "__name__" not in options, options
    assert options["stop_signal"] == 15 and options["numprocesses"] == 2, options
    assert options["graceful_timeout"] == 2.0 and options["env"] is None, options

    # globaloptions
    global_options = parse_lines(ctl.ok("globaloptions"))
    assert set(global_options) == {
        "endpoint",
        "stats_endpoint",
        "pubsub_endpoint",
        "check_delay",
        "multicast_endpoint",
    }, global_options
    assert global_options["endpoint"] == daemon.control
    assert global_options["pubsub_endpoint"] == daemon.pubsub
    assert global_options["check_delay"] == "5.0"
    assert ctl.ok("globaloptions", "endpoint") == f"endpoint: {daemon.control}"
    only = ok_reply(ctl.json("globaloptions", "pubsub_endpoint"), "options")["options"]
    assert only == {"pubsub_endpoint": daemon.pubsub}
    assert ok_reply(ctl.json("globaloptions"), "options")["options"]["check_delay"] == 5.0

    # listsockets without sockets: an empty line
    assert ctl.ok("listsockets") == ""
    assert ok_reply(ctl.json("listsockets"), "sockets")["sockets"] == []


def test_circusctl_stats_and_dstats(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:Sleeper]
        cmd = {sleeper("3600.111")}
        numprocesses = 2

        [watcher:idle]
        cmd = {sleeper("3600.112")}
        autostart = false
        """
    )
    ctl = Ctl(circus, daemon)
    pids = daemon.wait_running("3600.111", 2)

    lines = ctl.ok("stats", "Sleeper").split("\n")
    assert lines[0] == "Sleeper:", lines
    seen = []
    for line in lines[1:]:
        match = re.fullmatch(STATS_LINE, line)
        assert match, line
        assert match["key"] == match["pid"] and match["cmdline"] == "sleep", line
        assert match["user"] == USER and int(match["nice"]) == NICE, line
        seen.append(int(match["pid"]))
    assert sorted(seen) == pids

    reply = ok_reply(ctl.json("stats", "Sleeper"), "name", "info")
    assert reply["name"] == "Sleeper"
    assert set(reply["info"]) == {str(pid) for pid in pids}, reply
    for key, info in reply["info"].items():
        check_info(info, int(key), "sleep", 2)
    assert sorted(info["wid"] for info in reply["info"].values()) == [1, 2]

    # one process: "<pid>: <line>\n" printed (so a blank line follows)
    out = ctl.ok("stats", "Sleeper", str(pids[0]))
    first, *rest = out.split("\n")
    assert rest == [""], out
    match = re.fullmatch(STATS_LINE, first)
    assert match and match["pid"] == str(pids[0]), out
    one = ok_reply(ctl.json("stats", "Sleeper", str(pids[0])), "process", "info")
    assert one["process"] == pids[0]
    check_info(one["info"], pids[0], "sleep", 2)
    assert ctl.error("stats", "Sleeper", "999999") == "error: process 999999 not found in 'Sleeper'"
    error_reply(ctl.json("stats", "Sleeper", "999999"), 3, "process 999999 not found in 'Sleeper'")
    assert ctl.error("stats", "nosuch") == "error: program nosuch not found"

    # every watcher: "name:" then its processes; --json: infos keyed by original-case name
    everything = ctl.ok("stats").split("\n")
    assert everything[0] in ("Sleeper:", "idle:"), everything
    assert {"Sleeper:", "idle:"} <= set(everything), everything
    assert sorted(int(line.split(":")[0]) for line in everything if ": " in line) == pids
    infos = ok_reply(ctl.json("stats"), "infos")["infos"]
    assert set(infos) == {"Sleeper", "idle"} and infos["idle"] == {}, infos
    assert set(infos["Sleeper"]) == {str(pid) for pid in pids}

    # dstats: the daemon itself
    main, line = ctl.ok("dstats").split("\n")
    assert main == "Main Process:"
    match = re.fullmatch("    " + INFO_LINE, line)  # dstats: no "<pid>: " in front
    assert match and match["pid"] == str(daemon.pid), line
    assert match["cmdline"] == os.path.basename(sys.executable), line
    info = ok_reply(ctl.json("dstats"), "info")["info"]
    assert set(info) == DSTATS_FIELDS and info["pid"] == daemon.pid, info
    assert info["children"] == [] and info["username"] == USER, info


def test_circusctl_listsockets_shows_configured_sockets(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:web]
        cmd = {sleeper("3600.121")}
        use_sockets = true

        [socket:Web]
        path = /tmp/bigtop-compat-{os.getpid()}-{time.monotonic_ns()}.sock
        """
    )
    ctl = Ctl(circus, daemon)
    daemon.wait_running("3600.121", 1)
    path = re.search(r"path = (\S+)", daemon.config.read_text())[1]  # type: ignore[index]
    try:
        # Circus: "<fd>:socket '<name>' at <path>", names lower-cased
        assert re.fullmatch(rf"\d+:socket 'web' at {re.escape(path)}", ctl.ok("listsockets"))
        [sock] = ok_reply(ctl.json("listsockets"), "sockets")["sockets"]
        assert set(sock) == {"fd", "name", "backlog", "path"}, sock
        assert sock["name"] == "web" and sock["path"] == path, sock
        assert isinstance(sock["fd"], int) and isinstance(sock["backlog"], int), sock
    finally:
        daemon.stop()
        if os.path.exists(path):
            os.unlink(path)


# ---- scaling ------------------------------------------------------------------------------
def test_circusctl_incr_and_decr(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:w]
        cmd = {sleeper("3600.201")}

        [watcher:single]
        cmd = {sleeper("3600.202")}
        singleton = true
        """
    )
    ctl = Ctl(circus, daemon)
    [first] = daemon.wait_running("3600.201", 1)
    daemon.wait_running("3600.202", 1)

    assert ctl.ok("incr", "w") == "ok"  # not waiting: a bare ok
    daemon.wait_running("3600.201", 2)
    assert ctl.ok("incr", "w", "2", "--waiting") == "4"
    assert len(daemon.running("3600.201")) == 4  # --waiting: done when answered
    ok_reply(ctl.json("incr", "w"))  # no numprocesses without --waiting
    daemon.wait_running("3600.201", 5)
    assert ok_reply(ctl.json("incr", "w", "--waiting"), "numprocesses")["numprocesses"] == 6
    assert len(daemon.running("3600.201")) == 6

    assert ctl.ok("decr", "w") == "ok"
    daemon.wait_running("3600.201", 5)
    assert not alive(first), "decr kills the oldest process first"
    assert ctl.ok("decr", "w", "2", "--waiting") == "3"
    assert len(daemon.running("3600.201")) == 3
    assert ok_reply(ctl.json("decr", "w", "--waiting"), "numprocesses")["numprocesses"] == 2
    assert len(daemon.running("3600.201")) == 2
    assert ctl.ok("decr", "w", "5", "--waiting") == "0"  # clamps at 0
    assert daemon.running("3600.201") == []
    assert ctl.ok("numprocesses", "w") == "0"
    assert ctl.ok("status", "w") == "active"
    assert ctl.ok("incr", "w", "--waiting") == "1"
    daemon.wait_running("3600.201", 1)

    singleton = "This watcher is a Singleton - not changing the number of processes"
    assert ctl.ok("incr", "single") == singleton
    assert ctl.ok("incr", "single", "3", "--waiting") == singleton
    assert ctl.ok("decr", "single", "--waiting") == singleton
    reply = ok_reply(ctl.json("incr", "single"), "numprocesses", "singleton")
    assert reply["numprocesses"] == 1 and reply["singleton"] is True
    assert len(daemon.running("3600.202")) == 1

    assert ctl.error("incr", "nosuch") == "error: program nosuch not found"
    error_reply(ctl.json("decr", "nosuch", "--waiting"), 3, "program nosuch not found")


# ---- start / stop / restart / reload ------------------------------------------------------
def test_circusctl_start_stop_restart_reload(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:a]
        cmd = {sleeper("3600.301")}
        numprocesses = 2
        graceful_timeout = 3

        [watcher:b]
        cmd = {sleeper("3600.302")}

        [watcher:manual]
        cmd = {sleeper("3600.303")}
        autostart = false
        """
    )
    ctl = Ctl(circus, daemon)
    a = daemon.wait_running("3600.301", 2)
    daemon.wait_running("3600.302", 1)

    assert ctl.ok("stop", "a", "--waiting") == "ok"
    assert daemon.running("3600.301") == [] and not any(alive(p) for p in a)
    assert ctl.ok("status", "a") == "stopped"
    started = ok_reply(ctl.json("start", "a", "--waiting"), "info")["info"]
    a = daemon.running("3600.301")
    assert started == {"started": a, "kept": []} and len(a) == 2, (started, a)
    assert ctl.ok("status", "a") == "active"
    again = ok_reply(ctl.json("start", "a", "--waiting"), "info")["info"]
    assert again == {"started": [], "kept": a}, again
    assert ok_reply(ctl.json("stop", "a", "--waiting"), "info")["info"] is None
    assert daemon.running("3600.301") == []
    assert ctl.ok("start", "a") == "ok"
    a = daemon.wait_running("3600.301", 2)
    ok_reply(ctl.json("stop", "a"))  # not waiting: a bare ok
    wait_until(lambda: not daemon.running("3600.301"), what="a to stop")
    ok_reply(ctl.json("start", "a"))
    a = daemon.wait_running("3600.301", 2)

    restarted = ok_reply(ctl.json("restart", "a", "--waiting"), "info")["info"]
    new = daemon.running("3600.301")
    assert len(new) == 2 and not set(new) & set(a), (a, new)
    assert restarted == {"stopped": a, "started": new, "kept": []}, restarted
    assert ctl.ok("restart", "a") == "ok"
    wait_until(
        lambda: len(n := daemon.running("3600.301")) == 2 and not set(n) & set(new),
        what="a restarted",
    )
    a = daemon.running("3600.301")

    reloaded = ok_reply(ctl.json("reload", "a", "--waiting"), "info")["info"]
    new = daemon.running("3600.301")
    assert len(new) == 2 and not set(new) & set(a), (a, new)
    assert reloaded == {"stopped": a, "started": new, "kept": []}, reloaded
    assert ctl.ok("reload", "a", "--waiting") == "ok"  # plain output of a dict reply: ok
    newer = daemon.running("3600.301")
    assert len(newer) == 2 and not set(newer) & set(new)
    assert ctl.ok("reload", "a", "--terminate", "--waiting") == "ok"
    newest = daemon.running("3600.301")
    assert len(newest) == 2 and not set(newest) & set(newer)
    assert ctl.ok("reload", "a", "--sequential", "--waiting") == "ok"
    wait_until(lambda: len(daemon.running("3600.301")) == 2, what="a after a sequential reload")

    # no name: every watcher (stop), the autostart ones (start), all incl. stopped (reload)
    assert ctl.ok("stop", "--waiting") == "ok"
    assert not daemon.children()
    assert ctl.ok("status") == "a: stopped\nb: stopped\nmanual: stopped"
    assert ctl.ok("start", "--waiting") == "ok"
    daemon.wait_running("3600.301", 2)
    daemon.wait_running("3600.302", 1)
    assert ctl.ok("status") == "a: active\nb: active\nmanual: stopped"
    before = set(daemon.children())
    ok_reply(ctl.json("reload", "--waiting"))
    assert ctl.ok("status") == "a: active\nb: active\nmanual: active"  # Circus quirk kept
    wait_until(
        lambda: len(c := daemon.children()) == 4 and not set(c) & before,
        what="every watcher reloaded",
    )
    assert ctl.ok("stop", "ma*", "--waiting") == "ok"  # glob (the default --match)
    assert ctl.ok("status", "manual") == "stopped" and ctl.ok("status", "b") == "active"
    assert ctl.ok("stop", "--match=simple", "B", "--waiting") == "ok"
    assert ctl.ok("status", "b") == "stopped"
    assert ctl.ok("start", "--match=regex", "[ab]", "--waiting") == "ok"
    assert ctl.ok("status") == "a: active\nb: active\nmanual: stopped"

    for command in ("start", "stop", "restart", "reload"):
        assert ctl.error(command, "nosuch") == "error: program nosuch not found", command
        assert ctl.error(command, "nosuch", "--waiting") == "error: program nosuch not found"


def test_circusctl_restart_without_a_name_rereads_the_config(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:w]
        cmd = {sleeper("3600.311")}
        """
    )
    ctl = Ctl(circus, daemon)
    daemon.wait_running("3600.311", 1)
    assert ctl.ok("set", "w", "numprocesses", "3", "--waiting") == "ok"
    old = daemon.wait_running("3600.311", 3)
    assert ctl.ok("restart") == "ok"
    wait_until(
        lambda: (n := daemon.running("3600.311")) and len(n) == 1 and not set(n) & set(old),
        timeout=20,
        what="a fresh arbiter with the config's numprocesses",
    )
    assert daemon.process.poll() is None  # same daemon process
    daemon.wait_ready()
    assert ctl.ok("get", "w", "numprocesses") == "numprocesses: 1"


# ---- add / rm -----------------------------------------------------------------------------
def test_circusctl_add_and_rm(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:base]
        cmd = {sleeper("3600.401")}
        """
    )
    ctl = Ctl(circus, daemon)
    daemon.wait_running("3600.401", 1)

    assert ctl.ok("add", "dyn", "sleep", "3600.402") == "ok"
    assert ctl.ok("list") == "base,dyn"
    assert ctl.ok("status", "dyn") == "stopped"  # added watchers start stopped
    assert daemon.running("3600.402") == []
    assert ctl.ok("numwatchers") == "2"
    assert ctl.ok("get", "dyn", "cmd", "numprocesses") == "cmd: sleep 3600.402\nnumprocesses: 1"
    # a duplicate (case-insensitive): errno 5 (Circus prefixes the raw request to the reason)
    duplicate = ctl.error("add", "DYN", "sleep", "1")
    assert duplicate.startswith("error: ") and duplicate.endswith("'DYN' already exist"), duplicate
    error_reply(ctl.json("add", "dyn", "sleep", "1"), 5)

    added = ok_reply(ctl.json("add", "--start", "Dyn2", "sleep", "3600.403"))  # no waiting sent
    assert "started" not in added
    daemon.wait_running("3600.403", 1)
    assert ctl.ok("status") == "Dyn2: active\nbase: active\ndyn: stopped"
    assert ctl.ok("list") == "base,dyn,dyn2"
    assert ctl.ok("start", "dyn", "--waiting") == "ok"
    [dyn] = daemon.running("3600.402")

    assert ctl.ok("rm", "dyn") == "ok"
    wait_until(lambda: not alive(dyn), what="rm to stop dyn's process")
    wait_until(lambda: ctl.ok("list") == "base,dyn2", what="dyn gone from list")
    ok_reply(ctl.json("rm", "DYN2"))
    wait_until(lambda: not daemon.running("3600.403"), what="rm to stop dyn2's process")
    wait_until(lambda: ctl.ok("numwatchers") == "1", what="one watcher left")
    assert ctl.error("rm", "dyn") == "error: program dyn not found"
    assert len(daemon.running("3600.401")) == 1


# ---- set / get ----------------------------------------------------------------------------
def test_circusctl_set_and_get(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:w]
        cmd = {sleeper("3600.501")}
        graceful_timeout = 2
        """
    )
    ctl = Ctl(circus, daemon)
    daemon.wait_running("3600.501", 1)

    assert ctl.ok("set", "w", "numprocesses", "3") == "ok"
    daemon.wait_running("3600.501", 3)
    assert ctl.ok("get", "w", "numprocesses") == "numprocesses: 3"
    assert ctl.ok("set", "w", "numprocesses", "2", "--waiting") == "ok"
    assert len(daemon.running("3600.501")) == 2
    ok_reply(ctl.json("set", "w", "numprocesses", "1", "--waiting"))
    assert len(daemon.running("3600.501")) == 1

    assert ctl.ok("set", "w", "graceful_timeout", "7.5") == "ok"
    assert ctl.ok("get", "w", "graceful_timeout") == "graceful_timeout: 7.5"
    assert ctl.ok("set", "w", "stop_signal", "INT") == "ok"  # circusctl sends 2
    got = ok_reply(ctl.json("get", "w", "stop_signal", "graceful_timeout"), "options")
    assert got["options"] == {"stop_signal": 2, "graceful_timeout": 7.5}
    assert ctl.ok("set", "w", "Graceful_Timeout", "3", "numprocesses", "2", "--waiting") == "ok"
    assert ctl.ok("get", "w", "graceful_timeout", "numprocesses") == (
        "graceful_timeout: 3.0\nnumprocesses: 2"
    )
    assert len(daemon.running("3600.501")) == 2
    options = ok_reply(ctl.json("options", "w"), "options")["options"]
    assert options["numprocesses"] == 2 and options["graceful_timeout"] == 3.0, options

    # cmd changes restart the processes with the new command (a graceful reload)
    old = daemon.running("3600.501")
    assert ctl.ok("set", "w", "cmd", "sleep 3600.502", "--waiting") == "ok"
    daemon.wait_running("3600.502", 2)
    wait_until(lambda: not any(alive(p) for p in old), what="the old command's processes gone")
    assert ctl.ok("get", "w", "cmd") == "cmd: sleep 3600.502"

    assert ctl.error("set", "nosuch", "numprocesses", "1") == "error: program nosuch not found"
    assert ctl.error("get", "nosuch", "numprocesses") == "error: program nosuch not found"
    assert ctl.error("options", "nosuch") == "error: program nosuch not found"


# ---- signal / kill ------------------------------------------------------------------------
TRAP = (
    "import os, signal, sys, time\n"
    "def note(signum, frame):\n"
    "    with open(sys.argv[1], 'a') as out:\n"
    "        out.write('%d %d\\n' % (os.getpid(), signum))\n"
    "signal.signal(signal.SIGUSR1, note)\n"
    "signal.signal(signal.SIGUSR2, note)\n"
    "with open(sys.argv[1], 'a') as out:\n"
    "    out.write('%d ready\\n' % os.getpid())\n"
    "time.sleep(3600)\n"
)


def notes(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)
    whole = [line for line in lines if line.endswith("\n")]  # not one being appended
    return [(int(p), what) for p, what in (line.split() for line in whole)]


def test_circusctl_signal_and_kill(circus, bigtop, tmp_path) -> None:
    script = tmp_path / "trap.py"
    script.write_text(TRAP)
    log = tmp_path / "signals.log"
    daemon = bigtop(
        f"""
        [watcher:trap]
        cmd = {PYTHON} {script} {log}
        numprocesses = 2

        [watcher:w]
        cmd = {sleeper("3600.601")}
        numprocesses = 2
        graceful_timeout = 2
        """
    )
    ctl = Ctl(circus, daemon)
    traps = daemon.wait_running(str(script), 2)
    wait_until(
        lambda: sorted(p for p, what in notes(log) if what == "ready") == traps,
        what="both trap processes ready",
    )

    assert ctl.ok("signal", "trap", "USR1") == "ok"
    usr1 = str(int(signal.SIGUSR1))
    wait_until(
        lambda: sorted(p for p, what in notes(log) if what == usr1) == traps,
        what="SIGUSR1 in every trap process",
    )
    assert ctl.ok("signal", "trap", str(traps[0]), "SIGUSR2") == "ok"
    usr2 = str(int(signal.SIGUSR2))
    wait_until(lambda: (traps[0], usr2) in notes(log), what="SIGUSR2 in the first process")
    ok_reply(ctl.json("signal", "trap", str(traps[1]), str(int(signal.SIGUSR2))))
    wait_until(lambda: (traps[1], usr2) in notes(log), what="SIGUSR2 (by number) in the second")
    assert ctl.ok("signal", "trap", "USR1", "--children") == "ok"  # no children: nothing to do
    assert daemon.running(str(script)) == traps
    # Circus: an invalid signal name fails (errno 5, reason "command ...: module 'signal' ...")
    assert ctl.error("signal", "trap", "BOGUS").startswith("error: ")
    assert ctl.error("signal", "nosuch", "HUP") == "error: program nosuch not found"

    w = daemon.wait_running("3600.601", 2)
    assert ctl.ok("kill", "w", str(w[0])) == "ok"
    wait_until(
        lambda: (n := daemon.running("3600.601")) and len(n) == 2 and w[0] not in n and w[1] in n,
        what="the killed process replaced, the other kept",
    )
    w = daemon.running("3600.601")
    ok_reply(ctl.json("kill", "w"))
    wait_until(
        lambda: (n := daemon.running("3600.601")) and len(n) == 2 and not set(n) & set(w),
        what="both processes killed and replaced",
    )
    w = daemon.running("3600.601")
    assert ctl.ok("kill", "w", "--signum", "KILL") == "ok"
    wait_until(
        lambda: (n := daemon.running("3600.601")) and len(n) == 2 and not set(n) & set(w),
        what="both processes SIGKILLed and replaced",
    )
    assert ctl.error("kill", "nosuch") == "error: program nosuch not found"


def test_circusctl_signal_and_kill_of_a_pid_not_in_the_watcher(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:w]
        cmd = {sleeper("3600.611")}
        """
    )
    ctl = Ctl(circus, daemon)
    [pid] = daemon.wait_running("3600.611", 1)
    # Circus: signal sends to the given pid without checking it (ESRCH ignored), kill filters
    # the watcher's processes by pid: both answer ok and do nothing
    answers = {
        args: (result.returncode, result.stdout, result.stderr)
        for args in (("signal", "w", "999999", "USR1"), ("kill", "w", "999999"))
        for result in [ctl(*args)]
    }
    assert answers == {
        ("signal", "w", "999999", "USR1"): (0, "ok\n", ""),
        ("kill", "w", "999999"): (0, "ok\n", ""),
    }
    assert daemon.running("3600.611") == [pid]


# ---- what Circus echoes back --------------------------------------------------------------
def test_replies_echo_the_watcher_name_as_requested(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:Sleeper]
        cmd = {sleeper("3600.621")}
        """
    )
    ctl = Ctl(circus, daemon)
    [pid] = daemon.wait_running("3600.621", 1)
    assert ctl.ok("list", "SLEEPER") == str(pid)
    # Circus's stats and numprocesses put props['name'] (as sent) in the reply
    seen = {
        "stats --json: name": ok_reply(ctl.json("stats", "sleeper"), "name", "info")["name"],
        "stats: first line": ctl.ok("stats", "SLEEPER").split("\n")[0],
        "numprocesses --json: watcher_name": ctl.json("numprocesses", "sleeper")["watcher_name"],
        "stats of an unknown pid": ctl.error("stats", "sleeper", "999999"),
    }
    assert seen == {
        "stats --json: name": "sleeper",
        "stats: first line": "SLEEPER:",
        "numprocesses --json: watcher_name": "sleeper",
        "stats of an unknown pid": "error: process 999999 not found in 'sleeper'",
    }


def test_circusctl_globaloptions_unknown_key(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:w]
        cmd = {sleeper("3600.631")}
        """
    )
    ctl = Ctl(circus, daemon)
    # Circus: MessageError("'nosuch' not an existing option"); its console_msg prints the
    # bare reason (no "error: " prefix), exit 3
    assert ctl.error("globaloptions", "nosuch") == "'nosuch' not an existing option"
    error_reply(ctl.json("globaloptions", "nosuch"), 3, "'nosuch' not an existing option")


# ---- reloadconfig / quit ------------------------------------------------------------------
def test_circusctl_reloadconfig(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:w1]
        cmd = {sleeper("3600.701")}

        [watcher:w2]
        cmd = {sleeper("3600.702")}
        """
    )
    ctl = Ctl(circus, daemon)
    daemon.wait_running("3600.701", 1)
    [w2] = daemon.wait_running("3600.702", 1)
    daemon.config.write_text(
        endpoints_section(daemon.sockets)
        + f"[watcher:w1]\ncmd = {sleeper('3600.701')}\nnumprocesses = 2\n\n"
        + f"[watcher:w3]\ncmd = {sleeper('3600.703')}\n"
    )
    assert ctl.ok("reloadconfig", "--waiting") == "ok"
    assert ctl.ok("list") == "w1,w3"
    daemon.wait_running("3600.701", 2)
    daemon.wait_running("3600.703", 1)
    wait_until(lambda: not alive(w2), what="w2's process stopped")
    assert ctl.ok("numprocesses", "w1") == "2"

    # any change but numprocesses: the watcher is recreated (its new numprocesses too).
    # (Only-numprocesses back to 1 would be a no-op in Circus: it resizes without updating
    # the config it compares the next reload with.)
    old = daemon.running("3600.701")
    daemon.config.write_text(
        endpoints_section(daemon.sockets)
        + f"[watcher:w1]\ncmd = {sleeper('3600.704')}\nnumprocesses = 2\n"
    )
    ok_reply(ctl.json("reloadconfig"))  # not waiting: a bare ok
    wait_until(lambda: ctl.ok("list") == "w1", what="w3 removed")
    daemon.wait_running("3600.704", 2)
    wait_until(lambda: not daemon.running("3600.703"), what="w3's process stopped")
    wait_until(lambda: not any(alive(p) for p in old), what="w1's old processes stopped")
    assert ctl.ok("get", "w1", "cmd") == "cmd: sleep 3600.704"


def test_circusctl_quit(circus, bigtop) -> None:
    ini = f"""
        [watcher:w]
        cmd = {sleeper("3600.801")}
        numprocesses = 2
        """
    first = bigtop(ini)
    pids = first.wait_running("3600.801", 2)
    assert Ctl(circus, first).ok("quit") == "ok"
    assert first.process.wait(20) == 0
    assert not any(alive(p) for p in pids)

    second = bigtop(ini)
    pids = second.wait_running("3600.801", 2)
    ok_reply(Ctl(circus, second).json("quit", "--waiting"))
    assert not any(alive(p) for p in pids)  # --waiting: everything stopped when answered
    assert second.process.wait(20) == 0


# ---- errors common to every command -------------------------------------------------------
def test_circusctl_unknown_watcher_is_an_error_everywhere(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:w]
        cmd = {sleeper("3600.901")}
        """
    )
    ctl = Ctl(circus, daemon)
    daemon.wait_running("3600.901", 1)
    for args in (
        ("list", "nosuch"),
        ("numprocesses", "nosuch"),
        ("options", "nosuch"),
        ("decr", "nosuch"),
        ("rm", "nosuch"),
    ):
        assert ctl.error(*args) == "error: program nosuch not found", args
    reply = ctl.json("rm", "nosuch")
    error_reply(reply, 3, "program nosuch not found")
    # missing arguments are refused by circusctl itself (exit 1), nothing sent
    result = ctl("incr")
    assert result.returncode == 1 and "Invalid number of arguments" in result.stderr, result
    assert len(daemon.running("3600.901")) == 1


# ---- circus.client.CircusClient -----------------------------------------------------------
CLIENT_SCRIPT = r"""
import json, sys
from circus.client import CircusClient

endpoint, name, command = sys.argv[1:4]
client = CircusClient(endpoint=endpoint, timeout=15)
out = {}

def call(key, command, **props):
    request = {"command": command, "properties": props}
    reply = client.call(request)          # call() puts its uuid4 id into the request
    out[key] = {"id": request["id"], "reply": reply}

call("status", "status")
call("status_one", "status", name=name)
call("list", "list")
call("list_one", "list", name=name)
call("incr", "incr", name=name, nb=2, waiting=True)
call("numprocesses", "numprocesses", name=name)
call("stats", "stats", name=name)
call("stats_all", "stats")
call("add", "add", name="viaclient", cmd=command, start=True, waiting=True,
     options={"graceful_timeout": 1, "numprocesses": 1})
call("rm", "rm", name="viaclient", waiting=True)
call("missing", "status", name="nosuch")
out["send_message"] = client.send_message("numwatchers")
client.stop()
print(json.dumps(out))
"""


def test_circus_client(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:Sleeper]
        cmd = {sleeper("3600.171")}
        """
    )
    [first] = daemon.wait_running("3600.171", 1)
    result = circus.script(CLIENT_SCRIPT, daemon.control, "Sleeper", "sleep 3600.172")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for key, entry in out.items():
        if key != "send_message":
            assert entry["reply"]["id"] == entry["id"], (key, entry)
            assert isinstance(entry["reply"]["time"], float), (key, entry)
    replies = {key: entry["reply"] for key, entry in out.items() if key != "send_message"}

    assert ok_reply(replies["status"], "statuses")["statuses"] == {"Sleeper": "active"}
    assert replies["status_one"]["status"] == "active"
    assert ok_reply(replies["list"], "watchers")["watchers"] == ["sleeper"]
    assert ok_reply(replies["list_one"], "pids")["pids"] == [first]
    assert ok_reply(replies["incr"], "numprocesses")["numprocesses"] == 3
    counted = ok_reply(replies["numprocesses"], "numprocesses", "watcher_name")
    assert counted["numprocesses"] == 3 and counted["watcher_name"] == "Sleeper"
    pids = daemon.wait_running("3600.171", 3)

    stats = ok_reply(replies["stats"], "name", "info")
    assert stats["name"] == "Sleeper"
    assert set(stats["info"]) == {str(pid) for pid in pids}, stats
    for key, info in stats["info"].items():
        check_info(info, int(key), "sleep", 3)
    assert sorted(info["wid"] for info in stats["info"].values()) == [1, 2, 3]
    infos = ok_reply(replies["stats_all"], "infos")["infos"]
    assert set(infos) == {"Sleeper"} and set(infos["Sleeper"]) == {str(p) for p in pids}

    added = ok_reply(replies["add"], "started", "kept")
    assert len(added["started"]) == 1 and added["kept"] == [], added
    daemon.seen.update(added["started"])
    ok_reply(replies["rm"])
    assert not alive(added["started"][0])
    error_reply(replies["missing"], 3, "program nosuch not found")
    assert ok_reply(out["send_message"], "numwatchers")["numwatchers"] == 1


# ---- events -------------------------------------------------------------------------------
class Listener:
    """`circusctl listen` on the pub/sub endpoint, its lines parsed as they arrive."""

    LINE = re.compile(r"(b'.*?'): (b'.*')")

    def __init__(self, circus: CircusEnv, endpoint: str) -> None:
        self.process = circus.popen("circusctl", "--endpoint", endpoint, "listen")
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.other: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            match = self.LINE.fullmatch(line.rstrip("\n"))
            if match is None:
                self.other.append(line)
                continue
            topic = ast.literal_eval(match[1]).decode()
            payload = json.loads(ast.literal_eval(match[2]))
            self.events.append((topic, payload))

    def since(self, mark: int) -> list[tuple[str, dict[str, Any]]]:
        return self.events[mark:]

    def wait(self, mark: int, predicate: Callable[[list[tuple[str, dict[str, Any]]]], Any]) -> Any:
        return wait_until(
            lambda: predicate(self.since(mark)),
            timeout=10,
            what=(
                f"events (got {self.since(mark)}, other output {self.other}, "
                f"listen exit {self.process.poll()}, reader alive {self.thread.is_alive()})"
            ),
        )

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.thread.join(5)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _keys(topic: str) -> set[str]:
    event = topic.rsplit(".", 1)[1]
    if event in ("spawn", "kill"):
        return {"process_pid", "time"}
    if event == "reap":
        return {"process_pid", "time", "exit_code"}
    return {"time"}


def _check_payloads(events: list[tuple[str, dict[str, Any]]]) -> None:
    for topic, payload in events:
        assert set(payload) == _keys(topic), (topic, payload)
        assert isinstance(payload["time"], float) and abs(payload["time"] - time.time()) < 60
        if "process_pid" in payload:
            assert isinstance(payload["process_pid"], int), (topic, payload)


def _topics(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [topic for topic, _ in events]


def _pids(events: list[tuple[str, dict[str, Any]]], topic: str) -> list[int]:
    return [payload["process_pid"] for t, payload in events if t == topic]


@pytest.fixture
def listening(circus, bigtop) -> Iterator[tuple[Daemon, Listener]]:
    """A daemon with watcher `W` (2 processes) and a synced `circusctl listen` on it."""
    daemon = bigtop(
        f"""
        [watcher:W]
        cmd = {sleeper("3600.151")}
        numprocesses = 2
        graceful_timeout = 3
        """
    )
    daemon.wait_running("3600.151", 2)
    listener = Listener(circus, daemon.pubsub)
    try:
        # subscribing takes a moment (what is published before is lost): `set` until an
        # `updated` event shows the listener is on; then one more, recognised by its time, so
        # that every event of the earlier ones (published before it, in order) is behind us
        def subscribed() -> bool:
            ok_reply(daemon.call("set", name="w", options={"graceful_timeout": 3}))
            return "watcher.w.updated" in _topics(listener.events)

        wait_until(subscribed, timeout=15, interval=0.2, what="circusctl listen subscribed")
        before = time.time()
        ok_reply(daemon.call("set", name="w", options={"graceful_timeout": 3}))
        listener.wait(
            0,
            lambda ev: ev and ev[-1][0] == "watcher.w.updated" and ev[-1][1]["time"] >= before,
        )
        yield daemon, listener
        assert not listener.other, listener.other
        _check_payloads(listener.events)
    finally:
        listener.close()


def test_events_set_publishes_updated_per_key(listening) -> None:
    daemon, listener = listening
    mark = len(listener.events)
    ok_reply(daemon.call("set", name="w", options={"graceful_timeout": 2, "warmup_delay": 0}))
    listener.wait(mark, lambda ev: _topics(ev).count("watcher.w.updated") >= 2)
    ok_reply(daemon.call("set", name="w", options={"graceful_timeout": 3}, waiting=True))
    events = listener.wait(mark, lambda ev: _topics(ev).count("watcher.w.updated") >= 3 and ev)
    assert _topics(events) == ["watcher.w.updated"] * 3, events


def test_events_stop_then_start(listening) -> None:
    daemon, listener = listening
    pids = daemon.running("3600.151")
    mark = len(listener.events)
    ok_reply(daemon.call("stop", name="w", waiting=True), "info")
    events = listener.wait(
        mark,
        lambda ev: (
            _topics(ev)[-1:] == ["watcher.w.stop"]
            and set(_pids(ev, "watcher.w.reap")) == set(pids)
            and ev
        ),
    )
    # Circus (verified): kill per pid, reap per pid (exit_code -15), then one stop
    assert sorted(_pids(events, "watcher.w.kill")) == pids, events
    reaped = {p["process_pid"]: p for t, p in events if t == "watcher.w.reap"}
    assert all(p["exit_code"] == -signal.SIGTERM for p in reaped.values()), events
    for pid in pids:
        assert [t for t, p in events if p.get("process_pid") == pid] == [
            "watcher.w.kill",
            "watcher.w.reap",
        ], events
    stopping = events

    mark = len(listener.events)
    ok_reply(daemon.call("start", name="w", waiting=True), "info")
    events = listener.wait(mark, lambda ev: "watcher.w.start" in _topics(ev) and ev)
    pids = daemon.running("3600.151")
    assert _topics(events) == ["watcher.w.spawn", "watcher.w.spawn", "watcher.w.start"], events
    assert sorted(_pids(events, "watcher.w.spawn")) == pids, events

    assert _topics(stopping).count("watcher.w.stop") == 1, stopping  # one stop, once stopped


def test_events_incr_decr_and_kill(listening) -> None:
    daemon, listener = listening
    mark = len(listener.events)
    ok_reply(daemon.call("incr", name="w", waiting=True), "numprocesses")
    events = listener.wait(mark, lambda ev: "watcher.w.spawn" in _topics(ev) and ev)
    [added] = _pids(events, "watcher.w.spawn")
    assert added in daemon.running("3600.151")

    mark = len(listener.events)
    ok_reply(daemon.call("kill", name="w", pid=added))
    events = listener.wait(
        mark, lambda ev: {"watcher.w.kill", "watcher.w.spawn"} <= set(_topics(ev)) and ev
    )
    assert _pids(events, "watcher.w.kill") == [added], events
    assert events[0][0] == "watcher.w.kill", events
    [replacement] = _pids(events, "watcher.w.spawn")
    wait_until(lambda: len(daemon.running("3600.151")) == 3, what="the killed one replaced")
    assert replacement in daemon.running("3600.151")

    oldest = daemon.running("3600.151")
    mark = len(listener.events)
    ok_reply(daemon.call("decr", name="w", nb=1, waiting=True), "numprocesses")
    events = listener.wait(mark, lambda ev: "watcher.w.kill" in _topics(ev) and ev)
    [killed] = _pids(events, "watcher.w.kill")
    assert killed in oldest and killed not in daemon.running("3600.151"), events


def test_events_add_and_rm(listening) -> None:
    daemon, listener = listening
    mark = len(listener.events)
    reply = daemon.call("add", name="Dyn", cmd="sleep 3600.152", start=True, waiting=True)
    ok_reply(reply, "started", "kept")
    events = listener.wait(mark, lambda ev: "watcher.dyn.start" in _topics(ev) and ev)
    assert _topics(events) == ["watcher.dyn.add", "watcher.dyn.spawn", "watcher.dyn.start"]
    [dyn] = _pids(events, "watcher.dyn.spawn")
    daemon.seen.add(dyn)
    assert reply["started"] == [dyn]

    mark = len(listener.events)
    ok_reply(daemon.call("rm", name="dyn", waiting=True))
    events = listener.wait(
        mark,
        lambda ev: (
            _topics(ev)[-1:] == ["watcher.dyn.stop"] and "watcher.dyn.kill" in _topics(ev) and ev
        ),
    )
    # Circus (verified): remove, then the stop: kill, reap, stop
    assert _topics(events)[0] == "watcher.dyn.remove", events
    assert _pids(events, "watcher.dyn.kill") == [dyn], events
    assert _topics(events).count("watcher.dyn.stop") == 1, events


def test_events_reload(listening) -> None:
    daemon, listener = listening
    old = daemon.running("3600.151")
    mark = len(listener.events)
    ok_reply(daemon.call("reload", name="w", waiting=True), "info")
    events = listener.wait(mark, lambda ev: "watcher.w.reload" in _topics(ev) and ev)
    new = daemon.running("3600.151")
    # Circus (verified): spawn x N new, kill x N old, then reload. bigtop's deliberate
    # difference (zero-downtime rolling reload, reload_batch = 1): spawn one new, kill one
    # old, and so on; never fewer live processes than before, and `reload` comes last.
    assert sorted(_pids(events, "watcher.w.spawn")) == new, events
    assert sorted(_pids(events, "watcher.w.kill")) == old, events
    topics = _topics(events)
    spawns = [i for i, t in enumerate(topics) if t == "watcher.w.spawn"]
    kills = [i for i, t in enumerate(topics) if t == "watcher.w.kill"]
    assert all(spawn < kill for spawn, kill in zip(spawns, kills, strict=True)), events
    assert topics.index("watcher.w.reload") > max(kills), events

    # arbiter-wide reload (no name): the watcher reloads the same way
    mark = len(listener.events)
    ok_reply(daemon.call("reload", waiting=True))
    events = listener.wait(mark, lambda ev: "watcher.w.reload" in _topics(ev) and ev)
    assert sorted(_pids(events, "watcher.w.kill")) == new, events


# ---- the wire: bad input over raw DEALER and REQ sockets ----------------------------------
def test_raw_requests_get_circus_replies(bigtop) -> None:
    daemon = bigtop(
        f"""
        [watcher:w]
        cmd = {sleeper("3600.161")}
        """
    )
    daemon.wait_running("3600.161", 1)

    def one(payload: bytes) -> dict[str, Any]:
        [reply] = exchange(daemon.control, [payload], timeout=5)
        return reply

    error_reply(one(b"not json"), 1, "json invalid")
    assert one(b"not json")["id"] is None
    reply = one(b'{"id": "u1", "command": "nosuch"}')
    error_reply(reply, 2, "unknown command: 'nosuch'")
    assert reply["id"] == "u1"
    reply = one(b'{"id": "u2", "command": "NumWatchers"}')  # command names are case-insensitive
    assert ok_reply(reply, "numwatchers")["numwatchers"] == 1 and reply["id"] == "u2"
    reply = one(b'{"command": "list"}')
    assert ok_reply(reply, "watchers")["id"] is None
    reply = one(b'{"id": 7, "command": "numwatchers", "properties": {}}')
    assert reply["id"] == 7

    # Circus's validation errors: errno 3 with its reasons
    for request, reason in (
        ({"command": "incr"}, "message invalid 'name' is missing"),
        ({"command": "get", "properties": {"name": "w"}}, "message invalid 'keys' is missing"),
        ({"command": "incr", "properties": {"name": "nosuch"}}, "program nosuch not found"),
        (
            {"command": "set", "properties": {"name": "w", "options": {"numprocesses": "3"}}},
            "'numprocesses' isn't an integer",
        ),
        (
            {"command": "set", "properties": {"name": "w", "options": {"graceful_timeout": "x"}}},
            "'graceful_timeout' isn't a number",
        ),
        (
            {"command": "set", "properties": {"name": "w", "options": {"send_hup": "yes"}}},
            "'send_hup' isn't a valid boolean",
        ),
        (
            {"command": "set", "properties": {"name": "w", "options": {"nosuch": 1}}},
            "unknown key 'nosuch'",
        ),
        (
            {"command": "get", "properties": {"name": "w", "keys": ["nosuch"]}},
            "'nosuch' option not found",
        ),
        ({"command": "listen"}, "invalid message. use a pub/sub socket"),
    ):
        request["id"] = "v"
        reply = one(json.dumps(request).encode())
        error_reply(reply, 3, reason)
        assert reply["id"] == "v"
    # an exception inside a command: errno 5, and bigtop never sends a traceback (§4)
    reply = one(
        json.dumps({"id": "d", "command": "add", "properties": {"name": "W", "cmd": "x"}}).encode()
    )
    error_reply(reply, 5)
    assert reply["reason"].endswith("'W' already exist"), reply

    # bigtop answers what Circus left unanswered (§4): no command, empty frames, non-objects
    for payload in (b'{"id": "m1", "properties": {}}', b'{"id": "m1", "command": null}'):
        reply = one(payload)
        assert reply["status"] == "error" and reply["tb"] is None and reply["id"] == "m1", reply
        assert isinstance(reply["errno"], int) and reply["errno"] > 0, reply
    for payload in (b"", b"  \n", b"[1, 2]", b'"list"', b"null"):
        reply = one(payload)
        assert set(reply) == {"status", "reason", "tb", "time", "errno", "id"}, reply
        assert reply["status"] == "error" and reply["tb"] is None and reply["id"] is None, reply

    # one DEALER connection: casts get no reply (even failing ones) but are carried out;
    # after every kind of bad input the same connection is still answered
    context = zmq.Context.instance()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(daemon.control)
    try:
        for payload in (
            b"not json",
            b'{"id": "x1", "properties": {}}',
            b"",
            b'{"id": "c1", "command": "incr", "properties": {"name": "w"}, "msg_type": "cast"}',
            b'{"id": "c2", "command": "nosuch", "msg_type": "cast"}',
            b'{"id": "c3", "command": "incr", "properties": {}, "msg_type": "cast"}',
            b'{"id": "last", "command": "numwatchers"}',
        ):
            sock.send(payload)
        replies = []
        while sock.poll(2000):
            replies.append(json.loads(sock.recv()))
            if replies[-1]["id"] == "last":
                break
        ids = [reply["id"] for reply in replies]
        assert ids == [None, "x1", None, "last"], replies
        assert replies[-1]["numwatchers"] == 1
        assert not sock.poll(300), "a cast was answered"
    finally:
        sock.close(linger=0)
    daemon.wait_running("3600.161", 2)  # the cast incr was carried out

    # REQ framing (identity, empty delimiter, payload) is answered too (§3)
    [reply] = exchange(daemon.control, [b'{"id": "r1", "command": "numwatchers"}'], kind=zmq.REQ)
    assert ok_reply(reply, "numwatchers") == {**reply, "numwatchers": 1, "id": "r1"}
    [reply] = exchange(daemon.control, [b"not json"], kind=zmq.REQ)
    error_reply(reply, 1, "json invalid")
    [reply] = exchange(daemon.control, [b'{"id": "r2", "command": "list"}'], kind=zmq.REQ)
    assert ok_reply(reply, "watchers")["watchers"] == ["w"]


# ---- the stats stream, read by Circus's own stats client (what circus-top uses) ------------
STATS_CLIENT = """
import json, sys, time
from circus.stats.client import StatsClient
client = StatsClient(endpoint=sys.argv[1])
client.timeout = 0.5
seen = {}
deadline = time.time() + 20
for watcher, subtopic, stat in client.iter_messages():
    seen[f"{watcher}.{subtopic}"] = stat
    if time.time() > deadline or ("w.None" in seen and "circus.None" in seen and len(seen) >= 5):
        break
print(json.dumps(seen))
"""


def test_circus_stats_client_reads_the_stats_stream(circus, bigtop) -> None:
    daemon = bigtop(
        f"""
        [circus]
        stats_endpoint = ipc://{{sockets}}/stats.sock

        [watcher:w]
        cmd = {sleeper("3600.171")}
        numprocesses = 2
        """
    )
    pids = daemon.wait_running("3600.171", 2)
    endpoint = f"ipc://{daemon.sockets}/stats.sock"
    result = circus.script(STATS_CLIENT, endpoint, timeout=60)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert sorted(seen["w.None"]["pid"]) == sorted(pids)
    for pid in pids:
        stat = seen[f"w.{pid}"]
        assert stat["pid"] == pid and "cpu" in stat and "mem" in stat and "age" in stat
    assert seen["circus.None"]["pid"]
