"""Loads the catalog and playbooks from the built-in directory and any --playbooks directories."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import orchestrator
from orchestrator.errors import PlaybookError
from orchestrator.inventory.yamlnodes import LOADER
from orchestrator.playbook.model import (
    EXIT_MEANINGS,
    FOR_EACH,
    STEP_KINDS,
    Catalog,
    Playbook,
    Product,
    Step,
)
from orchestrator.playbook.parsers import PARSERS
from orchestrator.playbook.render import Renderer


def builtin_dir() -> Path:
    """``playbooks/`` beside the package (kremove is installed from its checkout)."""
    return Path(orchestrator.__file__).resolve().parent.parent / "playbooks"


@dataclass(frozen=True)
class PlaybookSet:
    """Everything content-side a run needs. ``version`` identifies the exact content used."""

    dirs: tuple[Path, ...]
    catalog: Catalog
    playbooks: Mapping[str, Playbook]
    version: str
    renderer: Renderer

    def playbook_for(self, platform: str, kind: str) -> Playbook | None:
        """The playbook of ``platform`` whose steps are of ``kind`` (detect, remove, verify)."""
        for playbook in self.playbooks.values():
            if playbook.platform == platform and kind in playbook.kinds:
                return playbook
        return None

    def detect_playbook(self, platform: str) -> Playbook | None:
        return self.playbook_for(platform, "detect")


def load_playbooks(extra_dirs: Sequence[Path] = ()) -> PlaybookSet:
    """Later directories override earlier ones: templates and playbooks by name, catalog entries
    key by key (so an override can change one fact of a product and keep the rest)."""
    dirs = (builtin_dir(), *extra_dirs)
    for d in dirs:
        if not d.is_dir():
            raise PlaybookError(f"playbooks directory {d} does not exist")
    merged: dict[str, Any] = {}
    catalog_files: list[Path] = []
    playbooks: dict[str, Playbook] = {}
    for d in dirs:
        catalog_file = d / "catalog.yml"
        if catalog_file.exists():
            doc = _mapping(_read_yaml(catalog_file), "catalog", catalog_file, set(_CATALOG_KEYS))
            _check_catalog(doc, catalog_file)
            merged = _merge(merged, doc)
            catalog_files.append(catalog_file)
        for path in sorted(d.glob("*/*.yml")):
            playbook = _parse_playbook(_read_yaml(path), path)
            playbooks[playbook.name] = playbook
    if not catalog_files:
        raise PlaybookError(f"no catalog.yml found in {', '.join(map(str, dirs))}")
    catalog = _build_catalog(merged, catalog_files[-1])
    renderer = Renderer(list(reversed(dirs)))
    for playbook in playbooks.values():
        for step in playbook.steps:
            if step.parser is not None and step.parser not in PARSERS:
                raise PlaybookError(
                    f"step {step.id!r}: unknown parser {step.parser!r} "
                    f"(known: {', '.join(sorted(PARSERS))})",
                    file=playbook.source,
                )
            if isinstance(step.exit_codes, str) and step.exit_codes not in catalog.exit_code_tables:
                raise PlaybookError(
                    f"step {step.id!r}: exit_codes {step.exit_codes!r} is not a table in the "
                    f"catalog (known: {', '.join(sorted(catalog.exit_code_tables))})",
                    file=playbook.source,
                )
            if step.when is not None:
                renderer.check_expression(step.when, f"{playbook.source}: step {step.id!r}: when")
    return PlaybookSet(
        dirs=dirs,
        catalog=catalog,
        playbooks=playbooks,
        version=f"{orchestrator.__version__}+{_digest(dirs)}",
        renderer=renderer,
    )


def _digest(dirs: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for d in dirs:
        for path in sorted(p for p in d.rglob("*") if p.is_file()):
            h.update(str(path.relative_to(d)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=LOADER)
    except OSError as exc:
        raise PlaybookError(f"cannot read: {exc.strerror}", file=path) from None
    except UnicodeDecodeError:
        raise PlaybookError("not UTF-8 text", file=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise PlaybookError(
            f"YAML syntax error: {problem}", file=path, line=None if mark is None else mark.line + 1
        ) from None


def _mapping(value: Any, what: str, path: Path, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PlaybookError(f"{what} must be a mapping", file=path)
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        raise PlaybookError(
            f"{what}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})", file=path
        )
    return value


def _strings(value: Any, what: str, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PlaybookError(f"{what} must be a list of non-empty strings", file=path)
    return tuple(value)


_CATALOG_KEYS = ("version", "platforms", "exit_codes", "products")
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
        "residue_paths",
        "reinstall",
    },
    "macos": {
        "receipts",
        "launchd",
        "launchd_plists",
        "uninstall_script",
        "paths",
        "reinstall",
    },
}
_CATALOG_PLATFORM_KEYS = {
    "linux": {"residue_paths"},
    "windows": {"residue_paths", "residue_registry", "driver_services"},
    "macos": {"residue_paths"},
}
_STRING_KEYS = {"reinstall", "uninstall", "password", "uninstall_script"}
_PASSWORD_KINDS = ("none", "kes", "klnagent")

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
}


def _merge(base: Any, override: Any) -> Any:
    """``override`` over ``base``, mappings key by key; anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge(base.get(key), value) if key in base else value
        return out
    return override


