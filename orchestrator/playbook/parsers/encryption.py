"""The encryption preflight's parser: output of playbooks/windows/encryption.cmd.j2 in, one
``encryption`` finding per KES encryption component seen out (engine/preflight.py refuses such
a host before any change unless the operator accepts the risk).

The vendor says removing KES or its encryption components can leave previously encrypted data
in an unknown state [vendor https://support.kaspersky.com/KESWin/11/en-us/128081.htm] and offers,
in its interactive removal wizard only, to keep the local store of encryption keys [vendor
https://support.kaspersky.com/KESWin/11/de-DE/128449.htm]. No public source found names the
components' Uninstall entries or driver services: the names below are UNCONFIRMED and listed in
docs/runbook.md as what a lab host must confirm. An encryption finding is neither installed nor
residue: it never makes a host clean or not clean, it only gates the removal.
"""

from __future__ import annotations

import fnmatch

from orchestrator.playbook.model import Catalog, Finding
from orchestrator.playbook.parsers.common import ParseError
from orchestrator.playbook.parsers.windows_output import (
    SERVICES_ROOT,
    UNINSTALL_ROOTS,
    key_not_found,
    leaf,
    parent,
    read_sections,
    reg_keys,
    succeeded,
)
from orchestrator.transports.base import CommandResult

KIND = "encryption"
PRODUCT = "kes-encryption"
# UNCONFIRMED (no source names them): Uninstall display names of separately listed encryption
# parts (the FDE Authentication Agent is vendor-named, its entry is not), and driver services.
DISPLAY_NAMES = ("*Kaspersky*Encryption*", "*Kaspersky*Authentication Agent*")
SERVICES = ("klfde*", "klfle*", "cm_km*")


def windows_encryption(result: CommandResult, catalog: Catalog) -> list[Finding]:
    """Encryption components by Uninstall entry (both views) and by service/driver name."""
    del catalog  # the names are not the catalog's: they gate, they are not removed
    lines = [ln.rstrip("\r") for ln in result.stdout.split("\n")]
    if result.truncated or "==kremove:end==" not in lines:
        raise ParseError("the encryption preflight's output was cut short")
    _, sections = read_sections(lines)
    found: list[Finding] = []
    for section in sections:
        view = section.args[0] if section.args else ""
        if section.name == "uninstall" and view in UNINSTALL_ROOTS:
            missing_ok = view == "32" and key_not_found(section)
            if succeeded(section, may_be_missing=missing_ok):
                found += _entries(section.lines, UNINSTALL_ROOTS[view])
        elif section.name == "services" and succeeded(section, may_be_missing=False):
            found += _services(section.lines)
    return found


def _entries(lines: list[str], root: str) -> list[Finding]:
    found = []
    for key in reg_keys(lines):
        name = key.text("DisplayName") or ""
        if parent(key.path).casefold() == root.casefold() and _matches(name, DISPLAY_NAMES):
            found.append(_finding(name, {"display_name": name, "key": key.path}))
    return found


def _services(lines: list[str]) -> list[Finding]:
    found = []
    for key in reg_keys(lines):
        name = leaf(key.path)
        if parent(key.path).casefold() == SERVICES_ROOT.casefold() and _matches(name, SERVICES):
            found.append(_finding(name, {"service": name}))
    return found


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return bool(name) and any(fnmatch.fnmatch(name.casefold(), p.casefold()) for p in patterns)


def _finding(name: str, evidence: dict[str, str]) -> Finding:
    return Finding(product=PRODUCT, name=name, version=None, kind=KIND, evidence=evidence)
