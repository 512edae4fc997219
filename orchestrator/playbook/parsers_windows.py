"""The Windows detection parser: output of playbooks/windows/detect.cmd.j2 in, findings out.

The batch script only prints; everything is decided here. Its output is a series of sections,
each opened by ``==kremove:section NAME ARGS==`` and, for a section that ran one command, closed
by ``==kremove:rc N==`` (that command's exit code). ``==kremove:end==`` proves the script ran to
its end. reg.exe and sc.exe print their own, unlocalized, layouts; only their error sentences are
translated, so no decision here depends on an English message except as a last resort.
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from orchestrator.playbook.model import Catalog, Finding, Product
from orchestrator.playbook.parsers import ParseError, parser
from orchestrator.transports.base import CommandResult

UNKNOWN_KASPERSKY = "unknown-kaspersky"
RESIDUE = "residue"

# The keys detect.cmd.j2 queries, as reg.exe prints them. The 32-bit view is read through its
# WOW6432Node path so that the printed key says which view an entry lives in.
UNINSTALL_ROOTS = {
    "64": r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall",
    "32": r"HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall",
}
SERVICES_ROOT = r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services"
_HIVES = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
}

# A ProductCode as Windows Installer writes it. Anything else taken from a host's registry is not
# passed to msiexec: the finding then carries no product_code and the non-MSI step reports it.
PRODUCT_CODE = re.compile(
    r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}"
)
# Kaspersky in Latin or Cyrillic script (e.g. "Антивирус Касперского").
_KASPERSKY = re.compile(r"kaspersky|касперск", re.IGNORECASE)
# reg.exe: four spaces, the value name, four spaces, the type, four spaces, the data.
_REG_VALUE = re.compile(r"^ {4}(.+?) {4}(REG_[A-Z0-9_]+)(?: {4}(.*))?$")
_MARKER = re.compile(r"^==kremove:(\S+)(?: (.*?))?==$")
# reg.exe's "key not found" sentence, in English only; every other language is handled without it.
_NOT_FOUND = "unable to find the specified registry key"
_OS64 = {"AMD64", "ARM64", "IA64"}


@dataclass
class _Section:
    name: str
    args: list[str]
    lines: list[str] = field(default_factory=list)
    rc: int | None = None

    def describe(self) -> str:
        return " ".join([self.name, *self.args])

    def error_text(self) -> str:
        text = " ".join(ln.strip() for ln in self.lines if ln.strip())
        return text[:300] or "no output"


@dataclass
class _RegKey:
    path: str
    values: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (type, data)

    def text(self, name: str) -> str | None:
        value = self.values.get(name.casefold())
        return None if value is None else value[1]


@parser("windows_detect")
def windows_detect(result: CommandResult, catalog: Catalog) -> list[Finding]:
    """Uninstall entries (both registry views), services and drivers, residue folders and keys."""
    if result.truncated:
        raise ParseError(
            "the detection output was cut short by the transport's output limit, "
            "so it cannot show the whole registry"
        )
    lines = [ln.rstrip("\r") for ln in result.stdout.split("\n")]
    if "==kremove:end==" not in lines:
        raise ParseError(
            "the detection script did not reach its end marker: output was cut short "
            "or the script stopped early"
        )
    arch, sections = _sections(lines)
    if not arch:
        raise ParseError("the detection output has no architecture line")
    os64 = bool(_OS64 & set(arch))
    by_name: dict[str, list[_Section]] = {}
    for section in sections:
        by_name.setdefault(section.name, []).append(section)
    for needed in ("uninstall", "services", "sc", "paths"):
        if needed not in by_name:
            raise ParseError(f"the detection output has no {needed!r} section")
    views = sorted(s.args[0] for s in by_name["uninstall"] if s.args)
    if views != sorted(UNINSTALL_ROOTS):
        raise ParseError(f"the detection output has Uninstall views {views}, not 32 and 64")
    installed: list[Finding] = []
    seen: set[str] = set()
    for section in by_name["uninstall"]:
        view = section.args[0] if section.args else ""
        if view not in UNINSTALL_ROOTS:
            raise ParseError(f"unknown Uninstall view {view!r} in the detection output")
        # 32-bit Windows has no WOW6432Node key: nothing can be registered there.
        may_be_missing = view == "32" and (not os64 or _not_found(section))
        if not _succeeded(section, may_be_missing=may_be_missing):
            continue
        for key in _reg_keys(section.lines):
            finding = _uninstall_finding(key, view, catalog)
            if finding is not None and key.path.casefold() not in seen:
                seen.add(key.path.casefold())
                installed.append(finding)
    residue = _service_findings(by_name["services"][0], by_name["sc"][0], catalog)
    residue += _path_findings(by_name["paths"][0], catalog)
    residue += _registry_findings(by_name.get("regkey", []), catalog, os64)
    return sorted(installed, key=lambda f: _order(f, catalog)) + residue


# -- sections ---------------------------------------------------------------------------------


def _sections(lines: Sequence[str]) -> tuple[list[str], list[_Section]]:
    arch: list[str] = []
    sections: list[_Section] = []
    current: _Section | None = None
    for line in lines:
        marker = _MARKER.match(line)
        if marker is None:
            if current is not None:
                current.lines.append(line)
            continue
        tag, rest = marker.group(1), (marker.group(2) or "").split()
        if tag == "arch":
            arch = rest
        elif tag == "section" and rest:
            current = _Section(rest[0], rest[1:])
            sections.append(current)
        elif tag == "rc" and current is not None and rest:
            try:
                current.rc = int(rest[0])
            except ValueError:
                raise ParseError(f"bad exit code line {line!r} in the detection output") from None
            current = None
        elif tag == "end":
            current = None
    return arch, sections


def _succeeded(section: _Section, *, may_be_missing: bool) -> bool:
    """True when the section's command succeeded; False when its key may be, and is, absent."""
    if section.rc is None:
        raise ParseError(f"section {section.describe()!r} has no exit code line")
    if section.rc == 0:
        return True
    if may_be_missing:
        return False
    raise ParseError(f"{section.describe()}: the query exited {section.rc}: {section.error_text()}")


