"""`bigtop top`, the pure part: what the daemon said, what the user did, what to draw.

Nothing here reads the terminal or the network: `Snapshot.from_replies` turns control replies
into rows, `on_key` turns a key into a new view state (and maybe a command to send), and
`render` turns both into a rich renderable for a given terminal size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

SORT_KEYS = {"c": "cpu", "m": "mem", "a": "age", "r": "restarts", "n": "name"}
STATE_STYLES = {
    "active": "green",
    "ready": "green",
    "starting": "yellow",
    "stopping": "yellow",
    "unhealthy": "red",
    "stopped": "dim",
}
HELP = (
    "↑↓ select  ⏎ expand  c/m/a/r/n sort  / filter  R restart  + incr  - decr  k kill pid  q quit"
)


# ---- the daemon's figures -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    wid: int | None
    state: str
    cpu: float
    mem: float
    rss: str
    age: float
    restarts: int
    cmdline: str


@dataclass(frozen=True, slots=True)
class WatcherRow:
    name: str
    status: str
    procs: tuple[Proc, ...]

    @property
    def cpu(self) -> float:
        return sum(p.cpu for p in self.procs)

    @property
    def mem(self) -> float:
        return sum(p.mem for p in self.procs)

    @property
    def age(self) -> float:
        return max((p.age for p in self.procs), default=0.0)

    @property
    def restarts(self) -> int:
        return sum(p.restarts for p in self.procs)


@dataclass(frozen=True, slots=True)
class SocketRow:
    name: str
    address: str
    fd: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    watchers: tuple[WatcherRow, ...] = ()
    sockets: tuple[SocketRow, ...] = ()
    taken_at: float = 0.0
    error: str | None = None  # the daemon did not answer

    @classmethod
    def from_replies(
        cls,
        status: dict[str, Any],
        stats: dict[str, Any],
        sockets: dict[str, Any],
        now: float,
    ) -> Snapshot:
        """From `status` (with processes), `stats` and `listsockets` replies."""
        infos = stats.get("infos", {})
        watchers = []
        for name, state in sorted(status.get("statuses", {}).items()):
            procs = tuple(
                _proc(pid, info)
                for pid, info in sorted(infos.get(name, {}).items(), key=lambda i: int(i[0]))
                if isinstance(info, dict)
            )
            watchers.append(WatcherRow(name, str(state), procs))
        rows = tuple(
            SocketRow(str(s.get("name", "")), _address(s), int(s.get("fd", -1)))
            for s in sockets.get("sockets", [])
        )
        return cls(tuple(watchers), rows, now)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _proc(pid: str, info: dict[str, Any]) -> Proc:
    wid = info.get("wid")
    return Proc(
        pid=int(pid),
        wid=wid if isinstance(wid, int) else None,
        state=str(info.get("state", "?")),
        cpu=_number(info.get("cpu")),
        mem=_number(info.get("mem")),
        rss=str(info.get("mem_info1", "")),
        age=_number(info.get("age")),
        restarts=int(_number(info.get("restarts"))),
        cmdline=str(info.get("cmdline", "")),
    )


def _address(entry: dict[str, Any]) -> str:
    if entry.get("path"):
        return str(entry["path"])
    return f"{entry.get('host')}:{entry.get('port')}"


# ---- what the user is doing -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Command:
    """A control command to send, once confirmed."""

    name: str
    properties: dict[str, Any]
    question: str  # shown while waiting for y/n


@dataclass(frozen=True, slots=True)
class Row:
    """One selectable line: a watcher, or a process under an expanded watcher."""

    watcher: str
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class ViewState:
    sort: str = "name"
    descending: bool = False
    filter: str = ""
    typing_filter: bool = False
    selected: Row | None = None
    expanded: frozenset[str] = frozenset()
    pending: Command | None = None
    message: str = ""
    quit: bool = False


def visible(snapshot: Snapshot, state: ViewState) -> list[tuple[Row, WatcherRow, Proc | None]]:
    """The rows on screen, in order: filtered and sorted watchers, each expanded one followed
    by its processes sorted the same way."""
    needle = state.filter.lower()
    watchers = [w for w in snapshot.watchers if needle in w.name.lower()]
    watchers.sort(key=lambda w: _sort_value(w, state.sort), reverse=state.descending)
    rows: list[tuple[Row, WatcherRow, Proc | None]] = []
    for watcher in watchers:
        rows.append((Row(watcher.name), watcher, None))
        if watcher.name in state.expanded:
            procs = sorted(
                watcher.procs, key=lambda p: _sort_value(p, state.sort), reverse=state.descending
            )
            rows.extend((Row(watcher.name, p.pid), watcher, p) for p in procs)
    return rows


def _sort_value(item: WatcherRow | Proc, key: str) -> Any:
    if key == "name":
        return item.name if isinstance(item, WatcherRow) else (item.wid or 0, item.pid)
    return getattr(item, key)


def on_key(state: ViewState, key: str, snapshot: Snapshot) -> tuple[ViewState, Command | None]:
    """A key press: the new state, and a command to send when an action was confirmed."""
    if state.pending is not None:
        if key in ("y", "Y"):
            return replace(state, pending=None, message=""), state.pending
        return replace(state, pending=None, message="cancelled"), None
    if state.typing_filter:
        return _filter_key(state, key), None
    rows = [row for row, _, _ in visible(snapshot, state)]
    state = replace(state, message="", selected=_still_there(rows, state.selected))
    if key in ("q", "Q", "ctrl-c"):
        return replace(state, quit=True), None
    if key in ("down", "up"):
        return replace(state, selected=_move(rows, state.selected, key == "down")), None
    if key in SORT_KEYS:
        sort = SORT_KEYS[key]
        if sort == state.sort:
            return replace(state, descending=not state.descending), None
        return replace(state, sort=sort, descending=sort != "name"), None
    if key == "/":
        return replace(state, typing_filter=True), None
    if key == "esc":
        return replace(state, filter=""), None
    selected = state.selected
    if selected is None:
        if key in ("enter", " ", "R", "+", "-", "k", "K", "x"):
            return replace(state, message="select a watcher first (↑↓)"), None
        return state, None
    if key in ("enter", " ", "right", "left"):
        expanded = set(state.expanded)
        if selected.watcher in expanded and key != "right":
            expanded.discard(selected.watcher)
            selected = Row(selected.watcher)  # the process rows collapse away
        elif key != "left":
            expanded.add(selected.watcher)
        return replace(state, expanded=frozenset(expanded), selected=selected), None
    return _action(state, key, selected), None


def _still_there(rows: list[Row], selected: Row | None) -> Row | None:
    """The selection, or its watcher's row when its process is gone (killed, restarted)."""
    if selected is None or selected in rows:
        return selected
    watcher = Row(selected.watcher)
    return watcher if watcher in rows else None


