"""The command line's connection defaults (-u, -b, --become-user, -K, -k, --private-key) and the
inventory: what the inventory writes for a host wins, as in Ansible; the rest is filled in."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.inventory import load_inventories
from orchestrator.inventory.model import Become, Host, SecretRef
from orchestrator.inventory.overrides import ConnectionDefaults, apply, from_cli

from .conftest import Write

EVERYTHING = ConnectionDefaults(
    user="ops",
    become=True,
    become_user="admin",
    ask_become_pass=True,
    ask_pass=True,
    private_key=Path("/keys/ops_ed25519"),
)

ANSIBLE = """\
[said]
a ansible_user=svc ansible_become=false ansible_ssh_private_key_file=/keys/a
c ansible_become_user=postgres
[quiet]
b
[windows]
w ansible_connection=winrm ansible_winrm_transport=ntlm
[here]
l ansible_connection=local
"""

NATIVE = """\
version: 1
hosts:
  a: {user: svc, key_file: /keys/a, become: false}
  b: {}
  c: {become: {user: postgres, password_env: C_SUDO}}
  d: {password_env: D_LOGIN, become: true}
"""


def hosts(write: Write, name: str, text: str, defaults: ConnectionDefaults) -> dict[str, Host]:
    inventory = load_inventories([write(name, text)])
    return dict(apply(inventory, defaults).hosts)


def test_ansible_inventory_variables_win_over_the_command_line(write: Write) -> None:
    got = hosts(write, "site.ini", ANSIBLE, EVERYTHING)
    a = got["a"]
    assert (a.user, a.key_file) == ("svc", "/keys/a")
    assert (a.become.enabled, a.become.auto) == (False, False)  # ansible_become=false beats -b
    assert got["c"].become.user == "postgres"  # ansible_become_user beats --become-user
    b = got["b"]  # the inventory says nothing: every default applies
    assert (b.user, b.key_file) == ("ops", "/keys/ops_ed25519")
    assert b.become == Become(enabled=True, user="admin", password=SecretRef(prompt=True))
    assert b.password == SecretRef(prompt=True)
    assert from_cli(b, "become.password") and not from_cli(a, "user")


def test_kremove_yaml_keys_win_the_same_way(write: Write) -> None:
    got = hosts(write, "site.yml", NATIVE, EVERYTHING)
    a = got["a"]
    assert (a.user, a.key_file, a.become.enabled) == ("svc", "/keys/a", False)
    c = got["c"].become
    assert (c.user, c.password) == ("postgres", SecretRef(env="C_SUDO"))  # -K does not replace it
    d = got["d"]
    assert d.password == SecretRef(env="D_LOGIN")  # -k does not replace it
    assert (d.become.enabled, d.become.auto, d.become.user) == (True, False, "admin")
    assert got["b"].user == "ops"


def test_without_options_become_is_automatic_where_nothing_says_otherwise(write: Write) -> None:
    got = hosts(write, "site.ini", ANSIBLE, ConnectionDefaults())
    b = got["b"]
    assert (b.user, b.key_file, b.password) == (None, None, None)
    assert b.become == Become(enabled=True, auto=True)  # kremove decides from the probe
    assert got["a"].become == Become(enabled=False)  # said: never automatic
    assert got["c"].become == Become(enabled=True, user="postgres", auto=True)


def test_winrm_has_no_become_and_local_has_no_login(write: Write) -> None:
    got = hosts(write, "site.ini", ANSIBLE, EVERYTHING)
    w = got["w"]
    assert w.become == Become() and w.user == "ops" and w.key_file is None  # a key is SSH's
    local = got["l"]
    assert (local.user, local.password, local.key_file) == (None, None, None)
    # sudo -n only: the local transport cannot answer a password prompt, so -K is not given it
    assert local.become == Become(enabled=True, user="admin")


@pytest.mark.parametrize(
    ("defaults", "words"),
    [
        (
            ConnectionDefaults(ask_become_pass=True),
            ["-K/--ask-become-pass", "--become-password-file"],
        ),
        (ConnectionDefaults(ask_pass=True), ["-k/--ask-pass", "--connection-password-file"]),
    ],
)
def test_a_prompt_without_a_terminal_is_one_line_naming_the_alternative(
    defaults: ConnectionDefaults, words: list[str]
) -> None:
    defaults.check(can_prompt=True)
    with pytest.raises(InputError) as caught:
        defaults.check(can_prompt=False)
    message = str(caught.value)
    assert "\n" not in message and all(word in message for word in words)
    assert "lookup('env'" in message  # the Ansible way, too


def test_one_password_given_twice_is_refused() -> None:
    twice = ConnectionDefaults(ask_become_pass=True, become_password_file=Path("/p"))
    with pytest.raises(InputError, match="give the become password once"):
        twice.check(can_prompt=True)
    twice = ConnectionDefaults(ask_pass=True, connection_password_file=Path("/p"))
    with pytest.raises(InputError, match="give the login password once"):
        twice.check(can_prompt=True)
    given = ConnectionDefaults(become_password_file=Path("/run/pw"))
    assert given.become_password() == SecretRef(file="/run/pw")