def _not_found(section: _Section) -> bool:
    return _NOT_FOUND in section.error_text().casefold()


def _reg_keys(lines: Iterable[str]) -> list[_RegKey]:
    """``reg query`` output: a key's full path on its own line, then its values, indented."""
    keys: list[_RegKey] = []
    current: _RegKey | None = None
    for line in lines:
        if line.startswith("HKEY_"):
            current = _RegKey(line.strip())
            keys.append(current)
            continue
        value = _REG_VALUE.match(line)
        if value is not None and current is not None:
            name, kind, data = value.groups()
            current.values[name.casefold()] = (kind, _clean(data or ""))
        # Anything else: blank separators, or the next lines of a value holding a line break.
    return keys


def _clean(text: str) -> str:
    """Host text made safe to carry: control characters (never in a real name) replaced."""
    return "".join("\ufffd" if unicodedata.category(ch) == "Cc" else ch for ch in text).strip()


def _parent(path: str) -> str:
    return path.rpartition("\\")[0]


def _leaf(path: str) -> str:
    return path.rpartition("\\")[2]


# -- Uninstall entries ------------------------------------------------------------------------


def _uninstall_finding(key: _RegKey, view: str, catalog: Catalog) -> Finding | None:
    if _parent(key.path).casefold() != UNINSTALL_ROOTS[view].casefold():
        return None  # the root itself, or a subkey of an entry
    subkey = _leaf(key.path)
    display_name = key.text("DisplayName") or ""
    publisher = key.text("Publisher") or ""
    code = subkey if PRODUCT_CODE.fullmatch(subkey) else None
    product = product_for_entry(catalog, display_name, code)
    if product is None:
        if not (_KASPERSKY.search(display_name) or _KASPERSKY.search(publisher)):
            return None
        if not display_name:
            display_name = subkey
    installer = key.values.get("windowsinstaller")
    evidence = {
        "display_name": display_name,
        "key": key.path,
        "view": view,
        "uninstall_string": key.text("UninstallString") or "",
        "windows_installer": "1" if installer is not None and _dword(installer[1]) == 1 else "0",
        "publisher": publisher,
    }
    if code is not None:
        evidence["product_code"] = code.upper()
    return Finding(
        product=UNKNOWN_KASPERSKY if product is None else product.id,
        name=display_name if product is None else product.name,
        version=key.text("DisplayVersion") or None,
        kind="installed",
        evidence=evidence,
    )


def _dword(data: str) -> int | None:
    try:
        return int(data, 0)
    except ValueError:
        return None


def product_for_entry(
    catalog: Catalog, display_name: str, product_code: str | None
) -> Product | None:
    """The catalog product an Uninstall entry belongs to: by known ProductCode first, then by the
    most specific ``display_names`` pattern that matches (case-insensitive)."""
    if product_code is not None:
        for product in catalog.ordered():
            codes = {c.casefold() for c in product.windows.get("product_codes", ())}
            if product_code.casefold() in codes:
                return product
    if not display_name:
        return None
    return _best_match(catalog, display_name, "display_names")


def _best_match(catalog: Catalog, name: str, key: str) -> Product | None:
    best: tuple[tuple[int, int], Product] | None = None
    for product in catalog.ordered():
        for pattern in product.windows.get(key, ()):
            if fnmatch.fnmatchcase(name.casefold(), pattern.casefold()):
                score = specificity(pattern)
                if best is None or score > best[0]:
                    best = (score, product)
    return None if best is None else best[1]


def specificity(pattern: str) -> tuple[int, int]:
    """How much of a glob is literal; fewer wildcards break a tie ("AVP" beats "AVP*")."""
    wildcards = re.findall(r"\[[^\]]*\]|[*?]", pattern)
    literal = len(re.sub(r"\[[^\]]*\]|[*?]", "", pattern))
    return literal, -len(wildcards)


