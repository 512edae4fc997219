"""The Windows detection parser: output of playbooks/windows/detect.cmd.j2 in, findings out.

The batch script only prints; everything is decided here, from the sections windows_output reads
(Uninstall entries in both registry views, services and drivers, residue folders and keys).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from orchestrator.playbook.model import Catalog, Finding, Product
from orchestrator.playbook.parsers.common import RESIDUE, ParseError, residue
from orchestrator.playbook.parsers.windows_output import (
    SERVICES_ROOT,
    UNINSTALL_ROOTS,
    RegKey,
    Section,
    full_key,
    key_not_found,
    leaf,
    parent,
    read_sections,
    reg_keys,
    sc_states,
    succeeded,
)
from orchestrator.transports.base import CommandResult

UNKNOWN_KASPERSKY = "unknown-kaspersky"

# A ProductCode as Windows Installer writes it. Anything else taken from a host's registry is not
# passed to msiexec: the finding then carries no product_code and the non-MSI step reports it.
PRODUCT_CODE = re.compile(
    r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}"
)
# Kaspersky in Latin or Cyrillic script (e.g. "Антивирус Касперского").
_KASPERSKY = re.compile(r"kaspersky|касперск", re.IGNORECASE)
_OS64 = {"AMD64", "ARM64", "IA64"}


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
    arch, sections = read_sections(lines)
    if not arch:
        raise ParseError("the detection output has no architecture line")
    os64 = bool(_OS64 & set(arch))
    by_name: dict[str, list[Section]] = {}
    for section in sections:
        by_name.setdefault(section.name, []).append(section)
    for needed in ("uninstall", "services", "sc", "paths"):
        if needed not in by_name:
            raise ParseError(f"the detection output has no {needed!r} section")
    views = sorted(s.args[0] for s in by_name["uninstall"] if s.args)
    if views != sorted(UNINSTALL_ROOTS):
        raise ParseError(f"the detection output has Uninstall views {views}, not 32 and 64")
    installed = _installed(by_name["uninstall"], catalog, os64)
    leftovers = _service_findings(by_name["services"][0], by_name["sc"][0], catalog)
    leftovers += _path_findings(by_name["paths"][0], catalog)
    leftovers += _registry_findings(by_name.get("regkey", []), catalog, os64)
    return installed + leftovers


# -- Uninstall entries ------------------------------------------------------------------------


def _installed(sections: Sequence[Section], catalog: Catalog, os64: bool) -> list[Finding]:
    """One finding per Kaspersky Uninstall entry of either view, in removal order."""
    installed: list[Finding] = []
    seen: set[str] = set()
    for section in sections:
        view = section.args[0] if section.args else ""
        if view not in UNINSTALL_ROOTS:
            raise ParseError(f"unknown Uninstall view {view!r} in the detection output")
        # 32-bit Windows has no WOW6432Node key: nothing can be registered there.
        may_be_missing = view == "32" and (not os64 or key_not_found(section))
        if not succeeded(section, may_be_missing=may_be_missing):
            continue
        for key in reg_keys(section.lines):
            finding = _uninstall_finding(key, view, catalog)
            if finding is not None and key.path.casefold() not in seen:
                seen.add(key.path.casefold())
                installed.append(finding)
    return sorted(installed, key=lambda f: _order(f, catalog))


def _uninstall_finding(key: RegKey, view: str, catalog: Catalog) -> Finding | None:
    if parent(key.path).casefold() != UNINSTALL_ROOTS[view].casefold():
        return None  # the root itself, or a subkey of an entry
    subkey = leaf(key.path)
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


def _service_findings(registry: Section, sc: Section, catalog: Catalog) -> list[Finding]:
    """Every service or driver key a catalog product or the driver list names.

    The registry listing is complete and unlocalized: it decides what exists. sc.exe only adds
    the state; a name it did not list is a key the service manager has not loaded.
    """
    succeeded(registry, may_be_missing=False)
    names: dict[str, str] = {}
    for key in reg_keys(registry.lines):
        if parent(key.path).casefold() == SERVICES_ROOT.casefold():
            names.setdefault(leaf(key.path).casefold(), leaf(key.path))
    states = sc_states(sc.lines) if sc.rc == 0 else {}
    for folded, (name, _) in states.items():
        names.setdefault(folded, name)
    drivers = tuple(catalog.platform("windows").get("driver_services", ()))
    findings: list[Finding] = []
    for folded, name in sorted(names.items()):
        state = states.get(folded, (name, "not loaded (registry key only)"))[1]
        evidence = {"service": name, "state": state}
        product = _best_match(catalog, name, "services")
        if product is not None:
            findings.append(residue(product.name, evidence, product=product.id))
        elif any(fnmatch.fnmatchcase(folded, d.casefold()) for d in drivers):
            findings.append(residue("Kaspersky driver", evidence))
    return sorted(findings, key=lambda f: (_order(f, catalog), f.evidence["service"].casefold()))


# -- residue folders and registry keys --------------------------------------------------------


def _path_findings(section: Section, catalog: Catalog) -> list[Finding]:
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
        name = "Kaspersky folder" if product is None else product.name
        findings.append(residue(name, {"path": paths[index]}, product=owner))
    return findings


def _registry_findings(sections: Sequence[Section], catalog: Catalog, os64: bool) -> list[Finding]:
    """``regkey N``: the listing of residue_registry[N]'s parent; the key exists if listed."""
    keys: Sequence[str] = catalog.platform("windows").get("residue_registry", ())
    findings: list[Finding] = []
    listed = {int(s.args[0]): s for s in sections if s.args and s.args[0].isdigit()}
    for index, key in enumerate(keys):
        section = listed.get(index)
        if section is None:
            raise ParseError(f"the detection output does not say whether {key} exists")
        wow = "\\wow6432node\\" in key.casefold()
        if not succeeded(section, may_be_missing=(wow and not os64) or key_not_found(section)):
            continue
        wanted = full_key(key).casefold().rstrip("\\")
        if any(k.path.casefold() == wanted for k in reg_keys(section.lines)):
            findings.append(residue("Kaspersky registry key", {"registry_key": key}))
    return findings
