"""Ansible YAML: all/children/hosts/vars, ranges in host keys, null hosts, typed vars."""

from __future__ import annotations

from orchestrator.inventory import load_inventories

from .conftest import FIXTURES, Write


def test_site_yaml_resolves_like_ansible() -> None:
    inventory = load_inventories([FIXTURES / "site.yml"])
    hosts = inventory.hosts
    assert list(hosts) == [
        "bastion.example.org",
        "web1.example.org",
        "web2.example.org",
        "web3.example.org",
        "web-canary.example.org",
        "db1.example.org",
        "db2.example.org",
        "dc01.example.org",
    ]
    assert hosts["bastion.example.org"].address == "192.0.2.1"
    assert hosts["bastion.example.org"].groups == ()
    assert hosts["web2.example.org"].groups == ("linux", "web")
    assert hosts["web2.example.org"].user == "ops"
    assert hosts["web2.example.org"].become.enabled is True
    assert hosts["web2.example.org"].vars == {"site": "berlin", "http_port": 8080}
    canary = hosts["web-canary.example.org"]
    assert (canary.address, canary.port, canary.vars["canary"]) == ("192.0.2.99", 2201, True)
    db1, db2 = hosts["db1.example.org"], hosts["db2.example.org"]
    assert (db1.port, db1.user, db2.port) == (5022, "postgres", 22)
    assert db2.vars["backup"] == {"window": "02:00-04:00", "keep": ["daily", "weekly"]}
    dc01 = hosts["dc01.example.org"]
    assert (dc01.transport, dc01.platform, dc01.port) == ("winrm", "windows", 5986)
    assert dc01.winrm.auth == "kerberos"
    assert dc01.winrm.ca_trust_path == "/etc/pki/corp-ca.pem"
    assert inventory.groups["all"].children == ("linux", "windows")
    assert inventory.groups["linux"].children == ("web", "db")


def test_top_level_groups_other_than_all_and_anchors(write: Write) -> None:
    path = write(
        "inv.yaml",
        """
        web:
          hosts:
            web[01:02].example.org: &common
              ansible_user: admin
              ansible_port: 2200
            web03.example.org:
              <<: *common
              ansible_port: 22
        """,
    )
    hosts = load_inventories([path]).hosts
    assert [(h.name, h.user, h.port, h.groups) for h in hosts.values()] == [
        ("web01.example.org", "admin", 2200, ("web",)),
        ("web02.example.org", "admin", 2200, ("web",)),
        ("web03.example.org", "admin", 22, ("web",)),
    ]


def test_host_with_port_suffix(write: Write) -> None:
    path = write("inv.yml", "all:\n  hosts:\n    192.0.2.7:2222:\n")
    host = load_inventories([path]).hosts["192.0.2.7"]
    assert (host.address, host.port) == ("192.0.2.7", 2222)
