"""Several -i files merge in order; only a real disagreement is an error, naming both places."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories

from .conftest import FIXTURES, Write


def test_identical_host_definitions_merge_their_groups() -> None:
    inventory = load_inventories([FIXTURES / "fleet.yml", FIXTURES / "extra.yml"])
    assert list(inventory.hosts)[-1] == "web03.example.org"
    web01 = inventory.hosts["web01.example.org"]
    assert web01.groups == ("canary", "linux", "web")
    assert web01.source.endswith("fleet.yml:11")  # the first definition
    assert inventory.groups["web"].hosts == (
        "web01.example.org",
        "web02.example.org",
        "web03.example.org",
    )
    assert inventory.hosts["web03.example.org"].vars["role"] == "web"
    assert inventory.sources == (str(FIXTURES / "fleet.yml"), str(FIXTURES / "extra.yml"))


def test_formats_mix(write: Write) -> None:
    ini = write("base.ini", "[web]\nweb01.example.org ansible_host=192.0.2.11\n")
    csv = write("extra.csv", "name,address,groups\nweb01.example.org,192.0.2.11,dmz\nnew,,\n")
    inventory = load_inventories([ini, csv])
    assert inventory.hosts["web01.example.org"].groups == ("dmz", "web")
    assert list(inventory.hosts) == ["web01.example.org", "new"]


def conflict(*paths: Path) -> str:
    with pytest.raises(InventoryError) as caught:
        load_inventories(list(paths))
    return str(caught.value)


def test_conflicting_host_across_files_names_both(write: Write) -> None:
    a = write("a.yml", "hosts:\n  web01:\n    address: 192.0.2.11\n")
    b = write("b.ini", "[web]\nweb01 ansible_host=192.0.2.99\n")
    message = conflict(a, b)
    assert message.startswith(f"{b}:2: host 'web01': field 'address': defined twice")
    assert f"'192.0.2.11' at {a}:3" in message and f"'192.0.2.99' at {b}:2" in message


def test_conflicting_group_vars_across_files_names_both(write: Write) -> None:
    a = write("a.ini", "[web]\nh1\n[web:vars]\nwave=1\n")
    b = write("b.yml", "all:\n  children:\n    web:\n      vars: {wave: '2'}\n")
    message = conflict(a, b)
    assert message.startswith(f"{b}:4: group 'web': field 'wave': var defined twice")
    assert f"{a}:4" in message and f"{b}:4" in message


def test_each_native_files_defaults_apply_to_its_own_hosts(write: Write) -> None:
    """A Linux and a Windows inventory, each with its own defaults, merge into one mixed fleet."""
    a = write("linux.yml", "defaults: {user: ops, transport: ssh}\nhosts: {h1: {}}\n")
    b = write("windows.yml", "defaults: {user: admin, transport: winrm}\nhosts: {w1: {}}\n")
    inv = load_inventories([a, b])
    assert (inv.hosts["h1"].user, inv.hosts["h1"].transport) == ("ops", "ssh")
    assert (inv.hosts["w1"].user, inv.hosts["w1"].transport, inv.hosts["w1"].port) == (
        "admin",
        "winrm",
        5986,
    )


def test_a_group_can_list_hosts_defined_in_an_earlier_file(write: Write) -> None:
    a = write("a.yml", "hosts: {h1: {}, h2: {}}\n")
    b = write("b.yml", "groups:\n  wave1: {hosts: [h2]}\n")
    assert load_inventories([a, b]).groups["wave1"].hosts == ("h2",)