def _check_catalog(doc: dict[str, Any], path: Path) -> None:
    """Shape checks on one catalog file, so errors name the file that has them."""
    platforms = _mapping(doc.get("platforms") or {}, "platforms", path, set(_PLATFORM_KEYS))
    for name, entry in platforms.items():
        entry = _mapping(entry, f"platforms.{name}", path, _CATALOG_PLATFORM_KEYS[name])
        for key, value in entry.items():
            _strings(value, f"platforms.{name}.{key}", path)
            if name == "windows":
                _check_windows(key, value, f"platforms.windows.{key}", path)
    tables = doc.get("exit_codes") or {}
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
    entries = doc.get("products") or {}
    if not isinstance(entries, dict):
        raise PlaybookError("products must be a mapping of product id to entry", file=path)
    for pid, entry in entries.items():
        if not _PRODUCT_ID.fullmatch(str(pid)):
            raise PlaybookError(
                f"products.{str(pid)!r}: a product id must be lowercase letters, digits and "
                "hyphens, starting with a letter or digit ([a-z0-9-])",
                file=path,
            )
        what = f"products.{pid}"
        entry = _mapping(entry, what, path, _PRODUCT_KEYS)
        if "order" in entry and (
            not isinstance(entry["order"], int) or isinstance(entry["order"], bool)
        ):
            raise PlaybookError(
                f"{what}.order must be an integer (lower is removed first)", file=path
            )
        for key in ("sources", "unconfirmed"):
            _strings(entry.get(key), f"{what}.{key}", path)
        for platform, allowed in _PLATFORM_KEYS.items():
            if platform not in entry:
                continue
            data = _mapping(entry[platform] or {}, f"{what}.{platform}", path, allowed)
            for key, value in data.items():
                where = f"{what}.{platform}.{key}"
                if key in _STRING_KEYS:
                    if not isinstance(value, str) or not value:
                        raise PlaybookError(f"{where} must be a non-empty string", file=path)
                else:
                    _strings(value, where, path)
                if key in ("residue_paths", "paths"):
                    for item in value:
                        _check_deletable(item, where, path)
                if platform == "windows" and key not in _WINDOWS_NOT_DATA:
                    _check_windows(key, value, where, path)
                if (platform, key) in _ARGUMENT_KEYS:
                    _check_arguments(value, where, path)
            if data.get("password", "none") not in _PASSWORD_KINDS:
                raise PlaybookError(
                    f"{what}.{platform}.password must be one of {', '.join(_PASSWORD_KINDS)}",
                    file=path,
                )


