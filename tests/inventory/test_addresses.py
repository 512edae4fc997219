"""H1: an address kremove would dial or look up must be a host name or an IP address.

The address (the host's name when none is given) reaches ``~/.ssh/config`` lookups, sockets and
WinRM URLs; shell or URL syntax in it is refused as an input error naming the file and line, in
every inventory format, before anything connects.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories
from tests.cli_runner import kremove

from .conftest import Write

ROOT = Path(__file__).resolve().parents[2]

# (file name, content, fragments of the one-line message, location first)
BAD = [
    (
        "n.yml",
        "hosts:\n  web1:\n    address: \"x';touch /tmp/p;'\"\n",
        ["n.yml:3: host 'web1': address \"x';touch /tmp/p;'\" is not a host name or IP address"],
    ),
    (
        "n.yml",
        "hosts:\n  ok: {}\n  \"x';touch${IFS}p;'\": {}\n",
        ["n.yml:3: host \"x';touch${IFS}p;'\": address", "the host's name", "set address"],
    ),
    ("n.yml", "hosts:\n  web1: {address: -oProxyCommand=id}\n", ["n.yml:2:", "'-oProxyCommand"]),
    ("n.yml", "hosts:\n  w: {transport: winrm, address: 'h/x?y='}\n", ["n.yml:2:", "'h/x?y='"]),
    ("n.yml", "hosts:\n  web1: {address: 'fe80::1%eth0'}\n", ["n.yml:2:", "zone"]),
    (
        "n.yml",
        "defaults:\n  address: 'a b'\nhosts:\n  web1: {}\n",
        ["n.yml:2: host 'web1': address 'a b'"],
    ),
    ("a.ini", "[web]\nweb1 ansible_host=$(id)\n", ["a.ini:2: host 'web1': address '$(id)'"]),
    ("a.ini", "[web]\nok\nweb`id`\n", ["a.ini:3: host 'web`id`': address"]),
    (
        "a.yml",
        "all:\n  hosts:\n    web1:\n      ansible_host: 'a|id'\n",
        ["a.yml:4: host 'web1': address 'a|id'"],
    ),
    ("c.csv", "name,address\nweb1,a&&id\n", ["c.csv:2: host 'web1': address 'a&&id'"]),
    ("c.csv", "name,address\nweb1,a..b\n", ["c.csv:2:", "'a..b'"]),
]


@pytest.mark.parametrize(("name", "content", "fragments"), BAD)
def test_an_address_that_is_not_a_host_name_or_ip_is_one_located_line(
    write: Write, name: str, content: str, fragments: list[str]
) -> None:
    path = write(name, content)
    with pytest.raises(InventoryError) as caught:
        load_inventories([path])
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message
    assert message.startswith(f"{path.parent}/{fragments[0]}")
    for fragment in fragments[1:]:
        assert fragment in message


GOOD = [
    "web1",
    "web-01.example.org",
    "WEB_01.Example.ORG.",
    "localhost",
    "10.0.0.1",
    "127.0.0.1",
    "::1",
    "2001:db8::5",
    "::ffff:192.0.2.1",
    "xn--bcher-kva.example",
    "behind-jump.invalid",
]


@pytest.mark.parametrize("address", GOOD)
def test_host_names_and_ip_addresses_are_accepted(address: str) -> None:
    from orchestrator.inventory.addresses import is_address

    assert is_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "-x",
        "a b",
        "a;b",
        "a'b",
        "a$b",
        "a/b",
        "a:b",
        "[::1]",
        "fe80::1%eth0",
        "a..b",
        ".a",
        "a.-b",
        "bücher.example",
        "a" * 64 + ".example",
        ".".join(["a" * 60] * 5),
        "x\n",
    ],
)
def test_everything_else_is_refused(address: str) -> None:
    from orchestrator.inventory.addresses import is_address

    assert not is_address(address)


def test_a_local_host_is_not_dialled_so_its_name_is_free(write: Write) -> None:
    inv = load_inventories([write("l.yml", "hosts:\n  'ctl+1': {transport: local}\n")])
    assert inv.hosts["ctl+1"].address == "ctl+1"


def test_every_shipped_inventory_still_loads() -> None:
    shipped = sorted((ROOT / "inventories").iterdir())
    fixtures = sorted((ROOT / "tests" / "fixtures" / "inventory").glob("*"))
    loaded = 0
    for path in [*shipped, *fixtures]:
        if path.suffix not in (".yml", ".yaml", ".ini", ".csv") or "bad" in path.name:
            continue
        try:
            load_inventories([path])
        except InventoryError as exc:
            assert "is not a host name or IP address" not in str(exc), exc
            continue
        loaded += 1
    assert loaded >= len(shipped)


def test_inventory_check_exits_2_with_the_one_line(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yml"
    path.write_text("hosts:\n  web1:\n    address: \"x';touch /tmp/p;'\"\n")
    done = kremove("inventory", "check", "-i", str(path), cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{path}:3: host 'web1': address" in lines[0], done.stderr
    assert done.stdout == ""
