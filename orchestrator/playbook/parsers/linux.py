"""The Linux detection parser: the records playbooks/linux/detect.sh.j2 prints, in, findings out."""

from __future__ import annotations

from orchestrator.playbook.model import Catalog, Finding
from orchestrator.playbook.parsers.common import ParseError, residue
from orchestrator.playbook.parsers.windows import UNKNOWN_KASPERSKY
from orchestrator.transports.base import CommandResult

# dpkg states in which the package's files are (at least partly) on disk.
_DPKG_PRESENT = {
    "installed",
    "half-installed",
    "unpacked",
    "half-configured",
    "triggers-awaited",
    "triggers-pending",
}


def linux_packages(result: CommandResult, catalog: Catalog) -> list[Finding]:
    """Records written by playbooks/linux/detect.sh.j2, one tab-separated record per line."""
    findings: list[Finding] = []
    managers: list[str] = []
    unknown = _Unknown(catalog)
    for line in result.stdout.splitlines():
        fields = line.rstrip("\r").split("\t")
        tag = fields[0]
        if tag == "manager" and len(fields) >= 2:
            managers.append(fields[1])
        elif tag == "error":
            raise ParseError(" ".join(fields[1:]) or "package query failed")
        elif tag in ("dpkg", "rpm") and len(fields) >= 5:
            finding = _package_finding(tag, fields, catalog)
            if finding is not None:
                findings.append(finding)
        elif tag == "path" and len(fields) >= 2:
            findings.append(residue("Kaspersky directory", {"path": fields[1]}))
        elif tag == "owner" and len(fields) >= 4:
            unknown.owner(fields[1], fields[2], fields[3])
        elif tag == "process" and len(fields) >= 3:
            unknown.process(fields[1], fields[2])
    if not managers:
        raise ParseError(
            "the detection script printed no package manager line; output was cut short"
        )
    if managers == ["none"]:
        raise ParseError(
            "neither dpkg nor rpm is on the host, so installed packages cannot be listed"
        )
    installed = {f.product for f in findings if f.kind == "installed"}
    return findings + unknown.findings(installed)


class _Unknown:
    """What detection saw in Kaspersky's directories that no catalog product accounts for: a
    package owning files there, or a running program started from there that no package owns.
    Either is a Kaspersky product that was not found, never residue: the host is not clean."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.packages: dict[tuple[str, str], str] = {}  # (manager, package) -> a path it owns
        self.owned: set[str] = set()  # paths some package owns
        self.processes: dict[str, str] = {}  # executable -> pid

    def owner(self, manager: str, package: str, path: str) -> None:
        self.owned.add(path)
        if self.catalog.product_for_package(package) is None:
            self.packages.setdefault((manager, package), path)

    def process(self, pid: str, exe: str) -> None:
        self.processes.setdefault(exe, pid)

    def _of_installed(self, exe: str, installed: set[str]) -> bool:
        """A program in the own directory of a product found installed (not yet removed)."""
        for product in installed:
            for path in self.catalog.products[product].linux.get("residue_paths", ()):
                if exe.startswith(str(path).rstrip("/") + "/"):
                    return True
        return False

    def findings(self, installed: set[str]) -> list[Finding]:
        found = [
            Finding(
                product=UNKNOWN_KASPERSKY,
                name=f"{package} (a {manager} package no catalog entry names, owning {path})",
                version=None,
                evidence={"manager": manager, "package": package, "path": path},
            )
            for (manager, package), path in sorted(self.packages.items())
        ]
        for exe, pid in sorted(self.processes.items()):
            if exe.removesuffix(" (deleted)") in self.owned or self._of_installed(exe, installed):
                continue  # its package is reported, or its product is (the removal stops it)
            found.append(
                Finding(
                    product=UNKNOWN_KASPERSKY,
                    name=f"a running program no package owns: {exe} (pid {pid})",
                    version=None,
                    evidence={"path": exe, "pid": pid},  # path: what label() shows
                )
            )
        return found


def _package_finding(manager: str, fields: list[str], catalog: Catalog) -> Finding | None:
    _, package, version, arch, status = fields[:5]
    state = status.split()[-1] if status.split() else ""
    if state == "not-installed" or not version:
        return None
    product = catalog.product_for_package(package)
    if product is None:  # the shell asked only for catalog packages; anything else is noise
        return None
    evidence = {"manager": manager, "package": package, "arch": arch}
    if state == "config-files":  # removed, not purged: configuration left behind
        return Finding(
            product=product.id,
            name=product.name,
            version=version,
            kind="residue",
            evidence={**evidence, "state": state},
        )
    if state not in _DPKG_PRESENT:
        evidence["state"] = state
    return Finding(product=product.id, name=product.name, version=version, evidence=evidence)
