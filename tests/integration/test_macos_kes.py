"""Kaspersky Endpoint Security for Mac 12 on the fleet's simulated Macs (issue 19, item 10).

The product is an app bundle with an activated system extension (com.kaspersky.kav.sysext, team
2Y8XE5CQ94) that only the app itself (or MDM) can remove while SIP is on: the systemextensionsctl
shim lists it and refuses to change it, the vendor CLI ``kav uninstall`` deactivates it. Detect
finds KES with the app's version and the extension; a run removes it through the vendor CLI, and
verify sees the extension gone. When the vendor uninstall leaves the extension activated, or the
CLI is missing, the host ends failed naming the extension and the route, never removed; when
macOS keeps the deactivated extension until the restart, the host ends reboot_pending.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove
from tests.fleet.fleet import Fleet
from tests.integration.macos_fleet import fleet_home, kremove_json

KINDS = {
    "macos_kes12": 1,
    "macos_kes12_sysext_stays": 1,
    "macos_kes12_no_uninstaller": 1,
    "macos_kes12_reboot": 1,
}
APP = "/Applications/Kaspersky Endpoint Security for Mac.app"
CLI = "/Library/Application Support/Kaspersky Lab/KAV/Binaries/kav"
SYSEXT = "com.kaspersky.kav.sysext"
ROUTE = f"use its own uninstaller ({APP} or the KSC remote uninstall task) or MDM"
SIP = "SIP blocks any other way"


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(KINDS)


@pytest.fixture(scope="module")
def home(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fleet_home(fleet, tmp_path_factory, "macos-kes")


@pytest.fixture(scope="module")
def answers(fleet: Fleet, home: Path) -> dict[str, dict[str, Any]]:
    """kremove detect, each host's system extensions then, and kremove run (both exit 1: they
    find products, fail hosts)."""
    detect = kremove_json(fleet, home, "detect", 1)
    listed = {h.name: extensions(fleet, h.name) for h in fleet.hosts}
    return {"detect": detect, "listed": listed, "run": kremove_json(fleet, home, "run", 1)}


@pytest.fixture(scope="module")
def detected(answers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return answers["detect"]


@pytest.fixture(scope="module")
def run(answers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return answers["run"]


def outcomes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in doc["hosts"]}


def extensions(fleet: Fleet, name: str) -> str:
    listed = fleet.run_on_host(name, ["systemextensionsctl", "list"])
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def only(fleet: Fleet, kind: str) -> str:
    (h,) = fleet.by_kind(kind)
    return h.name


def ended(fleet: Fleet, run: dict[str, Any], kind: str, status: str) -> tuple[str, dict[str, Any]]:
    """The host of ``kind`` and its outcome, which must have ``status``."""
    name = only(fleet, kind)
    outcome = outcomes(run)[name]
    assert outcome["status"] == status, outcome
    return name, outcome


def post_findings(fleet: Fleet, home: Path, run: dict[str, Any], name: str) -> list[Any]:
    shown = kremove("runs", "show", run["run"], "--json", home=home, env=fleet.env)
    found: list[Any] = outcomes(json.loads(shown.stdout))[name]["post_findings"]
    return found


def test_detect_finds_kes_for_mac_12_with_its_version_and_system_extension(
    fleet: Fleet, answers: dict[str, dict[str, Any]], detected: dict[str, Any]
) -> None:
    hosts = outcomes(detected)
    for h in fleet.hosts:
        outcome = hosts[h.name]
        assert outcome["status"] == "found", outcome
        kes = next(f for f in outcome["findings"] if f["product"] == "kes-mac")
        assert kes["kind"] == "installed" and kes["version"] == "12.0.0.411", kes
        assert kes["evidence"]["system_extensions"] == f"{SYSEXT} [activated enabled]"
        assert APP in kes["evidence"]["paths"].split("\n")
        # The receipts the catalog assumes KES keeps from KAV for Mac still show too.
        kav = next(f for f in outcome["findings"] if f["product"] == "kav-mac")
        assert kav["version"] == "12.0.0.411"
        assert "2Y8XE5CQ94\tcom.kaspersky.kav.sysext" in answers["listed"][h.name]  # unchanged


def test_kes_is_removed_through_the_vendor_cli_and_verify_sees_the_extension_gone(
    fleet: Fleet, home: Path, run: dict[str, Any]
) -> None:
    name, _ = ended(fleet, run, "macos_kes12", "removed")
    assert SYSEXT not in extensions(fleet, name)
    assert not fleet.files_exist(name, APP) and not fleet.files_exist(name, CLI)
    assert fleet.kaspersky_receipts(name) == {}
    assert "com.kaspersky.kav" not in fleet.launchd_jobs(name)
    record = json.loads(
        kremove("runs", "show", run["run"], "--json", home=home, env=fleet.env).stdout
    )
    steps = [s["step_id"] for s in record["steps"] if s["host"] == name]
    assert steps[:3] == ["privilege", "inventory", "uninstall:kes-mac"], steps
    assert steps[-1] == "verify"
    sent = [c for c in fleet.commands_log(name) if "uninstaller=" in c]
    assert (
        len(sent) == 1 and sent[0].startswith("sudo -n ") and '"$uninstaller" uninstall' in sent[0]
    )
    assert outcomes(record)[name]["post_findings"] == []


@pytest.mark.parametrize("kind", ["macos_kes12_sysext_stays", "macos_kes12_no_uninstaller"])
def test_an_activated_extension_fails_the_host_naming_it_and_the_route(
    fleet: Fleet, home: Path, run: dict[str, Any], kind: str
) -> None:
    name, outcome = ended(fleet, run, kind, "failed")
    reason = outcome["reason"]
    assert reason.startswith("step 'uninstall:kes-mac' exited 1: "), reason
    assert f"system extension {SYSEXT} " in reason and "activated" in reason
    assert ROUTE in reason and SIP in reason
    assert "2Y8XE5CQ94\tcom.kaspersky.kav.sysext" in extensions(fleet, name)
    # Nothing after the failing step ran: no receipt forgotten, no file of kremove's deleted.
    assert not [c for c in fleet.commands_log(name) if "rm -rf" in c or "--forget" in c]
    kes = next(f for f in post_findings(fleet, home, run, name) if f["product"] == "kes-mac")
    assert kes["kind"] == "installed" and SYSEXT in kes["evidence"]["system_extensions"]


def test_without_its_cli_nothing_of_kes_is_touched(fleet: Fleet, run: dict[str, Any]) -> None:
    name = only(fleet, "macos_kes12_no_uninstaller")
    assert f"{CLI} is not on this host" in outcomes(run)[name]["reason"]
    assert fleet.files_exist(name, APP)
    assert fleet.kaspersky_receipts(name) == fleet.host(name).expected_receipts
    assert "com.kaspersky.kav" in fleet.launchd_jobs(name)


def test_the_vendor_uninstall_that_leaves_the_extension_is_reported_as_such(
    fleet: Fleet, run: dict[str, Any]
) -> None:
    name = only(fleet, "macos_kes12_sysext_stays")
    reason = outcomes(run)[name]["reason"]
    assert f"is still activated after {CLI}" in reason, reason
    assert not fleet.files_exist(name, APP)  # the vendor CLI deleted the app, not kremove


def test_an_extension_left_for_the_restart_ends_reboot_pending_not_removed(
    fleet: Fleet, home: Path, run: dict[str, Any]
) -> None:
    name, outcome = ended(fleet, run, "macos_kes12_reboot", "reboot_pending")
    assert "reboot" in outcome["reason"]
    assert f"{SYSEXT} (" in extensions(fleet, name)
    assert "[terminated waiting to uninstall on reboot]" in extensions(fleet, name)
    assert not fleet.files_exist(name, APP) and fleet.kaspersky_receipts(name) == {}
    post = post_findings(fleet, home, run, name)
    assert [(f["kind"], f["evidence"]) for f in post] == [("residue", {"system_extension": SYSEXT})]
