"""kremove detect and run over SSH on the fleet's simulated Macs (shims: tests/fleet/README.md).

Detection finds KAV for Mac with the version of its receipts and the Network Agent; a run removes
them for real, checked through the fleet's own view of each host (receipt plists, the launchd
state file, the files); a refusing UninstallScript ends the host failed with the step and its
stderr; a second run finds every host clean and sends only the read-only detection.
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

KINDS = {"macos_clean": 1, "macos_kav": 2, "macos_uninstall_fails": 1}
EXPECTED = {"macos_clean": "clean", "macos_kav": "removed", "macos_uninstall_fails": "failed"}
KAV_RECEIPTS = {
    "com.kaspersky.kav.core": "11.3.0.520",
    "com.kaspersky.kav.oas": "11.3.0.520",
    "com.kaspersky.kav.webav": "11.3.0.520",
    "com.kaspersky.kav.wksconnector": "11.3.0.520",
}
KAV_LABELS = {"com.kaspersky.kav", "com.kaspersky.kav.gui", "com.kaspersky.klnagent"}
GONE = (
    "/Library/Application Support/Kaspersky Lab",
    "/Applications/Kaspersky Anti-Virus For Mac.app",
    "/Library/LaunchDaemons/com.kaspersky.kav.plist",
    "/Library/LaunchDaemons/com.kaspersky.klnagent.plist",
    "/Library/LaunchAgents/com.kaspersky.kav.gui.plist",
    "/Library/Caches/com.kaspersky.kav",
    "/Library/Logs/Kaspersky Lab",
)
KEPT = ("/Applications/Safari.app", "/Library/LaunchDaemons", "/var/db/receipts")


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(KINDS)


@pytest.fixture(scope="module")
def home(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fleet_home(fleet, tmp_path_factory, "macos")


@pytest.fixture(scope="module")
def detected(fleet: Fleet, home: Path) -> dict[str, Any]:
    return kremove_json(fleet, home, "detect", 1)  # products found: exit 1


@pytest.fixture(scope="module")
def first(fleet: Fleet, home: Path, detected: dict[str, Any]) -> dict[str, Any]:
    return kremove_json(fleet, home, "run", 1)  # a failed host: exit 1


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {h["host"]: h["status"] for h in doc["hosts"]}


def installed(outcome: dict[str, Any]) -> dict[str, str | None]:
    return {f["product"]: f["version"] for f in outcome["findings"] if f["kind"] == "installed"}


def test_the_inventory_says_macos(fleet: Fleet, home: Path) -> None:
    text = (home / "fleet.yml").read_text()
    assert text.count("platform: macos") == len(fleet.hosts)


def test_detect_finds_kav_with_its_receipt_version_and_the_agent(
    fleet: Fleet, detected: dict[str, Any]
) -> None:
    hosts = {h["host"]: h for h in detected["hosts"]}
    for h in fleet.hosts:
        outcome = hosts[h.name]
        if h.kind == "macos_clean":
            assert outcome["status"] == "clean" and installed(outcome) == {}, outcome
            continue
        assert outcome["status"] == "found", outcome
        assert installed(outcome) == {"kav-mac": "11.3.0.520", "klnagent": None}
        kav = next(f for f in outcome["findings"] if f["product"] == "kav-mac")
        assert kav["evidence"]["receipts"].split() == sorted(KAV_RECEIPTS)
        assert kav["evidence"]["launchd"] == "com.kaspersky.kav"  # root sees the system domain
        assert "/Applications/Kaspersky Anti-Virus For Mac.app" in kav["evidence"]["paths"]
    for (
        h
    ) in fleet.hosts:  # detection changed nothing and sent the privilege probe, then one command
        assert fleet.kaspersky_receipts(h.name) == h.expected_receipts
        probe, command = fleet.commands_log(h.name)
        assert "sudo -n -l" in probe and not probe.startswith("sudo ")  # asked as the login
        assert "pkgutil --pkgs" in command


def test_every_host_ends_with_the_right_status(fleet: Fleet, first: dict[str, Any]) -> None:
    assert statuses(first) == {h.name: EXPECTED[h.kind] for h in fleet.hosts}


def test_receipts_jobs_and_files_are_gone_from_each_removed_host(
    fleet: Fleet, first: dict[str, Any]
) -> None:
    for h in fleet.by_kind("macos_kav"):
        assert fleet.kaspersky_receipts(h.name) == {}, h.name
        assert KAV_LABELS.isdisjoint(fleet.launchd_jobs(h.name)), h.name
        assert "com.apple.mDNSResponder" in fleet.launchd_jobs(h.name)
        for path in GONE:
            assert not fleet.files_exist(h.name, path), (h.name, path)
        for path in KEPT:
            assert fleet.files_exist(h.name, path), (h.name, path)
        assert "com.apple.pkg.CLTools_Executables" in fleet.receipts(h.name)


def test_the_steps_run_in_catalog_order_through_sudo(
    fleet: Fleet, home: Path, first: dict[str, Any]
) -> None:
    shown = kremove("runs", "show", first["run"], "--json", home=home, env=fleet.env)
    record = json.loads(shown.stdout)
    name = fleet.by_kind("macos_kav")[0].name
    steps = [s for s in record["steps"] if s["host"] == name]
    assert [s["step_id"] for s in steps] == [
        "privilege",
        "inventory",
        "uninstall:kav-mac",
        "uninstall:klnagent",
        "unload:kav-mac",
        "unload:klnagent",
        "forget:kav-mac",
        "files:kav-mac",
        "files:klnagent",
        "cleanup",
        "verify",
    ]
    assert all(s["exit_code"] == 0 for s in steps)
    assert [s["readonly"] for s in steps] == [True, True] + [False] * 8 + [True]
    hosts = {h["host"]: h for h in record["hosts"]}
    assert hosts[name]["post_findings"] == []
    sent = fleet.commands_log(name)
    scripts = [c for c in sent if "\nscript=" in c]  # the uninstall steps, through sudo
    assert len(scripts) == 2 and all(c.startswith("sudo -n ") for c in scripts)
    assert "KAV/Binaries/UninstallScript" in scripts[0]
    assert "klnagent/Binaries/UninstallScript" in scripts[1]


def test_a_refusing_uninstall_script_names_its_step_and_stderr(
    fleet: Fleet, home: Path, first: dict[str, Any]
) -> None:
    hosts = {h["host"]: h for h in first["hosts"]}
    (h,) = fleet.by_kind("macos_uninstall_fails")
    reason = hosts[h.name]["reason"]
    assert reason.startswith("step 'uninstall:kav-mac' exited 1: "), reason
    assert "uninstallation is blocked" in reason
    # Nothing after the failing step; the product is still all there, and the post-state says so.
    assert not [c for c in fleet.commands_log(h.name) if "rm -rf" in c or "--forget" in c]
    assert fleet.kaspersky_receipts(h.name) == KAV_RECEIPTS
    assert set(fleet.launchd_jobs(h.name)) >= KAV_LABELS
    record = json.loads(
        kremove("runs", "show", first["run"], "--json", home=home, env=fleet.env).stdout
    )
    post = {o["host"]: o for o in record["hosts"]}[h.name]["post_findings"]
    assert {f["product"] for f in post if f["kind"] == "installed"} == {"kav-mac", "klnagent"}


def test_a_second_run_finds_every_host_clean_and_changes_nothing(
    fleet: Fleet, home: Path, first: dict[str, Any]
) -> None:
    before = {h.name: len(fleet.commands_log(h.name)) for h in fleet.hosts}
    done = kremove(
        "run", "-i", str(home / "fleet.yml"), "--yes", "--json", "--limit",
        "all:!macos_uninstall_fails", home=home, env=fleet.env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert set(statuses(doc).values()) == {"clean"}
    record = json.loads(
        kremove("runs", "show", doc["run"], "--json", home=home, env=fleet.env).stdout
    )
    assert record["steps"] and all(s["readonly"] for s in record["steps"])
    for name, count in before.items():
        if fleet.host(name).kind == "macos_uninstall_fails":
            continue
        new = fleet.commands_log(name)[count:]
        assert len(new) == 2 and "sudo -n -l" in new[0] and "pkgutil --pkgs" in new[1], (name, new)
        for sent in new:
            assert "rm " not in sent and "--forget" not in sent and "bootout" not in sent
