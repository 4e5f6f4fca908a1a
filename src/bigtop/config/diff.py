"""What `reloadconfig` must do to go from the running config to the one on disk. Pure.

Circus applies changes in set order; bigtop applies them in priority order (removals and
stops first, lowest priority first; then additions and restarts, highest first), and the
same plan is what `reloadconfig --dry-run` shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from bigtop.config.model import Config, WatcherConfig


@dataclass(frozen=True)
class Step:
    # restart-daemon | remove | add | resize | update | reload | recreate | update-sockets
    action: str
    watcher: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, str | None]:
        return {"action": self.action, "watcher": self.watcher, "detail": self.detail}


def plan(old: Config, new: Config) -> list[Step]:
    changed = _changed_fields(old.circus, new.circus)
    if changed:
        return [Step("restart-daemon", None, f"[circus] changed: {', '.join(changed)}")]
    before = {w.name.lower(): w for w in old.watchers}
    after = {w.name.lower(): w for w in new.watchers}
    removals = sorted(
        (before[name] for name in before.keys() - after.keys()), key=lambda w: w.priority
    )
    steps = [Step("remove", w.name, "not in the config any more") for w in removals]
    changes: list[tuple[WatcherConfig, Step]] = []
    for name in after.keys() & before.keys():
        step = _watcher_step(before[name], after[name])
        if step is not None:
            changes.append((after[name], step))
    for name in after.keys() - before.keys():
        changes.append((after[name], Step("add", after[name].name, "new in the config")))
    changes.sort(key=lambda pair: (-pair[0].priority, pair[0].name))
    steps.extend(step for _, step in changes)
    if old.sockets != new.sockets:
        steps.insert(0, Step("update-sockets", None, "socket definitions changed"))
    return steps


# Changes a running watcher cannot take in place: it is stopped and made again.
RECREATE_FIELDS = frozenset({"name", "singleton", "on_demand", "use_sockets"})
# Changes that apply to the running processes as they are (the rest replace them).
LIVE_FIELDS = frozenset(
    {
        "numprocesses", "warmup_delay", "send_hup", "stop_signal", "stop_children",
        "graceful_timeout", "max_retry", "priority", "respawn", "success_exit_codes",
        "backoff", "flapping", "autostart", "hooks", "stdout_stream", "stderr_stream",
        "ready_timeout", "health_interval", "health_threshold", "depends_on",
        "reload_batch", "options",
    }
)  # fmt: skip


def _watcher_step(old: WatcherConfig, new: WatcherConfig) -> Step | None:
    changed = _changed_fields(old, new)
    if not changed:
        return None
    if changed == ["numprocesses"]:
        return Step("resize", new.name, f"numprocesses {old.numprocesses} -> {new.numprocesses}")
    detail = "changed: " + ", ".join(changed)
    if not RECREATE_FIELDS.isdisjoint(changed):
        return Step("recreate", new.name, detail)
    if LIVE_FIELDS.issuperset(changed):
        return Step("update", new.name, detail)  # applies at once, processes untouched
    # like `set`: the new definition applies and the processes are replaced by a rolling
    # reload (new ones ready before old ones stop), so there is no downtime
    return Step("reload", new.name, detail)


def _changed_fields(old: msgspec.Struct, new: msgspec.Struct) -> list[str]:
    return [
        field
        for field in old.__struct_fields__
        if field != "source" and getattr(old, field) != getattr(new, field)
    ]
