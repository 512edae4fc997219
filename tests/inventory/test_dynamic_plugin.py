"""Inventory plugin configs through the real ansible-inventory (ansible-core 2.18, a test-only
program; kremove never imports it): constructed over a static inventory, generator on its own,
vault passwords handed over, and one line naming what to install when it is not there."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.inventory import load_inventories, vault
from orchestrator.inventory.dynamic import PLUGIN, detect_dynamic
from tests import cli_runner
from tests.inventory.ansible_compare import ansible_hosts, ansible_list, same_as_ansible
from tests.inventory.ansible_tools import encrypt_string, password_file
from tests.inventory.dynamic_tools import ANSIBLE_INVENTORY, ansible_env, refused, write_script

STATIC = """\
all:
  vars:
    ansible_user: deploy
  children:
    web:
      hosts:
        w1: {ansible_host: 127.0.0.2, ansible_port: 2222, role: frontend}
        w2: {role: backend}
      vars:
        http_port: 80
"""
CONSTRUCTED = """\
plugin: ansible.builtin.constructed
strict: true
compose:
  ansible_become: role == 'backend'
  greeting: "'hello ' + inventory_hostname"
groups:
  frontends: role == 'frontend'
keyed_groups:
  - key: role
    prefix: role
"""
GENERATOR = """\
plugin: ansible.builtin.generator
hosts:
  name: "{{ app }}-{{ env }}"
  parents:
    - name: "{{ env }}"
      vars:
        ansible_user: ops
layers:
  app: [web, db]
  env: [dev, prod]