def _order(finding: Finding, catalog: Catalog) -> tuple[int, str, str]:
    product = catalog.products.get(finding.product)
    order = product.order if product is not None else 1_000_000
    return order, finding.product, finding.evidence.get("key", "")


# -- services and drivers ---------------------------------------------------------------------


def _service_findings(registry: _Section, sc: _Section, catalog: Catalog) -> list[Finding]:
    """Every service or driver key a catalog product or the driver list names.

    The registry listing is complete and unlocalized: it decides what exists. sc.exe only adds
    the state; a name it did not list is a key the service manager has not loaded.
    """
    _succeeded(registry, may_be_missing=False)
    names: dict[str, str] = {}
    for key in _reg_keys(registry.lines):
        if _parent(key.path).casefold() == SERVICES_ROOT.casefold():
            names.setdefault(_leaf(key.path).casefold(), _leaf(key.path))
    states = _sc_states(sc.lines) if sc.rc == 0 else {}
    for folded, (name, _) in states.items():
        names.setdefault(folded, name)
    drivers = tuple(catalog.platform("windows").get("driver_services", ()))
    findings: list[Finding] = []
    for folded, name in sorted(names.items()):
        state = states.get(folded, (name, "not loaded (registry key only)"))[1]
        product = _best_match(catalog, name, "services")
        if product is not None:
            findings.append(
                Finding(
                    product=product.id,
                    name=product.name,
                    version=None,
                    kind="residue",
                    evidence={"service": name, "state": state},
                )
            )
        elif any(fnmatch.fnmatchcase(folded, d.casefold()) for d in drivers):
            findings.append(
                Finding(
                    product=RESIDUE,
                    name="Kaspersky driver",
                    version=None,
                    kind="residue",
                    evidence={"service": name, "state": state},
                )
            )
    return sorted(findings, key=lambda f: (_order(f, catalog), f.evidence["service"].casefold()))


def _sc_states(lines: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``sc query``: ``SERVICE_NAME: x`` then ``STATE : 4  RUNNING`` among indented fields."""
    states: dict[str, tuple[str, str]] = {}
    name: str | None = None
    for line in lines:
        if line.startswith("SERVICE_NAME:"):
            name = line.partition(":")[2].strip()
            states[name.casefold()] = (name, "unknown")
        elif name is not None and line.strip().startswith("STATE"):
            words = line.partition(":")[2].split()
            if len(words) >= 2:
                states[name.casefold()] = (name, words[1])
    return states


# -- residue folders and registry keys --------------------------------------------------------


def _path_findings(section: _Section, catalog: Catalog) -> list[Finding]:
    """``path N`` (the catalog's platform residue_paths) or ``path N PRODUCT`` (a product's)."""
    findings: list[Finding] = []
    for line in section.lines:
        words = line.split()
        if len(words) not in (2, 3) or words[0] != "path" or not words[1].isdigit():
            continue
        index = int(words[1])
        if len(words) == 2:
            owner, paths = RESIDUE, catalog.platform("windows").get("residue_paths", ())
        elif words[2] in catalog.products:
            owner = words[2]
            paths = catalog.products[owner].windows.get("residue_paths", ())
        else:
            raise ParseError(f"residue path line {line!r} names no catalog product")
        if index >= len(paths):
            raise ParseError(f"residue path line {line!r} does not match the catalog")
        product = catalog.products.get(owner)
        findings.append(
            Finding(
                product=owner,
                name="Kaspersky folder" if product is None else product.name,
                version=None,
                kind="residue",
                evidence={"path": paths[index]},
            )
        )
    return findings


def full_key(key: str) -> str:
    """``HKLM\\X`` as reg.exe prints it: ``HKEY_LOCAL_MACHINE\\X``."""
    hive, sep, rest = key.partition("\\")
    return _HIVES.get(hive.upper(), hive) + sep + rest


def _registry_findings(sections: Sequence[_Section], catalog: Catalog, os64: bool) -> list[Finding]:
    """``regkey N``: the listing of residue_registry[N]'s parent; the key exists if listed."""
    keys: Sequence[str] = catalog.platform("windows").get("residue_registry", ())
    findings: list[Finding] = []
    listed = {int(s.args[0]): s for s in sections if s.args and s.args[0].isdigit()}
    for index, key in enumerate(keys):
        section = listed.get(index)
        if section is None:
            raise ParseError(f"the detection output does not say whether {key} exists")
        wow = "\\wow6432node\\" in key.casefold()
        if not _succeeded(section, may_be_missing=(wow and not os64) or _not_found(section)):
            continue
        wanted = full_key(key).casefold().rstrip("\\")
        if any(k.path.casefold() == wanted for k in _reg_keys(section.lines)):
            findings.append(
                Finding(
                    product=RESIDUE,
                    name="Kaspersky registry key",
                    version=None,
                    kind="residue",
                    evidence={"registry_key": key},
                )
            )
    return findings
