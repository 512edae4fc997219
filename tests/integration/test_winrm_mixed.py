"""One run over a mixed fleet: SSH (Linux) and WinRM (Windows) hosts in one inventory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.cli_runner import kremove
from tests.fleet.fleet import Fleet
from tests.fleet.winrm_host.fleet import WinrmFleet
from tests.integration.test_winrm_run import no_secrets


def test_detect_and_run_over_ssh_and_winrm_hosts_in_one_run(
    fleet_factory: Callable[..., Fleet],
    winrm_fleet_factory: Callable[..., WinrmFleet],
    tmp_path: Path,
) -> None:
    linux = fleet_factory({"one_product": 1})
    windows = winrm_fleet_factory({"kes_and_agent": 1, "clean": 1})
    known = linux.write_known_hosts(tmp_path / "known_hosts")
    inventories = [  # two files, each with its own defaults: merged by -i twice
        linux.write_inventory(tmp_path / "linux.yml", known_hosts=known),
        windows.write_inventory(tmp_path / "windows.yml"),
    ]
    args = [a for p in inventories for a in ("-i", str(p))]

    def statuses(*extra: str) -> dict[str, str]:
        done = kremove(*extra, *args, "--json", home=tmp_path, env={**linux.env, **windows.env})
        no_secrets(windows, done.stdout, done.stderr)
        assert done.stdout, done.stderr
        doc = json.loads(done.stdout)
        return {h["host"]: h["status"] for h in doc["hosts"]}

    linux_host = linux.hosts[0].name
    kes, clean = (h.name for h in windows.hosts)
    assert statuses("detect") == {linux_host: "found", kes: "found", clean: "clean"}
    assert statuses("run", "--yes") == {linux_host: "removed", kes: "removed", clean: "clean"}
    assert linux.kaspersky_packages(linux_host) == {}
    assert not [n for n in windows.products(kes) if "Kaspersky" in n]


def test_turning_certificate_validation_off_is_said_and_recorded(
    winrm_fleet_factory: Callable[..., WinrmFleet], tmp_path: Path
) -> None:
    windows = winrm_fleet_factory({"kes_and_agent": 1})
    inventory = windows.write_inventory(tmp_path / "windows.yml", cert_validation=False)
    done = kremove("plan", "-i", str(inventory), "--json", home=tmp_path, env=windows.env)
    assert done.returncode == 0, done.stderr
    name = windows.hosts[0].name
    assert "certificate validation is OFF" in done.stderr and name in done.stderr
    plan = json.loads(done.stdout)["plan"]
    shown = kremove("runs", "show", plan, "--json", home=tmp_path, env=windows.env, timeout=60)
    assert json.loads(shown.stdout)["meta"]["tls_validation_off"] == [name]
