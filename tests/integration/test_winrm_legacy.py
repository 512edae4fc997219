"""Issue 19, items 1 to 5, over WinRM: the names of a KSC 10-era fleet end where they belong.

The hosts (tests/fleet/winrm_host/legacy.py) carry the real display names: the KSC 10 Network
Agent (whose uninstall needs KLUNINSTPASSWD) beside KES 10, the KES 10 console plug-in beside the
Administration Console, KAV 6.0 for Workstations and KAV 8.0 for Windows Servers EE (protected),
the Administration Kit's agent, Kaspersky Free, Secure Connection and Endpoint Sensor, and a
server with an unversioned KSWS, KS for Exchange and the KSV Light Agent. Before issue 19 the
agent was removed as an Administration Server without its password (1603) and the renamed
products stopped their hosts as unknown Kaspersky.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove
from tests.fleet.winrm_host import legacy
from tests.fleet.winrm_host.fleet import UNINSTALL_PASSWORD_ENV, WinrmFleet

KINDS = {
    "ksc10_agent": 1,  # the practice fleet's
    "ksc10_agent_protected": 1,
    "console_plugins": 1,
    "legacy_business": 1,
    "legacy_server": 1,
    "renamed_products": 1,
    "refused_products": 1,
}
DETECTED = {
    "ksc10_agent": {"kes-windows", "klnagent"},
    "ksc10_agent_protected": {"kes-windows", "klnagent"},
    "console_plugins": {"ksc-console", "ksc-plugin"},
    "legacy_business": {"kav-workstations", "klnagent"},
    "legacy_server": {"kav-servers-ee"},
    "renamed_products": {"kaspersky-consumer", "kaspersky-vpn", "kea"},
    "refused_products": {"ksws", "ks-exchange", "ksv-light-agent"},
}
RUN = {kind: "removed" for kind in KINDS} | {"refused_products": "failed"}


def no_secrets(fleet: WinrmFleet, *texts: str) -> None:
    for text in texts:
        for secret in fleet.secrets:
            assert secret not in text


@pytest.fixture(scope="module")
def fleet(winrm_fleet_factory: Callable[..., WinrmFleet]) -> WinrmFleet:
    return winrm_fleet_factory(KINDS)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, fleet: WinrmFleet) -> Path:
    """kremove's home, holding the fleet's inventory (fleet.yml)."""
    return Path(fleet.write_inventory(tmp_path_factory.mktemp("winrm-legacy") / "fleet.yml")).parent


@pytest.fixture(scope="module")
def detected(fleet: WinrmFleet, home: Path) -> dict[str, dict[str, Any]]:
    done = kremove("detect", "-i", str(home / "fleet.yml"), "--json", home=home, env=fleet.env)
    no_secrets(fleet, done.stdout, done.stderr)
    return {h["host"]: h for h in json.loads(done.stdout)["hosts"]}


@pytest.fixture(scope="module")
def ran(fleet: WinrmFleet, home: Path, detected: dict[str, Any]) -> dict[str, dict[str, Any]]:
    done = kremove(
        "run", "-i", str(home / "fleet.yml"), "--yes", "--json",
        "--uninstall-password-env", UNINSTALL_PASSWORD_ENV, home=home, env=fleet.env,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # the refused host
    no_secrets(fleet, done.stdout, done.stderr)
    return {h["host"]: h for h in json.loads(done.stdout)["hosts"]}


def installed(host: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["product"]: f for f in host["findings"] if f["kind"] == "installed"}


def test_each_name_is_its_product_never_unknown(
    fleet: WinrmFleet, detected: dict[str, dict[str, Any]]
) -> None:
    for h in fleet.hosts:
        got = detected[h.name]
        assert set(installed(got)) == DETECTED[h.kind], h.name
        assert got["status"] == "found", h.name


def test_the_ksc10_agent_is_the_network_agent_not_a_server(
    fleet: WinrmFleet, detected: dict[str, dict[str, Any]]
) -> None:
    """Item 1: no Administration Server on a workstation; the agent is known as klnagent."""
    host = detected[fleet.by_kind("ksc10_agent_protected")[0].name]
    agent = installed(host)["klnagent"]
    assert agent["evidence"]["display_name"] == legacy.KSC10_AGENT_NAME
    assert agent["evidence"]["product_code"] == legacy.KSC10_AGENT_CODE
    assert not [f for f in host["findings"] if f["product"] == "ksc-server"]


def test_run_ends_each_host_as_its_products_allow(
    fleet: WinrmFleet, ran: dict[str, dict[str, Any]]
) -> None:
    assert {h.name: ran[h.name]["status"] for h in fleet.hosts} == {
        h.name: RUN[h.kind] for h in fleet.hosts
    }
    for kind in ("ksc10_agent_protected", "console_plugins", "legacy_business", "renamed_products"):
        name = fleet.by_kind(kind)[0].name
        assert not [n for n in fleet.products(name) if "Kaspersky" in n], name


def test_the_ksc10_agent_went_last_with_its_password(
    fleet: WinrmFleet, ran: dict[str, dict[str, Any]]
) -> None:
    name = fleet.by_kind("ksc10_agent_protected")[0].name
    calls = [e for e in fleet.log(name) if e["event"] == "msiexec"]
    assert [c["product_code"] for c in calls] == [legacy.KES10_CODE, legacy.KSC10_AGENT_CODE]
    assert "KLUNINSTPASSWD" in calls[1]["properties"]
    assert [c["exit_code"] for c in calls] == [0, 0]


def test_the_console_plugin_gets_no_endpoint_password(
    fleet: WinrmFleet, ran: dict[str, dict[str, Any]]
) -> None:
    """Item 2: a plug-in is a console component: no KLLOGIN/KLPASSWD reaches its msiexec."""
    name = fleet.by_kind("console_plugins")[0].name
    calls = {e["product_code"]: e for e in fleet.log(name) if e["event"] == "msiexec"}
    assert set(calls) == {legacy.PLUGIN10_CODE, legacy.CONSOLE10_CODE}
    for call in calls.values():
        assert not {"KLLOGIN", "KLPASSWD", "KLUNINSTPASSWD"} & set(call["properties"])


def test_business_antivirus_is_removed_with_its_password(
    fleet: WinrmFleet, ran: dict[str, dict[str, Any]]
) -> None:
    """Item 3: KAV 6.0 for Workstations and KAV 8.0 for Windows Servers EE are protected
    business products (the consumer entry sent no password: 1603)."""
    for kind, code in (("legacy_business", legacy.KAV6_CODE), ("legacy_server", legacy.WSEE_CODE)):
        name = fleet.by_kind(kind)[0].name
        [call] = [e for e in fleet.log(name) if e.get("product_code") == code]
        assert call["exit_code"] == 0 and "KLUNINSTPASSWD" in call["properties"]
    server = fleet.by_kind("legacy_server")[0].name
    assert "kavfs" not in fleet.state(server)["services"]


def test_a_refused_product_names_its_route_and_nothing_is_touched(
    fleet: WinrmFleet, ran: dict[str, dict[str, Any]]
) -> None:
    """Item 4: KS for Exchange is refused by name with its documented route; the host is
    neither clean nor removed, and nothing on it was removed (not even the unversioned KSWS)."""
    name = fleet.by_kind("refused_products")[0].name
    reason = ran[name]["reason"]
    assert "ks-exchange" in reason and "--install-mode=delete" in reason
    assert not [e for e in fleet.log(name) if e["event"] == "msiexec"]
    left = set(fleet.products(name))
    assert {legacy.EXCHANGE_NAME, "Kaspersky Security for Windows Server"} <= left
