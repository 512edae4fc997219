"""`kremove run` over SSH removes the products for real, checked in each host's own dpkg database.

One fleet: removal in catalog order, a failing uninstall named with its stderr, pre- and post-state
in the ledger, and a second run that finds every host clean and sends no changing command.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove
from tests.fleet.fleet import Fleet

KINDS = {
    "clean": 2,
    "one_product": 3,
    "several_products": 3,
    "uninstall_fails": 2,
    "unreachable": 1,
    "jump": 1,
    "behind_jump": 1,
    "wrong_sudo_password": 1,
}
EXPECTED = {
    "clean": "clean",
    "jump": "clean",
    "one_product": "removed",
    "several_products": "removed",
    "behind_jump": "removed",
    "uninstall_fails": "failed",
    "unreachable": "unreachable",
    "wrong_sudo_password": "auth_failed",
}
REMOVED = ("one_product", "several_products", "behind_jump")


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(KINDS)


@pytest.fixture(scope="module")
def first(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    home = tmp_path_factory.mktemp("run")
    known = fleet.write_known_hosts(home / "known_hosts")
    inventory = fleet.write_inventory(home / "fleet.yml", known_hosts=known)
    done = kremove("run", "-i", str(inventory), "--yes", "--json", home=home, env=fleet.env)
    assert done.returncode == 1, done.stderr  # failures and unreachable hosts: exit 1
    doc: dict[str, Any] = json.loads(done.stdout)
    return home, doc


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {h["host"]: h["status"] for h in doc["hosts"]}


def test_every_host_ends_with_the_right_status(fleet: Fleet, first: tuple[Path, Any]) -> None:
    got = statuses(first[1])
    assert got == {h.name: EXPECTED[h.kind] for h in fleet.hosts}


def test_products_are_gone_from_each_hosts_own_package_database(
    fleet: Fleet, first: tuple[Path, Any]
) -> None:
    for h in fleet.hosts:
        if not h.has_system or h.kind == "wrong_sudo_password":
            continue
        left = fleet.kaspersky_packages(h.name)
        if h.kind in REMOVED:
            assert left == {}, h.name
            for path in ("/opt/kaspersky/kesl", "/var/opt/kaspersky/kesl", "/opt/kaspersky"):
                assert not fleet.files_exist(h.name, path), (h.name, path)
        elif h.kind == "uninstall_fails":
            assert left == {"kesl": "12.1.0-1297"}
    host = fleet.by_kind("wrong_sudo_password")[0]
    assert fleet.kaspersky_packages(host.name) == host.expected_packages  # untouched


def test_several_products_go_in_catalog_order(fleet: Fleet, first: tuple[Path, Any]) -> None:
    for h in fleet.by_kind("several_products"):
        purges = [c for c in fleet.commands_log(h.name) if "dpkg --purge" in c]
        order = [c.split("dpkg --purge ", 1)[1].split()[0].strip("'\n") for c in purges]
        assert order == ["kesl-gui", "kesl", "klnagent64"], h.name


def test_a_failing_uninstall_names_its_step_and_stderr(
    fleet: Fleet, first: tuple[Path, Any]
) -> None:
    hosts = {h["host"]: h for h in first[1]["hosts"]}
    for h in fleet.by_kind("uninstall_fails"):
        reason = hosts[h.name]["reason"]
        assert reason.startswith("step 'purge:kesl' exited 1: "), reason
        assert "pre-removal script" in reason
        # Nothing after the failing step: no residue deletion of a product still installed.
        assert not [c for c in fleet.commands_log(h.name) if "rm -rf" in c]


def test_the_ledger_holds_pre_state_steps_and_post_state(
    fleet: Fleet, first: tuple[Path, Any]
) -> None:
    home, doc = first
    shown = kremove("runs", "show", doc["run"], "--json", home=home, env=fleet.env)
    record = json.loads(shown.stdout)
    assert record["kind"] == "run" and record["status"] == "completed"
    hosts = {h["host"]: h for h in record["hosts"]}
    several = fleet.by_kind("several_products")[0].name
    pre = {
        (f["evidence"]["package"], f["version"])
        for f in hosts[several]["findings"]
        if f["kind"] == "installed"
    }
    assert pre == {
        ("kesl", "12.1.0-1297"),
        ("kesl-gui", "12.1.0-1297"),
        ("klnagent64", "14.0.0-4646"),
    }
    assert [f for f in hosts[several]["post_findings"] if f["kind"] == "installed"] == []
    failing = fleet.by_kind("uninstall_fails")[0].name
    assert [f["product"] for f in hosts[failing]["post_findings"] if f["kind"] == "installed"] == [
        "kesl"
    ]
    steps = [s for s in record["steps"] if s["host"] == several]
    assert [s["step_id"] for s in steps] == [
        "privilege",
        "packages",
        "purge:kesl-gui",
        "purge:kesl",
        "purge:klnagent",
        "residue:kesl",
        "residue:klnagent",
        "cleanup",
        "verify",
    ]
    assert [s["readonly"] for s in steps] == [True, True] + [False] * 6 + [True]
    assert all(s["exit_code"] == 0 for s in steps)


def test_a_second_run_finds_every_host_clean_and_changes_nothing(
    fleet: Fleet, first: tuple[Path, Any]
) -> None:
    home, _ = first
    before = {h.name: len(fleet.commands_log(h.name)) for h in fleet.hosts if h.has_system}
    inventory = home / "fleet.yml"
    done = kremove(
        "run", "-i", str(inventory), "--yes", "--json", "--limit",
        "all:!uninstall_fails:!unreachable:!wrong_sudo_password", home=home, env=fleet.env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert set(statuses(doc).values()) == {"clean"}
    record = json.loads(
        kremove("runs", "show", doc["run"], "--json", home=home, env=fleet.env).stdout
    )
    assert record["steps"] and all(s["readonly"] for s in record["steps"])
    for name, count in before.items():
        if fleet.host(name).kind in ("uninstall_fails", "wrong_sudo_password"):
            continue
        new = fleet.commands_log(name)[count:]
        assert len(new) == 2 and "sudo -n -l" in new[0] and "dpkg-query" in new[1], (name, new)


def test_run_without_yes_and_without_a_terminal_changes_nothing(
    fleet: Fleet, tmp_path: Path
) -> None:
    inventory = fleet.write_inventory(tmp_path / "fleet.yml", include=["one_product"])
    done = kremove(
        "run", "-i", str(inventory), home=tmp_path, env=fleet.env, ledger=tmp_path / "ledger.db"
    )
    assert done.returncode == 2
    assert "pass --yes" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ledger.db").exists()
