"""kremove's own YAML: defaults < groups (by depth, then name) < host, secrets by reference."""

from __future__ import annotations

from pathlib import Path

from orchestrator.inventory import load_inventories
from orchestrator.inventory.model import SecretRef

from .conftest import FIXTURES, Write

EXAMPLES = Path(__file__).resolve().parents[2] / "inventories"


def test_precedence_defaults_groups_host() -> None:
    hosts = load_inventories([FIXTURES / "fleet.yml"]).hosts
    web01, web02 = hosts["web01.example.org"], hosts["web02.example.org"]
    assert (web01.address, web01.user, web01.platform) == ("192.0.2.11", "kremove", "linux")
    assert web01.groups == ("linux", "web")
    assert web01.vars == {"ticket": "CHG-100", "wave": 1, "role": "web", "os": "linux"}
    assert web02.vars["wave"] == 2  # host vars beat defaults
    db01 = hosts["db01.example.org"]
    assert (db01.port, db01.user) == (2222, "dbops")  # group db sets the user
    assert db01.vars["role"] == "db"  # db (depth 2) beats linux (depth 1)
    assert db01.become.enabled is True
    assert db01.become.user == "postgres"
    assert db01.become.password == SecretRef(env="DB_SUDO_PASSWORD")
    assert db01.key_file == "/etc/kremove/id_ed25519"


def test_winrm_group_and_http_port_default() -> None:
    hosts = load_inventories([FIXTURES / "fleet.yml"]).hosts
    dc01 = hosts["dc01.example.org"]
    assert (dc01.transport, dc01.port, dc01.platform, dc01.user) == (
        "winrm",
        5986,
        "windows",
        "CORP\\kremove",
    )
    assert dc01.become.enabled is False
    assert dc01.password == SecretRef(file="/run/secrets/winrm")
    assert (dc01.winrm.auth, dc01.winrm.cert_validation) == ("kerberos", False)
    lab = hosts["lab.example.org"]
    assert (lab.port, lab.winrm.scheme, lab.winrm.auth, lab.groups) == (5985, "http", "ntlm", ())


def test_become_short_and_long_forms(write: Write) -> None:
    path = write(
        "inv.yml",
        """
        hosts:
          a: {become: yes}
          b: {become: {enabled: false, user: admin}}
          c: {become: {password_prompt: true}}
          d: {}
        """,
    )
    hosts = load_inventories([path]).hosts
    assert [(h.become.enabled, h.become.user) for h in hosts.values()] == [
        (True, "root"),
        (False, "admin"),
        (True, "root"),
        (False, "root"),
    ]
    assert hosts["c"].become.password == SecretRef(prompt=True)
    assert hosts["d"].address == "d"


def test_example_inventory_loads_and_shows_every_key() -> None:
    inventory = load_inventories([EXAMPLES / "example.yml"])
    text = (EXAMPLES / "example.yml").read_text(encoding="utf-8")
    for key in (
        "version", "defaults", "hosts", "groups", "address", "port", "transport", "platform",
        "user", "key_file", "key_passphrase_env", "password_env", "password_file",
        "password_prompt", "become", "enabled", "method", "winrm", "auth", "scheme",
        "cert_validation", "ca_trust_path", "shell_type", "children", "vars",
        "uninstall_password_env", "uninstall_passwords",
    ):  # fmt: skip
        assert f"{key}:" in text, key
    assert {h.transport for h in inventory.hosts.values()} == {"ssh", "winrm", "local"}


def test_other_examples_load() -> None:
    for name in ("example.ini", "example-ansible.yml", "example.csv"):
        assert load_inventories([EXAMPLES / name]).hosts, name
