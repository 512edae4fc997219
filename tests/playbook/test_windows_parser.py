"""The windows_detect parser, on reg.exe and sc.exe output in their exact layouts.

Fixtures in tests/fixtures/windows/ are whole outputs of playbooks/windows/detect.cmd.j2 (CRLF,
UTF-8); the smaller cases below are built in the same layout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.playbook.loader import builtin_dir, load_playbooks
from orchestrator.playbook.model import Catalog, Finding
from orchestrator.playbook.parsers import PARSERS, ParseError
from orchestrator.playbook.parsers.windows import product_for_entry, specificity, windows_detect
from orchestrator.playbook.parsers.windows_output import SERVICES_ROOT, UNINSTALL_ROOTS
from orchestrator.transports.base import CommandResult

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "windows"
U64 = r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall"
U32 = r"HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall"
SVC = r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services"
KES = "{27534751-4A40-48BD-B393-BC3BF28C876E}"
AGENT = "{0F05E4E5-5A89-482C-9A62-47CC58643788}"
NOT_FOUND = "ERROR: The system was unable to find the specified registry key or value."


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_playbooks().catalog


def fixture(name: str) -> str:
    raw = (FIXTURES / name).read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF, as Windows prints
    return raw.decode("utf-8")


def parse(stdout: str, catalog: Catalog, *, truncated: bool = False) -> list[Finding]:
    result = CommandResult(0, stdout, "", 0.5, truncated=truncated)
    return windows_detect(result, catalog)


def installed(findings: list[Finding]) -> list[tuple[str, str | None, str | None, str]]:
    return [
        (f.product, f.version, f.evidence.get("product_code"), f.evidence["view"])
        for f in findings
        if f.kind == "installed"
    ]


def residue(findings: list[Finding]) -> list[tuple[str, str]]:
    out = []
    for f in findings:
        if f.kind == "residue":
            e = f.evidence
            what = e.get("service") or e.get("path") or e["registry_key"]
            out.append((f.product, what + (f" {e['state']}" if "state" in e else "")))
    return out


def entry(root: str, subkey: str, *values: tuple[str, str, str]) -> list[str]:
    return ["", f"{root}\\{subkey}", *(f"    {n}    {t}    {d}" for n, t, d in values)]


def document(
    u64: list[str] | None = None,
    u32: list[str] | None = None,
    *,
    arch: str = "AMD64 ",
    rc64: int = 0,
    rc32: int = 0,
    services: list[str] | None = None,
    sc: list[str] | None = None,
    regkeys: tuple[tuple[list[str], int], ...] = (([""], 0), ([""], 0)),
    end: bool = True,
    deleteflag: tuple[list[str], int] = ([NOT_FOUND], 1),
    users: dict[str, list[str]] | None = None,
) -> str:
    lines = ["==kremove:begin==", f"==kremove:arch {arch}==", "==kremove:section uninstall 64=="]
    lines += (u64 or []) + [f"==kremove:rc {rc64}==", "==kremove:section uninstall 32=="]
    lines += (u32 or []) + [f"==kremove:rc {rc32}==", "==kremove:section services==", ""]
    lines += [f"{SVC}\\{s}" for s in services or []] + ["==kremove:rc 0=="]
    lines += ["==kremove:section sc==", *(sc or []), "==kremove:rc 0=="]
    lines += ["==kremove:section deleteflag==", *deleteflag[0], f"==kremove:rc {deleteflag[1]}=="]
    lines += user_sections(users or {})
    lines += ["==kremove:section paths=="]
    for i, (listing, rc) in enumerate(regkeys):
        lines += [f"==kremove:section regkey {i}==", *listing, f"==kremove:rc {rc}=="]
    lines += ["==kremove:end=="] if end else []
    return "\r\n".join(lines) + "\r\n"


def user_sections(users: dict[str, list[str]]) -> list[str]:
    """The HKEY_USERS part: SID -> the lines of its Uninstall listing (empty: no Uninstall key)."""
    lines = ["==kremove:section users==", "", *(rf"HKEY_USERS\{sid}" for sid in users)]
    lines.append("==kremove:rc 0==")
    for sid, listing in users.items():
        cv = rf"HKEY_USERS\{sid}\Software\Microsoft\Windows\CurrentVersion"
        subkeys = ["", rf"{cv}\Run"] + ([rf"{cv}\Uninstall"] if listing else [])
        lines += [f"==kremove:section userkey {sid}==", *subkeys, "==kremove:rc 0=="]
        lines += [f"==kremove:section useruninstall {sid}=="]
        lines += [*listing, "==kremove:rc 0=="] if listing else [NOT_FOUND, "==kremove:rc 1=="]
    return lines


def test_registered_under_its_name() -> None:
    assert PARSERS["windows_detect"] is windows_detect


def test_workstation_products_in_removal_order(catalog: Catalog) -> None:
    findings = parse(fixture("workstation-en.txt"), catalog)
    assert installed(findings) == [
        ("kes-windows", "12.4.0.467", KES, "32"),
        ("kaspersky-consumer", "21.2.16.590", None, "32"),  # no ProductCode: not MSI
        ("klnagent", "14.0.0.10902", AGENT, "32"),
        ("unknown-kaspersky", "4.0.0.861", "{7B3E9A0C-58D2-4C1A-9F43-2E6D0B8C1A77}", "32"),
    ]
    kes = findings[0]
    assert kes.name == "Kaspersky Endpoint Security for Windows"
    assert dict(kes.evidence) == {
        "display_name": "Kaspersky Endpoint Security for Windows",
        "product_code": KES,
        "key": rf"{U32}\{KES}",
        "view": "32",
        "uninstall_string": f"MsiExec.exe /I{KES}",
        "windows_installer": "1",
        "publisher": "AO Kaspersky Lab",
    }
    unknown = findings[3]
    assert unknown.name == "Kaspersky Anti-Ransomware Tool for Business"  # named as the host says
    consumer = findings[1]
    assert consumer.evidence["windows_installer"] == "0"
    assert consumer.evidence["uninstall_string"] == (
        r'"C:\ProgramData\Kaspersky Lab\Setup\21.2.16.590\setup.exe" /x'
    )
    assert consumer.evidence["key"] == rf"{U32}\AVP21.2"
    names = {f.evidence.get("display_name") for f in findings}
    assert not names & {"7-Zip 23.01 (x64)", "Microsoft Edge"}  # not Kaspersky: ignored


def test_workstation_residue(catalog: Catalog) -> None:
    assert residue(parse(fixture("workstation-en.txt"), catalog)) == [
        ("kes-windows", "AVP RUNNING"),  # the exact name AVP beats the consumer's AVP*
        ("kaspersky-consumer", "AVP21.2 STOPPED"),
        ("kaspersky-vpn", "ksde5.2 not loaded (registry key only)"),
        ("klnagent", "klnagent RUNNING"),
        ("residue", "klif RUNNING"),
        ("residue", "klim6 RUNNING"),
        ("residue", "kneps RUNNING"),
        ("residue", r"C:\Program Files (x86)\Kaspersky Lab"),
        ("residue", r"C:\ProgramData\Kaspersky Lab"),
        ("residue", r"HKLM\SOFTWARE\WOW6432Node\KasperskyLab"),
    ]


def test_french_server(catalog: Catalog) -> None:
    findings = parse(fixture("server-fr.txt"), catalog)
    assert installed(findings) == [
        ("ksws", "11.0.1.897", "{B5FB4A9A-0F7C-4C8E-9D7F-3E2A1C6D5B40}", "64"),
        ("klnagent", "13.2.0.1511", "{2924BEDA-E0D7-4DAF-A224-50D2E0B12F5B}", "32"),
        ("ksc-console", "13.2.0.1511", "{5D35D57A-30B9-493B-819F-C6C2181A0A1A}", "32"),
    ]
    agent = findings[1]
    assert agent.name == "Kaspersky Security Center Network Agent"
    assert agent.evidence["display_name"] == "Agent d'administration de Kaspersky Security Center"
    assert "Générateur" not in str(findings)  # accented, read as UTF-8, and not Kaspersky
    assert ("residue", r"HKLM\SOFTWARE\KasperskyLab") in residue(findings)
    assert ("ksws", "KAVFS RUNNING") in residue(findings)


def test_after_removal_only_residue_is_left(catalog: Catalog) -> None:
    findings = parse(fixture("workstation-after-removal.txt"), catalog)
    assert installed(findings) == []
    assert residue(findings) == [
        ("klnagent", "klnagent not loaded (registry key only)"),
        ("residue", "klif RUNNING"),  # a driver stays loaded until the reboot
        ("residue", r"C:\ProgramData\Kaspersky Lab"),
    ]


def test_32_bit_windows_has_no_wow6432node_in_any_language(catalog: Catalog) -> None:
    findings = parse(fixture("x86-fr.txt"), catalog)
    assert installed(findings) == [
        ("kes-windows", "11.11.0.452", "{C9EF800D-54AA-4F60-AB96-5A3966550F53}", "64")
    ]
    assert residue(findings) == [
        ("kes-windows", "AVP RUNNING"),
        ("residue", "klif not loaded (registry key only)"),
        ("residue", r"HKLM\SOFTWARE\KasperskyLab"),
    ]


@pytest.mark.parametrize(
    ("name", "code", "expected"),
    [
        ("Kaspersky Security Center Network Agent", None, "klnagent"),
        ("Agent d'administration de Kaspersky Security Center", None, "klnagent"),
        ("Kaspersky Security Center", None, "ksc-server"),
        ("Kaspersky Security Center 14.2 Administration Server", None, "ksc-server"),
        ("Kaspersky Security Center 14 Administration Console", None, "ksc-console"),
        ("kaspersky endpoint security for windows", None, "kes-windows"),  # case-insensitive
        ("Kaspersky Endpoint Security для Windows", None, "kes-windows"),
        ("Kaspersky Total Security", None, "kaspersky-consumer"),
        ("Some renamed build", AGENT, "klnagent"),  # a known ProductCode whatever the name
        ("Kaspersky Endpoint Security for Windows", AGENT.lower(), "klnagent"),
        ("7-Zip 23.01 (x64)", None, None),
    ],
)
def test_matching(catalog: Catalog, name: str, code: str | None, expected: str | None) -> None:
    product = product_for_entry(catalog, name, code)
    assert (product.id if product else None) == expected


def test_the_most_literal_pattern_wins() -> None:
    assert specificity("Kaspersky Security Center Network Agent*") > specificity(
        "*Agent*Kaspersky Security Center*"
    )
    assert specificity("AVP") > specificity("AVP*")


@pytest.mark.parametrize(
    ("name", "publisher"),
    [
        ("Антивирус Касперского", "Лаборатория Касперского"),  # Russian build
        ("KASPERSKY RESCUE DISK", ""),
        ("Outil de suppression", "AO Kaspersky Lab"),  # a Kaspersky publisher is enough
    ],
)
def test_unmatched_kaspersky_is_never_ignored(catalog: Catalog, name: str, publisher: str) -> None:
    u32 = entry(
        U32, "{11111111-2222-3333-4444-555555555555}",
        ("DisplayName", "REG_SZ", name),
        ("Publisher", "REG_SZ", publisher),
        ("WindowsInstaller", "REG_DWORD", "0x1"),
    )  # fmt: skip
    [finding] = parse(document(u32=u32), catalog)
    assert (finding.product, finding.name, finding.kind) == ("unknown-kaspersky", name, "installed")


@pytest.mark.parametrize(
    "subkey",
    [
        f"{KES} & calc",
        f"{KES}%PATH%",
        f"{KES}.KB123",
        "{27534751-4A40-48BD-B393-BC3BF28C876E^}",
        '{27534751-4A40-48BD-B393-BC3BF28C876"}',
        "{27534751-4A40-48BD-B393-BC3BF28C876}",
    ],
)
def test_a_product_code_that_is_not_a_guid_is_dropped(catalog: Catalog, subkey: str) -> None:
    u32 = entry(
        U32, subkey,
        ("DisplayName", "REG_SZ", "Kaspersky Endpoint Security for Windows"),
        ("WindowsInstaller", "REG_DWORD", "0x1"),
    )  # fmt: skip
    [finding] = parse(document(u32=u32), catalog)
    assert finding.product == "kes-windows"
    assert "product_code" not in finding.evidence  # the non-MSI step reports it instead
    assert finding.evidence["key"] == f"{U32}\\{subkey}"


def test_registry_layout_details(catalog: Catalog) -> None:
    u64 = [
        "",
        U64,  # the root itself: not an entry
        *entry(
            U64,
            KES.lower(),
            ("AuthorizedCDFPrefix", "REG_SZ", ""),
            ("DisplayName", "REG_SZ", "Kaspersky Endpoint Security for Windows"),
            ("Comments", "REG_SZ", "two"),
            ("Readme", "REG_MULTI_SZ", r"a\0b"),
            ("WindowsInstaller", "REG_DWORD", "0x00000001"),
        ),
        "a stray second line of a value holding a line break",
        *entry(U64, rf"{KES}\Subkey", ("DisplayName", "REG_SZ", "Kaspersky Nested")),
        *entry(
            U64, "{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}", ("WindowsInstaller", "REG_DWORD", "0x1")
        ),
        *entry(U64, AGENT, ("WindowsInstaller", "REG_DWORD", "0x1")),  # known code, no name
    ]
    findings = parse(document(u64=u64), catalog)
    assert [(f.product, f.evidence["display_name"]) for f in findings] == [
        ("kes-windows", "Kaspersky Endpoint Security for Windows"),
        ("klnagent", ""),
    ]
    assert findings[0].evidence["product_code"] == KES  # upper-cased as msiexec prints it
    assert findings[0].evidence["windows_installer"] == "1"
    assert findings[0].version is None


def test_wow_key_missing_on_64_bit_windows_in_english_is_empty(catalog: Catalog) -> None:
    assert parse(document(u32=[NOT_FOUND], rc32=1), catalog) == []


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (document(u64=["ERROR: Access is denied."], rc64=1), "Access is denied"),
        (document(u64=[NOT_FOUND], rc64=1), "exited 1"),  # the native view always exists
        (
            # On 64-bit Windows WOW6432Node exists; a translated failure cannot be read as absent.
            document(u32=["Erreur : accès refusé."], rc32=1),
            "accès refusé",
        ),
        (document(services=["AVP"], end=False), "end marker"),
        (document(regkeys=(([""], 0),)), "whether HKLM\\SOFTWARE\\WOW6432Node\\KasperskyLab"),
        (
            document(regkeys=(([""], 0), (["ERROR: Access is denied."], 1))),
            "Access is denied",
        ),
        (document().replace("==kremove:arch AMD64 ==\r\n", ""), "architecture"),
        (document().replace("==kremove:section uninstall 32==", "==kremove:section x=="), "views"),
        (
            document().replace(
                "==kremove:rc 0==\r\n==kremove:section uninstall 32",
                "==kremove:section uninstall 32",
            ),
            "no exit code",
        ),
        ("", "end marker"),
    ],
)
def test_output_that_cannot_prove_the_state_is_an_error(
    catalog: Catalog, doc: str, message: str
) -> None:
    with pytest.raises(ParseError, match=message.replace("\\", "\\\\")):
        parse(doc, catalog)


def test_cut_output_is_an_error(catalog: Catalog) -> None:
    whole = fixture("workstation-en.txt")
    with pytest.raises(ParseError, match="end marker"):
        parse(whole[: len(whole) // 2], catalog)
    with pytest.raises(ParseError, match="output limit"):
        parse(whole, catalog, truncated=True)


def test_sc_failure_only_loses_the_states(catalog: Catalog) -> None:
    doc = document(services=["klif"]).replace(
        "==kremove:section sc==\r\n==kremove:rc 0==",
        "==kremove:section sc==\r\n[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\n"
        "The specified service does not exist as an installed service.\r\n\r\n==kremove:rc 1060==",
    )
    assert residue(parse(doc, catalog)) == [("residue", "klif not loaded (registry key only)")]


def test_single_service_sc_layout(catalog: Catalog) -> None:
    sc = [
        "",
        "SERVICE_NAME: klnagent",
        "        TYPE               : 10  WIN32_OWN_PROCESS",
        "        STATE              : 1  STOPPED",
        "        WIN32_EXIT_CODE    : 0  (0x0)",
        "        SERVICE_EXIT_CODE  : 0  (0x0)",
        "        CHECKPOINT         : 0x0",
        "        WAIT_HINT          : 0x0",
    ]
    assert residue(parse(document(services=["KLNAGENT"], sc=sc), catalog)) == [
        ("klnagent", "KLNAGENT STOPPED")  # service names are case-insensitive on Windows
    ]


def test_control_characters_in_host_text_are_replaced(catalog: Catalog) -> None:
    u32 = entry(
        U32, KES,
        ("DisplayName", "REG_SZ", "Kaspersky Endpoint Security\x07\x1b[31m for Windows"),
        ("WindowsInstaller", "REG_DWORD", "0x1"),
    )  # fmt: skip
    [finding] = parse(document(u32=u32), catalog)
    assert (
        finding.evidence["display_name"]
        == "Kaspersky Endpoint Security\ufffd\ufffd[31m for Windows"
    )


def test_module_constants_name_the_keys_the_script_queries() -> None:
    text = (builtin_dir() / "windows/detect.cmd.j2").read_text()
    for root in (*UNINSTALL_ROOTS.values(), SERVICES_ROOT):
        assert f'query "{root.replace("HKEY_LOCAL_MACHINE", "HKLM")}"' in text
