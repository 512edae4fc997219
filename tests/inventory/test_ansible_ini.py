"""Ansible INI: nested children, ranges, host-line literals, :vars strings and group precedence."""

from __future__ import annotations

from orchestrator.inventory import load_inventories
from orchestrator.inventory.model import Host

from .conftest import FIXTURES, Write


def site() -> dict[str, Host]:
    return dict(load_inventories([FIXTURES / "site.ini"]).hosts)


def test_ranges_expand_in_order_and_keep_zero_padding() -> None:
    assert list(site()) == [
        "bastion.example.org",
        "web01.example.org",
        "web02.example.org",
        "web03.example.org",
        "web04.example.org",
        "web-canary.example.org",
        "api-a.example.org",
        "api-b.example.org",
        "api-c.example.org",
        "db1.example.org",
        "db3.example.org",
        "db5.example.org",
        "db-replica.example.org",
        "dc01.example.org",
        "fs01.example.org",
    ]


def test_hosts_before_any_section_are_ungrouped() -> None:
    bastion = site()["bastion.example.org"]
    assert (bastion.address, bastion.user, bastion.port) == ("192.0.2.1", "jump", 22)
    assert bastion.groups == ("ungrouped",)
    assert bastion.vars == {"site": "berlin", "tier": "none"}


def test_child_group_vars_beat_parent_group_vars() -> None:
    web = site()["web01.example.org"]
    assert web.groups == ("linux", "app", "web")  # by depth: ancestors first
    assert web.user == "deploy"  # app (depth 2) over linux (depth 1)
    assert web.key_file == "/etc/kremove/keys/linux_ed25519"
    assert web.become.enabled is True  # "yes" from [web:vars] is a boolean for the field
    assert web.become.user == "appowner"
    assert web.address == "web01.example.org"
    assert web.vars == {
        "site": "berlin",
        "tier": "frontend",
        "ansible_python_interpreter": "/usr/bin/python3",  # unknown ansible_* kept as a var
        "http_port": "8080",  # :vars values stay text, as in Ansible
    }


def test_host_line_values_are_literals_and_beat_groups() -> None:
    canary = site()["web-canary.example.org"]
    assert (canary.address, canary.port) == ("192.0.2.99", 2201)
    assert canary.vars["canary"] is True
    api = site()["api-a.example.org"]
    assert api.user == "svc-api"  # quoted on the host line, over [app:vars]
    assert api.become.enabled is False


def test_port_from_host_pattern_and_stride_range() -> None:
    hosts = site()
    assert [hosts[f"db{n}.example.org"].port for n in (1, 3, 5)] == [5022, 5022, 5022]
    replica = hosts["db-replica.example.org"]
    assert (replica.address, replica.port, replica.user) == ("192.0.2.55", 2222, "ops")
    assert replica.become.enabled is True  # "True" from [db:vars]
    assert replica.vars["tier"] == "backend"


def test_winrm_group_defaults_to_windows_and_https_port() -> None:
    dc01, fs01 = site()["dc01.example.org"], site()["fs01.example.org"]
    assert (dc01.transport, dc01.platform, dc01.port) == ("winrm", "windows", 5986)
    assert (dc01.winrm.auth, dc01.winrm.scheme, dc01.winrm.cert_validation) == (
        "ntlm",
        "https",
        False,
    )
    assert dc01.shell_type == "powershell"
    assert dc01.user == "CORP\\svc-kremove"
    assert (fs01.winrm.scheme, fs01.winrm.auth, fs01.port) == ("http", "kerberos", 5985)


def test_groups_keep_direct_members_and_children() -> None:
    groups = load_inventories([FIXTURES / "site.ini"]).groups
    assert groups["app"].children == ("web", "api")
    assert groups["linux"].children == ("app", "db")
    assert groups["api"].hosts == ("api-a.example.org", "api-b.example.org", "api-c.example.org")
    assert groups["db"].vars == {"tier": "backend"}  # connection settings are not free vars


def test_a_host_in_two_groups_gets_both(write: Write) -> None:
    path = write(
        "hosts",
        """
        [web]
        shared.example.org
        [db]
        shared.example.org ansible_port=2222
        [db:vars]
        role=db
        """,
    )
    host = load_inventories([path]).hosts["shared.example.org"]
    assert (host.groups, host.port, host.vars) == (("db", "web"), 2222, {"role": "db"})


def test_several_ranges_in_one_name(write: Write) -> None:
    path = write("inv.ini", "[rack]\nr[1:2]-n[a:b].example.org\n")
    assert list(load_inventories([path]).hosts) == [
        "r1-na.example.org",
        "r1-nb.example.org",
        "r2-na.example.org",
        "r2-nb.example.org",
    ]
