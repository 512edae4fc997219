"""Ansible's ssh arguments on the fleet: a host whose address only the jump host resolves, reached
through ``ansible_ssh_common_args`` / ``ansible_ssh_extra_args`` in the forms Ansible sites write
(``-o ProxyJump=``, ``-J``, ``-o ProxyCommand="ssh -W %h:%p ..."``), with the jump given as
``user@host:port`` (no inventory host) or by an inventory host's name. The real ``ansible`` (a
test-only program) reaches the same host with the same inventory, through the real OpenSSH client.
Arguments kremove does not follow are said once each; StrictHostKeyChecking=no is never followed.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_runner import kremove
from tests.fleet.fleet import Fleet, FleetHost
from tests.inventory.ansible_tools import BIN


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory({"jump": 1, "behind_jump": 1})


@pytest.fixture
def home(fleet: Fleet, tmp_path: Path) -> Path:
    (tmp_path / ".ssh").mkdir()
    fleet.write_known_hosts(tmp_path / ".ssh" / "known_hosts")
    return tmp_path


def inventory(fleet: Fleet, path: Path, args: str, *, jump_in_inventory: bool = False) -> Path:
    behind = fleet.by_kind("behind_jump")[0]
    jump = fleet.by_kind("jump")[0]
    lines = ["[linux]", f"{behind.name} ansible_host={behind.address} ansible_port={behind.port}"]
    if jump_in_inventory:
        lines += [f"bastion ansible_host=127.0.0.1 ansible_port={jump.port}"]
    lines += ["", "[linux:vars]", "ansible_user=kops"]
    lines += [f"ansible_ssh_private_key_file={fleet.client_key}", args]
    path.write_text("\n".join(lines) + "\n")
    return path


def detected(fleet: Fleet, home: Path, inv: Path) -> tuple[dict[str, str], str]:
    """Each host's detection status (a host with a product found exits 1), and stderr."""
    done = kremove("detect", "-i", str(inv), "--json", home=home)
    assert done.returncode in (0, 1), done.stderr
    doc = json.loads(done.stdout)
    return {h["host"]: h["status"] for h in doc["hosts"]}, done.stderr


def ansible_hostname(fleet: Fleet, home: Path, inv: Path) -> str:
    """What the real ``ansible -m raw -a hostname`` prints for the inventory. OpenSSH reads
    ~/.ssh from the passwd entry, not HOME, so the fleet's known_hosts and key come from an ssh
    config given with -F (which ssh passes on to the ProxyJump hop it starts)."""
    config = home / "ssh_config"
    config.write_text(
        f"Host *\n  UserKnownHostsFile {home / '.ssh' / 'known_hosts'}\n"
        f"  IdentityFile {fleet.client_key}\n  IdentitiesOnly yes\n  BatchMode yes\n"
    )
    env = {
        **os.environ,
        "HOME": str(home),
        "ANSIBLE_HOME": str(home / ".ansible"),
        "ANSIBLE_CONFIG": str(home / "no-ansible.cfg"),
        "ANSIBLE_SSH_ARGS": f"-F {config}",
        "ANSIBLE_NOCOLOR": "1",
    }
    argv = [str(BIN / "ansible"), "all", "-i", str(inv), "-m", "raw", "-a", "hostname"]
    done = subprocess.run(argv, cwd=home, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def through_jump(fleet: Fleet, behind: FleetHost, jump: FleetHost) -> bool:
    """kremove logged in on the jump host (which is not scanned itself) and the behind host,
    whose address only the jump host resolves, ran its commands."""
    logged_in = "Accepted publickey for kops" in fleet.sshd_log(jump.name)
    return logged_in and any("dpkg" in c for c in fleet.commands_log(behind.name))


@pytest.mark.parametrize(
    "args",
    [
        "ansible_ssh_common_args='-o ProxyJump=kops@127.0.0.1:{port}'",
        'ansible_ssh_common_args="-J kops@127.0.0.1:{port}"',
        "ansible_ssh_extra_args='-o ProxyCommand=\"ssh -W %h:%p -q -p {port} kops@127.0.0.1\"'",
    ],
)
def test_the_jump_in_ssh_args_is_followed_as_ansible_follows_it(
    fleet: Fleet, home: Path, args: str
) -> None:
    jump, behind = fleet.by_kind("jump")[0], fleet.by_kind("behind_jump")[0]
    inv = inventory(fleet, home / "hosts.ini", args.format(port=jump.port))
    found, stderr = detected(fleet, home, inv)
    assert found == {behind.name: "found"}
    assert through_jump(fleet, behind, jump)
    assert "warning" not in stderr
    if "ProxyCommand" not in args:  # that ssh would read root's own ~/.ssh, not the fleet's
        # The real Ansible, through the real ssh client, reaches the same host with these args.
        assert behind.name.replace("_", "-") in ansible_hostname(fleet, home, inv)
    fleet.reset()


def test_a_jump_named_as_an_inventory_host_is_that_host(fleet: Fleet, home: Path) -> None:
    jump, behind = fleet.by_kind("jump")[0], fleet.by_kind("behind_jump")[0]
    args = "ansible_ssh_common_args='-o ProxyJump=bastion'"
    inv = inventory(fleet, home / "hosts.ini", args, jump_in_inventory=True)
    found, _ = detected(fleet, home, inv)
    assert found == {behind.name: "found", "bastion": "clean"}
    assert through_jump(fleet, behind, jump)
    fleet.reset()


def test_arguments_not_followed_are_said_once_each_and_host_keys_stay_checked(
    fleet: Fleet, home: Path
) -> None:
    jump, behind = fleet.by_kind("jump")[0], fleet.by_kind("behind_jump")[0]
    args = (
        "ansible_ssh_common_args='-o ProxyJump=kops@127.0.0.1:{port} "
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -C -o ServerAliveInterval=5'"
    )
    inv = inventory(fleet, home / "hosts.ini", args.format(port=jump.port))
    (home / ".ssh" / "known_hosts").write_text("")  # no key known: StrictHostKeyChecking=no
    found, stderr = detected(fleet, home, inv)  # would have let it through
    assert found == {behind.name: "hostkey_rejected"}
    lines = [line for line in stderr.splitlines() if "warning" in line]
    assert len(lines) == 4, stderr
    assert sum("--accept-new-hostkeys" in line for line in lines) == 2
    assert any("StrictHostKeyChecking=no is not followed" in line for line in lines)
    assert any("'-C' is not understood" in line for line in lines)
    assert all(f"{inv}:" in line for line in lines)
    fleet.reset()


def test_a_proxycommand_kremove_cannot_follow_is_one_line_naming_file_and_host(
    fleet: Fleet, home: Path
) -> None:
    args = "ansible_ssh_common_args='-o ProxyCommand=\"nc -X 5 -x proxy:1080 %h %p\"'"
    inv = inventory(fleet, home / "hosts.ini", args)
    done = kremove("detect", "-i", str(inv), home=home)
    assert done.returncode == 2
    behind = fleet.by_kind("behind_jump")[0]
    assert done.stderr.count("\n") == 1
    assert f"{inv}:" in done.stderr and behind.name in done.stderr
    assert "ProxyCommand" in done.stderr and "not understood" in done.stderr