"""


@pytest.fixture(autouse=True)
def _real_ansible_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    ansible_env(tmp_path, monkeypatch)
    vault.register(vault.Keyring())
    yield
    vault.register(vault.Keyring())


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_constructed_over_a_static_inventory_is_what_ansible_inventory_says(
    tmp_path: Path,
) -> None:
    static = write(tmp_path, "static.yml", STATIC)
    constructed = write(tmp_path, "constructed.yml", CONSTRUCTED)
    assert detect_dynamic(constructed, CONSTRUCTED) == PLUGIN
    inventory = load_inventories([static, constructed])
    same_as_ansible(inventory, tmp_path, "-i", str(static), "-i", str(constructed))
    expected = ansible_hosts(ansible_list(tmp_path, "-i", str(static), "-i", str(constructed)))
    assert expected["w2"]["become"] is True and expected["w1"]["vars"]["greeting"] == "hello w1"
    assert set(inventory.hosts["w1"].groups) == {"web", "frontends", "role_frontend"}
    assert inventory.hosts["w1"].source == f"{static}:7"  # the static file still defines it
    assert inventory.sources == (str(static), f"{constructed} via ansible-inventory")


def test_a_plugin_on_its_own_is_what_ansible_inventory_says(tmp_path: Path) -> None:
    generator = write(tmp_path, "hosts.yml", GENERATOR)
    inventory = load_inventories([generator])
    same_as_ansible(inventory, tmp_path, "-i", str(generator))
    assert set(inventory.hosts) == {"web-dev", "web-prod", "db-dev", "db-prod"}
    assert inventory.hosts["db-prod"].user == "ops"
    assert set(inventory.hosts["db-prod"].groups) == {"prod"}


def test_vault_passwords_are_handed_to_ansible_inventory_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = password_file(tmp_path, "prod-pass", "prod vault pw")
    token = encrypt_string(tmp_path, "t0ken-with-9", "api_token",
                           "--vault-id", f"prod@{secret}", indent=8)  # fmt: skip
    static = write(tmp_path, "static.yml", f"all:\n  hosts:\n    h1:\n{token}")
    constructed = write(tmp_path, "constructed.yml",
                        "plugin: constructed\nstrict: true\ncompose:\n"
                        "  token_length: api_token | length\n")  # fmt: skip
    message = refused(static, constructed)  # ansible-inventory cannot decrypt it without
    assert message.startswith(f"{constructed}: ansible-inventory could not read it (exit 1); ")
    assert "t0ken" not in message
    handed = tmp_path / "tmp"
    handed.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(handed))
    vault.register(vault.build_keyring([], False, [f"prod@{secret}"], None))
    inventory = load_inventories([static, constructed])
    assert inventory.hosts["h1"].vars["token_length"] == "12"  # as ansible-inventory prints it
    assert list(handed.iterdir()) == []  # the password files are gone


def test_without_ansible_inventory_one_line_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KREMOVE_ANSIBLE_INVENTORY")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    static = write(tmp_path, "static.yml", STATIC)
    constructed = write(tmp_path, "constructed.yml", CONSTRUCTED)
    assert refused(static, constructed) == (
        f"{constructed}: inventory plugin 'ansible.builtin.constructed' is run by Ansible, and "
        "ansible-inventory is not installed (not on PATH, KREMOVE_ANSIBLE_INVENTORY unset); "
        "install it (pipx install ansible-core) or, where Ansible is installed, export the "
        f"inventory (ansible-inventory -i {static} -i {constructed} --list > inventory.json) "
        "and give that file"
    )
    aws = write(tmp_path, "aws_ec2.yml", "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n")
    message = refused(aws)
    assert "inventory plugin 'amazon.aws.aws_ec2' is run by Ansible" in message
    assert "(pipx install ansible-core, and ansible-galaxy collection install amazon.aws " in (
        message
    )
    assert f"(ansible-inventory -i {aws} --list > inventory.json)" in message


def test_without_ansible_inventory_through_the_cli(tmp_path: Path) -> None:
    aws = write(tmp_path, "aws_ec2.yml", "plugin: amazon.aws.aws_ec2\n")
    done = cli_runner.kremove(
        "inventory", "check", "-i", str(aws), home=tmp_path, env={"PATH": "/usr/bin:/bin"}
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"kremove: error: {aws}: inventory plugin 'amazon.aws.aws_ec2'")
    assert "pipx install ansible-core" in done.stderr


def test_a_missing_kremove_ansible_inventory_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KREMOVE_ANSIBLE_INVENTORY", str(tmp_path / "nope"))
    generator = write(tmp_path, "hosts.yml", GENERATOR)
    assert refused(generator) == (
        f"{generator}: KREMOVE_ANSIBLE_INVENTORY={tmp_path / 'nope'} is not an executable "
        "program; point it at ansible-inventory"
    )


def test_ansible_inventory_failing_is_one_line_with_what_it_said(tmp_path: Path) -> None:
    unknown = write(tmp_path, "inv.yml", "plugin: nosuch.collection.thing\n")
    message = refused(unknown)
    assert message.startswith(f"{unknown}: ansible-inventory could not read it (exit 1); it ")
    assert message.endswith(
        f"it printed on stderr: [WARNING]:  * Failed to parse {unknown} with auto plugin: "
        f"inventory config '{unknown}' specifies unknown plugin 'nosuch.collection.thing' / "
        f"ERROR! Completely failed to parse inventory source {unknown}"
    )


def test_ansible_inventory_past_the_deadline_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = write_script(tmp_path / "slow-ansible-inventory", "import time; time.sleep(300)\n")
    monkeypatch.setenv("KREMOVE_ANSIBLE_INVENTORY", str(slow))
    monkeypatch.setenv("KREMOVE_INVENTORY_TIMEOUT", "0.5")
    generator = write(tmp_path, "hosts.yml", GENERATOR)
    assert refused(generator) == (
        f"{generator}: ansible-inventory did not finish within 0.5 s; killed it (set "
        "KREMOVE_INVENTORY_TIMEOUT=SECONDS to allow longer)"
    )


def test_plaintext_password_from_a_plugin_is_refused_without_repeating_it(
    tmp_path: Path,
) -> None:
    text = GENERATOR.replace("ansible_user: ops", "ansible_password: Hunter2!")
    generator = write(tmp_path, "hosts.yml", text)
    message = refused(generator)
    assert message.startswith(f"{generator} via ansible-inventory: host ")
    assert "field 'ansible_password': plaintext passwords are not accepted" in message
    assert "Hunter2" not in message


def test_a_plugin_config_others_can_change_is_never_run(tmp_path: Path) -> None:
    generator = write(tmp_path, "hosts.yml", GENERATOR)
    generator.chmod(0o666)
    assert refused(generator) == (
        f"{generator}: the inventory plugin config {generator} can be changed by other users "
        f"(mode 0666); kremove will not run it: chmod go-w {generator}"
    )


@pytest.mark.parametrize("name", ["inventory", "aws_ec2.cfg", "inv.json"])
def test_a_plugin_config_not_named_yml_is_refused(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, "plugin: amazon.aws.aws_ec2\n")
    assert refused(path) == (
        f"{path}:1: is an inventory plugin config (plugin: amazon.aws.aws_ec2), which Ansible "
        "reads only from a .yml or .yaml file; rename it"
    )


def test_ansible_inventory_is_the_real_one() -> None:
    assert ANSIBLE_INVENTORY.exists(), "install the dev extra (./dev test does)"


def test_a_compose_that_changes_an_earlier_value_is_a_disagreement_naming_both(
    tmp_path: Path,
) -> None:
    static = write(tmp_path, "static.yml", STATIC)
    constructed = write(tmp_path, "constructed.yml",
                        "plugin: constructed\ncompose:\n  ansible_port: 2200\n")  # fmt: skip
    assert refused(static, constructed) == (
        f"{constructed} via ansible-inventory: host 'w1': field 'port': defined twice with "
        f"different values: 2222 at {static}:7 and 2200 at {constructed} via ansible-inventory; "
        "make the definitions agree or keep one"
    )