def _check_windows(key: str, value: str | list[str], where: str, path: Path) -> None:
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
        parts = item.split("\\")
        if key == "residue_registry" and (
            parts[0].upper() not in _HIVES or len(parts) < 2 or not all(parts)
        ):
            raise PlaybookError(
                f"{where}: {item!r} is not a registry key: it must be HIVE\\Key\\... "
                f"({', '.join(sorted(_HIVES))}), without empty parts",
                file=path,
            )


def _check_arguments(value: list[str], where: str, path: Path) -> None:
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


def _build_catalog(doc: dict[str, Any], path: Path) -> Catalog:
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


_STEP_KEYS = {
    "id",
    "kind",
    "readonly",
    "template",
    "parser",
    "become",
    "timeout",
    "description",
    "for_each",
    "when",
    "exit_codes",
    "retries",
    "retry_delay",
}


def _parse_playbook(doc: Any, path: Path) -> Playbook:
    doc = _mapping(doc, "playbook", path, {"name", "platform", "description", "steps"})
    for key in ("name", "platform"):
        if not isinstance(doc.get(key), str):
            raise PlaybookError(f"{key!r} is required", file=path)
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise PlaybookError("'steps' must be a non-empty list", file=path)
    steps = []
    for i, raw in enumerate(raw_steps, 1):
        raw = _mapping(raw, f"step {i}", path, _STEP_KEYS)
        if not isinstance(raw.get("id"), str) or not isinstance(raw.get("template"), str):
            raise PlaybookError(f"step {i}: 'id' and 'template' are required", file=path)
        if raw.get("kind") not in STEP_KINDS:
            raise PlaybookError(
                f"step {raw['id']!r}: kind must be one of {', '.join(STEP_KINDS)}", file=path
            )
        if not isinstance(raw.get("readonly"), bool):
            raise PlaybookError(
                f"step {raw['id']!r}: 'readonly' must be stated, true or false", file=path
            )
        if raw["kind"] in ("detect", "verify") and not raw["readonly"]:
            raise PlaybookError(
                f"step {raw['id']!r}: {raw['kind']} steps must be readonly", file=path
            )
        timeout = raw.get("timeout", 120)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise PlaybookError(
                f"step {raw['id']!r}: timeout must be a positive number of seconds", file=path
            )
        if raw.get("for_each") not in FOR_EACH:
            raise PlaybookError(
                f"step {raw['id']!r}: for_each must be 'product', 'finding' or absent", file=path
            )
        exit_codes = raw.get("exit_codes")
        valid_table = isinstance(exit_codes, dict) and all(
            isinstance(c, int) and m in EXIT_MEANINGS for c, m in exit_codes.items()
        )
        if not (exit_codes is None or isinstance(exit_codes, str) or valid_table):
            raise PlaybookError(
                f"step {raw['id']!r}: exit_codes must name a catalog table or map integer "
                f"codes to {', '.join(EXIT_MEANINGS)}",
                file=path,
            )
        if raw.get("when") is not None and not isinstance(raw["when"], str):
            raise PlaybookError(f"step {raw['id']!r}: when must be an expression", file=path)
        retries = raw.get("retries", 2)
        delay = raw.get("retry_delay", 30)
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
            raise PlaybookError(f"step {raw['id']!r}: retries must be 0 to 10", file=path)
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise PlaybookError(f"step {raw['id']!r}: retry_delay must be seconds", file=path)
        steps.append(
            Step(
                id=raw["id"],
                kind=raw["kind"],
                readonly=raw["readonly"],
                template=raw["template"],
                parser=raw.get("parser"),
                become=bool(raw.get("become", False)),
                timeout=float(timeout),
                description=str(raw.get("description", "")),
                for_each=raw.get("for_each"),
                when=raw.get("when"),
                exit_codes=exit_codes,
                retries=retries,
                retry_delay=float(delay),
            )
        )
    return Playbook(
        name=doc["name"],
        platform=doc["platform"],
        description=str(doc.get("description", "")),
        steps=tuple(steps),
        source=str(path),
    )
