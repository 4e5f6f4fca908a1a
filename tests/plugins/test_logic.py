"""The plugins' pure logic, fed numbers and strings: options, statsd lines, heartbeats,
resource limits, executables, names, restart policy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bigtop.config.load import FLAPPING_ALIASES
from bigtop.config.model import PluginConfig
from bigtop.core.policy import ExitStatus
from bigtop.plugins import registry
from bigtop.plugins.base import split_topic
from bigtop.plugins.command_reloader import Executable, changed, executable_of, identify
from bigtop.plugins.options import Options, PluginConfigError, Threshold, parse_circus_config
from bigtop.plugins.resource_watcher import Limits, Violations, children_of
from bigtop.plugins.runner import EXIT_CONFIG, parse_args, read_options
from bigtop.plugins.statsd import StatsdClient, pack, statsd_line, watcher_gauges
from bigtop.plugins.watchdog import Heartbeats, read_heartbeat
from bigtop.runtime.plugins import python_path, restart_delay, wanted
from tests.helpers import wait_until


# ---- options ---------------------------------------------------------------------------------
def options(**values: str) -> Options:
    return Options("plugin:test", values)


def test_options_convert_and_default() -> None:
    o = options(rate="0.5", count="3", on="yes", sig="KILL", mem="250M", pct="80", name=" web ")
    assert o.number("rate", 1.0) == 0.5
    assert o.positive("missing", 60.0) == 60.0
    assert o.integer("count", 1) == 3
    assert o.boolean("on", False) is True
    assert o.signal("sig", None) == signal.SIGKILL
    assert o.threshold("mem", 90.0) == Threshold(250 * 1024**2, percent=False)
    assert o.threshold("pct", 90.0) == Threshold(80.0, percent=True)
    assert o.threshold("absent", 90.0) == Threshold(90.0, percent=True)
    assert o.threshold("absent", None) is None
    assert o.text("name", "x") == "web"
    assert o.optional_text("absent") is None


@pytest.mark.parametrize(
    ("key", "value", "read", "message"),
    [
        (
            "loop_rate",
            "soon",
            lambda o: o.number("loop_rate", 1.0),
            "expected a number, like 5 or 0.5",
        ),
        ("loop_rate", "0", lambda o: o.positive("loop_rate", 1.0), "expected a number > 0"),
        (
            "max_count",
            "-2",
            lambda o: o.integer("max_count", 3, minimum=1),
            "expected a positive integer",
        ),
        ("on", "maybe", lambda o: o.boolean("on", True), "expected a boolean"),
        (
            "max_mem",
            "2 GB please",
            lambda o: o.threshold("max_mem", 90.0),
            "expected a percentage like 90",
        ),
        ("msg_regex", "(", lambda o: o.regex("msg_regex", ".*"), "expected a regular expression"),
        ("child_signal", "NOPE", lambda o: o.signal("child_signal", 15), "expected a signal name"),
    ],
)
def test_option_errors_name_section_option_and_value(key, value, read, message) -> None:
    with pytest.raises(PluginConfigError) as error:
        read(options(**{key: value}))
    assert str(error.value).startswith(f"[plugin:test] {key} = {value!r}: {message}")


def test_thresholds_compare_percent_or_bytes() -> None:
    assert Threshold(50.0, percent=True).exceeded_by(60.0, 10)
    assert not Threshold(50.0, percent=True).exceeded_by(None, 10**12)  # N/A breaks nothing
    assert Threshold(1000.0, percent=False).exceeded_by(99.0, 1001)
    assert Threshold(1000.0, percent=False).undercut_by(0.0, 999)


def test_circus_config_argument() -> None:
    assert parse_circus_config("a:1:::url:http://x:80/:::bad") == {"a": "1", "url": "http://x:80/"}
    assert parse_circus_config(None) == {}


# ---- statsd ----------------------------------------------------------------------------------
def test_statsd_lines() -> None:
    assert statsd_line("a.b", 1, "c") == "a.b:1|c"
    assert statsd_line("a.b", 1, "c", 0.25) == "a.b:1|c|@0.25"
    assert statsd_line("g", 2.5, "g") == "g:2.5|g"
    assert statsd_line("t", 12.0, "ms") == "t:12|ms"


def test_lines_are_packed_into_datagrams_within_the_limit() -> None:
    lines = [f"bucket.{i}:{i}|g" for i in range(300)]
    packets = pack(lines, limit=100)
    assert all(len(p) <= 100 for p in packets)
    assert b"\n".join(packets).decode().split("\n") == lines


def test_sampling_really_samples(udp) -> None:
    draws = iter([0.1, 0.9, 0.2])
    client = StatsdClient("127.0.0.1", udp.port, "p", sample_rate=0.5, chance=lambda: next(draws))
    for _ in range(3):
        client.increment("hits")
    client.gauges([("g", 7)])
    client.close()
    wait_until(lambda: len(udp.lines()) >= 3, what="three datagrams")
    assert udp.lines() == ["p.hits:1|c|@0.5", "p.hits:1|c|@0.5", "p.g:7|g"]


def test_full_stats_gauges_skip_unreadable_figures() -> None:
    processes = {
        "1": {"cpu": 10.0, "mem": 1.5, "mem_info1": "1.00M"},
        "2": {"cpu": 30.0, "mem": 2.5, "mem_info1": "3.00M"},
        "3": "No such process (stopped?)",
        "4": {"cpu": "N/A", "mem": "N/A", "mem_info1": "N/A"},
    }
    assert dict(watcher_gauges("web", processes)) == {
        "_stats.web.watchers_num": 3,
        "_stats.web.cpu_max": 30.0,
        "_stats.web.cpu_sum": 40.0,
        "_stats.web.mem_pct_max": 2.5,
        "_stats.web.mem_pct_sum": 4.0,
        "_stats.web.mem_max": 3 * 1024**2,
        "_stats.web.mem_sum": 4 * 1024**2,
    }
    assert watcher_gauges("idle", {}) == [("_stats.idle.watchers_num", 0)]


# ---- watchdog --------------------------------------------------------------------------------
def test_heartbeats_and_silence() -> None:
    table = Heartbeats(silence=3.0)
    table.track(10, "web", now=0.0)
    table.track(11, "web", now=0.0)
    assert table.beat(10, now=2.5)
    assert not table.beat(99, now=2.5)  # not watched
    assert table.overdue(now=3.0) == []  # exactly `silence` is not yet too long
    assert table.overdue(now=3.5) == [(11, "web")]
    assert table.overdue(now=3.6) == []  # each silent process is reported once
    table.forget(10)
    assert table.overdue(now=100.0) == []


def test_heartbeat_messages() -> None:
    import re

    default = re.compile(r"^(?P<pid>.*);(?P<timestamp>.*)$")
    assert read_heartbeat(default, b"1234;1700000000.5\n") == 1234
    assert read_heartbeat(default, b"hello") is None
    assert read_heartbeat(default, b"abc;1") is None
    assert read_heartbeat(re.compile(r"^alive (?P<pid>\d+)$"), b"alive 77") == 77


# ---- resource watcher ------------------------------------------------------------------------
def info(cpu: object = 1.0, mem: object = 1.0, rss: str = "10.00M") -> dict[str, object]:
    return {"cpu": cpu, "mem": mem, "mem_info1": rss}


def test_limits_name_what_a_process_breaks() -> None:
    limits = Limits(max_cpu=50, min_cpu=0.5, max_mem=Threshold(64 * 1024**2, percent=False),
                    min_mem=Threshold(1.0, percent=True), health_threshold=40, max_count=1)  # fmt: skip
    assert limits.broken(info()) == []
    assert limits.broken(info(cpu=80.0)) == ["over_cpu", "over_health"]
    assert limits.broken(info(cpu=0.0, mem=0.5)) == ["under_cpu", "under_memory"]
    assert limits.broken(info(rss="100.00M")) == ["over_memory"]
    assert limits.broken(info(cpu="N/A", mem="N/A", rss="N/A")) == []


def test_a_process_is_restarted_after_max_count_violations_in_a_row() -> None:
    counts = Violations(Limits(max_cpu=50, max_mem=None, health_threshold=None, max_count=2))
    hot, cool = info(cpu=90.0), info(cpu=1.0)
    assert counts.check({1: hot, 2: cool}) == ([], ["over_cpu"])
    assert counts.check({1: hot, 2: cool}) == ([], ["over_cpu"])
    assert counts.check({1: cool, 2: hot}) == ([], ["over_cpu"])  # 1 resets, 2 starts counting
    assert counts.check({1: hot, 2: hot}) == ([], ["over_cpu", "over_cpu"])
    assert counts.check({1: hot, 2: hot})[0] == [2]  # its third in a row: more than max_count
    assert counts.check({1: hot}) == ([1], ["over_cpu"])  # 1's third in a row; 2 is gone
    assert counts.counts == {}  # both forgotten: fresh counts for their replacements


def test_children_of_processes() -> None:
    stats = {"10": {"children": [{"pid": 11, "cpu": 1.0}, "N/A"]}, "12": "No such process"}
    assert children_of(stats) == {11: (10, {"pid": 11, "cpu": 1.0})}


# ---- command reloader ------------------------------------------------------------------------
def test_the_executable_of_a_command(tmp_path: Path) -> None:
    assert executable_of("/usr/bin/env python -m http.server") == "/usr/bin/env"
    assert executable_of("'/opt/my app/run' --port 80") == "/opt/my app/run"
    assert executable_of("sh -c 'exit 0'") == executable_of("sh")
    assert executable_of("./run.sh", cwd="/srv") == "/srv/./run.sh"
    assert executable_of("no-such-command-anywhere") is None
    assert executable_of("") is None


def test_an_executable_is_changed_by_content_or_replacement(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    first = identify(str(script))
    assert first is not None and not changed(None, first) and not changed(first, first)
    fresh = tmp_path / "run.sh.new"
    fresh.write_text("#!/bin/sh\n")
    os.replace(fresh, script)
    assert changed(first, identify(str(script)))  # a new inode
    link = tmp_path / "current"
    link.symlink_to(script)
    assert identify(str(link)) == identify(str(script))
    assert identify(str(tmp_path / "missing")) is None
    assert not changed(Executable("a", 1, 1), None)


# ---- names -----------------------------------------------------------------------------------
def test_circus_names_and_short_names_map_to_the_builtins() -> None:
    for circus_name, short in registry.CIRCUS_NAMES.items():
        assert registry.builtin_name(circus_name) == short
        assert registry.target(circus_name) == registry.BUILTINS[short]
    assert registry.builtin_name("Resource-Watcher") == "resource_watcher"
    assert registry.builtin_name("fullstats") == "full_stats"
    assert registry.builtin_name("mypkg.Thing") is None
    assert registry.target("mypkg:Thing") == "mypkg:Thing"
    assert registry.FLAPPING_NAMES == FLAPPING_ALIASES


@pytest.mark.parametrize("short", sorted(registry.BUILTINS))
def test_every_builtin_loads(short: str) -> None:
    from bigtop.plugins.base import Plugin

    assert issubclass(registry.load(short, f"plugin:{short}"), Plugin)


def test_what_cannot_be_loaded_is_explained() -> None:
    with pytest.raises(PluginConfigError, match=r"\[plugin:x\] use = nosuch\.Thing: cannot import"):
        registry.load("nosuch.Thing", "plugin:x")
    with pytest.raises(PluginConfigError, match="has no class 'Nothing'"):
        registry.load("bigtop.plugins.statsd.Nothing", "plugin:x")
    with pytest.raises(PluginConfigError, match="flapping detection is built into the daemon"):
        registry.load("circus.plugins.flapping.Flapping", "plugin:x")
    with pytest.raises(PluginConfigError, match="not a plugin name"):
        registry.load("justaword", "plugin:x")


def test_topics_split_with_dotted_watcher_names() -> None:
    assert split_topic("watcher.web.spawn") == ("web", "spawn")
    assert split_topic("watcher.api.v2.reap") == ("api.v2", "reap")


# ---- supervision policy ----------------------------------------------------------------------
def test_restart_delays_back_off_and_reset() -> None:
    crash = ExitStatus(code=1)
    failures, delays = 0, []
    for _ in range(9):
        failures, delay = restart_delay(failures, uptime=0.2, status=crash)
        delays.append(delay)
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert restart_delay(failures, uptime=60.0, status=crash) == (1, 0.0)  # it ran a while
    assert restart_delay(0, 0.1, ExitStatus(code=EXIT_CONFIG)) == (0, None)  # never retried
    assert restart_delay(0, 0.1, ExitStatus(signal=9)) == (1, 0.0)


def test_which_plugins_run_as_processes() -> None:
    plugins = (
        PluginConfig(name="b", use="statsd"),
        PluginConfig(name="a", use="watchdog", priority=5),
        PluginConfig(name="off", use="statsd", active=False),
        PluginConfig(name="flapping", use="circus.plugins.flapping.Flapping"),
    )
    assert [p.name for p in wanted(plugins)] == ["a", "b"]


def test_plugins_import_what_the_daemon_can_and_modules_beside_the_config() -> None:
    path = python_path("/etc/app", {"PYTHONPATH": "/extra:/etc/app"}).split(os.pathsep)
    assert path[0] == "/etc/app"
    assert path[-1] == "/extra"
    assert len(path) == len(set(path))
    assert next(p for p in sys.path if p) in path


# ---- the runner ------------------------------------------------------------------------------
def test_runner_options_come_from_config_and_the_environment() -> None:
    args = parse_args(["statsd", "--endpoint", "e", "--pubsub", "p", "--config", "a:1:::b:2"])
    environ = {"BIGTOP_PLUGIN_OPTIONS": json.dumps({"b": "two words", "c": 3})}
    assert read_options(args, environ) == {"a": "1", "b": "two words", "c": "3"}


def test_runner_exits_78_for_a_plugin_that_cannot_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bigtop.plugins.runner", "nosuch.Plugin", "--name", "ghost",
         "--endpoint", f"ipc://{tmp_path}/c", "--pubsub", f"ipc://{tmp_path}/p"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == EXIT_CONFIG
    assert "ERROR [plugin:ghost] use = nosuch.Plugin: cannot import 'nosuch'" in result.stderr


# ---- the [plugin:NAME] section ---------------------------------------------------------------
def test_plugin_sections_give_active_and_priority(tmp_path: Path) -> None:
    from bigtop.config.load import load_config

    ini = tmp_path / "circus.ini"
    ini.write_text(
        "[plugin:dog]\nuse = watchdog\npriority = 5\nactive = no\nport = 1664\n"
        "[plugin:stats]\nuse = statsd\n"
    )
    dog, stats = load_config(str(ini)).plugins
    assert (dog.active, dog.priority, stats.active, stats.priority) == (False, 5, True, 0)
    assert dog.options == {"priority": "5", "active": "no", "port": "1664"}  # as Circus passes


def test_a_bad_priority_names_its_section(tmp_path: Path) -> None:
    from bigtop.config.load import check_config

    ini = tmp_path / "circus.ini"
    ini.write_text("[plugin:dog]\nuse = watchdog\npriority = high\n")
    config, problems = check_config(str(ini))
    assert config is None
    assert [(p.section, p.option, p.value, p.message) for p in problems] == [
        ("plugin:dog", "priority", "high", "expected an integer")
    ]


def test_the_redis_observer_without_redis_says_what_to_install() -> None:
    import importlib.util

    from bigtop.plugins.base import PluginContext
    from bigtop.plugins.redis_observer import RedisObserver

    if importlib.util.find_spec("redis") is not None:
        pytest.skip("redis is installed here")
    context = PluginContext(name="cache", endpoint="ipc://x", pubsub_endpoint="ipc://y")
    with pytest.raises(
        PluginConfigError, match=r"\[plugin:cache\] .* pip install 'bigtop\[redis\]'"
    ):
        RedisObserver(context)
