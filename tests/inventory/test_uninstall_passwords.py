"""Uninstall password references in kremove YAML: per host, group and product, merged per key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories, vault
from orchestrator.inventory.model import SecretRef
from orchestrator.secrets import resolve
from tests.inventory.conftest import Write

FLEET = """
version: 1
defaults:
  transport: winrm
  uninstall_password_env: ALL_PW
hosts:
  w1: {address: 127.0.0.1}
  w2:
    address: 127.0.0.1
    uninstall_password_env: W2_PW
  w3:
    address: 127.0.0.1
    uninstall_passwords:
      klnagent: {file: /run/agent-pw}
  w4:
    address: 127.0.0.1
    uninstall_password_prompt: false
  w5: {address: 127.0.0.1}
groups:
  branch:
    hosts: [w1, w2, w3, w4]
    uninstall_password_prompt: true
    uninstall_passwords:
      kes-windows: {env: KES_PW}
"""


def refs(write: Write) -> dict[str, dict[str, str]]:
    inventory = load_inventories([write("inv.yml", FLEET)])
    return {
        name: {product: entry.describe() for product, entry in host.uninstall_passwords.items()}
        for name, host in inventory.hosts.items()
    }


def test_each_product_id_is_its_own_key_and_the_nearest_level_wins(write: Write) -> None:
    assert refs(write) == {
        # The group's default beats the defaults'; its KES reference is KES's own.
        "w1": {"*": "prompt", "kes-windows": "env:KES_PW"},
        # The host's default beats the group's default, not the group's KES reference.
        "w2": {"*": "env:W2_PW", "kes-windows": "env:KES_PW"},
        "w3": {"*": "prompt", "kes-windows": "env:KES_PW", "klnagent": "file:/run/agent-pw"},
        # prompt: false takes the default back: the command line's flag applies again.
        "w4": {"kes-windows": "env:KES_PW"},
        "w5": {"*": "env:ALL_PW"},
    }


def test_each_reference_says_who_wrote_it_and_where(write: Write) -> None:
    path = write("inv.yml", FLEET)
    hosts = load_inventories([path]).hosts
    kes = hosts["w3"].uninstall_passwords["kes-windows"]
    assert (kes.owner, kes.origin) == ("group 'branch'", f"{path}:23")
    agent = hosts["w3"].uninstall_passwords["klnagent"]
    assert (agent.owner, agent.origin) == ("host 'w3'", f"{path}:13")
    assert hosts["w5"].uninstall_passwords["*"].owner == "defaults"
    assert hosts["w3"].uninstall_passwords["klnagent"].ref == SecretRef(file="/run/agent-pw")


def test_settings_describe_references_and_digests_see_them(write: Write) -> None:
    inventory = load_inventories([write("inv.yml", FLEET)])
    assert inventory.hosts["w3"].settings()["uninstall_passwords"] == {
        "*": "prompt",
        "kes-windows": "env:KES_PW",
        "klnagent": "file:/run/agent-pw",
    }
    other = load_inventories([write("other.yml", FLEET.replace("KES_PW", "KES_PW2"))])
    assert other.digest() != inventory.digest()


def test_the_same_host_in_two_files_may_repeat_a_reference(write: Write) -> None:
    one = write("one.yml", "hosts:\n  w1: {uninstall_password_env: PW}\n")
    two = write("two.yml", "hosts:\n  w1:\n    uninstall_password_env: PW\n")
    assert load_inventories([one, two]).hosts["w1"].uninstall_passwords["*"].describe() == "env:PW"
    three = write("three.yml", "hosts:\n  w1: {uninstall_password_env: OTHER}\n")
    with pytest.raises(InventoryError, match="defined twice with different values: env:PW"):
        load_inventories([one, three])


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("{uninstall_password: hunter2}", "field 'uninstall_password': inline passwords are not "
         "accepted; reference it with uninstall_password_env: VAR"),
        ("{uninstall_passwords: {kes-windows: {password: hunter2}}}",
         "field 'uninstall_passwords.kes-windows.password': inline passwords are not accepted; "
         "reference it with env: VAR, file: PATH or prompt: true"),
        ("{uninstall_passwords: {kes-windows: {envv: PW}}}",
         "field 'uninstall_passwords.kes-windows.envv': unknown key; did you mean 'env'?"),
        ("{uninstall_passwords: {kes-windows: {env: A, file: /b}}}",
         "field 'uninstall_passwords.kes-windows.file': "
         "uninstall_passwords.kes-windows.env is already given; keep only one of them"),
        ("{uninstall_passwords: {KES_Windows: {env: A}}}",
         "field 'uninstall_passwords.KES_Windows': 'KES_Windows' is not a catalog product id"),
        ("{uninstall_passwords: {kes-windows: PW}}",
         "field 'uninstall_passwords.kes-windows': expected {env: VAR}, {file: PATH} or "
         "{prompt: true}"),
        ("{uninstall_password_env: 'NOT A NAME'}",
         "field 'uninstall_password_env': 'NOT A NAME' is not an environment variable name"),
        ("{uninstall_password_env: A, uninstall_password_file: /b}",
         "field 'uninstall_password_file': uninstall_password_env is already given"),
    ],
)  # fmt: skip
def test_bad_references_are_one_line_naming_file_line_host_and_field(
    write: Write, host: str, message: str
) -> None:
    path = write("inv.yml", f"hosts:\n  w1: {host}\n")
    with pytest.raises(InventoryError) as refused:
        load_inventories([path])
    shown = str(refused.value)
    assert shown.startswith(f"{path}:2: host 'w1': "), shown
    assert message in shown and "\n" not in shown
    assert "hunter2" not in shown


# -- Ansible inventories: kremove_uninstall_password[_<product id, - as _>] ---------------------

ANSIBLE_INI = """\
[branch_a]
wa ansible_host=127.0.0.1

