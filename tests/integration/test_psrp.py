"""PowerShell Remoting (ansible_connection=psrp) against the WinRM test hosts (issue 18).

The hosts answer PSRP on their WS-Man endpoint (tests/fleet/winrm_host/psrp.py): psrpcore's
server runspace pool and pipelines, over the same HTTPS/HTTP, NTLM and message encryption as
their cmd shell; kremove's client is pypsrp. What a pipeline does is emulated like cmd.exe: the
host knows kremove's one script by its hash and runs its cmd.exe line on the emulated machine.
The tests check that every step went through PSRP (no winrs shell was opened), that each
protected product got its own uninstall password and nothing else did, and that no secret
reached an output, the ledger or its WAL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.errors import TransportError
from orchestrator.inventory.loader import load_inventories
from orchestrator.playbook.quoting import utf16le_hex
from orchestrator.secrets import SecretStore
from orchestrator.transports.base import Deadline
from orchestrator.transports.connector import PoolSetup
from orchestrator.transports.psrp import open_pool
from tests.cli_runner import kremove
from tests.fleet.winrm_host.fleet import PASSWORD_ENV, USER
from tests.fleet.winrm_host.kinds import AGENT_CODE, KES_CODE
from tests.fleet.winrm_host.protected import HOST_A, HOST_B, VARIABLES, ProtectedFleet
from tests.integration.test_uninstall_passwords_winrm import CLEAN, PRODUCTS, leaks


@pytest.fixture(scope="module")
def protected(protected_fleet_factory: Callable[[Mapping[str, int]], ProtectedFleet]) -> Any:
    """The WinRM uninstall-password test's fleet: two protected hosts and a clean one."""
    return protected_fleet_factory({"clean": 1})


@pytest.fixture
def home(tmp_path: Path, protected: ProtectedFleet) -> Iterator[Path]:
    """The protected fleet's kremove YAML with every host reached over psrp."""
    inventory = protected.write_inventory(tmp_path / "fleet.yml")
    doc = yaml.safe_load(inventory.read_text())
    doc["defaults"]["transport"] = "psrp"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    yield tmp_path
    protected.fleet.reset()


def over_psrp(protected: ProtectedFleet, host: str) -> tuple[int, int]:
    """(pipelines of kremove's script, winrs shells) the host saw."""
    log = protected.fleet.log(host)
    pipelines = [e for e in log if e["event"] == "psrp_pipeline" and e["known"] == "run_cmd"]
    return len(pipelines), len([e for e in log if e["event"] == "shell"])


