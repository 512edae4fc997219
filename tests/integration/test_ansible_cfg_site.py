"""An Ansible project as its operators keep it, on the SSH fleet: ansible.cfg names the inventory
(a directory), the login (remote_user) and its key (private_key_file); the inventory is an
extensionless INI file whose hosts get their address and port from host_vars/ and a variable
from group_vars/. kremove is given none of it on the command line — no -i, -u or --private-key —
and must reach every host as kops with that key. The same ansible.cfg switches host key checks
off: kremove says so once and checks them all the same."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli_runner import OWN_SETTINGS, kremove
from tests.fleet.fleet import Fleet

KINDS = {"one_product": 1, "clean": 1}
NO_ANSIBLE = (*OWN_SETTINGS, "ANSIBLE_")


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(KINDS)


@pytest.fixture
def project(fleet: Fleet, tmp_path: Path) -> Iterator[Path]:
    """The operator's home is the project: ansible.cfg, site/ (hosts, group_vars, host_vars)."""
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\n"
        "inventory = site\n"
        "remote_user = kops\n"
        f"private_key_file = {fleet.client_key}\n"
        "host_key_checking = False\n"
    )
    site = tmp_path / "site"
    (site / "group_vars").mkdir(parents=True)
    (site / "host_vars").mkdir()
    (site / "hosts").write_text("[linux]\n" + "".join(f"{h.name}\n" for h in fleet.hosts))
    (site / "group_vars" / "linux.yml").write_text("site_name: berlin\n")
    for h in fleet.hosts:
        vars_file = site / "host_vars" / h.name / "address.yml"
        vars_file.parent.mkdir()
        vars_file.write_text(f"ansible_host: {h.address}\nansible_port: {h.port}\n")
    tmp_path.chmod(0o755)
    (tmp_path / ".ssh").mkdir()
    yield tmp_path
    fleet.reset()


def plan(project: Path) -> tuple[dict[str, dict[str, object]], str]:
    done = kremove("plan", "--json", cwd=project, home=project, strip=NO_ANSIBLE)
    assert done.returncode in (0, 1), done.stderr
    return {h["host"]: h for h in json.loads(done.stdout)["hosts"]}, done.stderr


def test_the_project_is_reached_from_ansible_cfg_alone(fleet: Fleet, project: Path) -> None:
    # host_key_checking = False is not followed: unknown keys are still refused
    hosts, stderr = plan(project)
    assert {h["status"] for h in hosts.values()} == {"hostkey_rejected"}
    warnings = [line for line in stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "host_key_checking = False is not followed" in warnings[0]
    assert f"{project / 'ansible.cfg'}:5:" in warnings[0] and "--accept-new-hostkeys" in warnings[0]
    assert f"(from {project / 'ansible.cfg'}:2: [defaults] inventory)" in stderr
    # with the keys known, every host is reached as kops with the configured key
    fleet.write_known_hosts(project / ".ssh" / "known_hosts")
    hosts, _ = plan(project)
    expected = {h.name: "planned" if h.kind == "one_product" else "clean" for h in fleet.hosts}
    assert {name: h["status"] for name, h in hosts.items()} == expected
    assert {h["privilege"]["login"] for h in hosts.values()} == {"kops"}  # type: ignore[index]


def test_run_takes_the_inventory_from_ansible_cfg_too(fleet: Fleet, project: Path) -> None:
    fleet.write_known_hosts(project / ".ssh" / "known_hosts")
    done = kremove("run", "--yes", "--json", cwd=project, home=project, strip=NO_ANSIBLE)
    assert done.returncode == 0, done.stderr
    assert f"(from {project / 'ansible.cfg'}:2: [defaults] inventory)" in done.stderr
    statuses = {h["host"]: h["status"] for h in json.loads(done.stdout)["hosts"]}
    assert statuses == {h.name: "removed" if h.kind == "one_product" else "clean" for h in
                        fleet.hosts}  # fmt: skip
    assert all(fleet.kaspersky_packages(h.name) == {} for h in fleet.hosts)
