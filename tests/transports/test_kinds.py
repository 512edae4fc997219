"""The table of transports: every layer reads it, and a new kind is one module and one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.engine import record
from orchestrator.engine.prepare import host_platform
from orchestrator.errors import InputError, InventoryError
from orchestrator.inventory.loader import load_inventories
from orchestrator.inventory.model import Host, SecretRef
from orchestrator.ledger import Ledger
from orchestrator.secrets import SecretStore
from orchestrator.transports import kinds
from orchestrator.transports.base import Deadline
from orchestrator.transports.connector import Connector, PoolSetup
from tests.transports import kind_example

ECHO = kinds.Kind("echo", "tests.transports.kind_example", 7, platform="macos")


@pytest.fixture
def with_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kinds, "KINDS", {**kinds.KINDS, "echo": ECHO})


def test_every_kind_names_a_module_that_opens_its_pool() -> None:
    for kind in kinds.KINDS.values():
        module = __import__(kind.module, fromlist=["open_pool"])
        pool = module.open_pool(PoolSetup(SecretStore()))
        host = Host(
            name="h",
            address="127.0.0.1",
            transport=kind.name,
            port=kind.default_port,
            user="u",
            password=SecretRef(env="UNUSED"),
        )
        assert type(pool.transport(host)).name == kind.name
        pool.close()


def test_the_inventory_takes_names_aliases_ports_and_platforms_from_the_table(
    tmp_path: Path, with_echo: None
) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text(
        "a ansible_host=127.0.0.1 ansible_connection=echo\nb ansible_connection=smart\n"
    )
    inventory = load_inventories([path])
    a, b = inventory.hosts["a"], inventory.hosts["b"]
    assert (a.transport, a.port, a.platform, host_platform(a)) == ("echo", 7, "macos", "macos")
    assert (b.transport, b.port, b.platform, host_platform(b)) == ("ssh", 22, None, "linux")
    path.write_text("c ansible_connection=telnet\n")
    with pytest.raises(InventoryError, match="use one of: ssh, winrm, psrp, local, echo"):
        load_inventories([path])


def test_a_new_kind_is_opened_only_when_a_host_uses_it_and_its_notes_reach_the_ledger(
    tmp_path: Path, with_echo: None
) -> None:
    kind_example.opened.clear()
    local = Host(name="l", address="localhost", transport="local")
    Connector.open(PoolSetup(SecretStore()), [local]).close()
    assert kind_example.opened == []  # not imported for nothing

    echo = Host(name="e", address="127.0.0.1", transport="echo", port=7)
    connector = Connector.open(PoolSetup(SecretStore()), [local, echo])
    assert connector.pools["echo"].ready_for == ["e"]  # type: ignore[attr-defined]
    with Ledger.open(tmp_path / "state" / "ledger.db") as ledger:
        run_id = ledger.start_run(
            kind="detect",
            operator="t",
            command_line="kremove detect",
            inventory_digest="x",
            playbook_version="1",
            hosts=["e"],
            meta={},
        )
        record.watch_notes(ledger, run_id, connector)
        with connector.for_host(echo) as transport:
            transport.connect(Deadline(5))
            assert transport.run("hello", Deadline(5)).stdout == "hello"
        events = ledger.get_run(run_id).events
    assert [(e.host, e.kind, e.detail) for e in events if e.kind == "echo_connected"] == [
        ("e", "echo_connected", {"port": 7})
    ]


def test_a_host_whose_transport_is_not_in_the_table_is_refused_up_front() -> None:
    odd = Host(name="x", address="127.0.0.1", transport="telnet", source="inv.yml:3")
    with pytest.raises(
        InputError, match=r"transport 'telnet' is not supported.*ssh, winrm, psrp, local"
    ):
        Connector.open(PoolSetup(SecretStore()), [odd])