[branch_b]
wb ansible_host=127.0.0.1 kremove_uninstall_password="{{ lookup('env', 'WB_PW') }}"

[windows:children]
branch_a
branch_b

[windows:vars]
ansible_connection=winrm
kremove_uninstall_password={{ lookup('env', 'FLEET_PW') }}

[branch_b:vars]
kremove_uninstall_password_kes_windows={{ lookup('file', '/run/kes-b') }}
kremove_uninstall_password_klnagent={{ lookup( "env" , "AGENT_B_PW" ) }}
"""


def test_ansible_ini_variables_are_references_merged_per_key(write: Write) -> None:
    path = write("hosts.ini", ANSIBLE_INI)
    hosts = load_inventories([path]).hosts
    described = {
        name: {p: e.describe() for p, e in h.uninstall_passwords.items()}
        for name, h in hosts.items()
    }
    assert described == {
        "wa": {"*": "env:FLEET_PW"},
        "wb": {"*": "env:WB_PW", "kes-windows": "file:/run/kes-b", "klnagent": "env:AGENT_B_PW"},
    }
    assert hosts["wb"].uninstall_passwords["klnagent"].owner == "group 'branch_b'"
    assert hosts["wb"].uninstall_passwords["klnagent"].origin == f"{path}:17"
    # References, not vars: nothing of them is left for templates to read.
    assert not [k for k in hosts["wb"].vars if k.startswith("kremove_uninstall")]


@pytest.mark.parametrize(
    "value",
    ["hunter2", "{{ lookup('pipe', 'cat /etc/shadow') }}", "{{ other_var }}"],
)
def test_ansible_plaintext_or_other_templates_are_refused(write: Write, value: str) -> None:
    path = write("hosts.ini", f'[w]\nwa kremove_uninstall_password_klnagent="{value}"\n')
    with pytest.raises(InventoryError) as refused:
        load_inventories([path])
    shown = str(refused.value)
    assert shown.startswith(f"{path}:2: host 'wa': field 'kremove_uninstall_password_klnagent': ")
    assert "hunter2" not in shown and "\n" not in shown


def test_an_ansible_vault_value_is_a_reference_opened_only_when_fetched(
    write: Write, tmp_path: Path
) -> None:
    ansible_vault = Path(sys.executable).parent / "ansible-vault"
    if not ansible_vault.exists():
        pytest.skip("ansible-vault (the dev extra's ansible-core) is not installed")
    secret_file = tmp_path / "vault-pass"
    secret_file.write_text("vault-pw\n")
    secret_file.chmod(0o600)
    made = subprocess.run(
        [str(ansible_vault), "encrypt_string", "--vault-password-file", str(secret_file),
         "agent-Secret-9", "--name", "kremove_uninstall_password_klnagent"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    path = write(
        "hosts.yml", "all:\n  hosts:\n    wa:\n      " + made.stdout.replace("\n", "\n      ")
    )
    [(product, entry)] = load_inventories([path]).hosts["wa"].uninstall_passwords.items()
    assert product == "klnagent" and entry.ref.vault is not None
    assert entry.describe().startswith("vault:default@")
    vault.register(vault.build_keyring([secret_file], False, [], None))
    try:
        assert resolve(entry.ref, "x").reveal() == "agent-Secret-9"
    finally:
        vault.register(vault.Keyring())
