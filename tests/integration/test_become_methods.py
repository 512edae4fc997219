"""su and doas, Ansible's other become methods, on the fleet: hosts where kops is in no sudoers
rule, root has a password (su_password: su to root takes it, asked on a pseudo-terminal) or doas
lets kops become root with its password (doas_password) or without one (doas_nopass, doas -n).

An Ansible INI inventory says ansible_become_method and, where a password is needed, references
it with a lookup; plan shows each host's privilege the way the probe found it for that method,
and run removes the product on every host through that method. The password never appears on a
command line, in output, the ledger or its WAL; a wrong one ends the host auth_failed in one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove
from tests.fleet.fleet import SUDO_PASSWORD_ENV, WRONG_SUDO_PASSWORD_ENV, Fleet

KINDS = {"su_password": 1, "doas_password": 1, "doas_nopass": 1}
METHOD = {"su_password": "su", "doas_password": "doas", "doas_nopass": "doas"}
LOOKUP = "\"{{{{ lookup('env', '{}') }}}}\""


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(KINDS)


@pytest.fixture
def home(fleet: Fleet, tmp_path: Path) -> Path:
    (tmp_path / ".ssh").mkdir()
    fleet.write_known_hosts(tmp_path / ".ssh" / "known_hosts")
    return tmp_path


def ini(fleet: Fleet, path: Path, password_env: str | None = SUDO_PASSWORD_ENV) -> Path:
    lines = ["[linux]"]
    for host in fleet.hosts:
        line = f"{host.name} ansible_host={host.address} ansible_port={host.port}"
        line += f" ansible_become_method={METHOD[host.kind]}"
        if host.kind != "doas_nopass" and password_env:
            line += f" ansible_become_password={LOOKUP.format(password_env)}"
        lines.append(line)
    lines += [
        "",
        "[linux:vars]",
        "ansible_user=kops",
        f"ansible_private_key_file={fleet.client_key}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def by_kind(fleet: Fleet, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {fleet.host(h["host"]).kind: h for h in doc["hosts"]}


def run(fleet: Fleet, home: Path, *args: str) -> tuple[dict[str, dict[str, Any]], str]:
    done = kremove(*args, "--json", home=home, env=fleet.env)
    assert done.returncode in (0, 1), done.stderr
    return by_kind(fleet, json.loads(done.stdout)), done.stdout + done.stderr


def test_plan_shows_the_privilege_each_method_gives(fleet: Fleet, home: Path) -> None:
    hosts, _ = run(fleet, home, "plan", "-i", str(ini(fleet, home / "hosts.ini")))
    shown = {kind: h["privilege"]["shown"] for kind, h in hosts.items()}
    reference = f"env:{SUDO_PASSWORD_ENV}"
    assert shown == {
        "su_password": f"su (password from the inventory's {reference})",
        "doas_password": f"doas (password from the inventory's {reference})",
        "doas_nopass": "doas (passwordless, automatic)",  # nothing said about become
    }
    assert all(h["status"] == "planned" for h in hosts.values())
    # Without the password, su and doas hosts are refused before any change, saying why.
    hosts, _ = run(fleet, home, "plan", "-i", str(ini(fleet, home / "bare.ini", None)))
    assert hosts["doas_nopass"]["status"] == "planned"
    assert "su asks for the password of the user it becomes" in hosts["su_password"]["reason"]
    assert "doas -n wants a password" in hosts["doas_password"]["reason"]
    assert hosts["su_password"]["status"] == hosts["doas_password"]["status"] == "skipped"


def test_run_becomes_root_with_su_and_doas_and_removes(fleet: Fleet, home: Path) -> None:
    try:
        hosts, said = run(fleet, home, "run", "-i", str(ini(fleet, home / "hosts.ini")), "--yes")
        assert {kind: h["status"] for kind, h in hosts.items()} == dict.fromkeys(KINDS, "removed")
        sent = {kind: fleet.commands_log(fleet.by_kind(kind)[0].name) for kind in KINDS}
        purges = {kind: [c for c in log if "dpkg --purge" in c] for kind, log in sent.items()}
        assert all(c.startswith("LC_ALL=C su root -c ") for c in purges["su_password"])
        assert all(c.startswith("LC_ALL=C doas -u root -- ") for c in purges["doas_password"])
        assert all(c.startswith("doas -n -u root -- ") for c in purges["doas_nopass"])
        assert all(purges.values())
        password = fleet.env[SUDO_PASSWORD_ENV]
        assert not any(password in c for log in sent.values() for c in log)
        assert password not in said
        for kind in KINDS:
            assert fleet.kaspersky_packages(fleet.by_kind(kind)[0].name) == {}
        ledger = (home / "l.db").read_bytes() + _wal(home / "l.db")
        assert password.encode() not in ledger
    finally:
        fleet.reset()


def test_a_wrong_password_ends_the_host_auth_failed_in_one_line(fleet: Fleet, home: Path) -> None:
    inventory = ini(fleet, home / "wrong.ini", WRONG_SUDO_PASSWORD_ENV)
    try:
        hosts, said = run(fleet, home, "run", "-i", str(inventory), "--yes")
        for kind in ("su_password", "doas_password"):
            assert hosts[kind]["status"] == "auth_failed", hosts[kind]
            reason = hosts[kind]["reason"]
            assert "\n" not in reason and METHOD[kind] in reason and "password" in reason
            host = fleet.by_kind(kind)[0]
            assert fleet.kaspersky_packages(host.name) == host.expected_packages
        assert fleet.env[WRONG_SUDO_PASSWORD_ENV] not in said
    finally:
        fleet.reset()


def _wal(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""
