"""Host kinds for what Windows detection must not miss (issue 19, items 7, 8, 9, 11).

- ``wix_agent``: KES 12.4 and a Network Agent installed from setup.exe, which has a second
  Uninstall key ``InstallWIX_{GUID}`` with the same DisplayName beside its MSI key ``{GUID}``.
- ``orphan_driver``: no Uninstall entry at all, but the klif driver and the AVP service run
  (an install whose entry is gone or hidden): a product, not residue.
- ``user_vpn``: Kaspersky VPN Secure Connection installed for the logged-on user only (its entry
  under HKEY_USERS\\<SID>), its ksde service running.
- ``kes12_versioned``: KES 12 with the versioned driver names (KLIF.KES-21-9,
  klupd_KES-21-9_arkmon) and the newer drivers (klbackupflt, klpd, ...); its uninstall leaves
  klupd_KES-21-9_arkmon loaded and the klbackupflt key behind.
"""

from __future__ import annotations

from typing import Any

from . import kinds as base

WIX_KINDS = {
    "wix_agent": "KES 12.4 and a Network Agent from setup.exe: InstallWIX_{GUID} beside {GUID}",
    "orphan_driver": "klif and AVP running, no Uninstall entry: a product detection must report",
    "user_vpn": "Kaspersky VPN Secure Connection installed per user (HKEY_USERS), ksde running",
    "kes12_versioned": "KES 12 with versioned drivers; its uninstall leaves one loaded",
}
VPN_CODE = "{5C3E2A61-8C3A-4F0E-9E27-6B1D0F4A9C11}"
KES12_CODE = "{9A017278-F7F4-4DF9-A482-0B97B70DD7ED}"
KES12_DRIVERS = (
    "KLIF.KES-21-9",
    "klupd_KES-21-9_arkmon",
    "klupd_KES-21-9_klark",
    "klbackupflt",
    "klbackupdisk",
    "klpd",
    "kldisk",
    "klgse",
    "klids",
    "klwtp",
    "klpnpflt",
)


def add(kind: str, state: dict[str, Any]) -> bool:
    """Fill ``state`` for one of these kinds; False when ``kind`` is not one of them."""
    if kind == "wix_agent":
        base._add_kes(state)
        base._add_agent(state)
        agent = state["products"][base.AGENT_CODE]
        wix = f"{base.UNINSTALL32}\\InstallWIX_{base.AGENT_CODE}"
        values = {
            "DisplayName": ["REG_SZ", agent["name"]],
            "DisplayVersion": ["REG_SZ", agent["version"]],
            "Publisher": ["REG_SZ", "AO Kaspersky Lab"],
            "UninstallString": [
                "REG_SZ",
                '"C:\\ProgramData\\Package Cache\\{0F05E4E5}\\setup.exe" /uninstall',
            ],
        }
        state["registry"][wix] = values
        agent["owns"]["keys"].append(wix)
    elif kind == "orphan_driver":
        _running(state, "AVP", "Kaspersky Endpoint Security Service", 16)
        _running(state, "klif", "Kaspersky Lab Driver", 2)
        state["dirs"].append("C:\\Program Files (x86)\\Kaspersky Lab\\KES.12.4.0")
    elif kind == "user_vpn":
        user = f"HKEY_USERS\\{base.USER_SID}\\{base.USER_CV}\\Uninstall\\{VPN_CODE}"
        state["registry"][user] = base._msi(
            "Kaspersky VPN Secure Connection", "21.14.5.462", "Kaspersky", VPN_CODE
        )
        _running(state, "ksde5.14", "Kaspersky VPN Secure Connection Service", 16)
    elif kind == "kes12_versioned":
        _add_kes12(state)
    else:
        return False
    return True


def _add_kes12(state: dict[str, Any]) -> None:
    key = f"{base.UNINSTALL64}\\{KES12_CODE}"
    state["registry"][key] = base._msi(
        "Kaspersky Endpoint Security for Windows", "12.9.0.190", "AO Kaspersky Lab", KES12_CODE
    )
    _running(state, "AVP", "Kaspersky Endpoint Security Service", 16)
    for driver in KES12_DRIVERS:
        _running(state, driver, driver, 1)
    state["services"]["klbackupflt"]["state"] = "STOPPED"
    state["products"][KES12_CODE] = {
        "name": "Kaspersky Endpoint Security for Windows",
        "version": "12.9.0.190",
        "manufacturer": "AO Kaspersky Lab",
        "key": key,
        "behaviour": "ok",
        "owns": {
            "keys": [],
            # The uninstaller left klupd_KES-21-9_arkmon loaded and klbackupflt's key behind.
            "services": [
                s
                for s in ("AVP", *KES12_DRIVERS)
                if s not in ("klupd_KES-21-9_arkmon", "klbackupflt")
            ],
            "dirs": [],
        },
    }


def _running(state: dict[str, Any], name: str, display: str, kind: int) -> None:
    """A running service (type 16) or kernel driver (1; 2: file system driver)."""
    state["services"][name] = {"display": display, "type": kind, "state": "RUNNING"}
