"""Emulated hosts of issue 19 (items 1 to 5): the names a real fleet of the KSC 10 era shows.

Names come from shared/research/field-review.md and the catalog's sources: the KSC 10 Network
Agent's display name and ProductCode (10.3.407), the KSC management plug-ins beside the
Administration Console, the business Anti-Virus 6.0/8.0 of that era, the names that used to end a
host as unknown Kaspersky. ProductCodes marked "emulated" are this simulation's own: no source
gives them, and the catalog does not list them, so those entries are matched by name.
"""

from __future__ import annotations

from typing import Any

UNINSTALL64 = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
UNINSTALL32 = (
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
)
KSC10_AGENT_CODE = "{BCF4CF24-88AB-45E1-A6E6-40C8278A70C5}"  # Network Agent 10.3.407
KSC10_AGENT_NAME = "Kaspersky Security Center 10 Network Agent"
KES10_CODE = "{3A6F1B0C-5E2D-4C7A-9B18-0D4E6F2A1C10}"  # emulated
KES10_NAME = "Kaspersky Endpoint Security 10 for Windows"
CONSOLE10_CODE = "{6B7E2C10-3D4F-4A5B-8C9D-0E1F2A3B4C10}"  # emulated
PLUGIN10_CODE = "{7C8F3D21-4E5A-4B6C-9DAE-1F2A3B4C5D21}"  # emulated
PLUGIN10_NAME = "Kaspersky Endpoint Security 10 for Windows Console Plug-in"
KAV6_CODE = "{8D9A4E32-5F6B-4C7D-AEBF-2A3B4C5D6E32}"  # emulated
KAV6_NAME = "Kaspersky Anti-Virus 6.0 for Windows Workstations MP4"
ADMINKIT_CODE = "{9EAB5F43-6A7C-4D8E-BFCA-3B4C5D6E7F43}"  # emulated
WSEE_CODE = "{AFBC6A54-7B8D-4E9F-CADB-4C5D6E7F8A54}"  # emulated
FREE_CODE = "{B0CD7B65-8C9E-4FA0-DBEC-5D6E7F8A9B65}"  # emulated
KSDE_CODE = "{C1DE8C76-9DAF-4AB1-ECFD-6E7F8A9BAC76}"  # emulated
SENSOR_CODE = "{D2EF9D87-AEB0-4BC2-FD0E-7F8A9BACBD87}"  # emulated
KSWS_PLAIN_CODE = "{E3F0AE98-BFC1-4CD3-0E1F-8A9BACBDCE98}"  # emulated
LIGHT_AGENT_CODE = "{F4A1BFA9-C0D2-4DE4-1F20-9BACBDCEDFA9}"  # emulated
EXCHANGE_KEY = "Kaspersky Security for Microsoft Exchange Servers 9.6"
EXCHANGE_NAME = "Kaspersky Security 9.0 for Microsoft Exchange Servers"


def msi_entry(name: str, version: str, code: str) -> dict[str, Any]:
    """An Uninstall entry as Windows Installer writes it for a Kaspersky MSI."""
    return {
        "DisplayName": ["REG_SZ", name],
        "DisplayVersion": ["REG_SZ", version],
        "Publisher": ["REG_SZ", "Kaspersky Lab"],
        "InstallDate": ["REG_SZ", "20170612"],
        "ModifyPath": ["REG_EXPAND_SZ", f"MsiExec.exe /I{code}"],
        "UninstallString": ["REG_EXPAND_SZ", f"MsiExec.exe /I{code}"],
        "WindowsInstaller": ["REG_DWORD", 1],
        "VersionMajor": ["REG_DWORD", int(version.split(".")[0])],
        "VersionMinor": ["REG_DWORD", int(version.split(".")[1])],
    }


def add_msi(
    state: dict[str, Any],
    name: str,
    version: str,
    code: str,
    *,
    view: str = "32",
    services: dict[str, tuple[str, int]] | None = None,
    folder: str | None = None,
    password: dict[str, str] | None = None,
) -> None:
    """One MSI product: its Uninstall entry, its services (name: display, type) and folder."""
    key = f"{UNINSTALL32 if view == '32' else UNINSTALL64}\\{code}"
    state["registry"][key] = msi_entry(name, version, code)
    for service, (display, kind) in (services or {}).items():
        state["services"][service] = {"display": display, "type": kind, "state": "RUNNING"}
    if folder:
        state["dirs"].append(folder)
    product: dict[str, Any] = {
        "name": name,
        "version": version,
        "manufacturer": "Kaspersky Lab",
        "key": key,
        "behaviour": "ok",
        "owns": {"services": list(services or {}), "dirs": [folder] if folder else []},
    }
    if password is not None:
        product["password"] = password
    state["products"][code] = product


