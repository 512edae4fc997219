"""``{{ var }}`` in Ansible inventory values: evaluated per host from its merged vars with Ansible's
precedence, compared with what the real ``ansible`` (ad-hoc ``debug``, which templates the same
variables and contacts no host) makes of the same inventory; ``ansible-inventory --list`` shows
the values untemplated, and so does kremove for free vars it does not use."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories
from orchestrator.inventory.model import SecretRef
from tests.inventory.ansible_tools import BIN, ansible, encrypt_string

SITE = """\
all:
  vars:
    deploy_user: deployer
    domain: corp.example
    base_port: 2221
  children:
    web:
      vars:
        ansible_user: "{{ deploy_user }}"
        ansible_host: "{{ inventory_hostname }}.{{ domain }}"
        ansible_port: "{{ base_port + 1 }}"
        ansible_become_user: "{{ group_names | join('-') }}"
      hosts:
        web1:
        web2:
          deploy_user: "{{ owner | default('other') }}"
      children:
        canary:
          hosts:
            web2:
"""
FIELDS = ("ansible_user", "ansible_host", "ansible_port", "ansible_become_user")


def ansible_templated(inventory: Path, cwd: Path) -> dict[str, list[str]]:
    """Each host's FIELDS as the real ansible templates them (ad-hoc debug runs no module on a
    host: it only templates)."""
    message = "|".join("{{ " + field + " }}" for field in FIELDS)
    env = {**os.environ, "ANSIBLE_HOME": str(cwd / ".ansible"), "ANSIBLE_NOCOLOR": "1"}
    env["ANSIBLE_CONFIG"] = str(cwd / "no-ansible.cfg")
    argv = [str(BIN / "ansible"), "all", "-i", str(inventory), "-m", "debug"]
    argv += ["-a", f'msg="{message}"']
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.findall(r"^(\S+) \| SUCCESS => (\{.*?^\})", done.stdout, re.M | re.S)
    return {host: json.loads(body)["msg"].split("|") for host, body in found}


def test_templated_settings_are_what_ansible_makes_of_them(tmp_path: Path) -> None:
    path = tmp_path / "site.yml"
    path.write_text(SITE)
    inv = load_inventories([path])
    ours = {name: [h.user, h.address, str(h.port), h.become.user] for name, h in inv.hosts.items()}
    assert ours == ansible_templated(path, tmp_path)
    assert ours["web2"] == ["other", "web2.corp.example", "2222", "canary-web"]
    # ansible-inventory --list shows them as written; kremove keeps what it does not use so too.
    listed = json.loads(
        ansible("ansible-inventory", "-i", str(path), "--list", cwd=tmp_path).stdout
    )
    assert listed["_meta"]["hostvars"]["web2"]["deploy_user"] == "{{ owner | default('other') }}"
    assert inv.hosts["web2"].vars["deploy_user"] == "{{ owner | default('other') }}"


def test_an_ini_template_is_evaluated_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text(
        "[web]\nweb1 ansible_host='{{ inventory_hostname }}.corp'\n"
        "[web:vars]\nansible_user='{{ deploy_user }}'\ndeploy_user=svc\n"
    )
    host = load_inventories([path]).hosts["web1"]
    assert (host.address, host.user) == ("web1.corp", "svc")


def test_an_undefined_variable_is_one_line_naming_file_line_host_and_variable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inv.yml"
    path.write_text('all:\n  hosts:\n    h1:\n      ansible_user: "{{ deploy_user }}"\n')
    with pytest.raises(InventoryError) as caught:
        load_inventories([path])
    message = str(caught.value)
    assert message.startswith(f"{path}:4: host 'h1': field 'ansible_user': 'deploy_user' is")
    assert "undefined" in message and "\n" not in message


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        ({"ansible_user": "{{ a }}", "a": "{{ b }}", "b": "{{ a }}"}, "loop: a -> b -> a"),
        ({"ansible_user": "{{ ansible_user }}"}, "loop: ansible_user -> ansible_user"),
        (
            {"ansible_user": "{{ v0 }}", **{f"v{n}": f"{{{{ v{n + 1} }}}}" for n in range(40)}},
            "more than 16",
        ),
        ({"ansible_user": "{{ lookup('env', 'USER') }}"}, "lookups only as"),
        ({"ansible_user": "{{ ''.__class__ }}"}, "access to attribute"),
        ({"ansible_user": "{{ x | tojson }}", "x": 1}, "No filter named 'tojson'"),
    ],
)
def test_loops_depth_lookups_and_the_sandbox_are_one_line(
    tmp_path: Path, variables: dict[str, str], words: str
) -> None:
    path = tmp_path / "inv.yml"
    lines = [f"      {key}: {json.dumps(value)}" for key, value in variables.items()]
    path.write_text("all:\n  hosts:\n    h1:\n" + "\n".join(lines) + "\n")
    with pytest.raises(InventoryError) as caught:
        load_inventories([path])
    assert words in str(caught.value) and "host 'h1'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_password_may_name_a_variable_holding_a_vault_value_or_a_lookup(
    tmp_path: Path,
) -> None:
    vaulted = encrypt_string(
        tmp_path,
        "s3cret",
        "vault_become_pass",
        "--vault-password-file",
        str(_vault_password(tmp_path)),
        indent=6,
    )
    path = tmp_path / "inv.yml"
    path.write_text(
        "all:\n  vars:\n" + vaulted + "      win_pw: \"{{ lookup('env', 'WINPASS') }}\"\n"
        "  hosts:\n    h1:\n"
        '      ansible_become_password: "{{ vault_become_pass }}"\n'
        '      ansible_password: "{{ win_pw }}"\n'
        "      kremove_uninstall_password_kes: >-\n"
        "        {{ lookup('file', '/s/' ~ inventory_hostname) }}\n"
    )
    host = load_inventories([path]).hosts["h1"]
    assert host.password == SecretRef(env="WINPASS")
    assert host.become.password is not None and host.become.password.vault is not None
    assert host.uninstall_passwords["kes"].ref == SecretRef(file="/s/h1")


@pytest.mark.parametrize(
    "value", ["{{ plain }}", "{{ plain ~ lookup('env', 'X') }}", "{{ lookup('env', 'X') | upper }}"]
)
def test_a_password_template_giving_plaintext_is_refused_without_the_value(
    tmp_path: Path, value: str
) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        f"all:\n  vars:\n    plain: hunter2secret\n  hosts:\n    h1:\n"
        f"      ansible_password: {json.dumps(value)}\n"
    )
    with pytest.raises(InventoryError) as caught:
        load_inventories([path])
    message = str(caught.value)
    assert "field 'ansible_password': only {{ lookup" in message
    assert "hunter2secret" not in message and "\n" not in message


def test_a_setting_reading_a_password_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "all:\n  hosts:\n    h1:\n      ansible_password: \"{{ lookup('env', 'PW') }}\"\n"
        '      ansible_user: "{{ ansible_password }}"\n'
    )
    with pytest.raises(InventoryError) as caught:
        load_inventories([path])
    assert "'ansible_password' is a password" in str(caught.value)


def _vault_password(directory: Path) -> Path:
    path = directory / "vault-pw"
    path.write_text("vault-pass\n")
    path.chmod(0o600)
    return path
