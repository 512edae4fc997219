"""`kremove detect` and `kremove run` over WinRM on hosts where Windows detection used to leave
Kaspersky behind (issue 19, items 7, 8, 9 and 11): a Network Agent with a second InstallWIX_ key,
a live driver and service with no Uninstall entry, a per-user install, KES 12's versioned drivers.

The hosts are the WinRM test host's kinds of tests/fleet/winrm_host/kinds_detection.py; the
scripts, reg.exe and sc.exe layouts and msiexec exit codes are the real protocol's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove
from tests.fleet.winrm_host.fleet import WinrmFleet
from tests.fleet.winrm_host.kinds import AGENT_CODE, KES_CODE
from tests.fleet.winrm_host.kinds_detection import KES12_CODE

KINDS = {"wix_agent": 1, "orphan_driver": 1, "user_vpn": 1, "kes12_versioned": 1}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("winrm-unfound")


@pytest.fixture(scope="module")
def fleet(winrm_fleet_factory: Callable[..., WinrmFleet], home: Path) -> WinrmFleet:
    started = winrm_fleet_factory(KINDS)
    started.write_inventory(home / "fleet.yml")
    return started


def hosts(done: Any) -> dict[str, dict[str, Any]]:
    doc: dict[str, Any] = json.loads(done.stdout)
    return {h["host"]: h for h in doc["hosts"]}


def host(fleet: WinrmFleet, seen: dict[str, dict[str, Any]], kind: str) -> dict[str, Any]:
    return seen[fleet.by_kind(kind)[0].name]


@pytest.fixture(scope="module")
def detected(fleet: WinrmFleet, home: Path) -> dict[str, dict[str, Any]]:
    done = kremove("detect", "-i", str(home / "fleet.yml"), "--json", home=home, env=fleet.env)
    assert done.returncode == 1, done.stderr  # 1: products found
    return hosts(done)


@pytest.fixture(scope="module")
def ran(fleet: WinrmFleet, home: Path, detected: dict[str, Any]) -> dict[str, dict[str, Any]]:
    done = kremove(
        "run", "-i", str(home / "fleet.yml"), "--yes", "--json", "--host-timeout", "60",
        home=home, env=fleet.env,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return hosts(done)


def msiexec(fleet: WinrmFleet, kind: str) -> list[dict[str, Any]]:
    return [e for e in fleet.log(fleet.by_kind(kind)[0].name) if e["event"] == "msiexec"]


def refused_untouched(fleet: WinrmFleet, ran: dict[str, Any], kind: str, why: str) -> None:
    """The host failed naming ``why``, and no uninstaller ran on it."""
    h = host(fleet, ran, kind)
    assert h["status"] == "failed" and why in h["reason"], h["reason"]
    assert not msiexec(fleet, kind)


def installed(h: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in h["findings"] if f["kind"] == "installed"]


def test_no_host_is_clean(detected: dict[str, dict[str, Any]]) -> None:
    assert {h["status"] for h in detected.values()} == {"found"}


def test_the_installwix_key_is_one_product_with_its_msi(
    fleet: WinrmFleet, detected: dict[str, dict[str, Any]]
) -> None:
    found = installed(host(fleet, detected, "wix_agent"))
    assert [(f["product"], f["evidence"]["product_code"]) for f in found] == [
        ("kes-windows", KES_CODE),
        ("klnagent", AGENT_CODE),
    ]


def test_the_agent_with_an_installwix_key_is_removed(
    fleet: WinrmFleet, ran: dict[str, dict[str, Any]]
) -> None:
    h = host(fleet, ran, "wix_agent")
    assert h["status"] == "removed", h["reason"]
    assert [e["product_code"] for e in msiexec(fleet, "wix_agent")] == [KES_CODE, AGENT_CODE]


def test_a_live_driver_and_service_without_an_entry_are_a_product(
    fleet: WinrmFleet, detected: dict[str, dict[str, Any]], ran: dict[str, dict[str, Any]]
) -> None:
    found = installed(host(fleet, detected, "orphan_driver"))
    assert sorted(
        (f["product"], f["evidence"]["service"], f["evidence"]["state"]) for f in found
    ) == [
        ("unknown-kaspersky", "AVP", "RUNNING"),
        ("unknown-kaspersky", "klif", "RUNNING"),
    ]
    assert "Kaspersky driver klif (RUNNING, no Uninstall entry)" in {f["name"] for f in found}
    refused_untouched(fleet, ran, "orphan_driver", "klif (RUNNING, no Uninstall entry)")


def test_a_per_user_install_is_found_and_not_guessed_at(
    fleet: WinrmFleet, detected: dict[str, dict[str, Any]], ran: dict[str, dict[str, Any]]
) -> None:
    found = installed(host(fleet, detected, "user_vpn"))
    assert [f["product"] for f in found] == ["kaspersky-vpn"]
    assert found[0]["evidence"]["user_sid"].startswith("S-1-5-21-")
    assert found[0]["evidence"]["key"].startswith("HKEY_USERS\\S-1-5-21-")
    refused_untouched(fleet, ran, "user_vpn", "is installed for one user only")


def test_versioned_drivers_are_seen_and_one_left_loaded_is_no_removal(
    fleet: WinrmFleet, detected: dict[str, dict[str, Any]], ran: dict[str, dict[str, Any]]
) -> None:
    before = host(fleet, detected, "kes12_versioned")
    services = {f["evidence"].get("service") for f in before["findings"]}
    assert {"KLIF.KES-21-9", "klupd_KES-21-9_arkmon", "klbackupflt", "klpd"} <= services
    h = host(fleet, ran, "kes12_versioned")
    assert h["status"] == "failed"  # not removed: the anti-rootkit driver still runs
    assert "verify still finds unknown-kaspersky" in h["reason"]
    assert [e["product_code"] for e in msiexec(fleet, "kes12_versioned")] == [KES12_CODE]
    services = fleet.state(fleet.by_kind("kes12_versioned")[0].name)["services"]
    assert services["klupd_KES-21-9_arkmon"]["state"] == "RUNNING"