def test_detect_plan_and_run_remove_every_protected_product_over_psrp(
    protected: ProtectedFleet, home: Path
) -> None:
    inventory = str(home / "fleet.yml")
    env = protected.env
    detect = kremove("detect", "-i", inventory, "--json", home=home, env=env)
    assert detect.returncode == 1, detect.stderr  # products found
    found = {h["host"]: h["status"] for h in json.loads(detect.stdout)["hosts"]}
    assert found == {HOST_A: "found", HOST_B: "found", CLEAN: "clean"}
    plan = kremove("plan", "-i", inventory, "--json", home=home, env=env)
    assert plan.returncode == 0, plan.stderr
    planned = {h["host"]: h for h in json.loads(plan.stdout)["hosts"]}
    assert [r["reference"] for r in planned[HOST_B]["uninstall_passwords"]] == [
        "env:BRANCH_B_KES_PW",
        "env:BRANCH_B_AGENT_PW",
    ]
    done = kremove("run", "-i", inventory, "--yes", "--json", home=home, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    statuses = {h["host"]: h["status"] for h in json.loads(done.stdout)["hosts"]}
    assert statuses == {HOST_A: "removed", HOST_B: "removed", CLEAN: "clean"}
    fleet = protected.fleet
    for host in (HOST_A, HOST_B):
        pipelines, shells = over_psrp(protected, host)
        assert pipelines > 4 and shells == 0, (host, pipelines, shells)
        runs = [
            (e["product_code"], e["exit_code"]) for e in fleet.log(host) if e["event"] == "msiexec"
        ]
        assert runs == [(KES_CODE, 0), (AGENT_CODE, 0)]
        assert fleet.kaspersky_products(host) == {}
        kes, agent = (protected.password(host, p) for p in PRODUCTS)
        kes_scripts = [s for s in fleet.scripts(host) if KES_CODE in s and "msiexec" in s]
        agent_scripts = [s for s in fleet.scripts(host) if AGENT_CODE in s and "msiexec" in s]
        assert len(kes_scripts) == 1 and kes[-12:] in kes_scripts[0]
        assert len(agent_scripts) == 1
        assert f"KLUNINSTPASSWD={utf16le_hex(agent)}" in agent_scripts[0]
        # No password on a command line (the cmd.exe lines PSRP's pipelines carried).
        assert not [c for c in fleet.commands_log(host) if kes[-12:] in c or agent[-12:] in c]
        assert not leaks(protected, fleet.printed(host))
        assert fleet.leftovers(host) == []
    assert not leaks(protected, detect.stdout, detect.stderr, plan.stdout, done.stdout)
    assert not leaks(protected, done.stderr)
    for path in home.glob("l.db*"):  # the ledger and its WAL, byte for byte
        assert not leaks(protected, path.read_bytes()), path.name


def test_an_ansible_inventory_with_psrp_variables_removes_over_psrp(
    protected: ProtectedFleet, tmp_path: Path
) -> None:
    fleet = protected.fleet
    lines = ["[branch]"]
    for h in fleet.hosts:
        if h.name not in (HOST_A, HOST_B):
            continue
        kes, agent = (VARIABLES[h.name][p] for p in PRODUCTS)
        http = h.name == HOST_B  # plain HTTP on 5985's stand-in: NTLM seals every message
        lines.append(
            f"{h.name} ansible_host={h.address} ansible_connection=psrp"
            f" ansible_psrp_port={h.http_port if http else h.https_port}"
            f" ansible_psrp_protocol={'http' if http else 'https'}"
            f" ansible_psrp_cert_trust_path={fleet.pki.ca} ansible_psrp_auth=negotiate"
            f" kremove_uninstall_password_kes_windows=\"{{{{ lookup('env', '{kes}') }}}}\""
            f" kremove_uninstall_password_klnagent=\"{{{{ lookup('env', '{agent}') }}}}\""
        )
    lines += [
        "[branch:vars]",
        f"ansible_user={USER}",
        f"ansible_password=\"{{{{ lookup('env', '{PASSWORD_ENV}') }}}}\"",
    ]
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("\n".join(lines) + "\n")
    try:
        plan = kremove("plan", "-i", str(inventory), "--json", home=tmp_path, env=protected.env)
        assert plan.returncode == 0, plan.stderr
        hosts = {h["host"]: h for h in json.loads(plan.stdout)["hosts"]}
        assert set(hosts) == {HOST_A, HOST_B}
        done = kremove(
            "run", "-i", str(inventory), "--yes", "--json", home=tmp_path, env=protected.env
        )
        assert done.returncode == 0, done.stdout + done.stderr
        statuses = {h["host"]: h["status"] for h in json.loads(done.stdout)["hosts"]}
        assert statuses == {HOST_A: "removed", HOST_B: "removed"}
        for host in (HOST_A, HOST_B):
            pipelines, shells = over_psrp(protected, host)
            assert pipelines > 4 and shells == 0
        assert f"WinRM over plain HTTP with NTLM for 1 host: {HOST_B}" in done.stderr
        assert not leaks(protected, plan.stdout, plan.stderr, done.stdout, done.stderr)
    finally:
        fleet.reset()


def test_a_deadline_stops_the_pipeline_and_the_next_command_runs(
    protected: ProtectedFleet, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in protected.env.items():
        monkeypatch.setenv(name, value)
    host = load_inventories([home / "fleet.yml"]).hosts[CLEAN]
    transport = open_pool(PoolSetup(SecretStore())).transport(host)
    transport.connect(Deadline.after(30))
    try:
        slow = transport.run("@echo off\r\nping -n 60 127.0.0.1 >nul\r\n", Deadline.after(2))
        assert slow.timed_out and slow.exit_code is None
        after = transport.run("@echo off\r\necho still here\r\nexit /b 7\r\n", Deadline.after(30))
        assert (after.exit_code, after.stdout.strip()) == (7, "still here")
    finally:
        transport.close()
    log = protected.fleet.log(CLEAN)
    assert [e["code"] for e in log if e["event"] == "psrp_signal"][:1] == [
        "powershell/signal/ctrl_c"
    ]
    assert protected.fleet.leftovers(CLEAN) == []  # the stopped script swept at the next one


def test_without_pypsrp_a_psrp_host_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked" / "pypsrp"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('not installed (the test)')\n")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("dc01 ansible_host=127.0.0.1 ansible_connection=psrp ansible_user=k\n")
    env = {"PYTHONPATH": str(blocked.parent)}
    done = kremove("plan", "-i", str(inventory), home=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"kremove: error: host 'dc01' ({inventory}:1): transport psrp (PowerShell Remoting) "
        "needs pypsrp, which is not installed: pip install 'kremove[psrp]'; or use winrm, the "
        "same endpoint"
    )


@pytest.mark.parametrize(
    ("kind", "size", "expected"),
    [
        ("dtd", 20, "DTD"),  # sealed by NTLM on http: only the decrypted text shows it
        ("oversize", 2 * 1024 * 1024, "larger than"),
        ("gzip", None, "Content-Encoding: gzip"),
        ("trickle", None, "timed out: True"),  # a byte a second: only the deadline ends it
    ],
)
def test_a_hostile_answer_to_a_psrp_receive_is_refused_or_cut(
    protected: ProtectedFleet,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    size: int | None,
    expected: str,
) -> None:
    for name, value in protected.env.items():
        monkeypatch.setenv(name, value)
    inventory = protected.fleet.write_inventory(home / "http.yml", scheme="http")
    inventory.write_text(inventory.read_text().replace("transport: winrm", "transport: psrp"))
    host = load_inventories([inventory]).hosts[CLEAN]
    assert (host.transport, host.winrm.scheme) == ("psrp", "http")
    transport = open_pool(PoolSetup(SecretStore())).transport(host)
    transport.connect(Deadline.after(30))
    protected.fleet.inject_fault(CLEAN, "Receive", kind, size=size, seconds=30)
    try:
        result = transport.run("@echo off\r\necho x\r\n", Deadline.after(4))
        outcome = f"timed out: {result.timed_out}"
    except TransportError as exc:
        outcome = str(exc)
        assert CLEAN in outcome
    finally:
        transport.close()
    assert expected in outcome, outcome
