"""Issue 17's acceptance: an Ansible site's inventory, as its operators keep it, runs a removal.

One Ansible YAML inventory reaches the simulated SSH fleet and the WinRM test hosts. Nothing in
it is plaintext: the SSH login password is an env lookup, the become password and the WinRM
login password are values made by the real ansible-vault, and the uninstall passwords are set
per administration group the way separate Kaspersky policies set them — branch_a one password
for every product (an env lookup), branch_b one for KES (vaulted) and another for its Network
Agent (an env lookup). It says nothing about become: kremove becomes root where the login
needs it, as the site's playbooks would have.

The run must remove every product, each protected one with its own password; no password may
reach a host where it does not belong (the hosts log every command and script), and none may
appear in the output, the JSON-lines log, the ledger or its WAL. The log agrees with the
ledger host for host.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from orchestrator.playbook.quoting import utf16le_hex
from tests.cli_runner import kremove
from tests.fleet.fleet import PASSWORD_ENV, SUDO_PASSWORD_ENV, Fleet
from tests.fleet.winrm_host.fleet import PASSWORD_ENV as WINRM_PASSWORD_ENV
from tests.fleet.winrm_host.fleet import USER as WINRM_USER
from tests.fleet.winrm_host.kinds import AGENT_CODE, KES_CODE
from tests.fleet.winrm_host.protected import HOST_A, HOST_B, ProtectedFleet
from tests.inventory.ansible_tools import ansible, encrypt_string, password_file

SSH_KINDS = {"one_product": 1, "password_only": 1, "sudo_password": 1}
WINDOWS_CLEAN = "w003-clean"
PRODUCTS = ("kes-windows", "klnagent")
VAULT_PASSWORD = "site-vault-passphrase"


@pytest.fixture(scope="module")
def site_fleets(
    fleet_factory: Callable[..., Fleet],
    protected_fleet_factory: Callable[[Mapping[str, int]], ProtectedFleet],
) -> tuple[Fleet, ProtectedFleet]:
    return fleet_factory(SSH_KINDS), protected_fleet_factory({"clean": 1})


def vaulted(where: Path, name: str, value: str, indent: int) -> str:
    return encrypt_string(
        where, value, name, "--vault-password-file", str(where / "vault-pass"), indent=indent
    )


def site_inventory(where: Path, ssh: Fleet, protected: ProtectedFleet) -> Path:
    """The site's inventory, written as an Ansible operator writes one (YAML, vault, lookups)."""
    password_file(where, "vault-pass", VAULT_PASSWORD)
    env = protected.env
    lines = ["all:", "  children:", "    linux:", "      hosts:"]
    for host in ssh.hosts:
        lines += [
            f"        {host.name}:",
            f"          ansible_host: {host.address}",
            f"          ansible_port: {host.port}",
            f"          ansible_user: {host.user}",
        ]
        if host.key_file is not None:
            lines.append(f"          ansible_ssh_private_key_file: {ssh.client_key}")
        else:
            lines.append(
                f"          ansible_password: \"{{{{ lookup('env', '{PASSWORD_ENV}') }}}}\""
            )
        if host.sudo_password_env:
            lines.append(
                vaulted(where, "ansible_become_password", ssh.env[SUDO_PASSWORD_ENV], 10).rstrip()
            )
    lines += ["    windows:", "      vars:"]
    lines += [
        "        ansible_connection: winrm",
        "        ansible_winrm_transport: ntlm",
        "        ansible_winrm_scheme: https",
        f"        ansible_winrm_ca_trust_path: {protected.fleet.pki.ca}",
        f"        ansible_user: {WINRM_USER}",
        vaulted(where, "ansible_password", env[WINRM_PASSWORD_ENV], 8).rstrip(),
        "      children:",
        "        branch_a:",
        "          hosts:",
    ]
    by_name = {h.name: h for h in protected.fleet.hosts}
    for name in (HOST_A,):
        lines += winrm_host(by_name[name].address, by_name[name].https_port, name, 12)
    lines += [
        "          vars:",
        "            kremove_uninstall_password: \"{{ lookup('env', 'BRANCH_A_UNINSTALL_PW') }}\"",
        "        branch_b:",
        "          hosts:",
    ]
    lines += winrm_host(by_name[HOST_B].address, by_name[HOST_B].https_port, HOST_B, 12)
    lines += [
        "          vars:",
        vaulted(
            where, "kremove_uninstall_password_kes_windows", env["BRANCH_B_KES_PW"], 12
        ).rstrip(),
        "            kremove_uninstall_password_klnagent: "
        "\"{{ lookup('env', 'BRANCH_B_AGENT_PW') }}\"",
        "        unprotected:",
        "          hosts:",
    ]
    clean = by_name[WINDOWS_CLEAN]
    lines += winrm_host(clean.address, clean.https_port, WINDOWS_CLEAN, 12)
    path = where / "site.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def tail(password: str) -> str:
    return password[-12:]


def sent_in(password: str, texts: list[str]) -> bool:
    return any(tail(password) in t or utf16le_hex(password) in t for t in texts)


def winrm_host(address: str, port: int, name: str, indent: int) -> list[str]:
    pad = " " * indent
    return [f"{pad}{name}:", f"{pad}  ansible_host: {address}", f"{pad}  ansible_port: {port}"]


