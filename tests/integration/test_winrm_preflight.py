"""Before and around a wave (issue 19, items 12-14), over WinRM against the emulated Windows hosts:
an encrypted KES host is refused before any change unless --allow-encrypted-data-loss, a KSC
Administration Server in scope is warned about, and a host stuck on 1612 or on a refused uninstall
password ends with a reason that names the next step (docs/runbook.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove
from tests.fleet.winrm_host.fleet import (
    UNINSTALL_PASSWORD_ENV,
    WinrmFleet,
    host_names,
    parse_kinds,
)
from tests.fleet.winrm_host.kinds import KES_CODE

KINDS = {"encrypted_kes": 1, "ksc_server": 1, "cached_msi_missing": 1, "protected_kes": 1}
OWN_PASSWORD = "Kes-own-" + "policy-7Qx"  # the protected host's KES password, not the fleet's


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WinrmFleet]:
    names = host_names(parse_kinds(KINDS))
    protected = names[list(KINDS).index("protected_kes")]
    started = WinrmFleet.start(
        tmp_path_factory.mktemp("winrm-preflight"),
        KINDS,
        uninstall_passwords={protected: {"kes": OWN_PASSWORD, "klnagent": OWN_PASSWORD}},
    )
    yield started
    started.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, fleet: WinrmFleet) -> Path:
    home = tmp_path_factory.mktemp("winrm-preflight-home")
    fleet.write_inventory(home / "fleet.yml")
    return home


def _reasons(out: str) -> dict[str, tuple[str, str]]:
    doc: dict[str, Any] = json.loads(out)
    return {h["host"]: (h["status"], h.get("reason") or "") for h in doc["hosts"]}


def _run(fleet: WinrmFleet, home: Path, name: str, *extra: str) -> tuple[str, str, str]:
    """kremove run on one host: its status and reason, and what kremove printed."""
    done = kremove(
        "run", "-i", str(home / "fleet.yml"), "--limit", name, "--yes", "--json", *extra,
        home=home, env=fleet.env,
    )  # fmt: skip
    status, reason = _reasons(done.stdout).get(name, ("?", ""))
    return status, reason, done.stdout + done.stderr


def test_plan_refuses_the_encrypted_host_and_warns_of_the_administration_server(
    fleet: WinrmFleet, home: Path
):
    done = kremove(
        "plan", "-i", str(home / "fleet.yml"), "--limit", "encrypted_kes:ksc_server", "--json",
        home=home, env=fleet.env,
    )  # fmt: skip
    got = _reasons(done.stdout)
    encrypted = fleet.by_kind("encrypted_kes")[0].name
    server = fleet.by_kind("ksc_server")[0].name
    status, reason = got[encrypted]
    assert status == "skipped", got
    assert "refused before any change" in reason and "klfde" in reason
    assert "--allow-encrypted-data-loss" in reason
    assert got[server][0] == "planned"
    assert "Administration Server is in scope" in done.stderr and server in done.stderr
    assert "docs/runbook.md" in done.stderr


def test_run_refuses_the_encrypted_host_before_any_change(fleet: WinrmFleet, home: Path):
    name = fleet.by_kind("encrypted_kes")[0].name
    status, reason, _ = _run(fleet, home, name)
    assert status == "skipped" and "--allow-encrypted-data-loss" in reason
    assert not [e for e in fleet.log(name) if e["event"] == "msiexec"]
    assert "Kaspersky Endpoint Security for Windows" in fleet.products(name)


def test_run_with_the_explicit_option_removes_the_encrypted_host(fleet: WinrmFleet, home: Path):
    name = fleet.by_kind("encrypted_kes")[0].name
    status, _, printed = _run(fleet, home, name, "--allow-encrypted-data-loss")
    assert status == "removed", printed


def test_run_says_at_the_start_that_an_administration_server_is_in_scope(
    fleet: WinrmFleet, home: Path
):
    server = fleet.by_kind("ksc_server")[0].name
    kremove("detect", "-i", str(home / "fleet.yml"), "--limit", server, home=home, env=fleet.env)
    _, _, printed = _run(fleet, home, server)
    assert "Administration Server is in scope" in printed, printed


def test_a_missing_cached_msi_names_the_next_step(fleet: WinrmFleet, home: Path):
    name = fleet.by_kind("cached_msi_missing")[0].name
    status, reason, _ = _run(fleet, home, name)
    assert status == "failed" and "exited 1612" in reason
    assert "kavremover" in reason and "original MSI" in reason
    assert "docs/runbook.md#cached-msi-missing-1612" in reason


def test_a_refused_uninstall_password_names_the_ksc_policy_and_safe_mode(
    fleet: WinrmFleet, home: Path
):
    name = fleet.by_kind("protected_kes")[0].name
    status, reason, printed = _run(
        fleet, home, name, "--uninstall-password-env", UNINSTALL_PASSWORD_ENV
    )
    assert status == "failed" and "exited 1603" in reason
    assert "KSC policy" in reason and "Safe Mode" in reason and "kavremover" in reason
    runs = [e for e in fleet.log(name) if e["event"] == "msiexec"]
    assert runs[-1]["product_code"] == KES_CODE and "KLPASSWD" in runs[-1]["properties"]
    for secret in (*fleet.secrets, OWN_PASSWORD):
        assert secret not in printed


def test_the_fleet_report_flags_a_product_that_came_back(fleet: WinrmFleet, home: Path):
    name = fleet.by_kind("encrypted_kes")[0].name  # removed by the run with the option above
    fleet.reset(name)  # as a KSC deployment task would: the products are back
    kremove("detect", "-i", str(home / "fleet.yml"), "--limit", name, home=home, env=fleet.env)
    done = kremove("report", "--fleet", "--format", "json", home=home, env=fleet.env)
    doc = json.loads(done.stdout)
    back = {b["host"]: b for b in doc["came_back"]}
    assert name in back and back[name]["removed_by"] != back[name]["found_by"]
    assert any(
        "Kaspersky Endpoint Security" in p or "kes-windows" in p for p in back[name]["products"]
    )
    html = kremove("report", "--fleet", "--format", "html", home=home, env=fleet.env).stdout
    assert 'class="came-back"' in html
    assert "How hosts were counted" in html and "embedded in other vendors" in html


def test_a_run_that_finds_the_administration_server_first_says_so_at_its_end(
    fleet: WinrmFleet, home: Path, tmp_path: Path
):
    server = fleet.by_kind("ksc_server")[0].name
    fleet.reset(server)
    fresh = str(tmp_path / "fresh.db")  # no earlier run has seen the host
    _, _, printed = _run(fleet, home, server, "--ledger", fresh)
    assert "Administration Server is in scope" in printed and server in printed, printed
