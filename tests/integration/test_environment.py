"""What a child gets: user, groups, environment, directory, umask, limits."""

from __future__ import annotations

import json
import os
import pwd
import sys
from pathlib import Path

import pytest

from tests.helpers import PYTHON, async_wait_until

DUMP = (
    f"{PYTHON} -c 'import json, os, sys, time; "
    'json.dump({"env": dict(os.environ), "cwd": os.getcwd(), "uid": os.getuid(), '
    '"gid": os.getgid(), "groups": sorted(os.getgroups()), "umask": os.umask(0), '
    '"argv": sys.argv[1:]}, open(sys.argv[1] + ".tmp", "w")); '
    'os.rename(sys.argv[1] + ".tmp", sys.argv[1]); time.sleep(3600)\''
)


async def _dump(
    daemon,
    tmp_path: Path,
    options: str,
    environ: dict[str, str] | None = None,
    extra_sections: str = "",
) -> dict:
    out = tmp_path / "dump.json"
    await daemon(
        f"""
        [watcher:probe]
        cmd = {DUMP} {out}
        {options}
        {extra_sections}
        """,
        environ,
    )
    await async_wait_until(out.exists, what="the child's report")
    report = json.loads(out.read_text())
    if report["env"].get("LC_CTYPE") == "C.UTF-8":
        del report["env"]["LC_CTYPE"]  # added by the Python child itself (PEP 538)
    return report


async def test_without_copy_env_the_child_gets_only_configured_env(daemon, tmp_path) -> None:
    report = await _dump(
        daemon,
        tmp_path,
        "",
        extra_sections="""
        [env:probe]
        APP_MODE = test
        """,
    )
    assert report["env"] == {"APP_MODE": "test"}


async def test_copy_env_merges_configured_env_over_the_daemons(daemon, tmp_path) -> None:
    os.environ["BIGTOP_TEST_INHERITED"] = "from-daemon"
    try:
        report = await _dump(
            daemon,
            tmp_path,
            "copy_env = true",
            extra_sections="""
            [env]
            SHARED = global
            [env:pro*]
            SHARED = specific
            """,
        )
    finally:
        del os.environ["BIGTOP_TEST_INHERITED"]
    assert report["env"]["BIGTOP_TEST_INHERITED"] == "from-daemon"
    assert report["env"]["SHARED"] == "specific"
    assert "__name__" not in report["env"]


async def test_virtualenv_puts_its_bin_and_site_packages_first(daemon, tmp_path) -> None:
    venv = tmp_path / "venv"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / f"python{version}" / "site-packages"
    (venv / "bin").mkdir(parents=True)
    site.mkdir(parents=True)
    (tmp_path / "src").mkdir()
    (site / "app.pth").write_text(f"{tmp_path / 'src'}\n# a comment\n")
    report = await _dump(daemon, tmp_path, f"copy_env = true\nvirtualenv = {venv}")
    assert report["env"]["PATH"].split(":")[0] == str(venv / "bin")
    assert report["env"]["PYTHONPATH"].split(":")[:2] == [str(site), str(tmp_path / "src")]


async def test_working_dir_umask_and_wid_substitution(daemon, tmp_path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    report = await _dump(
        daemon, tmp_path, f"working_dir = {work}\numask = 027\nargs = $(circus.wid) x"
    )
    assert report["cwd"] == str(work)
    assert report["umask"] == 0o027
    assert report["argv"][1:] == ["1", "x"]


async def test_env_file_is_read_at_spawn(daemon, tmp_path) -> None:
    (tmp_path / "app.env").write_text("# settings\nexport TOKEN='s3cret'\nLEVEL=2\n")
    report = await _dump(daemon, tmp_path, "env_file = app.env")
    assert report["env"] == {"TOKEN": "s3cret", "LEVEL": "2"}


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
async def test_uid_and_gid_switch_to_nobody_with_supplementary_groups(daemon, tmp_path) -> None:
    import grp

    nobody = pwd.getpwnam("nobody")
    nogroup = grp.getgrnam("nogroup").gr_gid
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="bigtop-uid-"))  # tmp_path's parents are 0700
    shared.chmod(0o777)
    out = shared / "ids"
    # /bin/sh, not this venv's python: nobody may not reach the venv under /root
    await daemon(
        f"""
        [watcher:probe]
        cmd = /bin/sh -c 'echo $(id -u) $(id -g) $(id -G) > {out}.tmp; mv {out}.tmp {out}; exec sleep 3600.1'
        uid = nobody
        gid = nogroup
        """
    )
    await async_wait_until(out.exists, what="the child's report")
    uid, gid, *groups = (int(n) for n in out.read_text().split())
    assert (uid, gid) == (nobody.pw_uid, nogroup)
    assert sorted(set(groups)) == sorted(set(os.getgrouplist("nobody", nogroup)))
    out.unlink()
    shared.rmdir()


async def test_rlimits_are_applied(daemon, tmp_path) -> None:
    out = tmp_path / "limits"
    await daemon(
        f"""
        [watcher:limited]
        cmd = {PYTHON} -c 'import resource, time; open("{out}", "w").write(str(resource.getrlimit(resource.RLIMIT_NOFILE))); time.sleep(3600)'
        rlimit_nofile = 100
        """
    )
    await async_wait_until(lambda: out.exists() and out.read_text(), what="the report")
    assert out.read_text() == "(100, 100)"
