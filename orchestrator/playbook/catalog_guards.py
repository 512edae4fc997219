"""Catalog values that reach scripts run as root or Administrator, refused when they could act.

A catalog override is data, but its strings are printed into the detection and removal scripts
(issue 15, M5): a Windows string must not be batch syntax, a name given to a program must not be
an option, a product id must be plain, and a path the removal deletes must be Kaspersky's own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from orchestrator.errors import PlaybookError

# Product ids are printed on the command lines of every platform's scripts, the ledger and reports.
_PRODUCT_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
# What cmd.exe reads as syntax in a line it runs; a batch file expands "%" pairs before it honours
# carets, so no quoting makes these inert there. The Windows templates keep catalog values on
# data lines besides, and need them free of these to use them inside double quotes.
_CMD_SYNTAX = '"%&|<>^'
# Windows entries that are not data for the scripts: an enum and a rollback template (code).
_WINDOWS_NOT_DATA = {"password", "reinstall"}
_GUID = re.compile(
    r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}"
)
# Windows service and driver names are globs matched on the controller against the Services key's
# subkeys (never put into a script): letters, digits, _ . - and the wildcards * ?, with at least
# two literal characters so that no pattern takes every service on a host for Kaspersky's.
_SERVICE_GLOB = re.compile(r"[A-Za-z0-9_.*?-]+")
_SERVICE_KEYS = {"services", "driver_services"}
# A public Windows Installer property, which is all uppercase: what takes an uninstall password.
_MSI_PROPERTY = re.compile(r"[A-Z_][A-Z0-9_.]*")
_HIVES = {
    "HKLM",
    "HKCU",
    "HKCR",
    "HKU",
    "HKCC",
    "HKEY_LOCAL_MACHINE",
    "HKEY_CURRENT_USER",
    "HKEY_CLASSES_ROOT",
    "HKEY_USERS",
    "HKEY_CURRENT_CONFIG",
}
# Names the Linux and macOS scripts pass to a program as arguments (quoted, yet read as options
# when they start with "-": rpm -q --eval=%(command) runs a command).
_ARGUMENT_KEYS = {
    ("linux", "packages"),
    ("linux", "services"),
    ("macos", "receipts"),
    ("macos", "launchd"),
    ("macos", "system_extensions"),
    ("macos", "team_ids"),
}


def check_product_id(pid: object, path: Path) -> None:
    if not _PRODUCT_ID.fullmatch(str(pid)):
        raise PlaybookError(
            f"products.{str(pid)!r}: a product id must be lowercase letters, digits and "
            "hyphens, starting with a letter or digit ([a-z0-9-])",
            file=path,
        )


def check_product_value(
    platform: str, key: str, value: str | Sequence[str], where: str, path: Path
) -> None:
    """One value of a product's platform entry, already checked to be a string or a list."""
    items = [value] if isinstance(value, str) else value
    if key in ("residue_paths", "paths", "app", "uninstaller"):  # deleted, or run as root
        for item in items:
            _check_deletable(item, where, path)
    if platform == "windows" and key not in _WINDOWS_NOT_DATA:
        check_windows(key, value, where, path)
    if (platform, key) in _ARGUMENT_KEYS:
        _check_arguments(items, where, path)


def check_windows(key: str, value: str | Sequence[str], where: str, path: Path) -> None:
    """Windows catalog strings go into batch scripts run as Administrator (issue 15, M5)."""
    for item in [value] if isinstance(value, str) else value:
        bad = next((ch for ch in item if ch in _CMD_SYNTAX or _control(ch)), None)
        if bad is not None:
            raise PlaybookError(
                f"{where}: {item!r} holds {bad!r}, which cmd.exe would read as syntax; Windows "
                "catalog strings may not hold a double quote, % & | < > ^ or control characters",
                file=path,
            )
        if item != item.strip():
            raise PlaybookError(
                f"{where}: {item!r} starts or ends with a blank, which the detection script "
                "would not carry",
                file=path,
            )
        if key == "product_codes" and not _GUID.fullmatch(item):
            raise PlaybookError(
                f"{where}: {item!r} is not a ProductCode: it must be a GUID in braces, "
                "{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}",
                file=path,
            )
        if key == "password_property" and not _MSI_PROPERTY.fullmatch(item):
            raise PlaybookError(
                f"{where}: {item!r} is not a public msiexec property: uppercase letters, digits, "
                "_ and . (such as UNLOCK_PASSWORD)",
                file=path,
            )
        if key in _SERVICE_KEYS and (
            not _SERVICE_GLOB.fullmatch(item) or len(re.sub(r"[*?]", "", item)) < 2
        ):
            raise PlaybookError(
                f"{where}: {item!r} is not a service name or pattern: letters, digits, _ . - "
                "and the wildcards * ?, with at least two other characters (such as klupd_*)",
                file=path,
            )
        parts = item.split("\\")
        if key == "residue_registry" and (
            parts[0].upper() not in _HIVES or len(parts) < 2 or not all(parts)
        ):
            raise PlaybookError(
                f"{where}: {item!r} is not a registry key: it must be HIVE\\Key\\... "
                f"({', '.join(sorted(_HIVES))}), without empty parts",
                file=path,
            )


def _check_arguments(value: Sequence[str], where: str, path: Path) -> None:
    """Names given to a program as arguments: quoted, so no shell reads them, but not options."""
    for item in value:
        if item.startswith("-"):
            raise PlaybookError(
                f"{where}: {item!r} starts with '-', which the program it is given to would "
                "read as an option",
                file=path,
            )


def _control(ch: str) -> bool:
    """C0 and C1 controls, and the line and paragraph separators."""
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def _check_deletable(item: str, where: str, path: Path) -> None:
    """Paths the removal deletes recursively: absolute, no '..', and Kaspersky's own.

    A catalog override is data, but a typo here must not become ``rm -rf /opt``.
    """
    parts = item.replace("\\", "/").split("/")
    absolute = item.startswith("/") or (len(item) > 2 and item[1:3] in (":\\", ":/"))
    if not absolute or ".." in parts or not any("kaspersky" in p.lower() for p in parts[1:]):
        raise PlaybookError(
            f"{where}: {item!r} is not a path kremove may delete: it must be absolute, without "
            "'..', and have a directory or file named for Kaspersky in it",
            file=path,
        )
