"""Issue 19, items 1 to 5: Windows Uninstall entries of real fleets get the right catalog product.

Each case is a detection output in reg.exe's layout (test_windows_parser's ``document``) holding
one entry by its real display name; the parser must classify it as the catalog entry whose
removal route and password kind fit it. Before issue 19 the KSC 10 Network Agent was the
Administration Server, the console plug-ins and KAV 6.0 for Workstations were endpoints or
consumer products, and the renamed products ended the host as unknown Kaspersky.
"""

from __future__ import annotations

import fnmatch

import pytest

from orchestrator.engine import uninstall_passwords as pw
from orchestrator.errors import InventoryError
from orchestrator.inventory.model import Host, SecretRef, UninstallPassword
from orchestrator.playbook.loader import PlaybookSet, load_playbooks
from orchestrator.playbook.model import Catalog, Finding
from orchestrator.playbook.parsers.windows import UNKNOWN_KASPERSKY
from orchestrator.secrets import Secret
from tests.playbook.test_windows_parser import U32, document, entry, parse
from tests.playbook.test_windows_render import context, msi_finding, msiexec, render, run_line

KSC10_AGENT = "{BCF4CF24-88AB-45E1-A6E6-40C8278A70C5}"
OTHER_CODE = "{11111111-2222-4333-8444-555555555555}"  # in no catalog entry


@pytest.fixture(scope="module")
def playbooks() -> PlaybookSet:
    return load_playbooks()


@pytest.fixture(scope="module")
def catalog(playbooks: PlaybookSet) -> Catalog:
    return playbooks.catalog


def msi(name: str, code: str = OTHER_CODE) -> list[str]:
    return entry(
        U32,
        code,
        ("DisplayName", "REG_SZ", name),
        ("DisplayVersion", "REG_SZ", "10.3.407"),
        ("Publisher", "REG_SZ", "Kaspersky Lab"),
        ("UninstallString", "REG_EXPAND_SZ", f"MsiExec.exe /I{code}"),
        ("WindowsInstaller", "REG_DWORD", "0x1"),
    )


def classify(catalog: Catalog, name: str, code: str = OTHER_CODE) -> Finding:
    [found] = [f for f in parse(document(u32=msi(name, code)), catalog) if f.kind == "installed"]
    return found


CASES = [
    # item 1: the KSC 10-era agent, never the Administration Server
    ("Kaspersky Security Center 10 Network Agent", "klnagent"),
    ("Kaspersky Security Center Network Agent", "klnagent"),
    ("Agent d'administration de Kaspersky Security Center", "klnagent"),
    ("Kaspersky Security Center 10", "ksc-server"),
    ("Kaspersky Security Center 14.2", "ksc-server"),
    ("Kaspersky Security Center 10 Administration Server", "ksc-server"),
    # item 2: management plug-ins are console components
    ("Kaspersky Endpoint Security 10 for Windows Console Plug-in", "ksc-plugin"),
    ("Kaspersky Endpoint Security for Windows (11.7.0) Management Plug-in", "ksc-plugin"),
    ("Kaspersky Security 11 for Windows Server Administration Plug-in", "ksc-plugin"),
    ("Kaspersky Endpoint Security for Windows", "kes-windows"),
    # item 3: business Anti-Virus of the KSC 10 era, not the consumer product
    ("Kaspersky Anti-Virus 6.0 for Windows Workstations MP4", "kav-workstations"),
    ("Kaspersky Anti-Virus 6.0 for Windows File Servers", "kav-workstations"),
    ("Kaspersky Anti-Virus 8.0 for Windows Servers Enterprise Edition", "kav-servers-ee"),
    ("Kaspersky Anti-Virus", "kaspersky-consumer"),
    # item 4: names that ended a host as unknown Kaspersky
    ("Kaspersky Secure Connection", "kaspersky-vpn"),
    ("Kaspersky Free", "kaspersky-consumer"),
    ("Kaspersky Security for Windows Server", "ksws"),
    ("Kaspersky Network Agent", "klnagent"),
    ("Kaspersky Endpoint Sensor", "kea"),
    ("Kaspersky Security 9.0 for Microsoft Exchange Servers", "ks-exchange"),
    ("Kaspersky Security for Virtualization 5.1 Light Agent", "ksv-light-agent"),
]


