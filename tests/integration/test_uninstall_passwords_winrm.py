"""Uninstall passwords per host, group and product, on the WinRM test hosts (issue 17).

Two protected hosts (tests/fleet/winrm_host/protected.py): branch_a's has one password for KES
and the Network Agent, given as the group's default; branch_b's has its own for each, given per
product. The hosts check KLPASSWD and KLUNINSTPASSWD as the real products do (1603 when wrong),
and log every command and script they receive: each password must reach its own product's
msiexec and nothing else, and no output, ledger or WAL may hold one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.playbook.quoting import utf16le_hex
from tests.cli_runner import kremove
from tests.fleet.winrm_host.kinds import AGENT_CODE, KES_CODE
from tests.fleet.winrm_host.protected import HOST_A, HOST_B, ProtectedFleet

CLEAN = "w003-clean"
PRODUCTS = ("kes-windows", "klnagent")


@pytest.fixture(scope="module")
def protected(protected_fleet_factory: Callable[[Mapping[str, int]], ProtectedFleet]) -> Any:
    return protected_fleet_factory({"clean": 1})


@pytest.fixture
def home(tmp_path: Path, protected: ProtectedFleet) -> Iterator[Path]:
    protected.write_inventory(tmp_path / "fleet.yml")
    yield tmp_path
    protected.fleet.reset()


def leaks(protected: ProtectedFleet, *texts: str | bytes) -> list[str]:
    found = []
    for text in texts:
        blob = text.encode() if isinstance(text, str) else text
        found += [s for s in protected.fleet.secrets if s.encode() in blob]
    return found


def needles(password: str) -> tuple[str, str]:
    """What finds a password in a script however it is quoted: its random tail (hex digits,
    which no quoting changes) and the UTF-16LE hex Network Agent is given."""
    return password[-12:], utf16le_hex(password)


def last_line(stderr: str) -> str:
    """The error, after any warning said first (an old expat on this machine)."""
    return stderr.strip().splitlines()[-1]


def inventory_line(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_plan_says_which_reference_each_protected_product_uses(
    protected: ProtectedFleet, home: Path
) -> None:
    inventory = home / "fleet.yml"
    done = kremove("plan", "-i", str(inventory), "--json", home=home, env=protected.env)
    assert done.returncode == 0, done.stderr
    hosts = {h["host"]: h for h in json.loads(done.stdout)["hosts"]}
    a_line = inventory_line(inventory, "uninstall_password_env: BRANCH_A_UNINSTALL_PW")
    assert hosts[HOST_A]["uninstall_passwords"] == [
        {"product": product, "reference": "env:BRANCH_A_UNINSTALL_PW",
         "given_by": "group 'branch_a'", "at": f"{inventory}:{a_line}"}
        for product in ("kes-windows", "klnagent")
    ]  # fmt: skip
    b_refs = hosts[HOST_B]["uninstall_passwords"]
    assert [(r["product"], r["reference"], r["given_by"]) for r in b_refs] == [
        ("kes-windows", "env:BRANCH_B_KES_PW", "group 'branch_b'"),
        ("klnagent", "env:BRANCH_B_AGENT_PW", "group 'branch_b'"),
    ]
    assert hosts[CLEAN]["uninstall_passwords"] == []  # nothing found, nothing to say
    human = kremove("plan", "-i", str(inventory), home=home, env=protected.env)
    assert (
        f"password  klnagent: uninstall password from env:BRANCH_B_AGENT_PW (group 'branch_b', "
        f"{inventory}:" in human.stdout
    )
    assert not leaks(protected, done.stdout, done.stderr, human.stdout, human.stderr)


def test_every_protected_product_is_removed_with_its_own_password(
    protected: ProtectedFleet, home: Path
) -> None:
    done = kremove(
        "run", "-i", str(home / "fleet.yml"), "--yes", "--json", home=home, env=protected.env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    statuses = {h["host"]: h["status"] for h in json.loads(done.stdout)["hosts"]}
    assert statuses == {HOST_A: "removed", HOST_B: "removed", CLEAN: "clean"}
    # Named before the run started: the Windows host no reference covers.
    assert re.search(
        rf"no uninstall password for kes-windows, kav-workstations, ksws, kav-servers-ee, klnagent "
        rf"on 1 host: {CLEAN};",
        done.stderr,
    )
    fleet = protected.fleet
    for host in (HOST_A, HOST_B):
        runs = [
            (e["product_code"], e["exit_code"]) for e in fleet.log(host) if e["event"] == "msiexec"
        ]
        assert runs == [(KES_CODE, 0), (AGENT_CODE, 0)]
        kes, agent = (needles(protected.password(host, p)) for p in PRODUCTS)
        sent = {
            "kes": [s for s in fleet.scripts(host) if KES_CODE in s and "msiexec" in s],
            "agent": [s for s in fleet.scripts(host) if AGENT_CODE in s and "msiexec" in s],
        }
        assert len(sent["kes"]) == 1 and len(sent["agent"]) == 1
        assert "kremove-data KLPASSWD " in sent["kes"][0] and kes[0] in sent["kes"][0]
        assert f"KLUNINSTPASSWD={agent[1]}" in sent["agent"][0]
        # No password where it does not belong: the KES script holds KES's alone, the agent's
        # its hex alone, and no other script or command line any password of the fleet.
        everything = {
            n for h in (HOST_A, HOST_B) for p in PRODUCTS for n in needles(protected.password(h, p))
        }
        allowed = {"kes": {kes[0]}, "agent": {agent[1]}}
        for which, scripts in sent.items():
            assert {n for n in everything if n in scripts[0]} == allowed[which], (host, which)
        others = [s for s in fleet.scripts(host) if s not in sent["kes"] + sent["agent"]]
        assert not [n for n in everything if any(n in s for s in others + fleet.commands_log(host))]
        assert not leaks(protected, fleet.printed(host))
    assert not leaks(protected, done.stdout, done.stderr)
    for path in home.glob("l.db*"):  # the ledger and its WAL, byte for byte
        assert not leaks(protected, path.read_bytes()), path.name


def test_a_wrong_password_fails_with_1603_as_on_a_real_host(
    protected: ProtectedFleet, home: Path
) -> None:
    # branch_b gives one default: the agent gets KES's password and refuses it.
    inventory = home / "fleet.yml"
    doc = yaml.safe_load(inventory.read_text())
    doc["groups"]["branch_b"].pop("uninstall_passwords")
    doc["groups"]["branch_b"]["uninstall_password_env"] = "BRANCH_B_KES_PW"
    inventory.write_text(yaml.safe_dump(doc))
    done = kremove("run", "-i", str(inventory), "--yes", "--json", home=home, env=protected.env)
    assert done.returncode == 1
    hosts = {h["host"]: h for h in json.loads(done.stdout)["hosts"]}
    assert hosts[HOST_A]["status"] == "removed"
    assert hosts[HOST_B]["status"] == "failed"
    assert "exited 1603" in hosts[HOST_B]["reason"] and AGENT_CODE in hosts[HOST_B]["reason"]
    runs = [(e["product_code"], e["exit_code"]) for e in protected.fleet.log(HOST_B)
            if e["event"] == "msiexec"]  # fmt: skip
    assert runs == [(KES_CODE, 0), (AGENT_CODE, 1603)]
    assert not leaks(protected, done.stdout, done.stderr)
    for path in home.glob("l.db*"):
        assert not leaks(protected, path.read_bytes()), path.name


def test_a_missing_or_unknown_reference_stops_before_the_run_in_one_line(
    protected: ProtectedFleet, home: Path
) -> None:
    inventory = home / "fleet.yml"
    env = {k: v for k, v in protected.env.items() if k != "BRANCH_B_AGENT_PW"}
    done = kremove("run", "-i", str(inventory), "--yes", home=home, env=env)
    assert done.returncode == 2
    line = inventory_line(inventory, "env: BRANCH_B_AGENT_PW")
    assert last_line(done.stderr) == (
        f"kremove: error: uninstall password for klnagent (group 'branch_b', {inventory}:{line}): "
        "environment variable BRANCH_B_AGENT_PW is not set; export it first"
    )
    text = inventory.read_text().replace("klnagent:\n", "klnagnet:\n")
    inventory.write_text(text)
    done = kremove("plan", "-i", str(inventory), home=home, env=protected.env)
    assert done.returncode == 2
    line = inventory_line(inventory, "env: BRANCH_B_AGENT_PW")
    assert last_line(done.stderr) == (
        f"kremove: error: {inventory}:{line}: group 'branch_b': uninstall password for 'klnagnet', "
        "which is not a catalog product id; products that take one: kav-servers-ee, "
        "kav-workstations, kes-windows, klnagent, ksws"
    )
    assert not [
        e for h in (HOST_A, HOST_B) for e in protected.fleet.log(h) if e["event"] == "msiexec"
    ]
