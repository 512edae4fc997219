"""`ansible-inventory --list` JSON read from a file (.json, or any name by its content): the same
hosts the real ansible-inventory printed, secrets as references, wrong shapes in one line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.inventory import load_inventories, vault
from orchestrator.inventory.dynamic import JSON, detect_dynamic
from orchestrator.inventory.model import SecretRef
from orchestrator.inventory.vault import VaultedVar
from orchestrator.secrets import resolve
from tests.inventory.ansible_compare import ansible_hosts, kremove_hosts, same_as_ansible
from tests.inventory.ansible_tools import ansible, encrypt_string, password_file
from tests.inventory.dynamic_tools import refused

STATIC = """\
all:
  vars:
    ansible_user: deploy
    site: hq
  hosts:
    lone: {ansible_host: 127.0.0.9}
  children:
    web:
      vars: {http_port: 80, ansible_become: true}
      hosts:
        w1: {ansible_host: 127.0.0.2, ansible_port: 2222, role: front}
        w2: {ansible_user: www, tags: [a, b]}
      children:
        canary:
          hosts:
            w2: {canary: true}
          vars: {http_port: 8080}
    db:
      hosts:
        d1: {ansible_host: 127.0.0.3, ansible_become: false}
"""


@pytest.fixture(autouse=True)
def _no_vault_passwords() -> Iterator[None]:
    vault.register(vault.Keyring())
    yield
    vault.register(vault.Keyring())


def listed(tmp_path: Path, name: str, *flags: str, static: str = STATIC) -> tuple[Path, Any]:
    """``ansible-inventory -i static.yml --list [flags] > name``, and the document it printed."""
    source = tmp_path / "static.yml"
    source.write_text(static)
    inputs = ("-i", str(source), "--list", *flags)
    printed = ansible("ansible-inventory", *inputs, cwd=tmp_path).stdout
    path = tmp_path / name
    path.write_text(printed)
    return path, json.loads(printed)


@pytest.mark.parametrize("flags", [(), ("--export",)], ids=["list", "export"])
def test_list_json_is_read_as_ansible_inventory_printed_it(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    path, _ = listed(tmp_path, "inv.json", *flags)
    inventory = load_inventories([path])
    same_as_ansible(inventory, tmp_path, "-i", str(tmp_path / "static.yml"))
    assert kremove_hosts(inventory)["w2"] == {
        "address": "w2",
        "port": 22,
        "user": "www",
        "become": True,
        "vars": {"site": "hq", "http_port": 8080, "tags": ["a", "b"], "canary": True},
    }
    # and the same as kremove reading the static file itself
    assert kremove_hosts(load_inventories([tmp_path / "static.yml"])) == kremove_hosts(inventory)
    assert set(inventory.hosts["w2"].groups) == {"web", "canary"}
    assert inventory.hosts["lone"].groups == ("ungrouped",)
    assert inventory.sources == (str(path),)


def test_list_json_is_told_by_content_in_a_file_without_extension(tmp_path: Path) -> None:
    path, doc = listed(tmp_path, "production")
    assert detect_dynamic(path, path.read_text()) == JSON
    assert kremove_hosts(load_inventories([path])) == ansible_hosts(doc)


def test_yaml_inventory_written_as_json_is_not_list_json(tmp_path: Path) -> None:
    text = '{"all": {"hosts": {"h1": {"ansible_host": "127.0.0.1"}}}}'
    assert detect_dynamic(tmp_path / "inv.json", text) is None
    assert detect_dynamic(tmp_path / "inv", "[web]\nh1\n") is None
    assert detect_dynamic(tmp_path / "inv.yml", "{a: 1}") is None


def write_json(tmp_path: Path, doc: Any, name: str = "inv.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_script_shorthands_and_all_vars(tmp_path: Path) -> None:
    path = write_json(
        tmp_path,
        {
            "web": ["w1", "w2"],  # a bare list of hosts
            "db1": {"ansible_host": "127.0.0.5", "ansible_port": 2200},  # a host with its vars
            "all": {"vars": {"ansible_user": "ops"}, "children": ["web", "db1"]},
            "_meta": {"hostvars": {"w1": {"ansible_host": "127.0.0.4"}, "ghost": {"x": 1}}},
        },
    )
    inventory = load_inventories([path])
    assert set(inventory.hosts) == {"w1", "w2", "db1"}  # hostvars of no listed host are ignored
    assert inventory.hosts["db1"].address == "127.0.0.5"
    assert inventory.hosts["db1"].port == 2200
    assert inventory.hosts["db1"].groups == ("db1",)
    assert inventory.hosts["w1"].address == "127.0.0.4"
    assert {h.user for h in inventory.hosts.values()} == {"ops"}


def test_vaulted_values_as_ansible_inventory_prints_them(tmp_path: Path) -> None:
    secret = password_file(tmp_path, "vault-pass", "vault pw")
    become = encrypt_string(tmp_path, "s3cret-become", "ansible_become_password",
                            "--vault-password-file", str(secret), indent=8)  # fmt: skip
    token = encrypt_string(tmp_path, "t0ken", "api_token",
                           "--vault-password-file", str(secret), indent=8)  # fmt: skip
    static = f"all:\n  hosts:\n    h1:\n        ansible_host: 127.0.0.1\n{become}{token}"
    path, doc = listed(tmp_path, "inv.json", static=static)
    assert "__ansible_vault" in doc["_meta"]["hostvars"]["h1"]["ansible_become_password"]
    host = load_inventories([path]).hosts["h1"]
    assert isinstance(host.become.password, SecretRef) and host.become.password.vault
    assert isinstance(host.vars["api_token"], VaultedVar)  # kept encrypted: kremove does not use it
    vault.register(vault.build_keyring([secret], False, [], None))
    assert resolve(host.become.password, "become").reveal() == "s3cret-become"


def test_plaintext_password_is_refused_without_repeating_it(tmp_path: Path) -> None:
    path = write_json(
        tmp_path,
        {"web": {"hosts": ["w1"]}, "_meta": {"hostvars": {"w1": {"ansible_password": "Hunter2!"}}}},
    )
    message = refused(path)
    assert message.startswith(f"{path}: host 'w1': field 'ansible_password': plaintext")
    assert "Hunter2" not in message


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"web": {"hosts": ["w1"], "children": "db"}}, "field 'children': must be a list of"),
        ({"web": {"hosts": [1]}}, "group 'web': field 'hosts': must be a list of host names"),
        ({"web": {"hosts": [], "vars": []}}, "group 'web': field 'vars': must be an object"),
        ({"web": {"children": ["all"]}}, "group 'web': field 'children': group 'all' cannot"),
        ({"web": 3, "_meta": {}}, "group 'web': is JSON int"),
        ({"_meta": {"hostvars": []}}, "_meta.hostvars must be an object of hosts"),
        ({"_meta": 1, "web": ["w1"]}, "_meta must be an object with hostvars"),
        ({"web": ["w1"], "_meta": {"hostvars": {"w1": [1]}}}, "host 'w1': its variables are"),
    ],
)
def test_wrong_shapes_are_one_line_naming_file_and_group(
    tmp_path: Path, doc: Any, expected: str
) -> None:
    message = refused(write_json(tmp_path, doc))
    assert message.startswith(f"{tmp_path / 'inv.json'}: ") and expected in message


def test_list_json_from_a_pipe_loses_nothing(tmp_path: Path) -> None:
    """``-i <(ansible-inventory --list)``: telling a script from a file must not read the pipe."""
    _, doc = listed(tmp_path, "inv.json")
    read, write = os.pipe()
    os.write(write, json.dumps(doc).encode())
    os.close(write)
    try:
        inventory = load_inventories([Path(f"/dev/fd/{read}")])
    finally:
        os.close(read)
    assert kremove_hosts(inventory) == ansible_hosts(doc)


def test_unsafe_values_are_text_and_never_templates(tmp_path: Path) -> None:
    """ansible-inventory prints values a plugin took from its source (a cloud tag) as
    {"__ansible_unsafe": …}; Ansible never templates them, so kremove must not either."""
    tag = {"__ansible_unsafe": "prod-web"}
    path = write_json(tmp_path, {"web": ["w1"], "_meta": {"hostvars": {"w1": {"env": tag}}}})
    assert load_inventories([path]).hosts["w1"].vars["env"] == "prod-web"
    planted = {"__ansible_unsafe": "{{ lookup('file', '/etc/shadow') }}"}
    path = write_json(
        tmp_path, {"web": ["w1"], "_meta": {"hostvars": {"w1": {"ansible_password": planted}}}}
    )
    assert refused(path) == (
        f"{path}: host 'w1': field 'ansible_password': Ansible marks this value unsafe (it comes "
        "from the inventory's data source) and it holds template text ({{, {% or {#), which "
        "Ansible would not evaluate; kremove does not take such text: change the value at its "
        "source"
    )
