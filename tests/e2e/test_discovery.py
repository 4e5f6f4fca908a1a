"""Multicast discovery: off by default, answers when configured (in a private netns)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import PYTHON, write_ini

PROBE = textwrap.dedent(
    """
    import json, socket, subprocess, sys, time
    config = sys.argv[1]
    daemon = subprocess.Popen([sys.executable, "-m", "bigtop", "run", config],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        probe.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        probe.settimeout(0.2)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            probe.sendto(b'""', ("237.219.251.97", 12027))
            try:
                data, _ = probe.recvfrom(4096)
            except socket.timeout:
                continue
            print(data.decode())
            break
        else:
            print("no answer")
    finally:
        daemon.terminate()
        daemon.wait(30)
    """
)


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
    reason="needs root, unshare and ip to make a private network namespace",
)
def test_configured_discovery_answers_with_the_control_endpoint(tmp_path: Path) -> None:
    control = f"ipc://{tmp_path}/control.sock"
    config = write_ini(
        tmp_path,
        f"""
        [circus]
        endpoint = {control}
        pubsub_endpoint = ipc://{tmp_path}/events.sock
        multicast_endpoint = udp://237.219.251.97:12027

        [watcher:w]
        cmd = {PYTHON} -c 'import time; time.sleep(3600)' discovery
        """,
    )
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    script = (
        "ip link set lo up && ip link set lo multicast on && "
        "ip route add 224.0.0.0/4 dev lo && "
        f"exec {sys.executable} {probe} {config}"
    )
    result = subprocess.run(
        ["unshare", "--net", "--fork", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"endpoint": control}
