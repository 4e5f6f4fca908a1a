"""`bigtop logs`: the last lines of each process and the live output, whatever the stream."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import PYTHON, wait_until


def bigtop(tmp_path: Path, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bigtop", "-c", str(tmp_path / "circus.ini"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _talker(tag: str) -> str:
    return (
        f"{PYTHON} -u -c 'import sys, time; "
        "[print(sys.argv[1], i) for i in range(1, 21)]; "
        'print(sys.argv[1], "to stderr", file=sys.stderr); time.sleep(3600)\' ' + tag
    )


def test_last_lines_of_each_process_whatever_the_stream(run_daemon, tmp_path: Path) -> None:
    daemon = run_daemon(
        f"""
        [watcher:plain]
        cmd = {_talker("plain")}

        [watcher:filed]
        cmd = {_talker("filed")}
        stdout_stream.class = FileStream
        stdout_stream.filename = {tmp_path}/filed.log
        """
    )
    daemon.wait_children(2)

    def captured() -> bool:  # both processes, both streams, and the file written
        out = bigtop(tmp_path, "logs", "-n", "50").stdout
        filed = tmp_path / "filed.log"
        return (
            all(
                text in out
                for text in ("plain 20", "filed 20", "plain to stderr", "filed to stderr")
            )
            and filed.exists()
            and "filed 20" in filed.read_text()
        )

    wait_until(captured, what="output captured")
    result = bigtop(tmp_path, "logs", "-n", "3", "--stdout", "plain")
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("plain[") for line in lines)
    assert [line.split("| ")[1] for line in lines] == ["plain 18", "plain 19", "plain 20"]
    result = bigtop(tmp_path, "logs", "--stderr")
    assert sorted(line.split("! ")[1] for line in result.stdout.splitlines()) == [
        "filed to stderr",
        "plain to stderr",
    ]
    # the file stream still gets its lines, and output without a stream still reaches the
    # daemon's own stdout, as in Circus
    assert "filed 20" in (tmp_path / "filed.log").read_text()
    wait_until(lambda: "plain 20" in daemon.output(), what="passthrough")
    result = bigtop(tmp_path, "--json", "logs", "-n", "1", "--stdout", "filed")
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (record["watcher"], record["stream"], record["line"]) == ("filed", "stdout", "filed 20")


def test_follow_shows_new_lines_and_an_ended_process_stays_readable(
    run_daemon, tmp_path: Path
) -> None:
    import threading

    trigger = tmp_path / "go"
    script = tmp_path / "late.py"
    script.write_text(
        "import os, sys, time\n"
        "while not os.path.exists(sys.argv[1]):\n"
        "    print('waiting', flush=True); time.sleep(0.05)\n"
        "print('late line', flush=True)\n"
        "print('last words', file=sys.stderr, flush=True)\n"
        "sys.exit(3)\n"
    )
    daemon = run_daemon(
        f"""
        [watcher:late]
        cmd = {PYTHON} -u {script} {trigger}
        respawn = never

        [watcher:steady]
        cmd = {_talker("steady")}
        """
    )
    daemon.wait_children(2)
    wait_until(
        lambda: "steady 20" in bigtop(tmp_path, "logs", "-n", "30", "steady").stdout,
        what="steady's lines",
    )
    follower = subprocess.Popen(
        [sys.executable, "-m", "bigtop", "-c", str(tmp_path / "circus.ini"), "logs", "-f",
         "-n", "5", "--stdout", "late", "steady"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(follower.stdout.readline, "")))
    reader.start()
    try:
        wait_until(lambda: seen, what="live lines reaching the follower")
        trigger.write_text("")
        wait_until(lambda: any(line.endswith("| late line\n") for line in seen), what="late")
        # the last lines of both watchers came first, then the new one
        steady = [line for line in seen if line.startswith("steady[")]
        assert [line.rsplit("| ", 1)[1].strip() for line in steady[:5]] == [
            f"steady {i}" for i in range(16, 21)
        ]
        wait_until(
            lambda: "last words" in bigtop(tmp_path, "logs", "-n", "20", "late").stdout,
            what="the crashed process's last words, readable after it ended",
        )
    finally:
        follower.terminate()
        follower.wait(10)
        reader.join(10)
        follower.stdout.close()