def _filter_key(state: ViewState, key: str) -> ViewState:
    if key == "enter":
        return replace(state, typing_filter=False)
    if key == "esc":
        return replace(state, typing_filter=False, filter="")
    if key == "backspace":
        return replace(state, filter=state.filter[:-1])
    if len(key) == 1 and key.isprintable():
        return replace(state, filter=state.filter + key)
    return state


def _move(rows: list[Row], current: Row | None, down: bool) -> Row | None:
    if not rows:
        return None
    if current not in rows:
        return rows[0] if down else rows[-1]
    index = rows.index(current) + (1 if down else -1)
    return rows[max(0, min(len(rows) - 1, index))]


def _action(state: ViewState, key: str, selected: Row) -> ViewState:
    name = selected.watcher
    command: Command | None = None
    if key == "R":
        command = Command("restart", {"name": name, "waiting": False}, f"restart {name}?")
    elif key == "+":
        command = Command("incr", {"name": name, "nb": 1}, f"add a process to {name}?")
    elif key == "-":
        command = Command("decr", {"name": name, "nb": 1}, f"remove a process from {name}?")
    elif key in ("k", "K", "x"):
        if selected.pid is None:
            return replace(state, message="select a process to kill (⏎ expands a watcher)")
        command = Command(
            "kill", {"name": name, "pid": selected.pid}, f"kill process {selected.pid} of {name}?"
        )
    if command is None:
        return state
    return replace(state, pending=command)


