"""The Windows detection parser: output of playbooks/windows/detect.cmd.j2 in, findings out.

The batch script only prints; everything is decided here, from the sections windows_output reads
(Uninstall entries in both registry views, services and drivers, residue folders and keys).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence

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
# A Network Agent installed from setup.exe also has an "InstallWIX_{GUID}" Uninstall key with the
# same DisplayName beside the MSI's own "{GUID}" key (the catalog's klnagent sources).
_WIX = re.compile(f"InstallWIX_({PRODUCT_CODE.pattern})", re.IGNORECASE)
# A user hive's name under HKEY_USERS; ".DEFAULT" is LocalSystem's S-1-5-18 again, and
# "<SID>_Classes" holds no Uninstall key.
_SID = re.compile(r"S-1-[0-9]+(?:-[0-9]+)+")
# Service states of something running: a driver or service marked for deletion (DeleteFlag, as
# an uninstall leaves one that cannot stop before the reboot) or stopping is on its way out.
_LIVE = {"RUNNING", "START_PENDING", "CONTINUE_PENDING", "PAUSE_PENDING", "PAUSED"}
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
    for needed in ("uninstall", "services", "sc", "deleteflag", "paths", "users"):
        if needed not in by_name:
            raise ParseError(f"the detection output has no {needed!r} section")
    views = sorted(s.args[0] for s in by_name["uninstall"] if s.args)
    if views != sorted(UNINSTALL_ROOTS):
        raise ParseError(f"the detection output has Uninstall views {views}, not 32 and 64")
    installed = _installed(by_name["uninstall"], catalog, os64)
    installed += _user_installed(by_name, catalog, installed)
    marked = _marked_for_deletion(by_name["deleteflag"][0])
    services = _service_findings(by_name["services"][0], by_name["sc"][0], catalog, marked)
    unfound = _live_without_entry(services, installed, catalog)
    moved = {f.evidence["service"] for f in unfound}
    leftovers = [f for f in services if f.evidence["service"] not in moved]
    leftovers += _path_findings(by_name["paths"][0], catalog)
    leftovers += _registry_findings(by_name.get("regkey", []), catalog, os64)
    return installed + unfound + leftovers


# -- Uninstall entries ------------------------------------------------------------------------


def _installed(sections: Sequence[Section], catalog: Catalog, os64: bool) -> list[Finding]:
    """One finding per Kaspersky Uninstall entry of either view, in removal order."""
    installed: list[Finding] = []
    seen: set[str] = set()
    listed: list[tuple[str, RegKey]] = []
    for section in sections:
        view = section.args[0] if section.args else ""
        if view not in UNINSTALL_ROOTS:
            raise ParseError(f"unknown Uninstall view {view!r} in the detection output")
        # 32-bit Windows has no WOW6432Node key: nothing can be registered there.
        may_be_missing = view == "32" and (not os64 or key_not_found(section))
        if succeeded(section, may_be_missing=may_be_missing):
            listed += [(view, key) for key in reg_keys(section.lines)]
    subkeys = {leaf(key.path).casefold() for _, key in listed}
    for view, key in listed:
        wix = _WIX.fullmatch(leaf(key.path))
        if wix is not None and wix.group(1).casefold() in subkeys:
            continue  # folded into the MSI's own {GUID} entry, which is the one removed
        finding = _uninstall_finding(key, view, catalog, None if wix is None else wix.group(1))
        if finding is not None and key.path.casefold() not in seen:
            seen.add(key.path.casefold())
            installed.append(finding)
    return sorted(installed, key=lambda f: _order(f, catalog))


def _user_installed(
    by_name: dict[str, list[Section]], catalog: Catalog, machine: Sequence[Finding]
) -> list[Finding]:
    """Per-user Uninstall entries of the loaded user hives (HKEY_USERS\\<SID>), read-only.

    ``userkey SID`` lists the hive's ...\\CurrentVersion key: the Uninstall key exists when it is
    listed there, and then ``useruninstall SID`` must have read it. Such an entry is reported
    without a ProductCode: msiexec run by kremove's login cannot remove another user's install.
    One whose subkey is also a machine-wide entry's (``machine``) is that product, removed there.
    """
    seen = {leaf(f.evidence["key"]).casefold() for f in machine}
    parents = {s.args[0].casefold(): s for s in by_name.get("userkey", []) if s.args}
    findings: list[Finding] = []
    for section in by_name.get("useruninstall", []):
        sid = section.args[0] if section.args else ""
        parent_listing = parents.get(sid.casefold())
        if not _SID.fullmatch(sid) or parent_listing is None:
            continue
        if not succeeded(parent_listing, may_be_missing=key_not_found(parent_listing)):
            continue
        root = user_uninstall_root(sid)
        if not any(k.path.casefold() == root.casefold() for k in reg_keys(parent_listing.lines)):
            continue  # this user has no Uninstall key
        succeeded(section, may_be_missing=False)
        for key in reg_keys(section.lines):
            finding = _uninstall_finding(key, "user", catalog, None, root=root)
            if finding is not None and leaf(key.path).casefold() not in seen:
                evidence = {k: v for k, v in finding.evidence.items() if k != "product_code"}
                evidence["user_sid"] = sid
                findings.append(
                    Finding(finding.product, finding.name, finding.version, "installed", evidence)
                )
    return sorted(findings, key=lambda f: _order(f, catalog))


def user_uninstall_root(sid: str) -> str:
    return f"HKEY_USERS\\{sid}\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall"


def _uninstall_finding(
    key: RegKey, view: str, catalog: Catalog, wix_code: str | None, root: str | None = None
) -> Finding | None:
    if parent(key.path).casefold() != (root or UNINSTALL_ROOTS[view]).casefold():
        return None  # the root itself, or a subkey of an entry
    subkey = leaf(key.path)
    display_name = key.text("DisplayName") or ""
    publisher = key.text("Publisher") or ""
    code = subkey if PRODUCT_CODE.fullmatch(subkey) else wix_code
    product = product_for_entry(catalog, display_name, code)
    if product is None:
        if not (_KASPERSKY.search(display_name) or _KASPERSKY.search(publisher)):
            return None
        if not display_name:
            display_name = subkey
    installer = key.values.get("windowsinstaller")
    # An InstallWIX_{GUID} key alone is taken as the MSI of that GUID: msiexec /x {GUID} removes
    # it if Windows Installer knows the product, and if not (1605) verify still finds the key.
    msi = wix_code is not None or (installer is not None and _dword(installer[1]) == 1)
    evidence = {
        "display_name": display_name,
        "key": key.path,
        "view": view,
        "uninstall_string": key.text("UninstallString") or "",
        "windows_installer": "1" if msi else "0",
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


def _service_findings(
    registry: Section, sc: Section, catalog: Catalog, marked: set[str]
) -> list[Finding]:
    """Every service or driver key a catalog product or the driver list names (as globs).

    The registry listing is complete and unlocalized: it decides what exists. sc.exe only adds
    the state; a name it did not list is a key the service manager has not loaded. ``marked``:
    the names whose keys carry DeleteFlag, and those sc.exe lists with no key (deleted).
    """
    succeeded(registry, may_be_missing=False)
    names: dict[str, str] = {}
    for key in reg_keys(registry.lines):
        if parent(key.path).casefold() == SERVICES_ROOT.casefold():
            names.setdefault(leaf(key.path).casefold(), leaf(key.path))
    states = sc_states(sc.lines) if sc.rc == 0 else {}
    # One the service manager still runs but whose key is gone was deleted: gone at the reboot.
    marked = marked | (set(states) - set(names))
    for folded, (name, _) in states.items():
        names.setdefault(folded, name)
    drivers = tuple(catalog.platform("windows").get("driver_services", ()))
    findings: list[Finding] = []
    for folded, name in sorted(names.items()):
        state = states.get(folded, (name, "not loaded (registry key only)"))[1]
        evidence = {"service": name, "state": state}
        if folded in marked:
            evidence["marked_for_deletion"] = "1"
        product = _best_match(catalog, name, "services")
        if product is not None:
            findings.append(residue(product.name, evidence, product=product.id))
        elif any(fnmatch.fnmatchcase(folded, d.casefold()) for d in drivers):
            findings.append(residue("Kaspersky driver", evidence))
    return sorted(findings, key=lambda f: (_order(f, catalog), f.evidence["service"].casefold()))


def _marked_for_deletion(section: Section) -> set[str]:
    """``reg query Services /s /v DeleteFlag``: the services and drivers deleted while running.

    Anything but a listing (no match, or a failure) marks nothing: a live driver is then taken
    for a product, never the other way round.
    """
    if section.rc != 0:
        return set()
    return {
        leaf(k.path).casefold()
        for k in reg_keys(section.lines)
        if parent(k.path).casefold() == SERVICES_ROOT.casefold() and "deleteflag" in k.values
    }


def _live_without_entry(
    services: Sequence[Finding], installed: Sequence[Finding], catalog: Catalog
) -> list[Finding]:
    """Live Kaspersky services and drivers that no Uninstall entry accounts for, as products.

    A running service of a catalog product with no entry of that product, or a running
    Kaspersky driver on a host with no Kaspersky entry at all, is a product detection did not
    find (an install without an Uninstall entry, a hidden or broken one): never residue, which
    would let the host end clean or removed. A service marked for deletion or stopping is residue.
    """
    products = {f.product for f in installed}
    unfound: list[Finding] = []
    for finding in services:
        evidence = finding.evidence
        if evidence["state"] not in _LIVE or evidence.get("marked_for_deletion"):
            continue
        driver = finding.product not in catalog.products
        if (driver and installed) or (not driver and _serves(catalog, products, evidence)):
            continue
        what = "driver" if driver else "service"
        name = f"Kaspersky {what} {evidence['service']} ({evidence['state']}, no Uninstall entry)"
        seen = {**evidence, "seen": f"{what} without an Uninstall entry"}
        unfound.append(Finding(UNKNOWN_KASPERSKY, name, None, "installed", seen))
    return unfound


def _serves(catalog: Catalog, products: set[str], evidence: Mapping[str, str]) -> bool:
    """Whether an installed product lists the service: several name the same one (AVP is KES's
    and KAV 6.0 for Workstations', kavfs KSWS's and KAV for Windows Servers EE's)."""
    name = evidence["service"].casefold()
    return any(
        fnmatch.fnmatchcase(name, pattern.casefold())
        for pid in products
        if pid in catalog.products
        for pattern in catalog.products[pid].windows.get("services", ())
    )


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
