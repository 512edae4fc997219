"""ansible_ssh_common_args / ansible_ssh_extra_args as kremove reads them: the jump they name (in
each form Ansible sites write), a warning for each argument not followed, an error for a jump
kremove cannot follow. The fleet test (tests/integration/test_ansible_ssh_args.py) goes through
a real jump host with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories
from orchestrator.inventory.ssh_args import SshArgsError, hostkey_warning, parse


@pytest.mark.parametrize(
    ("args", "jump"),
    [
        ("-o ProxyJump=jump@bastion:2200", "jump@bastion:2200"),
        ("-o 'ProxyJump jump@bastion'", "jump@bastion"),
        ("-oProxyJump=a,b@c:22", "a,b@c:22"),
        ("-J jump@bastion", "jump@bastion"),
        ("-Jbastion", "bastion"),
        ("-o proxyjump=none -J bastion", None),  # ssh keeps an option's first value
        ('-o ProxyCommand="ssh -W %h:%p -q jump@bastion"', "jump@bastion"),
        ("-o ProxyCommand='ssh -W [%h]:%p -p 2222 -l ops bastion'", "ops@bastion:2222"),
        ("-o ProxyCommand='/usr/bin/ssh bastion -W %h:%p'", "bastion"),
        ("-o ProxyCommand='ssh -W %h:%p %r@bastion'", "kops@bastion"),
        ("-o ProxyCommand='ssh -J first -W %h:%p second'", "first,second"),
        ("-C -o ServerAliveInterval=30", None),
    ],
)
def test_the_jump_each_form_names(args: str, jump: str | None) -> None:
    assert parse(args, "inv.ini:3: ansible_ssh_common_args", "kops").proxy_jump == jump


def test_each_argument_not_followed_is_one_warning_naming_it() -> None:
    found = parse(
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -C -o ForwardAgent=yes "
        "-o ProxyCommand='ssh -i ~/.ssh/bastion -W %h:%p bastion'",
        "inv.ini:3: ansible_ssh_common_args",
        None,
    )
    assert found.proxy_jump == "bastion"
    assert found.warnings[:2] == [
        hostkey_warning("StrictHostKeyChecking=no", "inv.ini:3: ansible_ssh_common_args"),
        hostkey_warning("UserKnownHostsFile=/dev/null", "inv.ini:3: ansible_ssh_common_args"),
    ]
    assert "'-C' is not understood" in found.warnings[2]
    assert "'-o ForwardAgent=yes'" in found.warnings[3]
    assert "ProxyCommand: ssh argument '-i ~/.ssh/bastion'" in found.warnings[4]
    assert all("--accept-new-hostkeys" in w for w in found.warnings[:2])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ("-o ProxyCommand='nc -x proxy:1080 %h %p'", "not understood"),
        ("-o ProxyCommand='ssh bastion nc %h %p'", "'nc' is not followed"),
        ("-o ProxyCommand='ssh -W %h:%p'", "not understood"),
        ("-o ProxyJump=-oProxyCommand=x", "jump host"),
        ("-o ProxyJump=bastion:99999", "port '99999'"),
        ("-o ProxyJump='a b'", "jump host"),
        ("-o 'ProxyJump=x", "check the quotes"),
        ("-J", "-J needs a value"),
    ],
)
def test_a_jump_kremove_cannot_follow_is_an_error(args: str, words: str) -> None:
    with pytest.raises(SshArgsError, match=words.replace("[", r"\[")):
        parse(args, "inv.ini:3: ansible_ssh_common_args", None)


def test_in_an_inventory_the_error_names_file_line_host_and_variable(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("[web]\nh1 ansible_ssh_extra_args='-o ProxyCommand=\"nc %h %p\"'\n")
    with pytest.raises(InventoryError) as caught:
        load_inventories([path])
    assert str(caught.value).startswith(f"{path}:2: host 'h1': field 'ansible_ssh_extra_args': ")


def test_templated_args_are_evaluated_and_other_transports_ignore_them(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "all:\n  vars:\n    bastion: jump.example.org\n"
        "    ansible_ssh_common_args: '-o ProxyJump=ops@{{ bastion }}:2222'\n"
        "  hosts:\n    h1: {}\n    w1: {ansible_connection: winrm}\n"
    )
    inv = load_inventories([path])
    assert inv.hosts["h1"].proxy_jump == "ops@jump.example.org:2222"
    assert inv.hosts["w1"].proxy_jump is None and inv.warnings == ()
    assert inv.hosts["h1"].settings()["proxy_jump"] == "ops@jump.example.org:2222"
