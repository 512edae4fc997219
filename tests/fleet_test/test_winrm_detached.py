"""The WinRM test fleet started detached, as the practice lab starts its Windows hosts: it
outlives the process that started it, is found again from its state file and stopped from there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_runner import kremove
from tests.fleet.pytest_plugin import SEEN
from tests.fleet.winrm_host import WinrmFleet, WinrmFleetError
from tests.integration.test_winrm_run import no_secrets

ROOT = Path(__file__).resolve().parents[2]
START = (
    "import sys; from pathlib import Path; from tests.fleet.winrm_host import WinrmFleet; "
    "WinrmFleet.start(Path(sys.argv[1]), {'kes_and_agent': 1, 'clean': 1}, keep_running=True)"
)


def test_detached_fleet_outlives_its_starter_and_stops_when_loaded(tmp_path: Path) -> None:
    workdir = tmp_path / "windows"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    starter = [sys.executable, "-c", START, str(workdir)]
    subprocess.run(starter, cwd=ROOT, env=env, timeout=60, check=True)
    fleet = WinrmFleet.load(workdir)
    SEEN.append((fleet.secrets, workdir))
    try:
        assert fleet.running() and os.getsid(fleet.pid) == fleet.pid  # in its own session
        password = workdir / "password"
        inventory = fleet.write_inventory(tmp_path / "windows.yml", password_file=password)
        assert oct(password.stat().st_mode & 0o777) == "0o600"
        # Nothing exported: the login password comes from the file the inventory names.
        done = kremove(
            "run", "-i", str(inventory), "--yes", "--json",
            cwd=tmp_path, ledger=tmp_path / "ledger.db", timeout=120,
        )  # fmt: skip
        no_secrets(fleet, done.stdout, done.stderr)
        statuses = {h["host"]: h["status"] for h in json.loads(done.stdout)["hosts"]}
        assert statuses == {"w001-kes_and_agent": "removed", "w002-clean": "clean"}
        assert fleet.running()  # still, long after its starter exited
        assert [row["products"] for row in fleet.status()] == [{}, {}]
        fleet.reset("w001-kes_and_agent")  # the control port answers a loaded fleet
        assert fleet.status()[0]["products"] == {
            "Kaspersky Endpoint Security for Windows": "12.4.0.467",
            "Kaspersky Security Center Network Agent": "14.0.0.10902",
        }
    finally:
        fleet.stop()
    assert not fleet.running()
    with pytest.raises(WinrmFleetError, match="no WinRM fleet"):
        WinrmFleet.load(workdir)
