"""The macOS detection parser: the records playbooks/macos/detect.sh.j2 prints, in, findings out.

One tab-separated record per line:

    os        <a line of sw_vers>                     ProductName:\\t\\tmacOS ...
    pkgutil   ok                                      pkgutil --pkgs answered
    receipt   <id>                                    a receipt whose id names Kaspersky
    info      <id>  <a line of pkgutil --pkg-info>    package-id: / version: / location: ...
    launchctl <the header of launchctl list>          PID\\tStatus\\tLabel
    job       <pid> <status> <label>                  a loaded job whose label names Kaspersky
    sysext    ok | none                               systemextensionsctl list answered | is absent
    extension <a row of systemextensionsctl list>     enabled, active, teamID, bundleID (version),
                                                      name, [state]: Kaspersky's or a catalog team's
    app       <path>  <version>                       a catalog app bundle and its short version
    path      <path>                                  a catalog path that exists
    residue   <path>                                  a platform residue path that exists
    error     <what went wrong>
    end

Each catalog product with any receipt, loaded job or path becomes one ``installed`` finding,
versioned from its first receipt in catalog order, else from its app bundle. A system extension
counts while its state is ``activated ...``: only the app that installed it (or MDM) can remove
it while SIP is on, so it keeps its product installed whatever else is gone; one that waits to be
uninstalled at the next reboot is residue. A Kaspersky receipt or job that no catalog
entry lists (or an activated extension of a catalog team, or named for Kaspersky, that no entry
lists) is an ``installed`` finding of no catalog product (product ``unlisted:<id>``), so a
removal stops and names it instead of calling the host clean. Output without its end marker, or
without proof that pkgutil, launchctl and sw_vers answered, raises ParseError: never a false clean.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    extensions: list[str] = field(default_factory=list)  # "bundle.id [state]"
    app_version: str | None = None


@dataclass(frozen=True)
class Extension:
    """One row of ``systemextensionsctl list``."""

    team: str
    bundle: str
    version: str
    state: str

    @property
    def active(self) -> bool:
        return self.state.split(" ", 1)[0] == "activated"


def parse_extension(row: str) -> Extension:
    """``*<TAB>*<TAB>TEAM<TAB>bundle.id (1.0/1.0.1)<TAB>name<TAB>[state]`` as an Extension."""
    fields = row.split("\t")
    state = fields[-1].strip()
    if len(fields) < 6 or not (state.startswith("[") and state.endswith("]")):
        raise ParseError(f"a systemextensionsctl list row is not the six columns: {row!r}")
    bundle, _, version = fields[3].strip().partition(" (")
    return Extension(fields[2].strip(), bundle, version.rstrip(")"), state[1:-1].strip())


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
    app = data.get("app")
    listed = [
        *data.get("paths", ()),
        *([app] if app else []),
        *([script] if script else []),
        *launchd_plist_paths(product),
    ]
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


@dataclass
class _Records:
    """What the detection script printed, record by record."""

    os_lines: list[str] = field(default_factory=list)
    pkgutil_ok: bool = False
    sysext_ok: bool = False
    header: str | None = None
    ended: bool = False
    receipts: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> pkg-info fields
    jobs: dict[str, str] = field(default_factory=dict)  # label -> pid
    extensions: list[Extension] = field(default_factory=list)
    apps: dict[str, str] = field(default_factory=dict)  # app path -> short version ("" unknown)
    paths: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)

    def take(self, tag: str, rest: str, raw: str) -> None:
        if self.ended:
            raise ParseError(f"output continues after the end marker: {raw[:80]!r}")
        if tag == "end":
            self.ended = True
        elif tag == "error":
            raise ParseError(rest or "the detection script reported an error")
        elif tag == "os":
            self.os_lines.append(rest)
        elif tag in ("pkgutil", "sysext") and rest in ("ok", "none"):
            self.pkgutil_ok |= tag == "pkgutil" and rest == "ok"
            self.sysext_ok |= tag == "sysext"
        elif tag == "receipt" and rest:
            self.receipts.setdefault(rest, {})
        elif tag == "info":
            pkg, _, line = rest.partition("\t")
            if pkg in self.receipts and ":" in line:
                key, value = _key_value(line)
                self.receipts[pkg][key] = value
        elif tag == "launchctl":
            self.header = rest
        elif tag == "job":
            fields = rest.split("\t")
            if len(fields) != 3 or not fields[2]:
                raise ParseError(f"a launchctl list line is not PID, Status, Label: {rest!r}")
            self.jobs[fields[2]] = fields[0]
        elif tag == "extension":
            self.extensions.append(parse_extension(rest))
        elif tag == "app" and rest:
            path, _, version = rest.partition("\t")
            self.apps[path] = version.strip()
            self.take("path", path, raw)
        elif tag == "path" and rest and rest not in self.paths:
            self.paths.append(rest)
        elif tag == "residue" and rest:
            self.leftovers.append(rest)


def macos_products(result: CommandResult, catalog: Catalog) -> list[Finding]:
    """The records of the module docstring, checked for proof the script ran, as findings."""
    records = _Records()
    for raw in result.stdout.splitlines():
        tag, _, rest = raw.rstrip("\r").partition("\t")
        records.take(tag, rest, raw)
    if not records.ended:
        raise ParseError("the detection script printed no end marker; output was cut short")
    _check_os(records.os_lines)
    if not records.pkgutil_ok:
        raise ParseError("pkgutil did not list the package receipts")
    if records.header != LAUNCHCTL_HEADER:
        header = records.header
        raise ParseError(
            "launchctl list did not print its PID/Status/Label header"
            + (f" (got {header!r})" if header else "")
        )
    return _findings(catalog, records)


def _findings(catalog: Catalog, records: _Records) -> list[Finding]:
    products = [p for p in catalog.ordered() if p.macos]
    by_receipt = {r: p for p in products for r in p.macos.get("receipts", ())}
    by_label = {label: p for p in products for label in p.macos.get("launchd", ())}
    by_path = {path: p for p in products for path in product_paths(p)}
    seen: dict[str, _Seen] = {}
    unlisted: list[Finding] = []
    for pkg, info in records.receipts.items():  # listed by --pkgs: there, even if --pkg-info failed
        version = info.get("version") or None
        product = by_receipt.get(pkg)
        if product is None:
            unlisted.append(_unlisted("receipt", pkg, version))
        else:
            seen.setdefault(product.id, _Seen()).receipts[pkg] = version
    for label in records.jobs:
        product = by_label.get(label)
        if product is None:
            unlisted.append(_unlisted("launchd", label, None))
        else:
            seen.setdefault(product.id, _Seen()).jobs.append(label)
    for path in records.paths:
        product = by_path.get(path)
        if product is not None:
            mark = seen.setdefault(product.id, _Seen())
            mark.paths.append(path)
            if path == product.macos.get("app"):
                mark.app_version = records.apps.get(path) or None
    waiting = _extensions(products, records.extensions, seen, unlisted)
    found = [_installed(p, seen[p.id]) for p in products if p.id in seen]
    found += unlisted + waiting
    found += [residue("Kaspersky directory", {"path": path}) for path in records.leftovers]
    return found


def _extensions(
    products: list[Product],
    extensions: list[Extension],
    seen: dict[str, _Seen],
    unlisted: list[Finding],
) -> list[Finding]:
    """Activated extensions mark their product installed; the others are residue."""
    by_bundle = {b: p for p in products for b in p.macos.get("system_extensions", ())}
    waiting: list[Finding] = []
    for ext in extensions:
        shown = f"{ext.bundle} [{ext.state}]"
        product = by_bundle.get(ext.bundle)
        if not ext.active:
            what = f"system extension {shown} (team {ext.team})"
            waiting.append(residue(what, {"system_extension": ext.bundle}))
        elif product is None:
            unlisted.append(_unlisted("system_extension", ext.bundle, ext.version or None))
        else:
            seen.setdefault(product.id, _Seen()).extensions.append(shown)
    return waiting


def _installed(product: Product, seen: _Seen) -> Finding:
    ordered = [r for r in product.macos.get("receipts", ()) if r in seen.receipts]
    version = next((seen.receipts[r] for r in ordered if seen.receipts[r]), seen.app_version)
    evidence: dict[str, str] = {}
    if ordered:
        evidence["receipt"] = ordered[0]
        evidence["receipts"] = " ".join(ordered)
    if seen.jobs:
        evidence["launchd"] = " ".join(seen.jobs)
    if seen.paths:
        evidence["paths"] = "\n".join(seen.paths)
    if seen.extensions:
        evidence["system_extensions"] = " ".join(seen.extensions)
    return Finding(product=product.id, name=product.name, version=version, evidence=evidence)


def _unlisted(what: str, ident: str, version: str | None) -> Finding:
    nouns = {"receipt": "package receipt", "system_extension": "system extension"}
    noun = nouns.get(what, "launchd job")
    return Finding(
        product=f"unlisted:{ident}",
        name=f"Kaspersky {noun} {ident} (in no catalog entry)",
        version=version,
        evidence={what: ident},
    )
