"""--limit: names, groups, globs, ~regex, !exclude, &intersect, @file; typos and no match fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories, select
from orchestrator.inventory.model import Inventory

from .conftest import FIXTURES

SITE = FIXTURES / "site.ini"


@pytest.fixture(scope="module")
def site() -> Inventory:
    return load_inventories([SITE])


def names(inventory: Inventory, limit: str | None) -> list[str]:
    return [host.name.removesuffix(".example.org") for host in select(inventory, limit, FIXTURES)]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("web02.example.org", ["web02"]),
        ("db", ["db1", "db3", "db5", "db-replica"]),
        ("app", ["web01", "web02", "web03", "web04", "web-canary", "api-a", "api-b", "api-c"]),
        ("dc01.example.org,db", ["db1", "db3", "db5", "db-replica", "dc01"]),  # inventory order
        ("web0*", ["web01", "web02", "web03", "web04"]),
        ("db?.example.org", ["db1", "db3", "db5"]),
        ("win*", ["dc01", "fs01"]),  # a glob matching a group name selects its members
        ("~(dc|fs)0[0-9]", ["dc01", "fs01"]),
        ("~api-[ab]", ["api-a", "api-b"]),
        ("linux,!app", ["db1", "db3", "db5", "db-replica"]),
        ("linux,!web*,!db?.example.org", ["api-a", "api-b", "api-c", "db-replica"]),
        ("app,&web", ["web01", "web02", "web03", "web04", "web-canary"]),
        ("&web,!web-canary.example.org", ["web01", "web02", "web03", "web04"]),
        ("!linux,!windows", ["bastion"]),
        ("linux:!app", ["db1", "db3", "db5", "db-replica"]),  # Ansible's colon form
        ("@retry.txt", ["web02", "db-replica"]),
        ("@retry.txt,&db", ["db-replica"]),
        ("all,!@retry.txt,&web", ["web01", "web03", "web04", "web-canary"]),
        (" web01.example.org , ", ["web01"]),
    ],
)
def test_patterns(site: Inventory, limit: str, expected: list[str]) -> None:
    assert names(site, limit) == expected


@pytest.mark.parametrize("limit", [None, "all", "*"])
def test_all(site: Inventory, limit: str | None) -> None:
    assert len(select(site, limit)) == len(site.hosts) == 15


def limit_error(inventory: Inventory, limit: str) -> str:
    with pytest.raises(InventoryError) as caught:
        select(inventory, limit, FIXTURES)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("limit", "fragment"),
    [
        ("web99", "--limit term 'web99' matches no host or group"),
        ("db,wbe", "--limit term 'wbe' matches no host or group"),
        ("linux,!dbb", "--limit term 'dbb' matches no host or group"),  # a typo must not include
        ("linux,&ap", "--limit term 'ap' matches no host or group"),
        ("~web[", "is not a valid regex"),
        ("!", "needs a name or pattern after !"),
        (",", "--limit is empty"),
        ("@missing.txt", "missing.txt: --limit @missing.txt: file not found"),
    ],
)
def test_errors(site: Inventory, limit: str, fragment: str) -> None:
    assert fragment in limit_error(site, limit)


@pytest.mark.parametrize("limit", ["zzz*", "web,&db", "linux,!all", "~nomatch"])
def test_empty_selection_says_how_to_list_hosts(site: Inventory, limit: str) -> None:
    message = limit_error(site, limit)
    assert message == (
        f"--limit {limit!r} selects no host from {SITE}; "
        f"run `kremove inventory check -i {SITE}` to list them"
    )


def test_at_file_with_an_unknown_host_names_its_line(site: Inventory, tmp_path: Path) -> None:
    (tmp_path / "retry").write_text("web01.example.org\n\nweb1.example.org\n", encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        select(site, "@retry", tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'retry'}:3: host 'web1.example.org' is not in the inventory; "
        "fix or remove the line"
    )


def test_a_group_with_no_hosts_is_not_a_typo(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("hosts: {h1: {}}\ngroups: {empty: {}}\n", encoding="utf-8")
    inventory = load_inventories([path])
    assert "selects no host" in limit_error(inventory, "empty")
