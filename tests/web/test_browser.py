"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): two daemons
behind one `bigtop web`, a user logging in, watching graphs move, and acting on processes.

Screenshots of the overview and a watcher page are taken every run; with
BIGTOP_UPDATE_SCREENSHOTS=1 they replace docs/images/dashboard-*.png (the README's).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.daemon import Daemon, DaemonPool
from tests.helpers import PYTHON, sleeper, wait_until

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
TOKEN = "browser-token-8841"
URL = re.compile(r"bigtop dashboard on (http://127\.0\.0\.1:\d+/)")
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

TALK = """\
import signal, sys, time
signal.signal(signal.SIGUSR1, lambda *a: print(open(sys.argv[1]).read(), flush=True))
print("ready to talk", flush=True)
while True:
    time.sleep(1)
"""
BUSY = """\
import sys, time
ballast = bytearray(int(sys.argv[1]) << 20)  # some memory to show
batch = 0
while True:  # about 10 % of a core, a line a second
    batch += 1
    for _ in range(10):
        start = time.monotonic()
        while time.monotonic() - start < 0.01:
            pass
        time.sleep(0.09)
    print(f"batch {batch} done", flush=True)
"""


@dataclass
class Stack:
    alpha: Daemon
    beta: Daemon
    url: str
    message: Path
    errors: list[str] = field(default_factory=list)

    def pids(self, daemon: Daemon, watcher: str) -> list[int]:
        return sorted(daemon.call("list", name=watcher)["pids"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Debian's Chromium is needed at {CHROMIUM} for the browser tests: "
            "apt-get install chromium (.ci/run installs it)"
        )
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("browser")
    (directory / "talk.py").write_text(TALK)
    (directory / "busy.py").write_text(BUSY)
    message = directory / "message"
    pool = DaemonPool(directory)
    web = None
    try:
        alpha = pool.start(
            f"""
            [watcher:web]
            cmd = {PYTHON} {directory / "talk.py"} {message}
            numprocesses = 2
            graceful_timeout = 2

            [watcher:busy]
            cmd = {PYTHON} {directory / "busy.py"} 24
            numprocesses = 2
            """
        )
        beta = pool.start(
            f"""
            [watcher:queue]
            cmd = {sleeper("queue-8841")}

            [watcher:cron]
            cmd = {sleeper("cron-8841")}
            """
        )
        alpha.wait_ready()
        beta.wait_ready()
        web = subprocess.Popen(
            [
                sys.executable, "-m", "bigtop", "web", "--port", "0", "--token", TOKEN,
                "--interval", "0.5",
                "--endpoint", f"alpha={alpha.control}", "--endpoint", f"beta={beta.control}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        assert web.stdout is not None
        line = ""
        while (found := URL.search(line)) is None:
            line = web.stdout.readline()
            assert line or web.poll() is None, "bigtop web ended without printing its URL"
        yield Stack(alpha, beta, found.group(1), message)
    finally:
        if web is not None:
            web.send_signal(signal.SIGTERM)
            web.wait(10)
            if web.stdout is not None:
                web.stdout.close()
        leaked = pool.close()
        assert not leaked, f"left running: {leaked}"


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    """A logged-in tab on the overview; fails the test on any JavaScript error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    tab.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
    tab.goto(f"{stack.url}?token={TOKEN}")
    tab.wait_for_selector('[data-watcher="d0/web"]')
    yield tab
    context.close()
    assert not errors


FITTED = """() => [...document.querySelectorAll('[data-chart]')].every(
    (chart) => Math.abs(chart.querySelector('canvas').clientWidth - chart.clientWidth) <= 3)"""


def points(tab: Any, chart: str) -> int:
    return int(tab.get_attribute(f'[data-chart="{chart}"]', "data-points") or 0)


def cards(tab: Any) -> list[int]:
    return sorted(
        int(p) for p in tab.eval_on_selector_all("[data-pid]", "n => n.map(e => e.dataset.pid)")
    )


def open_watcher(tab: Any, daemon: str, watcher: str) -> None:
    tab.click(f'[data-watcher="{daemon}/{watcher}"]')
    tab.wait_for_selector(f'[data-page="{daemon}/{watcher}"] [data-pid]')


# ---- logging in -----------------------------------------------------------------------------
def test_logging_in_with_the_printed_url_or_the_form(browser: Any, stack: Stack) -> None:
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.goto(stack.url)
        assert tab.locator("form#login").is_visible()
        assert "queue" not in tab.content() and "busy" not in tab.content()
        tab.fill("#token", "not the token")
        tab.click("button[type=submit]")
        assert "not right" in tab.inner_text("form#login")
        tab.fill("#token", TOKEN)
        tab.click("button[type=submit]")
        tab.wait_for_selector('[data-watcher="d1/queue"]')
        [cookie] = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        other = browser.new_context()
        tab = other.new_page()
        tab.goto(f"{stack.url}?token={TOKEN}")
        tab.wait_for_selector('[data-watcher="d0/web"]')
        assert "token" not in tab.url  # the token does not stay in the address bar
        other.close()
    finally:
        context.close()


def test_requests_without_the_token_or_with_a_bad_csrf_token_are_refused(
    browser: Any, page: Any, stack: Stack
) -> None:
    incr = f"{stack.url}api/d/d1/w/cron/incr"
    stranger = browser.new_context()
    try:
        assert stranger.request.get(f"{stack.url}api/d/d1/status").status == 401
        assert stranger.request.post(incr).status == 401
    finally:
        stranger.close()
    before = stack.pids(stack.beta, "cron")
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        reply = page.context.request.post(incr, headers=headers)  # the session cookie is sent
        assert reply.status == 403 and "CSRF" in reply.json()["error"]
    assert stack.pids(stack.beta, "cron") == before


# ---- what the pages show -------------------------------------------------------------------
def test_the_overview_lists_the_watchers_of_both_daemons(page: Any) -> None:
    sections = page.locator("section.daemon h2").all_inner_texts()
    assert [s.split()[0] for s in sections] == ["alpha", "beta"]
    for watcher in ("d0/web", "d0/busy", "d1/queue", "d1/cron"):
        assert page.locator(f'[data-watcher="{watcher}"]').is_visible()
    busy = page.locator('[data-watcher="d0/busy"]')
    assert "2 procs" in busy.inner_text() and "active" in busy.inner_text()


def test_a_graph_receives_new_points(page: Any) -> None:
    first = points(page, "d0/busy")
    wait_until(lambda: points(page, "d0/busy") >= first + 2, what="two new points")
    page.click('[data-watcher="d0/busy"]')
    page.wait_for_selector("[data-pid]")
    pid = cards(page)[0]
    start = points(page, f"pid:{pid}")
    wait_until(lambda: points(page, f"pid:{pid}") > start, what="a process graph to move")


def test_restart_from_the_page_gives_the_processes_new_pids(page: Any, stack: Stack) -> None:
    open_watcher(page, "d0", "web")
    before = stack.pids(stack.alpha, "web")
    page.click('[data-action="restart"]')
    after = wait_until(
        lambda: (p := stack.pids(stack.alpha, "web")) and len(p) == len(before)
        and not set(p) & set(before) and p,
        what="new pids for every process of web",
    )  # fmt: skip
    wait_until(lambda: cards(page) == after, what="the page to show the new processes")


def test_incr_adds_a_process_and_kill_replaces_one(page: Any, stack: Stack) -> None:
    open_watcher(page, "d0", "web")
    before = stack.pids(stack.alpha, "web")
    page.click('[data-action="incr"]')
    grown = wait_until(
        lambda: (p := stack.pids(stack.alpha, "web")) and len(p) == len(before) + 1 and p,
        what="one more process",
    )
    wait_until(lambda: cards(page) == grown, what="the new process on the page")
    victim = grown[0]
    page.click(f'[data-pid="{victim}"] [data-action="kill"]')
    wait_until(
        lambda: (p := stack.pids(stack.alpha, "web")) and victim not in p and len(p) == len(grown),
        what=f"{victim} replaced",
    )
    page.click('[data-action="decr"]')
    wait_until(lambda: len(stack.pids(stack.alpha, "web")) == len(before), what="back to size")


def test_the_log_tail_shows_a_line_a_child_just_printed(page: Any, stack: Stack) -> None:
    open_watcher(page, "d0", "web")
    assert "ready to talk" in page.inner_text("#log")  # the tail
    pid = stack.pids(stack.alpha, "web")[0]
    text = f"just printed {time.time_ns()}"
    stack.message.write_text(text)
    stack.alpha.call("signal", name="web", pid=pid, signum="USR1")
    page.wait_for_function(
        "text => document.getElementById('log').innerText.includes(text)", arg=text
    )
    assert f"{pid} {text}" in page.inner_text("#log")


def test_the_history_shows_how_a_process_ended(page: Any, stack: Stack) -> None:
    open_watcher(page, "d0", "web")
    pid = stack.pids(stack.alpha, "web")[-1]
    os.kill(pid, signal.SIGKILL)
    row = page.locator("#history tr", has_text=str(pid))
    row.wait_for()
    assert "signal 9" in row.inner_text() and "SIGKILL" in row.inner_text()


def test_events_and_sockets_pages(page: Any, stack: Stack) -> None:
    page.click('nav a[data-view="events"]')
    pid = stack.pids(stack.beta, "queue")[0]
    os.kill(pid, signal.SIGKILL)
    page.locator("#events-body tr", has_text=f"process_pid={pid}").first.wait_for()
    page.fill('input[type="search"]', "queue")
    visible = page.locator("#events-body tr:visible").all_inner_texts()
    assert visible and all("queue" in row for row in visible)
    page.click('nav a[data-view="sockets"]')
    page.locator('section[data-daemon="d1"] >> text=no sockets').wait_for()


def test_reloadconfig_shows_the_plan_before_applying_it(page: Any, stack: Stack) -> None:
    config = stack.beta.config
    config.write_text(
        config.read_text().replace(
            sleeper("cron-8841"), sleeper("cron-8841") + "\nnumprocesses = 2"
        )
    )
    page.click('nav a[data-view="config"]')
    section = page.locator('section[data-daemon="d1"]')
    section.locator('[data-action="plan"]').click()
    section.locator("li", has_text="resize").wait_for()
    assert "numprocesses 1 -> 2" in section.inner_text()
    assert len(stack.pids(stack.beta, "cron")) == 1  # shown, not done
    section.locator('[data-action="apply"]').click()
    wait_until(lambda: len(stack.pids(stack.beta, "cron")) == 2, what="cron resized")


def test_screenshots_and_a_phone_sized_screen(page: Any, stack: Stack, tmp_path: Path) -> None:
    target = IMAGES if os.environ.get("BIGTOP_UPDATE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    wait_until(lambda: points(page, "d0/busy") >= 12, timeout=20, what="a few seconds of graph")
    page.set_viewport_size({"width": 1100, "height": 470})  # the cards, not empty space
    wait_until(lambda: page.evaluate(FITTED), what="the graphs to fit their cards")
    page.screenshot(path=str(target / "dashboard-overview.png"))
    page.set_viewport_size({"width": 1100, "height": 860})
    page.click('[data-watcher="d0/busy"]')
    page.wait_for_selector("[data-pid]")
    survivor, victim = cards(page)
    os.kill(victim, signal.SIGKILL)  # something for the restart history
    page.locator("#history tr", has_text=str(victim)).wait_for()
    page.locator("#log", has_text="done").wait_for()
    wait_until(lambda: points(page, f"pid:{survivor}") >= 5, timeout=20, what="process graphs")
    page.screenshot(path=str(target / "dashboard-watcher.png"), full_page=True)
    for name in ("dashboard-overview.png", "dashboard-watcher.png"):
        assert (target / name).stat().st_size > 10_000
    page.set_viewport_size({"width": 390, "height": 844})
    for route in ("#/", "#/w/d0/busy", "#/events", "#/config"):
        page.goto(f"{stack.url}{route}")
        page.wait_for_selector("main > *")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{route} is {width}px wide on a 390px screen"


def test_the_pages_pure_helpers_in_the_browser(page: Any) -> None:
    """format.js (ring buffers of points, figures in words), run by the browser itself."""
    result = page.evaluate(
        """async () => {
          const f = await import('/static/format.js');
          const columns = f.emptySeries();
          for (let i = 0; i < 5; i++) f.pushPoint(columns, i, i * 2, i * 100, 3);
          return {
            columns,
            bytes: [f.bytes(null), f.bytes(512), f.bytes(1536), f.bytes(5 * 1024 ** 3)],
            percent: [f.percent(null), f.percent(12.345)],
            durations: [f.duration(5), f.duration(125), f.duration(7300), f.duration(90000)],
            exits: [f.exitText({signal: 9, exit_code: null}), f.exitText({exit_code: 3}),
                    f.exitText({})],
            restarts: [f.restartText(null), f.restartText(0), f.restartText(1.23456)],
            plural: [f.plural(1, "proc"), f.plural(2, "proc")],
            details: f.eventDetails({process_pid: 7, time: 1, exit_code: -9}),
          };
        }"""
    )
    assert result == {
        "columns": [[2, 3, 4], [4, 6, 8], [200, 300, 400]],
        "bytes": ["–", "512 B", "1.5 KiB", "5.0 GiB"],
        "percent": ["–", "12.3 %"],
        "durations": ["5s", "2m05s", "2h01m", "1d1h"],
        "exits": ["signal 9", "exit 3", "–"],
        "restarts": ["no", "at once", "in 1.23s"],
        "plural": ["1 proc", "2 procs"],
        "details": "process_pid=7 exit_code=-9",
    }