def _hex(password: str) -> str:
    return password.encode("utf-16-le").hex().upper()


def add_ksc10_agent(state: dict[str, Any], password: str | None) -> None:
    """KES 10 and the KSC 10 Network Agent (item 1); with a ``password``, the agent's uninstall
    needs it as KLUNINSTPASSWD (the hex of its UTF-16LE bytes), or msiexec fails with 1603."""
    add_msi(
        state, KES10_NAME, "10.3.0.6294", KES10_CODE,
        services={"AVP": ("Kaspersky Endpoint Security Service", 16)},
        folder="C:\\Program Files (x86)\\Kaspersky Lab\\Kaspersky Endpoint Security 10 for Windows",
    )  # fmt: skip
    add_msi(
        state, KSC10_AGENT_NAME, "10.3.407", KSC10_AGENT_CODE,
        services={"klnagent": ("Kaspersky Security Center Network Agent", 16)},
        folder="C:\\Program Files (x86)\\Kaspersky Lab\\NetworkAgent",
        password=None if password is None else {"KLUNINSTPASSWD": _hex(password)},
    )  # fmt: skip


def add_console_plugins(state: dict[str, Any]) -> None:
    """The KSC 10 Administration Console and the KES 10 plug-in beside it (item 2)."""
    add_msi(
        state, "Kaspersky Security Center 10 Administration Console", "10.3.407", CONSOLE10_CODE,
        folder="C:\\Program Files (x86)\\Kaspersky Lab\\Kaspersky Security Center Console",
    )  # fmt: skip
    add_msi(state, PLUGIN10_NAME, "10.3.0.6294", PLUGIN10_CODE)


def add_legacy_business(state: dict[str, Any], password: str) -> None:
    """KAV 6.0 for Windows Workstations (protected) and the Administration Kit's agent (items
    3 and 4); the password property is the catalog's (KLUNINSTPASSWD, plain, unconfirmed)."""
    add_msi(
        state, KAV6_NAME, "6.0.4.1611", KAV6_CODE,
        services={"AVP": ("Kaspersky Anti-Virus", 16)},
        folder="C:\\Program Files (x86)\\Kaspersky Lab\\Kaspersky Anti-Virus 6.0 for Windows "
        "Workstations MP4",
        password={"KLUNINSTPASSWD": password},
    )  # fmt: skip
    add_msi(
        state, "Kaspersky Network Agent", "8.0.2134", ADMINKIT_CODE,
        services={"klnagent": ("Kaspersky Network Agent", 16)},
    )  # fmt: skip


def add_wsee(state: dict[str, Any], password: str) -> None:
    """Kaspersky Anti-Virus 8.0 for Windows Servers Enterprise Edition, protected (item 3)."""
    add_msi(
        state, "Kaspersky Anti-Virus 8.0 for Windows Servers Enterprise Edition", "8.0.4.1224",
        WSEE_CODE, view="64",
        services={"kavfs": ("Kaspersky Anti-Virus", 16)},
        password={"KLUNINSTPASSWD": password},
    )  # fmt: skip


def add_renamed(state: dict[str, Any]) -> None:
    """Names that ended a host as unknown Kaspersky and have an MSI route (item 4)."""
    add_msi(state, "Kaspersky Free", "19.0.0.1088", FREE_CODE)
    add_msi(
        state, "Kaspersky Secure Connection", "3.0.0.107", KSDE_CODE,
        services={"ksde": ("Kaspersky Secure Connection Service", 16)},
    )  # fmt: skip
    add_msi(state, "Kaspersky Endpoint Sensor", "3.6.0.302", SENSOR_CODE)


def add_refused(state: dict[str, Any]) -> None:
    """KSWS without a version, KS for Exchange (non-MSI) and KSV Light Agent (item 4): the last
    two are refused by name with their documented route."""
    add_msi(
        state, "Kaspersky Security for Windows Server", "11.0.1.897", KSWS_PLAIN_CODE, view="64",
        services={"KAVFS": ("Kaspersky Security Service", 16)},
    )  # fmt: skip
    state["registry"][f"{UNINSTALL64}\\{EXCHANGE_KEY}"] = {
        "DisplayName": ["REG_SZ", EXCHANGE_NAME],
        "DisplayVersion": ["REG_SZ", "9.6.96.0"],
        "Publisher": ["REG_SZ", "AO Kaspersky Lab"],
        "UninstallString": [
            "REG_SZ",
            "C:\\Program Files\\Kaspersky Lab\\Security for Exchange\\setup.exe",
        ],
    }
    add_msi(
        state, "Kaspersky Security for Virtualization 5.1 Light Agent", "5.1.0.55",
        LIGHT_AGENT_CODE, view="64",
    )  # fmt: skip
