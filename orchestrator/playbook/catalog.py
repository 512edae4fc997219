"""The catalog: each catalog.yml checked on its own, merged key by key, built into a Catalog."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import PlaybookError
from orchestrator.playbook.catalog_guards import (
    check_product_id,
    check_product_value,
    check_windows,
)
from orchestrator.playbook.model import EXIT_MEANINGS, Catalog, Product
from orchestrator.playbook.yamldoc import mapping, read_yaml, strings

_CATALOG_KEYS = {"version", "platforms", "exit_codes", "products"}
_PRODUCT_KEYS = {"name", "vendor", "order", "linux", "windows", "macos", "sources", "unconfirmed"}
# What each platform entry of a product may say; a typo is an error, not a silently ignored fact.
_PLATFORM_KEYS = {
    "linux": {"packages", "services", "residue_paths", "reinstall"},
    "windows": {
        "display_names",
        "product_codes",
        "services",
        "uninstall",
        "password",
        "password_property",
        "password_route",
        "residue_paths",
        "reinstall",
    },
    "macos": {
        "receipts",
        "launchd",
        "launchd_plists",
        "uninstall_script",
        "uninstaller",
        "uninstaller_args",
        "app",
        "system_extensions",
        "team_ids",
        "paths",
        "reinstall",
    },
}
_CATALOG_PLATFORM_KEYS = {
    "linux": {"residue_paths"},
    "windows": {"residue_paths", "residue_registry", "driver_services"},
    "macos": {"residue_paths"},
}
_STRING_KEYS = {
    "reinstall",
    "uninstall",
    "password",
    "password_property",
    "password_route",
    "uninstall_script",
    "uninstaller",
    "app",
}
# kes: KLLOGIN/KLPASSWD; klnagent: KLUNINSTPASSWD as UTF-16LE hex; plain: password_property=value
_PASSWORD_KINDS = ("none", "kes", "klnagent", "plain")


def read_catalog(path: Path) -> dict[str, Any]:
    """One catalog file, checked on its own so that an error names the file that has it."""
    doc = mapping(read_yaml(path), "catalog", path, _CATALOG_KEYS)
    _check_platforms(doc.get("platforms") or {}, path)
    _check_exit_codes(doc.get("exit_codes") or {}, path)
    entries = doc.get("products") or {}
    if not isinstance(entries, dict):
        raise PlaybookError("products must be a mapping of product id to entry", file=path)
    for pid, entry in entries.items():
        _check_product(pid, entry, path)
    return doc


def merge(base: Any, override: Any) -> Any:
    """``override`` over ``base``, mappings key by key; anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base.get(key), value) if key in base else value
        return out
    return override


def _check_platforms(raw: Any, path: Path) -> None:
    platforms = mapping(raw, "platforms", path, set(_PLATFORM_KEYS))
    for name, entry in platforms.items():
        entry = mapping(entry, f"platforms.{name}", path, _CATALOG_PLATFORM_KEYS[name])
        for key, value in entry.items():
            strings(value, f"platforms.{name}.{key}", path)
            if name == "windows":
                check_windows(key, value, f"platforms.windows.{key}", path)


def _check_exit_codes(tables: Any, path: Path) -> None:
    if not isinstance(tables, dict):
        raise PlaybookError("exit_codes must map table names to tables", file=path)
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise PlaybookError(f"exit_codes.{name} must map exit codes to meanings", file=path)
        for code, meaning in table.items():
            if not isinstance(code, int) or meaning not in EXIT_MEANINGS:
                raise PlaybookError(
                    f"exit_codes.{name}: {code!r}: {meaning!r} must be an integer code mapped to "
                    f"one of {', '.join(EXIT_MEANINGS)}",
                    file=path,
                )


def _check_product(pid: Any, entry: Any, path: Path) -> None:
    check_product_id(pid, path)
    what = f"products.{pid}"
    entry = mapping(entry, what, path, _PRODUCT_KEYS)
    if "order" in entry and (
        not isinstance(entry["order"], int) or isinstance(entry["order"], bool)
    ):
        raise PlaybookError(f"{what}.order must be an integer (lower is removed first)", file=path)
    for key in ("sources", "unconfirmed"):
        strings(entry.get(key), f"{what}.{key}", path)
    for platform, allowed in _PLATFORM_KEYS.items():
        if platform not in entry:
            continue
        data = mapping(entry[platform] or {}, f"{what}.{platform}", path, allowed)
        for key, value in data.items():
            where = f"{what}.{platform}.{key}"
            if key in _STRING_KEYS:
                if not isinstance(value, str) or not value:
                    raise PlaybookError(f"{where} must be a non-empty string", file=path)
            else:
                strings(value, where, path)
            check_product_value(platform, key, value, where, path)
        if data.get("password", "none") not in _PASSWORD_KINDS:
            raise PlaybookError(
                f"{what}.{platform}.password must be one of {', '.join(_PASSWORD_KINDS)}",
                file=path,
            )


def build_catalog(doc: dict[str, Any], path: Path) -> Catalog:
    """The merged catalog documents as a Catalog; ``path`` (the last file) names any error."""
    products: dict[str, Product] = {}
    for pid, entry in (doc.get("products") or {}).items():
        what = f"products.{pid}"
        if not isinstance(entry.get("name"), str) or not entry["name"]:
            raise PlaybookError(f"{what}.name is required", file=path)
        products[str(pid)] = Product(
            id=str(pid),
            name=entry["name"],
            vendor=str(entry.get("vendor", "Kaspersky")),
            order=int(entry.get("order", 50)),
            platforms={
                platform: _freeze(entry[platform] or {})
                for platform in _PLATFORM_KEYS
                if platform in entry
            },
            sources=tuple(entry.get("sources") or ()),
            unconfirmed=tuple(entry.get("unconfirmed") or ()),
        )
    for product in products.values():
        windows = product.on("windows")
        if windows.get("password") == "plain" and not windows.get("password_property"):
            raise PlaybookError(
                f"products.{product.id}.windows: password: plain needs password_property "
                "(the msiexec property that takes the uninstall password)",
                file=path,
            )
    if not products:
        raise PlaybookError("the catalog lists no products", file=path)
    return Catalog(
        products=products,
        platforms={k: _freeze(v or {}) for k, v in (doc.get("platforms") or {}).items()},
        exit_code_tables={
            str(k): {int(c): str(m) for c, m in v.items()}
            for k, v in (doc.get("exit_codes") or {}).items()
        },
    )


def _freeze(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
