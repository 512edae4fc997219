"""--limit: names, groups, globs, ~regex, !exclude, &intersect, @file; typos and no match fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories, select
from orchestrator.inventory.model import Inventory

from .ansible_tools import ansible
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
        ("dc01.example.org,db", ["dc01", "db1", "db3", "db5", "db-replica"]),  # Ansible's order
        ("web0*", ["web01", "web02", "web03", "web04"]),
        ("db?.example.org", ["db1", "db3", "db5"]),
        ("win*", ["dc01", "fs01"]),  # a glob matching a group name selects its members
        ("~(dc|fs)0[0-9]", ["dc01", "fs01"]),
        ("~api-[ab]", ["api-a", "api-b"]),
        ("linux,!app", ["db1", "db3", "db5", "db-replica"]),
        ("linux,!web*,!db?.example.org", ["db-replica", "api-a", "api-b", "api-c"]),
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
        ("zzz*", "--limit term 'zzz*' matches no host or group"),  # Ansible warns and ignores it
        ("~nomatch", "--limit term '~nomatch' matches no host or group"),
        ("~web[,", "is not a valid regex"),
        ("~web[", "--limit '~web[' has unbalanced brackets"),  # Ansible would drop the [
        ("web[x]", "matches no host or group; subscripts are [N], [-N], [N:M]"),
        ("!", "needs a name or pattern after !"),
        (",", "--limit is empty"),
        ("@missing.txt", "missing.txt: --limit @missing.txt: file not found"),
    ],
)
def test_errors(site: Inventory, limit: str, fragment: str) -> None:
    assert fragment in limit_error(site, limit)


@pytest.mark.parametrize("limit", ["web,&db", "linux,!all", "web[1:3],&web[0]"])
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


def test_at_file_lines_are_terms_as_in_ansible(site: Inventory, tmp_path: Path) -> None:
    """Each line of an @file is a term, as if the lines were joined with commas."""
    lines = ["# canaries first", "web-canary.example.org", "", "db[1:]", "!db5.example.org"]
    (tmp_path / "wave").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from_file = [host.name for host in select(site, "@wave", tmp_path)]
    joined = [host.name for host in select(site, "web-canary.example.org,db[1:],!db5.example.org")]
    assert (
        from_file
        == joined
        == [
            "web-canary.example.org",
            "db3.example.org",
            "db-replica.example.org",
        ]
    )


def limit_error_in(inventory: Inventory, limit: str, cwd: Path) -> str:
    with pytest.raises(InventoryError) as caught:
        select(inventory, limit, cwd)
    assert "\n" not in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize(
    ("limit", "text", "message"),
    [
        ("@f", "web*\nweb9*\n", "f:2: pattern 'web9*' is not in the inventory; fix or remove"),
        ("@f", "web\n!\n", "f:2: --limit term '!' needs a name or pattern after !"),
        ("all,!@f", "db\n!web\n", "f:2: with !@ each line is a plain name or pattern; move '!web'"),
        ("&@f", "db\ndbb\n", "f:2: host 'dbb' is not in the inventory; fix or remove the line"),
    ],
)
def test_at_file_errors_name_the_line(
    site: Inventory, tmp_path: Path, limit: str, text: str, message: str
) -> None:
    (tmp_path / "f").write_text(text, encoding="utf-8")
    assert limit_error_in(site, limit, tmp_path).startswith(f"{tmp_path}/{message}")


def test_at_a_directory_is_refused(site: Inventory, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    assert "--limit @d: give a file with one host or pattern a line" in limit_error_in(
        site, "@d", tmp_path
    )


def test_at_file_selects_the_hosts_ansible_limits_to(site: Inventory, tmp_path: Path) -> None:
    """``ansible all --limit @file`` (Ansible keeps the play's order under --limit; kremove the
    order of the file's terms, as for any pattern)."""
    (tmp_path / "retry").write_text("app[-1]\n~db[35]\nfs01.example.org\n", encoding="utf-8")
    listed = ansible(
        "ansible", "-i", str(SITE), "all", "--limit", "@retry", "--list-hosts", cwd=tmp_path
    )
    theirs = {line.strip() for line in listed.stdout.splitlines()[1:] if line.strip()}
    ours = [host.name for host in select(site, "@retry", tmp_path)]
    assert (
        set(ours)
        == theirs
        == {
            "api-c.example.org",
            "db3.example.org",
            "db5.example.org",
            "fs01.example.org",
        }
    )
    assert ours[0] == "api-c.example.org"
