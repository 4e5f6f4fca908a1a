"""`bigtop top`'s pure view: replies to rows, keys to state, state to a screen."""

from __future__ import annotations

from dataclasses import replace

from rich.console import Console

from bigtop.cli.topview import (
    Row,
    Snapshot,
    ViewState,
    age_text,
    on_key,
    render,
    split_keys,
    visible,
)


def info(pid: int, wid: int, cpu: float, mem: float, age: float, restarts: int = 0) -> dict:
    return {
        "pid": pid, "wid": wid, "cpu": cpu, "mem": mem, "age": age, "restarts": restarts,
        "state": "ready", "mem_info1": "1.00M", "cmdline": "python",
    }  # fmt: skip


SNAPSHOT = Snapshot.from_replies(
    {"statuses": {"web": "active", "worker": "active", "idle": "stopped"}},
    {
        "infos": {
            "web": {"11": info(11, 1, 5.0, 1.0, 100), "12": info(12, 2, 50.0, 2.0, 10, 3)},
            "worker": {"21": info(21, 1, 20.0, 9.0, 500), "22": "No such process (stopped?)"},
            "idle": {},
        }
    },
    {"sockets": [{"fd": 5, "name": "api", "host": "127.0.0.1", "port": 8000}]},
    now=1000.0,
)


def names(state: ViewState) -> list[tuple[str, int | None]]:
    return [(row.watcher, row.pid) for row, _, _ in visible(SNAPSHOT, state)]


def press(state: ViewState, *keys: str) -> tuple[ViewState, list]:
    commands = []
    for key in keys:
        state, command = on_key(state, key, SNAPSHOT)
        if command is not None:
            commands.append(command)
    return state, commands


def test_replies_become_rows_with_aggregates() -> None:
    web, worker, idle = (
        next(w for w in SNAPSHOT.watchers if w.name == n) for n in ("web", "worker", "idle")
    )
    assert [p.pid for p in web.procs] == [11, 12]
    assert (web.cpu, web.mem, web.age, web.restarts) == (55.0, 3.0, 100, 3)
    assert [p.pid for p in worker.procs] == [21]  # a vanished process is left out
    assert (idle.status, idle.procs, idle.cpu) == ("stopped", (), 0.0)
    assert SNAPSHOT.sockets[0].address == "127.0.0.1:8000"


def test_sorting_filtering_and_expanding() -> None:
    state = ViewState()
    assert names(state) == [("idle", None), ("web", None), ("worker", None)]
    state, _ = press(state, "c")  # CPU, highest first
    assert names(state) == [("web", None), ("worker", None), ("idle", None)]
    state, _ = press(state, "c")  # again: reversed
    assert [n for n, _ in names(state)] == ["idle", "worker", "web"]
    state, _ = press(ViewState(), "m", "down", "enter")  # memory; expand the first (worker)
    assert names(state)[:2] == [("worker", None), ("worker", 21)]
    state, _ = press(ViewState(sort="cpu", descending=True), "down", "enter")
    assert names(state)[:3] == [("web", None), ("web", 12), ("web", 11)]  # processes sorted too
    state, _ = press(state, "/", "w", "o", "enter")
    assert [n for n, _ in names(state)] == ["worker"]
    state, _ = press(state, "esc")
    assert len(names(state)) == 5
    state, _ = press(state, "/", "x", "backspace", "i", "esc")  # esc while typing: no filter
    assert state.filter == "" and not state.typing_filter


def test_actions_need_a_selection_and_a_y() -> None:
    state, commands = press(ViewState(), "R")
    assert not commands and "select a watcher" in state.message
    state, commands = press(ViewState(), "down", "down", "R")  # web
    assert state.pending is not None and state.pending.question == "restart web?"
    done, commands = press(state, "y")
    assert [(c.name, c.properties["name"]) for c in commands] == [("restart", "web")]
    assert done.pending is None
    cancelled, commands = press(state, "n")
    assert not commands and cancelled.message == "cancelled"
    _, commands = press(ViewState(), "down", "down", "+", "y", "-", "y")
    assert [(c.name, c.properties) for c in commands] == [
        ("incr", {"name": "web", "nb": 1}),
        ("decr", {"name": "web", "nb": 1}),
    ]
    state, commands = press(ViewState(), "down", "down", "k")
    assert not commands and "select a process" in state.message
    _, commands = press(ViewState(), "down", "down", "enter", "down", "k", "y")
    assert [(c.name, c.properties) for c in commands] == [("kill", {"name": "web", "pid": 11})]


def test_a_selected_process_that_vanished_falls_back_to_its_watcher() -> None:
    state = ViewState(selected=Row("web", 999), expanded=frozenset({"web"}))
    state, _ = press(state, "R")
    assert state.pending is not None and state.pending.properties["name"] == "web"
    assert state.selected == Row("web")


def test_selection_moves_within_bounds_and_q_quits() -> None:
    state, _ = press(ViewState(), "up")
    assert state.selected == Row("worker")  # from nothing, up goes to the last row
    state, _ = press(state, "down", "down")
    assert state.selected == Row("worker")
    state, _ = press(state, "q")
    assert state.quit


def screen(state: ViewState, width: int, height: int = 30) -> str:
    console = Console(width=width, height=height, record=True, color_system=None)
    console.print(render(SNAPSHOT, state, width, height))
    return console.export_text()


def test_render_drops_columns_on_narrow_terminals_and_shows_the_prompt() -> None:
    wide = screen(ViewState(expanded=frozenset({"web"})), 140)
    assert all(column in wide for column in ("RSS", "CMD", "RESTARTS", "AGE", "api"))
    assert "    12 #2" in wide and "1m40s" in wide
    narrow = screen(ViewState(), 40)
    assert "CMD" not in narrow and "RSS" not in narrow and "CPU%" in narrow
    assert all(len(line) <= 40 for line in narrow.splitlines())
    asking = screen(replace(ViewState(), selected=Row("web")), 100)
    state, _ = press(ViewState(), "down", "down", "R")
    assert "restart web? [y/N]" in screen(state, 100) and "restart web?" not in asking


def test_only_the_rows_that_fit_are_drawn_and_the_selection_stays_visible() -> None:
    state = ViewState(expanded=frozenset({"web", "worker"}), selected=Row("worker", 21))
    text = screen(state, 100, height=9)
    assert "21 #1" in text


def test_keys_and_ages() -> None:
    assert split_keys("\x1b[A\x1b[Bq\r\x7f/\x1b") == [
        "up", "down", "q", "enter", "backspace", "/", "esc",
    ]  # fmt: skip
    assert split_keys("\x1b[1;5Cx") == ["unknown", "x"]
    assert [age_text(s) for s in (5, 65, 3700, 90000)] == ["5s", "1m05s", "1h01m", "1d01h"]
