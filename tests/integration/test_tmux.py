"""The progress display as an operator sees it: a wave run inside tmux, its screen captured while
it runs, checked for the batch counter, the failure budget and the failures."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_runner import KREMOVE, OWN_SETTINGS, cli_env
from tests.fleet.fleet import Fleet


def tmux() -> str:
    found = shutil.which("tmux")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "tmux"], env=env, check=False,
                       capture_output=True, timeout=600)  # fmt: skip
        found = shutil.which("tmux")
        if found:
            return found
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail("tmux is missing and could not be installed", pytrace=False)
    pytest.skip("tmux is missing (apt-get install tmux)")


def test_the_wave_progress_in_a_real_terminal(
    fleet_factory: Callable[..., Fleet], tmp_path: Path
) -> None:
    binary = tmux()
    fleet = fleet_factory(["unreachable", "slow", "slow", "slow", "slow"], slow_delay=1.5)
    known = fleet.write_known_hosts(tmp_path / "known_hosts")
    inventory = fleet.write_inventory(tmp_path / "fleet.yml", known_hosts=known)
    # Not under the tmux these tests may run in; a terminal, so colour is not turned off.
    env = cli_env(home=tmp_path, env={"TERM": "xterm"}, strip=(*OWN_SETTINGS, "TMUX"), plain=False)
    session = f"kremove-{os.getpid()}"
    command = (
        f"{KREMOVE} run -i {shlex.quote(str(inventory))} --yes --batches 1,2,100% "
        f"--max-fail 3 --forks 1; echo WAVE-ENDED; sleep 30"
    )
    socket = ["-S", str(tmp_path / "tmux.sock")]
    subprocess.run(
        [binary, *socket, "new-session", "-d", "-s", session, "-x", "160", "-y", "40", command],
        env=env, check=True, timeout=30,
    )  # fmt: skip
    screens: list[str] = []
    try:
        give_up = time.monotonic() + 120
        while time.monotonic() < give_up:
            shot = subprocess.run(
                [binary, *socket, "capture-pane", "-p", "-t", session],
                capture_output=True, text=True, timeout=10,
            ).stdout  # fmt: skip
            screens.append(shot)
            if "WAVE-ENDED" in shot:
                break
            time.sleep(0.2)
    finally:
        subprocess.run([binary, *socket, "kill-server"], check=False, timeout=30)
    live = [s for s in screens if "in flight" in s]
    assert live, screens[-1] if screens else "no screen captured"
    assert any("batch 2/3" in s or "batch 3/3" in s for s in live), live[-1]
    assert any("budget left 2" in s for s in live), live[-1]  # the unreachable host spent one
    assert any("1 failed" in s for s in live), live[-1]
    assert any("ETA" in s and "hosts/s" in s for s in live)
    final = screens[-1]
    assert "5 hosts: 4 removed, 1 unreachable" in final, final
