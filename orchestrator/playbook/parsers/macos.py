"""The macOS detection parser: the records playbooks/macos/detect.sh.j2 prints, in, findings out.

One tab-separated record per line:

    os        <a line of sw_vers>                     ProductName:\\t\\tmacOS ...
    pkgutil   ok                                      pkgutil --pkgs answered
    receipt   <id>                                    a receipt whose id names Kaspersky
    info      <id>  <a line of pkgutil --pkg-info>    package-id: / version: / location: ...
    launchctl <the header of launchctl list>          PID\\tStatus\\tLabel
    job       <pid> <status> <label>                  a loaded job whose label names Kaspersky
    path      <path>                                  a catalog path that exists
    residue   <path>                                  a platform residue path that exists
    error     <what went wrong>
    end

Each catalog product with any receipt, loaded job or path becomes one ``installed`` finding,
versioned from its first receipt in catalog order. A Kaspersky receipt or job that no catalog
entry lists is an ``installed`` finding of no catalog product (product ``unlisted:<id>``), so a
removal stops and names it instead of calling the host clean. Output without its end marker, or
without proof that pkgutil, launchctl and sw_vers answered, raises ParseError: never a false clean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from orchestrator.playbook.model import Catalog, Finding, Product
from orchestrator.playbook.parsers.common import ParseError, residue
from orchestrator.transports.base import CommandResult

LAUNCHCTL_HEADER = "PID\tStatus\tLabel"
MACOS_NAMES = ("macOS", "Mac OS X", "OS X")
DAEMON_DIRS = ("/Library/LaunchDaemons", "/Library/LaunchAgents")


@dataclass
class _Seen:
    """What one product shows on the host, in the order the records came."""

    receipts: dict[str, str | None] = field(default_factory=dict)  # id -> version
    jobs: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


def launchd_plist_paths(product: Product) -> tuple[str, ...]:
    """The plists of a product's launchd jobs: the catalog's own, then the standard places."""
    data = product.macos
    derived = [
        f"{folder}/{label}.plist"
        for label in data.get("launchd", ())
        for folder in DAEMON_DIRS
        if _plain_label(label)
    ]
    return tuple(dict.fromkeys([*data.get("launchd_plists", ()), *derived]))


def _plain_label(label: str) -> bool:
    """A reverse-DNS launchd label, safe to build a file name from."""
    return (
        bool(label) and not label.startswith(".") and all(c.isalnum() or c in "._-" for c in label)
    )


def product_paths(product: Product) -> tuple[str, ...]:
    """Every path that shows the product is (still) there: its files, uninstaller, job plists."""
    data = product.macos
    script = data.get("uninstall_script")
    listed = [*data.get("paths", ()), *([script] if script else []), *launchd_plist_paths(product)]
    return tuple(dict.fromkeys(listed))


def _key_value(line: str) -> tuple[str, str]:
    key, _, value = line.partition(":")
    return key.strip(), value.strip()


def _check_os(lines: Iterable[str]) -> None:
    fields = dict(_key_value(line) for line in lines if ":" in line)
    name = fields.get("ProductName")
    if name is None:
        raise ParseError("sw_vers printed no ProductName, so this host cannot be shown to be a Mac")
    if name not in MACOS_NAMES:
        raise ParseError(f"sw_vers says ProductName {name!r}: not a macOS host")


def macos_products(result: CommandResult, catalog: Catalog) -> list[Finding]:
    """The records of the module docstring, checked for proof the script ran, as findings."""
    os_lines: list[str] = []
    pkgutil_ok = False
    header: str | None = None
    ended = False
    receipts: dict[str, dict[str, str]] = {}  # id -> pkg-info fields, in listing order
    jobs: dict[str, str] = {}  # label -> pid
    paths: list[str] = []
    leftovers: list[str] = []
    for raw in result.stdout.splitlines():
        tag, _, rest = raw.rstrip("\r").partition("\t")
        if ended:
            raise ParseError(f"output continues after the end marker: {raw[:80]!r}")
        if tag == "end":
            ended = True
        elif tag == "error":
            raise ParseError(rest or "the detection script reported an error")
        elif tag == "os":
            os_lines.append(rest)
        elif tag == "pkgutil" and rest == "ok":
            pkgutil_ok = True
        elif tag == "receipt" and rest:
            receipts.setdefault(rest, {})
        elif tag == "info":
            pkg, _, line = rest.partition("\t")
            if pkg in receipts and ":" in line:
                key, value = _key_value(line)
                receipts[pkg][key] = value
        elif tag == "launchctl":
            header = rest
        elif tag == "job":
            fields = rest.split("\t")
            if len(fields) != 3 or not fields[2]:
                raise ParseError(f"a launchctl list line is not PID, Status, Label: {rest!r}")
            jobs[fields[2]] = fields[0]
        elif tag == "path" and rest and rest not in paths:
            paths.append(rest)
        elif tag == "residue" and rest:
            leftovers.append(rest)
    if not ended:
        raise ParseError("the detection script printed no end marker; output was cut short")
    _check_os(os_lines)
    if not pkgutil_ok:
        raise ParseError("pkgutil did not list the package receipts")
    if header != LAUNCHCTL_HEADER:
        raise ParseError(
            "launchctl list did not print its PID/Status/Label header"
            + (f" (got {header!r})" if header else "")
        )
    return _findings(catalog, receipts, jobs, paths, leftovers)


def _findings(
    catalog: Catalog,
    receipts: Mapping[str, Mapping[str, str]],
    jobs: Mapping[str, str],
    paths: list[str],
    leftovers: list[str],
) -> list[Finding]:
    products = [p for p in catalog.ordered() if p.macos]
    by_receipt = {r: p for p in products for r in p.macos.get("receipts", ())}
    by_label = {label: p for p in products for label in p.macos.get("launchd", ())}
    by_path = {path: p for p in products for path in product_paths(p)}
    seen: dict[str, _Seen] = {}
    unlisted: list[Finding] = []
    for pkg, info in receipts.items():  # listed by --pkgs: there, even if --pkg-info failed
        version = info.get("version") or None
        product = by_receipt.get(pkg)
        if product is None:
            unlisted.append(_unlisted("receipt", pkg, version))
        else:
            seen.setdefault(product.id, _Seen()).receipts[pkg] = version
    for label in jobs:
        product = by_label.get(label)
        if product is None:
            unlisted.append(_unlisted("launchd", label, None))
        else:
            seen.setdefault(product.id, _Seen()).jobs.append(label)
    for path in paths:
        product = by_path.get(path)
        if product is not None:
            seen.setdefault(product.id, _Seen()).paths.append(path)
    found = [_installed(p, seen[p.id]) for p in products if p.id in seen]
    found += unlisted
    found += [residue("Kaspersky directory", {"path": path}) for path in leftovers]
    return found


def _installed(product: Product, seen: _Seen) -> Finding:
    ordered = [r for r in product.macos.get("receipts", ()) if r in seen.receipts]
    version = next((seen.receipts[r] for r in ordered if seen.receipts[r]), None)
    evidence: dict[str, str] = {}
    if ordered:
        evidence["receipt"] = ordered[0]
        evidence["receipts"] = " ".join(ordered)
    if seen.jobs:
        evidence["launchd"] = " ".join(seen.jobs)
    if seen.paths:
        evidence["paths"] = "\n".join(seen.paths)
    return Finding(product=product.id, name=product.name, version=version, evidence=evidence)


def _unlisted(what: str, ident: str, version: str | None) -> Finding:
    noun = "package receipt" if what == "receipt" else "launchd job"
    return Finding(
        product=f"unlisted:{ident}",
        name=f"Kaspersky {noun} {ident} (in no catalog entry)",
        version=version,
        evidence={what: ident},
    )