@pytest.mark.parametrize(("name", "product"), CASES)
def test_each_name_gets_its_product(catalog: Catalog, name: str, product: str) -> None:
    found = classify(catalog, name)
    assert found.product == product, name
    assert found.product != UNKNOWN_KASPERSKY
    assert found.evidence["display_name"] == name


def test_the_ksc10_agent_is_known_by_its_product_code_too(catalog: Catalog) -> None:
    found = classify(catalog, "Network Agent 10.3.407", KSC10_AGENT)
    assert (found.product, found.evidence["product_code"]) == ("klnagent", KSC10_AGENT)


def test_server_patterns_never_catch_an_agent(catalog: Catalog) -> None:
    """Disjoint patterns: whatever follows "Kaspersky Security Center", no Administration Server
    pattern matches a name holding "Agent"."""
    server = catalog.products["ksc-server"].windows["display_names"]
    assert not [p for p in server if "*" in p]  # fixed shapes: none can hold "Agent"
    names = [
        f"Kaspersky Security Center {v}{sp} {what}"
        for v in ("10", "11", "12", "13", "13.2", "14", "14.2", "15")
        for sp in ("", " SP3")
        for what in ("Network Agent", "Agent", "Administration Server Network Agent")
    ]
    for name in names:
        assert not [p for p in server if fnmatch.fnmatchcase(name.casefold(), p.casefold())], name
        found = classify(catalog, name).product
        assert found != "ksc-server", name
        if name.endswith("Network Agent") and "Administration Server" not in name:
            assert found == "klnagent", name


def test_the_ksc10_agent_gets_its_own_password_property(playbooks: PlaybookSet) -> None:
    finding = msi_finding("klnagent", KSC10_AGENT)
    cmd = render(playbooks, "msiexec-uninstall", context(playbooks, finding, Secret("ab", "pw")))
    assert msiexec(cmd.text)[6:] == ["KLUNINSTPASSWD=61006200", "REBOOT=ReallySuppress"]


@pytest.mark.parametrize("product", ["ksc-plugin", "kea"])
def test_no_kes_properties_for_plugins_or_endpoint_agent(
    playbooks: PlaybookSet, product: str
) -> None:
    """Item 2 and 5: neither is KES; no source gives KEA a silent password property."""
    cmd = render(
        playbooks,
        "msiexec-uninstall",
        context(playbooks, msi_finding(product), Secret("Secret-1", "pw")),
    )
    args = msiexec(cmd.text)
    assert not [a for a in args if a.startswith(("KLLOGIN", "KLPASSWD", "KLUNINSTPASSWD"))]
    assert "Secret-1" not in cmd.text
    assert playbooks.catalog.products[product].windows["password"] == "none"


def test_business_antivirus_is_protected_and_ordered_as_an_endpoint(catalog: Catalog) -> None:
    kav = catalog.products["kav-workstations"]
    wsee = catalog.products["kav-servers-ee"]
    agent = catalog.products["klnagent"]
    for product in (kav, wsee):
        assert product.windows["password"] == "plain"
        assert product.windows["password_property"] == "KLUNINSTPASSWD"
        assert product.order < agent.order
        assert any("KLUNINSTPASSWD" in u for u in product.unconfirmed)
    assert list(kav.windows["services"]) == ["AVP"]
    assert list(wsee.windows["services"]) == ["kavfs"]


def test_ksws_stays_password_protected_with_its_unconfirmed_property(catalog: Catalog) -> None:
    ksws = catalog.products["ksws"]
    assert (ksws.windows["password"], ksws.windows["password_property"]) == (
        "plain",
        "UNLOCK_PASSWORD",
    )
    assert any("UNLOCK_PASSWORD" in u for u in ksws.unconfirmed)


