"""CSV from an asset database: header, BOM, group separators, extra columns as vars."""

from __future__ import annotations

from orchestrator.inventory import load_inventories

from .conftest import FIXTURES, Write


def test_asset_export_with_bom_and_title_case() -> None:
    inventory = load_inventories([FIXTURES / "assets.csv"])
    rows = [
        (h.name, h.address, h.transport, h.platform, h.port, h.user, h.groups)
        for h in inventory.hosts.values()
    ]
    assert rows == [
        ("web01.example.org", "192.0.2.11", "ssh", "linux", 22, "deploy", ("dmz", "web")),
        ("web02.example.org", "192.0.2.12", "ssh", "linux", 22, "deploy", ("dmz", "web")),
        ("db01.example.org", "192.0.2.21", "ssh", "linux", 2222, "postgres", ("db",)),
        (
            "dc01.example.org",
            "198.51.100.10",
            "winrm",
            "windows",
            5986,
            "CORP\\kremove",
            ("servers", "windows"),
        ),
        ("printer.example.org", "printer.example.org", "ssh", None, 22, None, ()),
    ]
    assert inventory.hosts["db01.example.org"].vars == {
        "asset_tag": "A-2001",
        "owner": "Data, Storage",
    }
    assert inventory.hosts["printer.example.org"].vars == {"asset_tag": "A-9001"}
    assert inventory.hosts["db01.example.org"].source.endswith("assets.csv:4")
    assert inventory.hosts["dc01.example.org"].source.endswith("assets.csv:6")  # blank line 5
    assert inventory.groups["web"].hosts == ("web01.example.org", "web02.example.org")


def test_only_name_is_required(write: Write) -> None:
    path = write("hosts.csv", "name\nalpha.example.org\nbeta.example.org\n")
    assert list(load_inventories([path]).hosts) == ["alpha.example.org", "beta.example.org"]


def test_password_reference_columns(write: Write) -> None:
    path = write("hosts.csv", "name,password_env,become\nalpha.example.org,ALPHA_PW,yes\n")
    host = load_inventories([path]).hosts["alpha.example.org"]
    assert host.password is not None and host.password.env == "ALPHA_PW"
    assert host.become.enabled is True
