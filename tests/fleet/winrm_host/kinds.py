"""The kinds of emulated Windows host and the state each one starts from.

Product names, versions and ProductCodes are those of ``/work/shared/research/kaspersky.md`` and
``tests/fixtures/windows`` (KES 12.4.0.467 and Network Agent 14.0.0.10902 in the 32-bit view under
WOW6432Node, KSWS in the native view, the consumer Total Security 21.2 without a ProductCode, the
French Network Agent build).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import kinds_detection, legacy
from .kinds_detection import WIX_KINDS

UNINSTALL64 = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
UNINSTALL32 = (
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
)
KES_CODE = "{27534751-4A40-48BD-B393-BC3BF28C876E}"
AGENT_CODE = "{0F05E4E5-5A89-482C-9A62-47CC58643788}"
AGENT_FR_CODE = "{2924BEDA-E0D7-4DAF-A224-50D2E0B12F5B}"
KSWS_CODE = "{7A4192A1-84C4-4E90-A31B-B4704E4F5A5B}"
VCRT_CODE = "{D5D19E2F-7189-42FE-8103-92CD1FA457C2}"
KSC_CODE = "{5A1C2B8E-7D3F-4E61-9B0A-C4D2E8F1A374}"  # made up for the test host
KES_LOGIN = "KLAdmin"  # what kremove sends by default (vars.kaspersky_login)
USER_SID = "S-1-5-21-3623811015-3361044348-30300820-1001"
USER_HIVES = (".DEFAULT", "S-1-5-18", "S-1-5-19", "S-1-5-20", USER_SID)
USER_CV = "Software\\Microsoft\\Windows\\CurrentVersion"
LEGACY_FILE = "C:\\Users\\Public\\legacy-cp1252.txt"
LEGACY_BYTES = b"Agent d'administration (\xe9t\xe9) \xff end\r\n"


@dataclass(frozen=True)
class Kind:
    name: str
    description: str
    scheme: str = "https"  # what write_inventory gives the host by default
    auth: str = "ntlm"
    listens: bool = True
    bad_certificate: bool = False
    basic_over_http: bool = False
    client_certificate: bool = False  # HTTPS demands a client certificate the fleet's CA signed


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("clean", "no Kaspersky product: 7-Zip, a VC++ runtime, Edge"),
        Kind(
            "kes_and_agent", "KES 12.4 and Network Agent 14 (32-bit view, MSI), services, folders"
        ),
        Kind("protected_kes", "like kes_and_agent; KES uninstall needs KLLOGIN/KLPASSWD (1603)"),
        Kind("reboot_required", "KES whose msiexec /x returns 3010; the klif driver stays"),
        Kind("hanging_uninstall", "KES whose msiexec /x never ends until terminated"),
        Kind("cached_msi_missing", "KES whose cached MSI is gone: msiexec /x returns 1612"),
        Kind("encrypted_kes", "like kes_and_agent; KES's encryption driver klfde is installed"),
        Kind("ksc_server", "KSC 14 Administration Server with its Network Agent"),
        Kind("french_agent", "Windows Server, French: KSWS and the French Network Agent"),
        # Issue 19, items 1 to 5 (legacy.py): names of a KSC 10-era fleet.
        Kind("ksc10_agent", "KES 10 and the KSC 10 Network Agent (in the practice fleet)"),
        Kind("ksc10_agent_protected", "like ksc10_agent; the agent needs KLUNINSTPASSWD (1603)"),
        Kind("console_plugins", "KSC 10 Administration Console and the KES 10 console plug-in"),
        Kind("legacy_business", "KAV 6.0 for Windows Workstations (protected), Admin Kit agent"),
        Kind("legacy_server", "KAV 8.0 for Windows Servers Enterprise Edition (protected)"),
        Kind("renamed_products", "Kaspersky Free, Secure Connection, Endpoint Sensor (MSI)"),
        Kind("refused_products", "unversioned KSWS, KS for Exchange, KSV Light Agent"),
        Kind("consumer_non_msi", "Kaspersky Total Security 21.2: an Uninstall entry, no MSI"),
        Kind("not_admin", "like kes_and_agent; the login is a standard user, no administrator"),
        Kind("unreachable", "a port bound by the test host but never listening", listens=False),
        Kind(
            "bad_certificate",
            "like kes_and_agent; its certificate is from another CA",
            bad_certificate=True,
        ),
        Kind(
            "client_certificate",
            "like kes_and_agent; HTTPS demands a client certificate from the fleet's CA, which is "
            "the login (WinRM certificate auth); no password is accepted",
            auth="certificate",
            client_certificate=True,
        ),
        Kind(
            "http_basic",
            "like kes_and_agent; Basic over plain HTTP (kremove must refuse)",
            scheme="http",
            auth="basic",
            basic_over_http=True,
        ),
    )
}
KINDS.update({k: Kind(k, d) for k, d in WIX_KINDS.items()})  # kinds_detection.py


def _msi(name: str, version: str, publisher: str, code: str, **extra: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "AuthorizedCDFPrefix": ["REG_SZ", ""],
        "Comments": ["REG_SZ", ""],
        "Contact": ["REG_SZ", ""],
        "DisplayVersion": ["REG_SZ", version],
        "HelpLink": ["REG_SZ", ""],
        "InstallDate": ["REG_SZ", "20240115"],
        "ModifyPath": ["REG_EXPAND_SZ", f"MsiExec.exe /I{code}"],
        "Publisher": ["REG_SZ", publisher],
        "EstimatedSize": ["REG_DWORD", 570534],
        "UninstallString": ["REG_EXPAND_SZ", f"MsiExec.exe /I{code}"],
        "VersionMajor": ["REG_DWORD", int(version.split(".")[0])],
        "VersionMinor": ["REG_DWORD", int(version.split(".")[1])],
        "WindowsInstaller": ["REG_DWORD", 1],
        "Language": ["REG_DWORD", 1033],
        "DisplayName": ["REG_SZ", name],
    }
    for k, v in extra.items():
        values[k] = ["REG_SZ", v]
    return values


def _base(name: str, user: str, *, server: bool = False) -> dict[str, Any]:
    registry: dict[str, Any] = {
        UNINSTALL64: {},
        UNINSTALL32: {},
        f"{UNINSTALL64}\\7-Zip": {
            "DisplayName": ["REG_SZ", "7-Zip 23.01 (x64)"],
            "DisplayVersion": ["REG_SZ", "23.01"],
            "UninstallString": ["REG_SZ", '"C:\\Program Files\\7-Zip\\Uninstall.exe"'],
            "NoModify": ["REG_DWORD", 1],
            "Publisher": ["REG_SZ", "Igor Pavlov"],
        },
        f"{UNINSTALL64}\\{VCRT_CODE}": _msi(
            "Microsoft Visual C++ 2022 X64 Minimum Runtime - 14.36.32532",
            "14.36.32532",
            "Microsoft Corporation",
            VCRT_CODE,
        ),
        f"{UNINSTALL32}\\Microsoft Edge": {
            "DisplayName": ["REG_SZ", "Microsoft Edge"],
            "DisplayVersion": ["REG_SZ", "120.0.2210.91"],
            "Publisher": ["REG_SZ", "Microsoft Corporation"],
            "UninstallString": [
                "REG_SZ",
                '"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\120.0.2210.91'
                '\\Installer\\setup.exe" --uninstall --msedge --channel=stable --system-level',
            ],
        },
        # Loaded user hives (HKEY_USERS): LocalSystem (also as .DEFAULT), LocalService,
        # NetworkService, and the logged-on user with their _Classes hive.
        **{f"HKEY_USERS\\{sid}\\{USER_CV}": {} for sid in USER_HIVES},
        f"HKEY_USERS\\{USER_SID}_Classes\\Local Settings": {},
        f"HKEY_USERS\\{USER_SID}\\{USER_CV}\\Uninstall\\OneDriveSetup.exe": {
            "DisplayName": ["REG_SZ", "Microsoft OneDrive"],
            "DisplayVersion": ["REG_SZ", "23.226.1031.0003"],
            "Publisher": ["REG_SZ", "Microsoft Corporation"],
        },
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion": {
            "ProductName": [
                "REG_SZ",
                "Windows Server 2019 Standard" if server else "Windows 10 Enterprise",
            ],
            "CurrentBuild": ["REG_SZ", "17763" if server else "19045"],
        },
    }
    services = {
        "Appinfo": {"display": "Application Information", "type": 48, "state": "RUNNING"},
        "AudioSrv": {"display": "Windows Audio", "type": 16, "state": "STOPPED"},
        "BFE": {"display": "Base Filtering Engine", "type": 32, "state": "RUNNING"},
        "Dhcp": {"display": "DHCP Client", "type": 32, "state": "RUNNING"},
        "EventLog": {"display": "Windows Event Log", "type": 32, "state": "RUNNING"},
        "WinRM": {
            "display": "Windows Remote Management (WS-Management)",
            "type": 32,
            "state": "RUNNING",
        },
        "Tcpip": {"display": "TCP/IP Protocol Driver", "type": 1, "state": "RUNNING"},
    }
    dirs = [
        "C:\\Windows\\System32",
        "C:\\Windows\\SysWOW64",
        "C:\\Windows\\Temp",
        "C:\\Program Files\\7-Zip",
        "C:\\Program Files (x86)\\Microsoft\\Edge\\Application",
        "C:\\ProgramData\\Microsoft",
        f"C:\\Users\\{user}\\AppData\\Local\\Temp",
        f"C:\\Users\\{user}\\AppData\\Roaming",
    ]
    return {
        "computer_name": name.upper().replace("_", "-")[:15],
        "arch": "AMD64",
        "server": server,
        "user": user,
        "registry": registry,
        "services": services,
        "dirs": dirs,
        # Written in a legacy code page, as old tools do: not UTF-8 (0xE9 and 0xFF are invalid).
        "files": {LEGACY_FILE: base64.b64encode(LEGACY_BYTES).decode()},
        "products": {},
    }


def _add_kes(state: dict[str, Any], behaviour: str = "ok", password: str | None = None) -> None:
    key = f"{UNINSTALL32}\\{KES_CODE}"
    state["registry"][key] = _msi(
        "Kaspersky Endpoint Security for Windows",
        "12.4.0.467",
        "AO Kaspersky Lab",
        KES_CODE,
        InstallLocation="C:\\Program Files (x86)\\Kaspersky Lab\\KES.12.4.0\\",
    )
    state["services"].update(
        {
            "AVP": {
                "display": "Kaspersky Endpoint Security Service",
                "type": 16,
                "state": "RUNNING",
            },
            "klif": {"display": "Kaspersky Lab Driver", "type": 2, "state": "RUNNING"},
            "klim6": {"display": "Kaspersky Packet Filter Driver", "type": 1, "state": "RUNNING"},
        }
    )
    state["dirs"] += [
        "C:\\Program Files (x86)\\Kaspersky Lab\\KES.12.4.0",
        "C:\\ProgramData\\Kaspersky Lab\\KES.21.13",
    ]
    state["registry"]["HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node\\KasperskyLab\\protected\\KES"] = {
        "ProductVersion": ["REG_SZ", "12.4.0.467"]
    }
    product: dict[str, Any] = {
        "name": "Kaspersky Endpoint Security for Windows",
        "version": "12.4.0.467",
        "manufacturer": "AO Kaspersky Lab",
        "key": key,
        "behaviour": behaviour,
        "owns": {
            "keys": ["HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node\\KasperskyLab"],
            "services": ["AVP", "klif", "klim6"],
            "dirs": [
                "C:\\Program Files (x86)\\Kaspersky Lab",
                "C:\\ProgramData\\Kaspersky Lab",
            ],
        },
        "after_reboot": {"services": ["klif"]},
    }
    if password is not None:
        product["password"] = {"KLLOGIN": KES_LOGIN, "KLPASSWD": password}
    state["products"][KES_CODE] = product


def _add_agent(state: dict[str, Any], *, french: bool = False, password: str | None = None) -> None:
    code = AGENT_FR_CODE if french else AGENT_CODE
    name = (
        "Agent d'administration de Kaspersky Security Center"
        if french
        else "Kaspersky Security Center Network Agent"
    )
    version = "14.2.0.26967" if french else "14.0.0.10902"
    key = f"{UNINSTALL32}\\{code}"
    state["registry"][key] = _msi(
        name,
        version,
        "AO Kaspersky Lab",
        code,
        InstallLocation="C:\\Program Files (x86)\\Kaspersky Lab\\NetworkAgent\\",
    )
    state["services"]["klnagent"] = {
        "display": "Agent d'administration de Kaspersky Security Center"
        if french
        else "Kaspersky Security Center Network Agent",
        "type": 16,
        "state": "RUNNING",
    }
    state["dirs"] += [
        "C:\\Program Files (x86)\\Kaspersky Lab\\NetworkAgent",
        "C:\\ProgramData\\KasperskyLab\\adminkit",
    ]
    product: dict[str, Any] = {
        "name": name,
        "version": version,
        "manufacturer": "AO Kaspersky Lab",
        "key": key,
        "behaviour": "ok",
        "owns": {
            "keys": ["HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node\\KasperskyLab"],
            "services": ["klnagent"],
            "dirs": [
                "C:\\Program Files (x86)\\Kaspersky Lab",
                "C:\\ProgramData\\KasperskyLab",
            ],
        },
    }
    if password is not None:
        product["password"] = {"KLUNINSTPASSWD": password.encode("utf-16-le").hex().upper()}
    state["products"][code] = product
    state["registry"][
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node\\KasperskyLab\\Components\\34\\1103\\1.0.0.0"
    ] = {"Version": ["REG_SZ", version]}


def _add_ksws(state: dict[str, Any]) -> None:
    key = f"{UNINSTALL64}\\{KSWS_CODE}"
    state["registry"][key] = _msi(
        "Kaspersky Security 11 for Windows Server", "11.0.1.897", "AO Kaspersky Lab", KSWS_CODE
    )
    state["services"]["KAVFS"] = {
        "display": "Kaspersky Security Service",
        "type": 16,
        "state": "RUNNING",
    }
    state["dirs"].append("C:\\Program Files\\Kaspersky Lab\\Kaspersky Security for Windows Server")
    state["registry"]["HKEY_LOCAL_MACHINE\\SOFTWARE\\KasperskyLab\\WSEE\\11.0"] = {}
    state["products"][KSWS_CODE] = {
        "name": "Kaspersky Security 11 for Windows Server",
        "version": "11.0.1.897",
        "manufacturer": "AO Kaspersky Lab",
        "key": key,
        "behaviour": "ok",
        "owns": {
            "keys": ["HKEY_LOCAL_MACHINE\\SOFTWARE\\KasperskyLab"],
            "services": ["KAVFS"],
            "dirs": ["C:\\Program Files\\Kaspersky Lab"],
        },
    }


def _add_consumer(state: dict[str, Any]) -> None:
    state["registry"][f"{UNINSTALL32}\\AVP21.2"] = {
        "DisplayName": ["REG_SZ", "Kaspersky Total Security"],
        "DisplayVersion": ["REG_SZ", "21.2.16.590"],
        "InstallLocation": [
            "REG_SZ",
            "C:\\Program Files (x86)\\Kaspersky Lab\\Kaspersky Total Security 21.2\\",
        ],
        "Publisher": ["REG_SZ", "Kaspersky"],
        "UninstallString": [
            "REG_SZ",
            '"C:\\ProgramData\\Kaspersky Lab\\Setup\\21.2.16.590\\setup.exe" /x',
        ],
        "NoModify": ["REG_DWORD", 0],
    }
    state["services"]["AVP21.2"] = {
        "display": "Kaspersky Anti-Virus Service 21.2",
        "type": 16,
        "state": "RUNNING",
    }
    state["dirs"] += [
        "C:\\Program Files (x86)\\Kaspersky Lab\\Kaspersky Total Security 21.2",
        "C:\\ProgramData\\Kaspersky Lab\\Setup\\21.2.16.590",
    ]


def _add_encryption(state: dict[str, Any]) -> None:
    """KES's full-disk encryption driver (an UNCONFIRMED name, engine/preflight.py), removed
    with KES."""
    state["services"]["klfde"] = {
        "display": "Kaspersky Lab FDE driver",
        "type": 1,
        "state": "RUNNING",
    }
    state["products"][KES_CODE]["owns"]["services"].append("klfde")


def _add_ksc_server(state: dict[str, Any]) -> None:
    name, version, code = "Kaspersky Security Center 14", "14.2.0.26967", KSC_CODE
    key = f"{UNINSTALL32}\\{code}"
    state["registry"][key] = _msi(name, version, "AO Kaspersky Lab", code)
    display = "Kaspersky Security Center Administration Server"
    state["services"]["CSAdminServer"] = {"display": display, "type": 16, "state": "RUNNING"}
    owns = {"keys": [], "services": ["CSAdminServer"], "dirs": []}
    state["products"][code] = dict(
        name=name,
        version=version,
        manufacturer="AO Kaspersky Lab",
        key=key,
        behaviour="ok",
        owns=owns,
    )


def initial_state(
    kind: str, name: str, user: str, password: str, own: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What a host of ``kind`` looks like when it starts (or is reset). ``password`` protects a
    protected_kes host's KES and Network Agent unless ``own`` gives the host its own ("kes",
    "klnagent"), as separate policies per administration group do on a real fleet."""
    servers = ("french_agent", "legacy_server", "refused_products")
    state = _base(name, user, server=kind in servers)
    state["administrator"] = kind != "not_admin"  # what whoami /groups says of the login
    if kind in (
        "kes_and_agent",
        "bad_certificate",
        "http_basic",
        "not_admin",
        "client_certificate",
    ):
        _add_kes(state)
        _add_agent(state)
    elif kind == "protected_kes":
        _add_kes(state, password=(own or {}).get("kes", password))
        _add_agent(state, password=(own or {}).get("klnagent", password))
    elif kind == "reboot_required":
        _add_kes(state, behaviour="reboot")
    elif kind == "hanging_uninstall":
        _add_kes(state, behaviour="hang")
    elif kind == "cached_msi_missing":
        _add_kes(state, behaviour="no_source")
    elif kind == "encrypted_kes":
        _add_kes(state)
        _add_agent(state)
        _add_encryption(state)
    elif kind == "ksc_server":
        _add_agent(state)
        _add_ksc_server(state)
    elif kind == "french_agent":
        _add_ksws(state)
        _add_agent(state, french=True)
    elif kind == "consumer_non_msi":
        _add_consumer(state)
    elif kind in ("ksc10_agent", "ksc10_agent_protected"):
        legacy.add_ksc10_agent(state, password if kind == "ksc10_agent_protected" else None)
    elif kind == "console_plugins":
        legacy.add_console_plugins(state)
    elif kind == "legacy_business":
        legacy.add_legacy_business(state, password)
    elif kind == "legacy_server":
        legacy.add_wsee(state, password)
    elif kind == "renamed_products":
        legacy.add_renamed(state)
    elif kind == "refused_products":
        legacy.add_refused(state)
    else:
        kinds_detection.add(kind, state)
    return copy.deepcopy(state)