@pytest.mark.parametrize(
    ("product", "route"),
    [("ks-exchange", "--install-mode=delete"), ("ksv-light-agent", "Uninstall application")],
)
def test_a_refused_product_names_its_route(
    playbooks: PlaybookSet, product: str, route: str
) -> None:
    """Item 4: refused by name, MSI entry or not: the failure reason is the documented route."""
    for finding in (
        msi_finding(product),
        msi_finding(product, windows_installer="0", uninstall_string="C:\\x\\setup.exe"),
    ):
        ctx = context(playbooks, finding)
        assert playbooks.renderer.evaluate(
            next(s for s in playbooks.playbooks["windows-remove"].steps if s.id == "not-msi").when
            or "",
            ctx,
            "not-msi",
        )
        text = render(playbooks, "not-msi", ctx).text
        command, _ = run_line(text, f">&2 echo kremove: {product}: the catalog says")
        assert route in command and command.endswith("which this playbook does not run")


def test_every_product_of_issue_19_cites_a_source(catalog: Catalog) -> None:
    for pid in (
        "ksc-plugin",
        "kav-workstations",
        "kav-servers-ee",
        "ks-exchange",
        "ksv-light-agent",
        "kea",
        "klnagent",
        "ksws",
    ):
        product = catalog.products[pid]
        assert product.sources and product.unconfirmed, pid


def running(name: str) -> list[str]:
    return [
        "",
        f"SERVICE_NAME: {name}",
        "        TYPE               : 10  WIN32_OWN_PROCESS",
        "        STATE              : 4  RUNNING",
        "        WIN32_EXIT_CODE    : 0  (0x0)",
        "        SERVICE_EXIT_CODE  : 0  (0x0)",
        "        CHECKPOINT         : 0x0",
        "        WAIT_HINT          : 0x0",
    ]


@pytest.mark.parametrize(
    ("name", "service", "product"),
    [
        ("Kaspersky Anti-Virus 6.0 for Windows Workstations MP4", "AVP", "kav-workstations"),
        (
            "Kaspersky Anti-Virus 8.0 for Windows Servers Enterprise Edition",
            "kavfs",
            "kav-servers-ee",
        ),
    ],
)
def test_a_service_another_product_also_names_is_accounted_for(
    catalog: Catalog, name: str, service: str, product: str
) -> None:
    """AVP is KES's and KAV 6.0's, kavfs KSWS's and KAV for Servers EE's: the running service of
    the installed one is that product's, not an unknown Kaspersky product."""
    doc = document(u32=msi(name), services=[service], sc=running(service))
    found = [(f.product, f.kind) for f in parse(doc, catalog)]
    assert (product, "installed") in found
    assert (UNKNOWN_KASPERSKY, "installed") not in found


def test_a_password_for_endpoint_agent_is_refused_naming_its_route(catalog: Catalog) -> None:
    """Item 5: KEA's password is its own (agent.exe --password=...), and no source names an
    msiexec property for it; a reference for it would be dropped while a protected KEA fails, so
    it is refused in one line with the vendor's route, before anything runs."""
    host = Host(
        name="w1",
        address="x",
        transport="winrm",
        uninstall_passwords={"kea": UninstallPassword(SecretRef(env="KEA_PW"), "host w1", "a:3")},
    )
    with pytest.raises(InventoryError) as refused:
        pw.check_products([host], catalog)
    message = str(refused.value)
    assert "\n" not in message and "a:3" in message
    assert "uninstall password for 'kea', which takes none that kremove can pass" in message
    assert "agent.exe --password=reset" in message and "KSC policy" in message
    assert "KEA_PW" not in message.partition("which")[2]
    # Products whose password kremove passes keep their references.
    ok = Host(
        name="w2",
        address="x",
        transport="winrm",
        uninstall_passwords={
            p: UninstallPassword(SecretRef(env="PW"), "host w2", "")
            for p in ("kes-windows", "klnagent", "ksws", "kav-workstations", "*")
        },
    )
    pw.check_products([ok], catalog)
