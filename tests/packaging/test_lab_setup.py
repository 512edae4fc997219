"""What `kremove lab up` needs from a Debian machine, and what it does when something is missing:
as root it installs the packages with apt-get (saying so on stderr), otherwise one line names them.

This machine has every package, so each test gives kremove a PATH (a directory of links to the
real tools) that lacks ``openssl``. apt-get is left out, or is a stand-in script that records how
it was called: installing real packages on the test machine is not something a test may do.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from orchestrator.cli.lab import NEEDS
from tests.cli_runner import kremove

LACKING = "openssl"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (and setpriv for nobody)")


def bin_without(tmp_path: Path, tool: str, apt_get: str | None = None) -> dict[str, str]:
    """A PATH with every tool the lab needs except ``tool``; ``apt_get``: a script to add."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in NEEDS:
        real = shutil.which(name)
        if not name.startswith("/") and name != tool and real is not None:
            (bindir / name).symlink_to(real)
    if apt_get is not None:
        (bindir / "apt-get").write_text(apt_get)
        (bindir / "apt-get").chmod(0o755)
    bindir.chmod(0o755)
    return {"PATH": str(bindir)}


def up(tmp_path: Path, env: dict[str, str], wrap: list[str] | None = None) -> tuple[int, str]:
    done = kremove(
        "lab", "up", "--dir", str(tmp_path / "lab"),
        cwd=tmp_path, env={**env, "HOME": str(tmp_path)}, wrap=wrap or [], timeout=60,
    )  # fmt: skip
    assert not (tmp_path / "lab").exists()  # nothing was started
    return done.returncode, done.stderr


def test_without_root_one_line_names_the_missing_package(tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv to drop to another user")
    tmp_path.chmod(0o777)
    nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    # Where nobody can reach it (pytest's own tmp is root's alone).
    with tempfile.TemporaryDirectory(prefix="kremove-lab-path-") as reachable:
        Path(reachable).chmod(0o755)
        code, stderr = up(tmp_path, bin_without(Path(reachable), LACKING), wrap=nobody)
    assert code == 2
    assert stderr.strip() == (
        "kremove: error: the practice fleet needs root and the Debian package openssl (it runs "
        "sshd in private namespaces); run: sudo kremove lab up (it installs them with apt-get)"
    )


def test_as_root_without_apt_get_one_line_names_the_missing_package(tmp_path: Path) -> None:
    code, stderr = up(tmp_path, bin_without(tmp_path, LACKING))
    assert code == 2
    assert stderr.strip() == (
        "kremove: error: the practice fleet needs the Debian package openssl and there is no "
        "apt-get: install them, then run kremove lab up again"
    )


FAKE_APT = """#!/bin/sh
echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> {log}
case "$*" in *" install "*) echo "E: Unable to locate package openssl" >&2; exit {code};; esac
exit 0
"""


def test_as_root_apt_get_installs_it_without_a_question_and_says_so(tmp_path: Path) -> None:
    log = tmp_path / "apt.log"
    env = bin_without(tmp_path, LACKING, FAKE_APT.format(log=log, code=100))
    code, stderr = up(tmp_path, env)
    lines = stderr.strip().splitlines()
    assert lines[0] == "kremove lab: installing openssl with apt-get (the practice fleet)"
    assert code == 2 and len(lines) == 2
    assert lines[1] == (
        "kremove: error: apt-get install openssl failed (E: Unable to locate package openssl): "
        "install them by hand, then run kremove lab up again"
    )
    wait = "-o DPkg::Lock::Timeout=300"
    install = f"DEBIAN_FRONTEND=noninteractive {wait} install -y -q --no-install-recommends openssl"
    # Once, then again after refreshing the package lists (a fresh machine may have none).
    assert log.read_text().splitlines() == [
        install,
        f"DEBIAN_FRONTEND=noninteractive {wait} update -q",
        install,
    ]


def test_as_root_an_install_that_leaves_the_tool_missing_is_named(tmp_path: Path) -> None:
    log = tmp_path / "apt.log"
    code, stderr = up(tmp_path, bin_without(tmp_path, LACKING, FAKE_APT.format(log=log, code=0)))
    assert code == 2
    assert stderr.strip().splitlines()[-1] == (
        "kremove: error: apt-get install openssl left the Debian package openssl missing: "
        "install them by hand, then run kremove lab up again"
    )
    assert len(log.read_text().splitlines()) == 1
