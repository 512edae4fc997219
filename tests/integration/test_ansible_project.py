"""Issue 18's acceptance: an Ansible project as a site keeps it, read as Ansible reads it, and a
removal wave from ``-i site/`` over every way it reaches hosts.

The project has an ansible.cfg (the inventory, remote_user, private_key_file, the vault password
file) and a site directory: an extensionless YAML inventory (``site/production``), group_vars as
files and as a directory, host_vars as files and as a directory, a vaulted become password, a
ProxyJump in ``ansible_ssh_common_args``, a WinRM host on port 5985 with no scheme, and a dynamic
inventory script that adds a Windows host reached over OpenSSH (``ansible_shell_type=cmd``).

1. Host for host, kremove resolves the site to what the real ``ansible-inventory --list``
   resolves: address, port, user, become, jump, WinRM scheme and auth (Ansible's connection
   rules applied to its variables: remote_user where no ansible_user, http on 5985, NTLM).
2. ``kremove run -i site/`` removes Kaspersky from the SSH fleet (through sudo with the vaulted
   password, through the jump host), the WinRM test host and the Windows host over OpenSSH.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove
from tests.fleet.fleet import SUDO_PASSWORD_ENV, Fleet
from tests.fleet.winrm_host.fleet import PASSWORD_ENV as WINRM_PASSWORD_ENV
from tests.fleet.winrm_host.fleet import WinrmFleet
from tests.integration.relay import relay
from tests.inventory.ansible_compare import ansible_list
from tests.inventory.ansible_tools import encrypt_string, password_file

SSH_KINDS = {
    "one_product": 1,
    "sudo_password": 1,
    "jump": 1,
    "behind_jump": 1,
    "windows_openssh": 1,
}
WINRM_ADDRESS = "127.0.0.3"  # where the site's WinRM host answers on 5985 (a relay)


@pytest.fixture(scope="module")
def fleets(
    fleet_factory: Callable[..., Fleet], winrm_fleet_factory: Callable[..., WinrmFleet]
) -> tuple[Fleet, WinrmFleet]:
    return fleet_factory(SSH_KINDS), winrm_fleet_factory({"kes_and_agent": 1})


@pytest.fixture
def project(fleets: tuple[Fleet, WinrmFleet], tmp_path: Path) -> Iterator[Path]:
    ssh, winrm = fleets
    with relay(WINRM_ADDRESS, 5985, winrm.hosts[0].http_port):
        yield write_project(tmp_path, ssh, winrm)
    ssh.reset()
    winrm.reset()


def by_kind(fleet: Fleet, kind: str) -> Any:
    return fleet.by_kind(kind)[0]


def write_project(root: Path, ssh: Fleet, winrm: WinrmFleet) -> Path:
    password_file(root, "vault-pass", "the-site-vault-password")
    vault = ("--vault-password-file", str(root / "vault-pass"))  # before ansible.cfg names it too
    become = encrypt_string(root, ssh.env[SUDO_PASSWORD_ENV], "ansible_become_password", *vault)
    (root / "ansible.cfg").write_text(
        "[defaults]\n"
        "inventory = site\n"
        "remote_user = kops\n"
        f"private_key_file = {ssh.client_key}\n"
        "vault_password_file = vault-pass\n"
    )
    site = root / "site"
    for folder in ("group_vars/linux", "host_vars"):
        (site / folder).mkdir(parents=True)
    product, sudo, jump, behind = (
        by_kind(ssh, k) for k in ("one_product", "sudo_password", "jump", "behind_jump")
    )
    windows_ssh = by_kind(ssh, "windows_openssh")
    (site / "production").write_text(
        "all:\n"
        "  children:\n"
        "    linux:\n"
        "      hosts:\n"
        f"        {product.name}:\n"
        f"          ansible_host: {product.address}\n"
        f"          ansible_port: {product.port}\n"
        f"        {sudo.name}:\n"
        f"        {jump.name}:\n"
        f"          ansible_host: {jump.address}\n"
        f"          ansible_port: {jump.port}\n"
        f"        {behind.name}:\n"
        "    windows:\n"
        "      hosts:\n"
        f"        {winrm.hosts[0].name}:\n"
        f"          ansible_host: {WINRM_ADDRESS}\n"
        "          ansible_port: 5985\n"
    )
    (site / "group_vars" / "all.yml").write_text("site_name: headquarters\n")
    (site / "group_vars" / "linux" / "main.yml").write_text("patch_window: sunday\n")
    (site / "group_vars" / "windows.yml").write_text(
        "ansible_connection: winrm\n"
        "ansible_user: kops\n"
        f"ansible_password: \"{{{{ lookup('env', '{WINRM_PASSWORD_ENV}') }}}}\"\n"
    )
    (site / "host_vars" / f"{sudo.name}.yml").write_text(
        f"ansible_host: {sudo.address}\nansible_port: {sudo.port}\n{become}"
    )
    behind_vars = site / "host_vars" / behind.name
    behind_vars.mkdir()
    (behind_vars / "connection.yml").write_text(
        f"ansible_host: {behind.address}\n"
        f"ansible_port: {behind.port}\n"
        f"ansible_ssh_common_args: '-o ProxyJump=kops@{jump.address}:{jump.port}'\n"
    )
    listing = {
        "windows_ssh": {
            "hosts": [windows_ssh.name],
            "vars": {"ansible_connection": "ssh", "ansible_shell_type": "cmd"},
        },
        "_meta": {
            "hostvars": {
                windows_ssh.name: {
                    "ansible_host": windows_ssh.address,
                    "ansible_port": windows_ssh.port,
                }
            }
        },
    }
    script = site / "windows_ssh.py"
    script.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"print(json.dumps({listing!r}) if sys.argv[1:] == ['--list'] else '{{}}')\n"
    )
    script.chmod(0o755)
    (root / ".ssh").mkdir()
    return root


def ansible_view(project: Path) -> dict[str, dict[str, Any]]:
    """What Ansible connects with, per host: its --list variables and its connection rules."""
    listing = ansible_list(project, "-i", "site", config=project / "ansible.cfg")
    hosts = {}
    for name, hv in listing["_meta"]["hostvars"].items():
        connection = hv.get("ansible_connection", "ssh")
        port = int(hv.get("ansible_port", 5986 if connection == "winrm" else 22))
        args = shlex.split(hv.get("ansible_ssh_common_args", ""))
        jump = next((a.split("=", 1)[1] for a in args if a.startswith("ProxyJump=")), None)
        winrm = None
        if connection == "winrm":  # the winrm plugin: http on 5985 unless told, NTLM here
            scheme = hv.get("ansible_winrm_scheme", "http" if port == 5985 else "https")
            winrm = (scheme, hv.get("ansible_winrm_transport", "ntlm"))
        hosts[name] = {
            "address": hv.get("ansible_host", name),
            "port": port,
            "user": hv.get("ansible_user", "kops"),  # ansible.cfg's remote_user
            "become": bool(hv.get("ansible_become", False)),
            "jump": jump,
            "winrm": winrm,
            "windows": connection == "winrm" or hv.get("ansible_shell_type") == "cmd",
        }
    return hosts


def kremove_view(project: Path) -> dict[str, dict[str, Any]]:
    done = kremove("inventory", "check", "-i", "site", "--json", cwd=project, home=project)
    assert done.returncode == 0, done.stderr
    hosts = {}
    for h in json.loads(done.stdout)["hosts"]:
        hosts[h["name"]] = {
            "address": h["address"],
            "port": h["port"],
            "user": h["user"] or "kops",  # ansible.cfg's remote_user, applied where it is used
            "become": h["become"]["enabled"],
            "jump": h.get("proxy_jump"),
            "winrm": (h["winrm"]["scheme"], h["winrm"]["auth"]) if h["winrm"] else None,
            "windows": h["platform"] == "windows",
        }
    return hosts


def test_the_site_resolves_host_for_host_as_ansible_inventory_does(
    fleets: tuple[Fleet, WinrmFleet], project: Path
) -> None:
    ssh, winrm = fleets
    theirs, ours = ansible_view(project), kremove_view(project)
    assert set(ours) == {*(h.name for h in ssh.hosts), winrm.hosts[0].name}
    assert ours == theirs
    behind, windows_ssh = by_kind(ssh, "behind_jump"), by_kind(ssh, "windows_openssh")
    assert ours[behind.name]["jump"] is not None
    assert ours[winrm.hosts[0].name]["winrm"] == ("http", "ntlm")
    assert ours[windows_ssh.name]["windows"] is True


def test_a_wave_from_the_site_directory_removes_over_every_way_in(
    fleets: tuple[Fleet, WinrmFleet], project: Path
) -> None:
    ssh, winrm = fleets
    env = {WINRM_PASSWORD_ENV: winrm.env[WINRM_PASSWORD_ENV]}
    done = kremove("run", "-i", "site/", "--accept-new-hostkeys", "--yes", "--json",
                   cwd=project, home=project, env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    statuses = {h["host"]: h["status"] for h in json.loads(done.stdout)["hosts"]}
    expected = {h.name: "removed" for h in ssh.hosts} | {winrm.hosts[0].name: "removed"}
    expected[by_kind(ssh, "jump").name] = "clean"
    assert statuses == expected
    for kind in ("one_product", "sudo_password", "behind_jump"):
        assert ssh.kaspersky_packages(by_kind(ssh, kind).name) == {}, kind
    assert ssh.windows.kaspersky_products(by_kind(ssh, "windows_openssh").name) == {}
    assert winrm.kaspersky_products(winrm.hosts[0].name) == {}
    secrets = [*ssh.secrets, *winrm.secrets, "the-site-vault-password"]
    assert not [s for s in secrets if s in done.stdout + done.stderr]
