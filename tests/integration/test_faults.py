"""Faults in the middle of a run: a host that stops answering, a host whose sshd dies, a host that
floods its output, and a ledger whose disk fills up. Each ends named, bounded, and consistent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests import figures
from tests.cli_runner import kremove
from tests.fleet.fleet import Fleet


def playbook(tmp_path: Path, script: str) -> Path:
    """A detection step that runs ``script`` instead of the real query."""
    extra = tmp_path / "playbooks"
    (extra / "linux").mkdir(parents=True)
    (extra / "linux" / "detect.yml").write_text(
        yaml.safe_dump(
            {
                "name": "linux-detect",
                "platform": "linux",
                "steps": [
                    {"id": "probe", "kind": "detect", "readonly": True,
                     "template": "linux/probe.sh.j2", "timeout": 60},
                ],
            }
        )
    )  # fmt: skip
    (extra / "linux" / "probe.sh.j2").write_text(script)
    return extra


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory({"one_product": 2})


def inventory(fleet: Fleet, home: Path) -> Path:
    known = fleet.write_known_hosts(home / "known_hosts")
    return fleet.write_inventory(home / "fleet.yml", known_hosts=known)


def test_a_host_that_stops_answering_mid_command_ends_timeout(fleet: Fleet, tmp_path: Path) -> None:
    stuck = fleet.hosts[0].name
    extra = playbook(tmp_path, "sleep 3; echo done")
    stopped: list[float] = []

    def stop_when_the_command_runs() -> None:
        before = len(fleet.commands_log(stuck))
        while len(fleet.commands_log(stuck)) == before:
            time.sleep(0.01)
        fleet.signal(stuck, signal.SIGSTOP)  # mid-command: its sshd and the session freeze
        stopped.append(time.monotonic())

    watcher = threading.Thread(target=stop_when_the_command_runs, daemon=True)
    watcher.start()
    try:
        done = kremove(
            "detect", "-i", str(inventory(fleet, tmp_path)),
            "--playbooks", str(extra), "--host-timeout", "8", "--json",
            home=tmp_path, env=fleet.env,
        )  # fmt: skip
        ended = time.monotonic()
    finally:
        watcher.join(5)
        fleet.signal(stuck, signal.SIGCONT)
    assert stopped, "the command never reached the host"
    statuses = {h["host"]: h for h in json.loads(done.stdout)["hosts"]}
    assert statuses[stuck]["status"] == "timeout", statuses[stuck]
    assert statuses[fleet.hosts[1].name]["status"] == "clean"  # the other host is unaffected
    assert "passed its deadline" in statuses[stuck]["reason"]  # cut mid-command, not at login
    figures.record("fault", fault="host frozen mid-command (SIGSTOP)", status="timeout")
    assert ended - stopped[0] < 8 + 10  # within the host's deadline, with room for a busy machine


def test_a_host_whose_sshd_dies_mid_step_is_named_and_the_run_goes_on(
    fleet: Fleet, tmp_path: Path
) -> None:
    dying = fleet.hosts[0].name
    extra = playbook(tmp_path, "sleep 3; echo done")

    def kill_when_the_command_runs() -> None:
        before = len(fleet.commands_log(dying))
        give_up = time.monotonic() + 60
        while len(fleet.commands_log(dying)) == before and time.monotonic() < give_up:
            time.sleep(0.01)
        fleet.signal(dying, signal.SIGKILL)  # mid-step: every process of the host dies

    timer = threading.Thread(target=kill_when_the_command_runs, daemon=True)
    timer.start()
    try:
        done = kremove(
            "detect", "-i", str(inventory(fleet, tmp_path)), "--playbooks", str(extra), "--json",
            home=tmp_path, env=fleet.env,
        )  # fmt: skip
    finally:
        timer.join(60)
        fleet.reset(dying)
    hosts = {h["host"]: h for h in json.loads(done.stdout)["hosts"]}
    assert hosts[dying]["status"] in ("unreachable", "failed"), hosts[dying]
    assert "connection" in hosts[dying]["reason"]
    assert hosts[fleet.hosts[1].name]["status"] == "clean"
    figures.record("fault", fault="sshd killed mid-step", status=hosts[dying]["status"])


def test_a_flood_of_output_costs_bounded_memory(fleet: Fleet, tmp_path: Path) -> None:
    # 100 MB on stdout and invalid UTF-8 on stderr from each host.
    extra = playbook(
        tmp_path,
        "head -c 100000000 /dev/zero | tr '\\0' x; printf '\\377\\376 bad utf-8' >&2",
    )
    inv = inventory(fleet, tmp_path)
    done = kremove(
        "detect", "-i", str(inv), "--playbooks", str(extra), "--json",
        home=tmp_path, wrap=["/usr/bin/time", "-f", "%M"],  # its peak memory: stderr's last line
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-500:]
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    assert peak_kib < 250 * 1024, peak_kib  # two hosts' 100 MB each never held whole
    record = json.loads(
        kremove(
            "runs", "show", json.loads(done.stdout)["run"], "--json", home=tmp_path, env=fleet.env
        ).stdout
    )
    for step in record["steps"]:
        assert len(step["stdout"]) < 100_000 and "omitted" in step["stdout"]
        assert "\ufffd" in step["stderr"]  # bad bytes replaced, not a crash
    figures.record("fault", fault="100 MB of output and invalid UTF-8", peak_kib=peak_kib)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_a_full_disk_stops_the_run_cleanly_and_the_ledger_still_verifies(
    fleet: Fleet, tmp_path: Path
) -> None:
    disk = tmp_path / "small"
    disk.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k,mode=0700", "tmpfs", str(disk)], check=True
    )
    try:
        ledger = disk / "ledger.db"
        extra = playbook(tmp_path, "head -c 60000 /dev/urandom | base64")  # ~80 KB a step
        inv = inventory(fleet, tmp_path)
        outcome = None
        for _ in range(20):
            outcome = kremove(
                "detect", "-i", str(inv), "--playbooks", str(extra),
                ledger=ledger, home=tmp_path, env=fleet.env,
            )  # fmt: skip
            if outcome.returncode != 0:
                break
        assert outcome is not None and outcome.returncode == 1, outcome
        error = outcome.stderr.strip().splitlines()
        assert len(error) == 1 and "full" in error[0] and str(ledger) in error[0], error
        assert "Traceback" not in outcome.stderr
        verify = kremove("audit", "verify", ledger=ledger, home=tmp_path, env=fleet.env)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        figures.record("fault", fault="ledger disk full", status="stopped, ledger verifies")
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
