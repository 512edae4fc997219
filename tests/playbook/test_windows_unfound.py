"""What Windows detection must not leave out (issue 19, items 7, 8, 9 and 11), on reg.exe and
sc.exe output in their exact layouts: versioned and newer Kaspersky drivers, live services and
drivers with no Uninstall entry, the Network Agent's InstallWIX_ key, per-user installs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from orchestrator.errors import PlaybookError
from orchestrator.playbook.catalog_guards import check_windows
from orchestrator.playbook.loader import load_playbooks
from orchestrator.playbook.model import Catalog
from orchestrator.playbook.parsers import ParseError
from tests.fleet.winrm_host.cmdexe import BufferSink, Cmd, Io
from tests.fleet.winrm_host.kinds import USER_CV, initial_state
from tests.fleet.winrm_host.kinds_detection import KES12_DRIVERS
from tests.fleet.winrm_host.windows import Machine
from tests.playbook.test_windows_parser import (
    AGENT,
    KES,
    SVC,
    U32,
    entry,
    fixture,
    installed,
    parse,
    residue,
)
from tests.playbook.test_windows_parser import document as doc
from tests.playbook.test_windows_render import applies, context, render, run_line

SID = "S-1-5-21-3623811015-3361044348-30300820-1001"
USER_ROOT = rf"HKEY_USERS\{SID}\Software\Microsoft\Windows\CurrentVersion\Uninstall"
VPN = "{5C3E2A61-8C3A-4F0E-9E27-6B1D0F4A9C11}"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_playbooks().catalog


def msi(root: str, code: str, name: str, version: str = "14.0.0.10902") -> list[str]:
    return entry(
        root,
        code,
        ("DisplayName", "REG_SZ", name),
        ("DisplayVersion", "REG_SZ", version),
        ("Publisher", "REG_SZ", "AO Kaspersky Lab"),
        ("UninstallString", "REG_EXPAND_SZ", f"MsiExec.exe /X{code}"),
        ("WindowsInstaller", "REG_DWORD", "0x1"),
    )


def sc(name: str, state: str, code: int = 4, kind: str = "1  KERNEL_DRIVER") -> list[str]:
    return [
        "",
        f"SERVICE_NAME: {name}",
        f"DISPLAY_NAME: {name}",
        f"        TYPE               : {kind}  ",
        f"        STATE              : {code}  {state} ",
        "        WIN32_EXIT_CODE    : 0  (0x0)",
    ]


KES_ENTRY = msi(U32, KES, "Kaspersky Endpoint Security for Windows", "12.4.0.467")
AGENT_ENTRY = msi(U32, AGENT, "Kaspersky Security Center Network Agent")


# -- item 7: driver and service names as patterns ------------------------------------------------

NEW_DRIVERS = [*KES12_DRIVERS, "klupd_klif_klark", "kltap", "klkbdflt2"]


def test_versioned_and_newer_drivers_are_found(catalog: Catalog) -> None:
    out = doc(u32=KES_ENTRY, services=[*NEW_DRIVERS, "Tcpip", "klservice_not_ours"])
    found = residue(parse(out, catalog))
    assert sorted(what for _, what in found) == sorted(
        f"{d} not loaded (registry key only)" for d in NEW_DRIVERS
    )
    assert all(product == "residue" for product, _ in found)


def test_the_catalog_names_its_sources_for_the_driver_patterns() -> None:
    text = (Path(__file__).resolve().parents[2] / "playbooks" / "catalog.yml").read_text()
    block = text.partition("    driver_services:")[0].rpartition("residue_registry:")[2]
    sources = [ln for ln in block.splitlines() if "[3rd-party] public script" in ln]
    for name in ("klbackupflt", "KLIF.KES-21-9", "klupd_KES-21-9_arkmon", "klkbdflt2", "kltap"):
        assert any(name in ln for ln in sources), name


@pytest.mark.parametrize("pattern", ["klupd_*", "KLIF*", "AVP?", "ksde*", "kesl-supervisor"])
def test_service_patterns_pass_the_guards(pattern: str) -> None:
    check_windows("driver_services", [pattern], "platforms.windows.driver_services", Path("c"))


@pytest.mark.parametrize(
    "pattern", ["*", "k*", "?*?", "kl&calc*", "kl%PATH%*", "kl*|x", "kl\\x*", "kl x", "kl[a]*"]
)
def test_service_patterns_that_could_act_or_take_everything_are_refused(pattern: str) -> None:
    with pytest.raises(PlaybookError, match="services") as caught:
        check_windows("services", [pattern], "products.x.windows.services", Path("c"))
    assert "\n" not in str(caught.value)


# -- item 8: live Kaspersky services and drivers without an Uninstall entry ----------------------


def test_a_running_driver_with_no_entry_is_a_product_not_residue(catalog: Catalog) -> None:
    out = doc(services=["klif", "Tcpip"], sc=sc("klif", "RUNNING") + sc("Tcpip", "RUNNING"))
    findings = parse(out, catalog)
    unfound = [f for f in findings if f.kind == "installed"]
    assert [(f.product, f.name) for f in unfound] == [
        ("unknown-kaspersky", "Kaspersky driver klif (RUNNING, no Uninstall entry)")
    ]
    assert unfound[0].evidence["service"] == "klif"
    assert unfound[0].evidence["state"] == "RUNNING"
    assert residue(findings) == []  # reported once, as what was found


def test_a_running_service_whose_product_has_no_entry_is_a_product(catalog: Catalog) -> None:
    # The Network Agent is installed; the AVP service runs with no KES entry anywhere.
    out = doc(u32=AGENT_ENTRY, services=["AVP", "klnagent"], sc=sc("AVP", "RUNNING", 4, "10"))
    findings = parse(out, catalog)
    assert [(f.product, f.evidence.get("service")) for f in findings if f.kind == "installed"] == [
        ("klnagent", None),
        ("unknown-kaspersky", "AVP"),
    ]
    assert ("klnagent", "klnagent not loaded (registry key only)") in residue(findings)


@pytest.mark.parametrize(
    ("state", "code", "flagged"),
    [("STOPPED", 1, False), ("STOP_PENDING", 3, False), ("RUNNING", 4, True)],
)
def test_a_driver_stopped_stopping_or_marked_for_deletion_is_residue(
    catalog: Catalog, state: str, code: int, flagged: bool
) -> None:
    listing = [f"{SVC}\\klif", "    DeleteFlag    REG_DWORD    0x1"] if flagged else [""]
    out = doc(services=["klif"], sc=sc("klif", state, code), deleteflag=(["", *listing], 0))
    findings = parse(out, catalog)
    assert installed(findings) == []
    assert residue(findings) == [("residue", f"klif {state}")]


def test_a_failed_deleteflag_query_marks_nothing(catalog: Catalog) -> None:
    out = doc(services=["klif"], sc=sc("klif", "RUNNING"), deleteflag=(["Access is denied."], 5))
    assert [f.product for f in parse(out, catalog) if f.kind == "installed"] == [
        "unknown-kaspersky"
    ]


def test_a_driver_still_running_whose_key_was_deleted_is_residue(catalog: Catalog) -> None:
    # An uninstaller that deletes the key itself: sc.exe lists the loaded driver until the reboot.
    findings = parse(doc(services=["Tcpip"], sc=sc("klif", "RUNNING")), catalog)
    assert installed(findings) == []
    assert residue(findings) == [("residue", "klif RUNNING")]


def test_live_drivers_of_an_installed_product_stay_residue(catalog: Catalog) -> None:
    findings = parse(fixture("workstation-en.txt"), catalog)
    assert not any("no Uninstall entry" in f.name for f in findings)
    after = parse(fixture("workstation-after-removal.txt"), catalog)
    assert installed(after) == []  # klif still loaded, but marked for deletion by the uninstall


# -- item 9: the Network Agent's InstallWIX_{GUID} key -------------------------------------------


def wix(code: str, name: str = "Kaspersky Security Center Network Agent") -> list[str]:
    return entry(
        U32,
        f"InstallWIX_{code}",
        ("DisplayName", "REG_SZ", name),
        ("DisplayVersion", "REG_SZ", "14.0.0.10902"),
        ("UninstallString", "REG_SZ", r'"C:\ProgramData\Package Cache\setup.exe" /uninstall'),
    )


def test_an_installwix_key_beside_its_msi_key_is_folded_into_it(catalog: Catalog) -> None:
    out = doc(u32=KES_ENTRY + wix(AGENT) + AGENT_ENTRY)
    assert installed(parse(out, catalog)) == [
        ("kes-windows", "12.4.0.467", KES, "32"),
        ("klnagent", "14.0.0.10902", AGENT, "32"),
    ]


def test_an_installwix_key_alone_is_taken_as_the_msi_of_its_guid(catalog: Catalog) -> None:
    findings = [f for f in parse(doc(u32=wix(AGENT.lower())), catalog) if f.kind == "installed"]
    assert [(f.product, f.evidence["product_code"]) for f in findings] == [("klnagent", AGENT)]
    assert findings[0].evidence["windows_installer"] == "1"
    assert findings[0].evidence["key"] == rf"{U32}\InstallWIX_{AGENT.lower()}"


# -- item 11: per-user installs in the loaded user hives -----------------------------------------

VPN_ENTRY = msi(USER_ROOT, VPN, "Kaspersky VPN Secure Connection", "21.14.5.462")


def test_a_per_user_install_is_found(catalog: Catalog) -> None:
    users = {"S-1-5-18": [], SID: ["", USER_ROOT, *VPN_ENTRY], f"{SID}_Classes": VPN_ENTRY}
    out = doc(users=users, services=["ksde5.14"], sc=sc("ksde5.14", "RUNNING", 4, "10"))
    findings = parse(out, catalog)
    found = [f for f in findings if f.kind == "installed"]
    assert [(f.product, f.version) for f in found] == [("kaspersky-vpn", "21.14.5.462")]
    evidence = found[0].evidence
    assert evidence["user_sid"] == SID and evidence["view"] == "user"
    assert evidence["key"] == rf"{USER_ROOT}\{VPN}"
    # Not for msiexec run by kremove's login: the removal refuses it before changing anything.
    assert "product_code" not in evidence
    assert residue(findings) == [("kaspersky-vpn", "ksde5.14 RUNNING")]


def test_the_removal_refuses_a_per_user_install_by_saying_so(catalog: Catalog) -> None:
    playbooks = load_playbooks()
    users = {SID: ["", USER_ROOT, *VPN_ENTRY]}
    [found] = [f for f in parse(doc(users=users), catalog) if f.kind == "installed"]
    ctx = context(playbooks, found)
    assert applies(playbooks, "not-msi", ctx) and not applies(playbooks, "msiexec-uninstall", ctx)
    text = render(playbooks, "not-msi", ctx).text
    message, redirects = run_line(text, ">&2 echo kremove: %KREMOVE_NAME%")
    assert redirects == [">&2"]
    assert message == (
        'echo kremove: "Kaspersky VPN Secure Connection" is installed for one user only; '
        "kremove's login cannot remove it with msiexec: remove it as that user"
    )
    key, _ = run_line(text, ">&2 echo kremove: kaspersky-vpn: registry key")
    assert USER_ROOT in key


def test_a_per_user_entry_of_a_machine_wide_product_is_that_product(catalog: Catalog) -> None:
    machine = msi(U32, VPN, "Kaspersky VPN Secure Connection", "21.14.5.462")
    found = parse(doc(u32=machine, users={SID: ["", USER_ROOT, *VPN_ENTRY]}), catalog)
    assert installed(found) == [("kaspersky-vpn", "21.14.5.462", VPN, "32")]


def test_default_and_classes_hives_are_not_read_twice(catalog: Catalog) -> None:
    root = USER_ROOT.replace(SID, ".DEFAULT")
    users = {".DEFAULT": ["", root, *msi(root, VPN, "Kaspersky VPN Secure Connection")]}
    assert installed(parse(doc(users=users), catalog)) == []


def test_a_user_uninstall_key_that_cannot_be_read_is_an_error(catalog: Catalog) -> None:
    out = doc(users={SID: ["", USER_ROOT]}).replace(
        f"==kremove:section useruninstall {SID}==\r\n\r\n{USER_ROOT}\r\n==kremove:rc 0==",
        f"==kremove:section useruninstall {SID}==\r\nERROR: Access is denied.\r\n==kremove:rc 1==",
    )
    with pytest.raises(ParseError, match="Access is denied"):
        parse(out, catalog)


@pytest.mark.parametrize("section", ["users", "deleteflag"])
def test_output_without_the_new_sections_is_an_error(catalog: Catalog, section: str) -> None:
    out = doc().replace(f"==kremove:section {section}==", "==kremove:section other==")
    with pytest.raises(ParseError, match=section):
        parse(out, catalog)


def test_hostile_hive_names_are_never_commands(tmp_path: Path) -> None:
    """The detection script on the WinRM test host's emulated cmd.exe: hive names holding cmd.exe
    syntax are FOR variables, substituted after the line was parsed, so nothing runs."""
    playbooks = load_playbooks()
    detect = playbooks.playbook_for("windows", "detect")
    assert detect is not None
    [inventory] = [s for s in detect.steps if s.id == "inventory"]
    script = playbooks.renderer.render(inventory.template, {"catalog": playbooks.catalog}).text
    state = initial_state("clean", "h", "kops", "pw")
    for hive in ("S-1-5-21-9&whoami.exe", 'x" & whoami.exe & rem "', "S-1-5-21-8%PATH%|whoami"):
        key = f"HKEY_USERS\\{hive}\\{USER_CV}\\Uninstall\\k"
        state["registry"][key] = {"DisplayName": ["REG_SZ", "Kaspersky Free"]}
    machine = Machine("h", state, tmp_path / "state.json", lambda *a, **k: None)
    calls: list[object] = []
    machine._p_whoami = lambda *args: calls.append(args) or 0  # type: ignore[method-assign]
    machine.write_file("C:\\Windows\\Temp\\detect.cmd", script.encode())

    class Proc:
        cancelled = threading.Event()
        codepage = 437

    out, err = BufferSink(), BufferSink()
    cmd = Cmd(machine, Proc(), machine.environment(), 437, machine.run_program)
    assert cmd.run_batch("C:\\Windows\\Temp\\detect.cmd", [], Io(out, err, b"")) == 0
    assert calls == [] and not err.data
    text = out.data.decode()
    assert "==kremove:section userkey S-1-5-21-9&whoami.exe==" in text
    findings = parse(text, playbooks.catalog)
    assert [f for f in findings if f.kind == "installed"] == []  # not SIDs: not read
