"""The reloadconfig plan: what changes how."""

from __future__ import annotations

import msgspec

from bigtop.config.diff import plan
from bigtop.config.model import ArbiterConfig, Config, WatcherConfig


def config(*watchers: WatcherConfig, circus: ArbiterConfig | None = None) -> Config:
    return Config(path="circus.ini", circus=circus or ArbiterConfig(), watchers=watchers)


def steps(old: Config, new: Config) -> list[tuple[str, str | None]]:
    return [(s.action, s.watcher) for s in plan(old, new)]


BASE = WatcherConfig(name="web", cmd="sleep 1")
replace = msgspec.structs.replace


def test_each_kind_of_change_gets_the_gentlest_step_that_applies_it() -> None:
    old = config(BASE)
    assert steps(old, config(BASE)) == []
    assert steps(old, config(replace(BASE, numprocesses=3))) == [("resize", "web")]
    live = replace(BASE, graceful_timeout=5.0, stop_signal=2)
    assert steps(old, config(live)) == [("update", "web")]  # the processes stay
    for changed in (
        replace(BASE, cmd="sleep 2"),
        replace(BASE, env={"A": "1"}),
        replace(BASE, working_dir="/tmp"),
        replace(BASE, health_check="tcp://127.0.0.1:1"),
    ):
        assert steps(old, config(changed)) == [("reload", "web")]  # rolled out, no downtime
    for changed in (replace(BASE, use_sockets=True), replace(BASE, singleton=True)):
        assert steps(old, config(changed)) == [("recreate", "web")]
    [step] = plan(old, config(replace(BASE, cmd="sleep 2", numprocesses=2)))
    assert (step.action, step.detail) == ("reload", "changed: cmd, numprocesses")


def test_order_removals_first_then_by_priority_and_a_daemon_change_restarts_it() -> None:
    low = WatcherConfig(name="low", cmd="x", priority=1)
    high = WatcherConfig(name="high", cmd="x", priority=9)
    gone = WatcherConfig(name="gone", cmd="x")
    old = config(low, high, gone)
    new = config(replace(low, cmd="y"), replace(high, cmd="y"))
    assert steps(old, new) == [("remove", "gone"), ("reload", "high"), ("reload", "low")]
    daemon = config(low, circus=ArbiterConfig(check_delay=2.0))
    assert steps(config(low), daemon) == [("restart-daemon", None)]