# ---- drawing ------------------------------------------------------------------------------
def age_text(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


COLUMNS = (
    # name, minimum terminal width to show it, justify
    ("NAME", 0, "left"),
    ("STATE", 0, "left"),
    ("PROCS", 0, "right"),
    ("CPU%", 0, "right"),
    ("MEM%", 36, "right"),
    ("RSS", 80, "right"),
    ("AGE", 48, "right"),
    ("RESTARTS", 60, "right"),
    ("CMD", 100, "left"),
)


def render(snapshot: Snapshot, state: ViewState, width: int, height: int) -> RenderableType:
    columns = [c for c in COLUMNS if width >= c[1]]
    table = Table(expand=True, box=None, pad_edge=False, header_style="bold reverse")
    for title, _, justify in columns:
        table.add_column(title, justify=justify, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
    rows = visible(snapshot, state)
    state = replace(state, selected=_still_there([row for row, _, _ in rows], state.selected))
    room = max(1, height - 6 - (len(snapshot.sockets) + 2 if snapshot.sockets else 0))
    first = _first_shown(rows, state.selected, room)
    for row, watcher, proc in rows[first : first + room]:
        cells = _cells(watcher, proc, row.watcher in state.expanded)
        style = "reverse" if row == state.selected else ""
        table.add_row(*(cells[title] for title, _, _ in columns), style=style)
    parts: list[RenderableType] = [_header(snapshot, state, rows), table]
    if snapshot.sockets:
        sockets = Table(box=None, pad_edge=False, header_style="bold")
        sockets.add_column("SOCKET")
        sockets.add_column("ADDRESS", overflow="fold")
        sockets.add_column("FD", justify="right")
        for sock in snapshot.sockets:
            sockets.add_row(sock.name, sock.address, str(sock.fd))
        parts += [Text(""), sockets]
    parts.append(_footer(state, width))
    return Group(*parts)


def _first_shown(
    rows: list[tuple[Row, WatcherRow, Proc | None]], selected: Row | None, room: int
) -> int:
    """Scroll so the selected row stays on screen."""
    keys = [row for row, _, _ in rows]
    if selected not in keys:
        return 0
    index = keys.index(selected)
    return max(0, index - room + 1)


def _cells(watcher: WatcherRow, proc: Proc | None, expanded: bool) -> dict[str, Text]:
    if proc is None:
        marker = "▾ " if expanded else "▸ "
        return {
            "NAME": Text(marker + watcher.name, style="bold"),
            "STATE": Text(watcher.status, style=STATE_STYLES.get(watcher.status, "")),
            "PROCS": Text(str(len(watcher.procs))),
            "CPU%": Text(f"{watcher.cpu:.1f}"),
            "MEM%": Text(f"{watcher.mem:.1f}"),
            "RSS": Text(""),
            "AGE": Text(age_text(watcher.age) if watcher.procs else "-"),
            "RESTARTS": Text(str(watcher.restarts)),
            "CMD": Text(""),
        }
    return {
        "NAME": Text(f"    {proc.pid}" + (f" #{proc.wid}" if proc.wid is not None else "")),
        "STATE": Text(proc.state, style=STATE_STYLES.get(proc.state, "")),
        "PROCS": Text(""),
        "CPU%": Text(f"{proc.cpu:.1f}"),
        "MEM%": Text(f"{proc.mem:.1f}"),
        "RSS": Text(proc.rss),
        "AGE": Text(age_text(proc.age)),
        "RESTARTS": Text(str(proc.restarts)),
        "CMD": Text(proc.cmdline, style="dim"),
    }


def _header(
    snapshot: Snapshot, state: ViewState, rows: list[tuple[Row, WatcherRow, Proc | None]]
) -> Text:
    processes = sum(len(w.procs) for w in snapshot.watchers)
    cpu = sum(w.cpu for w in snapshot.watchers)
    text = Text("bigtop top", style="bold")
    text.append(
        f"  {_count(len(snapshot.watchers), 'watcher')}, {_count(processes, 'process')},"
        f" {cpu:.1f}% CPU"
        f"  sorted by {state.sort}{' ↓' if state.descending else ' ↑'}"
    )
    if state.filter or state.typing_filter:
        text.append(f"  filter: {state.filter}{'▏' if state.typing_filter else ''}", "cyan")
    if snapshot.error:
        text.append(f"\n{snapshot.error}", style="bold red")
    elif snapshot.taken_at:
        text.append(f"  {time.strftime('%H:%M:%S', time.localtime(snapshot.taken_at))}", "dim")
    return text


def _count(number: int, noun: str) -> str:
    plural = "es" if noun.endswith("s") else "s"
    return f"{number} {noun}" if number == 1 else f"{number} {noun}{plural}"


def _footer(state: ViewState, width: int) -> Text:
    if state.pending is not None:
        return Text(f"{state.pending.question} [y/N]", style="bold yellow")
    if state.message:
        return Text(state.message, style="yellow")
    if width < len(HELP):
        return Text("? keys: ↑↓ ⏎ c m a r n / R + - k q", style="dim")
    return Text(HELP, style="dim")


# ---- keys -----------------------------------------------------------------------------------
_SEQUENCES = {
    "\x1b[A": "up",
    "\x1b[B": "down",
    "\x1b[C": "right",
    "\x1b[D": "left",
    "\x1bOA": "up",
    "\x1bOB": "down",
    "\x1bOC": "right",
    "\x1bOD": "left",
}
_SINGLE = {"\r": "enter", "\n": "enter", "\x7f": "backspace", "\x08": "backspace", "\x03": "ctrl-c"}


def split_keys(data: str) -> list[str]:
    """Raw terminal input to key names: escape sequences for arrows, single characters
    otherwise, a lone ESC as "esc"."""
    keys: list[str] = []
    index = 0
    while index < len(data):
        for sequence, name in _SEQUENCES.items():
            if data.startswith(sequence, index):
                keys.append(name)
                index += len(sequence)
                break
        else:
            char = data[index]
            if char == "\x1b":
                # an unknown sequence: skip it whole rather than read its letters as keys
                end = index + 1
                if end < len(data) and data[end] in "[O":
                    end += 1
                    while end < len(data) and not data[end].isalpha() and data[end] != "~":
                        end += 1
                    keys.append("unknown")
                    index = end + 1
                    continue
                keys.append("esc")
            else:
                keys.append(_SINGLE.get(char, char))
            index += 1
    return keys