def run_env(ssh: Fleet, protected: ProtectedFleet) -> dict[str, str]:
    """Only what the inventory's lookups read: the vaulted values are nowhere in it."""
    keep = (PASSWORD_ENV, "BRANCH_A_UNINSTALL_PW", "BRANCH_B_AGENT_PW")
    return {name: {**ssh.env, **protected.env}[name] for name in keep}


def every_secret(ssh: Fleet, protected: ProtectedFleet) -> list[str]:
    values = [*ssh.secrets, *protected.fleet.secrets, VAULT_PASSWORD]
    return [v for v in dict.fromkeys(values) if len(v) >= 6]


def test_an_ansible_site_inventory_removes_every_product_with_its_own_password(
    site_fleets: tuple[Fleet, ProtectedFleet], tmp_path: Path
) -> None:
    ssh, protected = site_fleets
    inventory = site_inventory(tmp_path, ssh, protected)
    vault = ("--vault-password-file", str(tmp_path / "vault-pass"))
    # It is valid Ansible: the real ansible-inventory reads it with the same vault password.
    listed = json.loads(ansible("ansible-inventory", "-i", str(inventory), *vault, "--list",
                                cwd=tmp_path).stdout)  # fmt: skip
    assert set(listed["branch_b"]["hosts"]) == {HOST_B}
    env = run_env(ssh, protected)
    log = tmp_path / "wave.jsonl"
    ledger = tmp_path / "ledger.db"

    plan = kremove("plan", "-i", str(inventory), *vault, "--accept-new-hostkeys", "--json",
                   ledger=ledger, env=env, cwd=tmp_path)  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    planned = {h["host"]: h for h in json.loads(plan.stdout)["hosts"]}
    assert {(r["product"], r["reference"].split(":")[0]) for r in
            planned[HOST_B]["uninstall_passwords"]} == {("kes-windows", "vault"),
                                                         ("klnagent", "env")}  # fmt: skip

    done = kremove("run", "-i", str(inventory), *vault, "--accept-new-hostkeys", "--yes",
                   "--json", "--log-file", str(log), ledger=ledger, env=env,
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    statuses = {h["host"]: h["status"] for h in result["hosts"]}
    assert statuses == {
        **{h.name: "removed" for h in ssh.hosts},
        HOST_A: "removed",
        HOST_B: "removed",
        WINDOWS_CLEAN: "clean",
    }
    for host in ssh.hosts:
        assert ssh.kaspersky_packages(host.name) == {}, host.name

    # Each protected product got its own password, and only that one. A password is found in a
    # script by its random tail (cmd quoting leaves hex digits alone) or Network Agent's hex form.
    for host in (HOST_A, HOST_B):
        kes_pw = protected.password(host, "kes-windows")
        agent_pw = protected.password(host, "klnagent")
        scripts = protected.fleet.scripts(host)
        kes_script = [s for s in scripts if KES_CODE in s and "msiexec" in s]
        agent_script = [s for s in scripts if AGENT_CODE in s and "msiexec" in s]
        assert len(kes_script) == 1 and len(agent_script) == 1
        assert tail(kes_pw) in kes_script[0]
        assert f"KLUNINSTPASSWD={utf16le_hex(agent_pw)}" in agent_script[0]
        if agent_pw != kes_pw:  # each only in its own product's script
            assert not sent_in(kes_pw, [s for s in scripts if s not in kes_script])
            assert not sent_in(agent_pw, [s for s in scripts if s not in agent_script])
        others = {HOST_A: HOST_B, HOST_B: HOST_A}[host]
        foreign = {protected.password(others, p) for p in PRODUCTS} - {kes_pw, agent_pw}
        received = [*scripts, *protected.fleet.commands_log(host)]
        assert not [p for p in foreign if sent_in(p, received)], host
    uninstall = {protected.password(h, p) for h in (HOST_A, HOST_B) for p in PRODUCTS}
    clean_log = [
        *protected.fleet.scripts(WINDOWS_CLEAN),
        *protected.fleet.commands_log(WINDOWS_CLEAN),
    ]
    assert not [p for p in uninstall if sent_in(p, clean_log)]
    for host in ssh.hosts:  # no Windows password ever reached a Linux host's command line
        assert not [p for p in uninstall if sent_in(p, ssh.commands_log(host.name))], host.name

    # The JSON-lines log parses line by line and agrees with the ledger host for host.
    events = [json.loads(line) for line in log.read_text().splitlines()]
    run_id = result["run"]
    assert {e["run"] for e in events} == {run_id}
    logged = {e["host"]: e["status"] for e in events if e["event"] == "host_done"}
    shown = kremove("runs", "show", run_id, "--json", ledger=ledger, cwd=tmp_path)
    recorded = {h["host"]: h["status"] for h in json.loads(shown.stdout)["hosts"]}
    assert logged == recorded == statuses

    # No secret anywhere kremove wrote or printed.
    written: list[str | bytes] = [plan.stdout, plan.stderr, done.stdout, done.stderr,
                                  log.read_text(), shown.stdout]  # fmt: skip
    written += [p.read_bytes() for p in tmp_path.glob("ledger.db*")]
    found = [
        s for s in every_secret(ssh, protected) for text in written
        if (s.encode() if isinstance(text, bytes) else s) in text
    ]  # fmt: skip
    assert found == []
